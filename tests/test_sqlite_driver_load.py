"""Large loads into the embedded store go through the ADBC SQLite driver, in a process of its own.

Small loads keep ``sqlite3``; both must store the same bytes, and the store's
own readers, in the process that loads, must see each load whole once it is
committed (two copies of SQLite in one process do not: see
:mod:`crimemap.store.sqlite.load_connection`).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import crimemap.store.sqlite as sqlite_store
from conftest import POLICEUK
from crimemap.errors import StoreError
from crimemap.load.generate.archive import generate
from crimemap.load.policeuk import load_policeuk
from crimemap.load.policeuk_files import Source, find_sources
from crimemap.load.policeuk_reader import read_street
from crimemap.load.stops import read_stops
from crimemap.query import CrimeQuery, StopQuery
from crimemap.store.sqlite import SQLiteStore, load_connection
from crimemap.store.sqlite import writer as sqlite_writer
from crimemap.store.sqlite.load_connection import sqlite_message
from crimemap.store.sqlite.schema import INDEXES
from stops_truth import STOPS


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("archive")
    generate(out, months=["2024-05", "2024-06"], crimes_per_month=4_000, seed=3, stops_per_month=1_000)
    return out


def _files(archive: Path, keep: Callable[[Source], bool]) -> list[Path]:
    return [Path(s.label) for s in find_sources([archive]) if keep(s)]


def _steps(archive: Path) -> list[list[Path]]:
    """Loads that take every path of the writer: stops before their streets (named later), outcomes of
    crimes stored before (dated at the end), a month loaded again."""
    return [
        _files(archive, lambda s: s.month == "2024-06" and s.kind != "outcomes"),
        _files(archive, lambda s: s.month == "2024-05" and s.kind == "stop-and-search"),
        _files(archive, lambda s: s.month == "2024-05" and s.kind != "stop-and-search"),
        _files(archive, lambda s: s.month == "2024-06" and s.kind == "outcomes"),
        _files(archive, lambda s: s.month == "2024-06"),
    ]


def _contents(path: Path) -> dict[str, str]:
    """A digest of every table's rows (each value as SQLite quotes it) and of every index's definition."""
    conn = sqlite3.connect(path)
    found = {}
    for name, kind, sql in conn.execute("SELECT name, type, sql FROM sqlite_master ORDER BY name"):
        digest = hashlib.sha256(str(sql).encode())
        if kind == "table":
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({name})") if r[1] != "loaded_at"]
            where = " WHERE key != 'last_updated'" if name == "meta" else ""
            order = ", ".join(str(i + 1) for i in range(len(columns)))
            quoted = ", ".join(f"quote({c})" for c in columns)
            for row in conn.execute(f"SELECT {quoted} FROM {name}{where} ORDER BY {order}"):
                digest.update(repr(row).encode())
        found[name] = digest.hexdigest()
    conn.close()
    return found


def _load_steps(path: Path, steps: list[list[Path]]) -> None:
    store = SQLiteStore(path)
    for files in steps:
        load_policeuk(store, files, parallel=False)
    store.close()


def test_a_load_through_the_driver_stores_exactly_what_sqlite3_stores(
    tmp_path: Path, archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = _steps(archive)
    monkeypatch.setattr(sqlite_store, "DRIVER_MIN_ROWS", 10**12)
    _load_steps(tmp_path / "sqlite3.sqlite", steps)
    monkeypatch.setattr(sqlite_store, "DRIVER_MIN_ROWS", 0)
    _load_steps(tmp_path / "driver.sqlite", steps)
    by_sqlite3, by_driver = _contents(tmp_path / "sqlite3.sqlite"), _contents(tmp_path / "driver.sqlite")
    assert by_driver == by_sqlite3
    assert {"crimes", "outcomes", "stops", "streets", "lsoas", "stats_cells"} <= set(by_driver)


def test_readers_in_the_loading_process_see_each_driver_load_whole_after_its_commit(
    tmp_path: Path, archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "DRIVER_MIN_ROWS", 0)
    store = SQLiteStore(tmp_path / "s.sqlite")
    june = _files(archive, lambda s: s.month == "2024-06")
    may = _files(archive, lambda s: s.month == "2024-05")
    assert store.months() == []  # this process's reader is open before the loads and stays open
    first = load_policeuk(store, june, parallel=False)
    assert [m.month for m in store.months()] == ["2024-06"]
    assert len(list(store.crimes(CrimeQuery(month="2024-06")))) > 0
    second = load_policeuk(store, may, parallel=False)
    assert [m.month for m in store.months()] == ["2024-06", "2024-05"]
    assert sum(m.crimes for m in store.months()) == first.crimes + second.crimes
    located = [list(store.stops(StopQuery(month="2024-05", located=here))) for here in (True, False)]
    assert sum(map(len, located)) == second.stops
    store.close()
    reopened = sqlite3.connect(tmp_path / "s.sqlite")
    assert reopened.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    reopened.close()


def test_a_crime_id_stored_twice_through_the_driver_is_refused_and_nothing_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "DRIVER_MIN_ROWS", 0)
    store = SQLiteStore(tmp_path / "s.sqlite")
    source = find_sources([POLICEUK / "2016-01" / "2016-01-city-of-london-street.csv"])[0]
    crimes = list(read_street(source))
    with store.writer() as w:
        w.replace_crimes("2016-01", "city-of-london", crimes)
    before = _contents(tmp_path / "s.sqlite")
    other = [c._replace(month="2016-02") for c in crimes[:3]]  # the same ids in another month
    with pytest.raises(StoreError, match="2016-02: a crime id is already stored .*UNIQUE constraint failed"):
        with store.writer() as w:
            w.replace_crimes("2016-02", "city-of-london", other)
    assert [m.month for m in store.months()] == ["2016-01"]
    store.close()
    assert _contents(tmp_path / "s.sqlite") == before


def test_a_stop_id_stored_twice_through_the_driver_is_refused_and_nothing_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "DRIVER_MIN_ROWS", 0)
    store = SQLiteStore(tmp_path / "s.sqlite")
    source = next(s for s in find_sources([STOPS / "2016-01"]) if s.kind == "stop-and-search")
    stops = list(read_stops(source))
    with store.writer() as w:
        w.replace_stops("2016-01", source.force, stops)
    before = _contents(tmp_path / "s.sqlite")
    other = [s._replace(month="2016-02") for s in stops[:3]]  # the same ids in another month
    clash = f"2016-02 {source.force}: a stop id is already stored for another stop .*UNIQUE constraint failed"
    with pytest.raises(StoreError, match=clash):
        with store.writer() as w:
            w.replace_stops("2016-02", source.force, other)
    assert [m.month for m in store.stop_months()] == ["2016-01"]
    store.close()
    assert _contents(tmp_path / "s.sqlite") == before


def test_the_drivers_messages_read_as_sqlites_own() -> None:
    assert sqlite_message("INTEGRITY: failed to execute query: UNIQUE constraint failed: crimes.id") == (
        "UNIQUE constraint failed: crimes.id"
    )
    assert sqlite_message("IO: Failed to reset statement: UNIQUE constraint failed: t.a") == (
        "UNIQUE constraint failed: t.a"
    )


@pytest.mark.parametrize("driver_min_rows", [0, 10**12], ids=["driver", "sqlite3"])
def test_a_bulk_load_builds_its_indexes_at_the_end_and_stores_what_a_load_row_by_row_stores(
    tmp_path: Path, archive: Path, monkeypatch: pytest.MonkeyPatch, driver_min_rows: int
) -> None:
    steps = _steps(archive)
    monkeypatch.setattr(sqlite_store, "DRIVER_MIN_ROWS", driver_min_rows)
    _load_steps(tmp_path / "by-row.sqlite", steps)
    monkeypatch.setattr(sqlite_writer, "BULK_MIN_ROWS", 0)  # every load counts as large: indexes built at its end
    _load_steps(tmp_path / "bulk.sqlite", steps)
    assert _contents(tmp_path / "bulk.sqlite") == _contents(tmp_path / "by-row.sqlite")
    conn = sqlite3.connect(tmp_path / "bulk.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert set(INDEXES) <= indexes
    conn.close()


@pytest.mark.parametrize("driver_min_rows", [0, 10**12], ids=["driver", "sqlite3"])
def test_two_crimes_of_one_bulk_load_sharing_an_id_are_refused_and_nothing_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, driver_min_rows: int
) -> None:
    monkeypatch.setattr(sqlite_store, "DRIVER_MIN_ROWS", driver_min_rows)
    monkeypatch.setattr(sqlite_writer, "BULK_MIN_ROWS", 0)
    store = SQLiteStore(tmp_path / "s.sqlite")
    load_policeuk(store, [POLICEUK / "2016-01"], parallel=False)
    before = _contents(tmp_path / "s.sqlite")
    source = find_sources([POLICEUK / "2016-02" / "2016-02-city-of-london-street.csv"])[0]
    crimes = list(read_street(source))
    again = [c._replace(month="2016-03") for c in crimes[:3]]  # the same ids in another month of the same load
    with pytest.raises(StoreError, match="two crimes of this load share an id .*UNIQUE constraint failed"):
        with store.writer() as w:
            w.expect(10**6)
            w.replace_crimes("2016-02", "city-of-london", crimes)
            w.replace_crimes("2016-03", "city-of-london", again)
    assert [m.month for m in store.months()] == ["2016-01"]
    store.close()
    assert _contents(tmp_path / "s.sqlite") == before


@pytest.mark.parametrize("driver_min_rows", [0, 10**12], ids=["driver", "sqlite3"])
def test_a_load_sorts_its_index_builds_in_runs_on_a_second_thread_and_gives_back_its_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, driver_min_rows: int
) -> None:
    """SQLite sorts on a worker thread only with temporary files and a sort larger than the page cache."""
    monkeypatch.setattr(sqlite_store, "DRIVER_MIN_ROWS", driver_min_rows)
    store = SQLiteStore(tmp_path / "s.sqlite")
    with store.writer(rows=1) as w:
        conn = w.conn
        assert conn.execute("PRAGMA temp_store").fetchone() == (1,)  # FILE
        assert conn.execute("PRAGMA threads").fetchone() == (load_connection.SORT_THREADS,)
        (cache,) = conn.execute("PRAGMA cache_size").fetchone()
        assert cache < -load_connection.SORT_CACHE_KIB
        with pytest.raises(RuntimeError):
            with load_connection.sorting_in_runs(conn):
                assert conn.execute("PRAGMA cache_size").fetchone() == (-load_connection.SORT_CACHE_KIB,)
                raise RuntimeError("a build failed")
        assert conn.execute("PRAGMA cache_size").fetchone() == (cache,)
    store.close()
