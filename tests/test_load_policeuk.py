"""Loading police.uk bulk archives: every rule of the loader, on the real files and on generated ones."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import POLICEUK
from crimemap.load.errors import LoadError
from crimemap.load.generate.archive import generate
from crimemap.load.policeuk import load_policeuk
from crimemap.load.policeuk_files import crime_id
from crimemap.query import CrimeQuery
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore

CITY = "city-of-london"


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.reader(f))[1:]


def all_crimes(store: Store, month: str) -> list:
    located = list(store.crimes(CrimeQuery(month=month)))
    return located + list(store.crimes(CrimeQuery(month=month, located=False)))


def fingerprint(path: Path) -> str:
    """A digest of every row of every table of a SQLite store, to prove it did not change."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    digest = hashlib.sha256()
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    for table in tables:
        if table == "meta":
            continue
        columns = "month, force, kind, rows" if table == "loads" else "*"  # not when it was loaded
        width = len(conn.execute(f"SELECT {columns} FROM {table} LIMIT 0").description)
        order = ", ".join(str(i + 1) for i in range(min(3, width)))
        for row in conn.execute(f"SELECT {columns} FROM {table} ORDER BY {order}"):
            digest.update(repr(row).encode())
    conn.close()
    return digest.hexdigest()


def copy_month(tmp: Path, month: str, kinds: tuple[str, ...] = ("street", "outcomes"), force: str = CITY) -> Path:
    folder = tmp / "archive" / month
    folder.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        shutil.copy(POLICEUK / month / f"{month}-{force}-{kind}.csv", folder)
    return tmp / "archive"


def test_street_file_loads_every_row_including_those_without_location(store: Store) -> None:
    path = POLICEUK / "2017-01" / f"2017-01-{CITY}-street.csv"
    load_policeuk(store, [path])
    rows = csv_rows(path)
    crimes = all_crimes(store, "2017-01")
    assert len(crimes) == len(rows)
    unlocated = [r for r in rows if not r[4]]
    assert len(list(store.crimes(CrimeQuery(month="2017-01", located=False)))) == len(unlocated)
    assert {c.persistent_id for c in crimes if c.persistent_id} == {r[0] for r in rows if r[0]}
    asb = [c for c in crimes if c.category == "anti-social-behaviour"]
    assert asb and all(c.persistent_id == "" and c.outcome is None for c in asb)


def test_crime_fields_keep_the_csv_values(store: Store) -> None:
    path = POLICEUK / "2017-01" / f"2017-01-{CITY}-street.csv"
    load_policeuk(store, [path])
    row = next(r for r in csv_rows(path) if r[0] and r[4] and r[10])
    crime = next(c for c in all_crimes(store, "2017-01") if c.persistent_id == row[0])
    assert (crime.month, crime.force, crime.falls_within) == ("2017-01", CITY, row[3])
    assert (f"{crime.lng:.6f}", f"{crime.lat:.6f}") == (row[4], row[5])
    assert (crime.street_name, crime.lsoa_code, crime.lsoa_name) == (row[6], row[7], row[8])
    assert crime.outcome == row[10]
    assert crime.location_type == "Force"


def test_loading_the_same_files_again_gives_the_same_ids_and_no_duplicates(store: Store, tmp_path: Path) -> None:
    archive = copy_month(tmp_path, "2016-05")
    load_policeuk(store, [archive])
    first = sorted((c.id, c.street_id, c.persistent_id) for c in all_crimes(store, "2016-05"))
    load_policeuk(store, [archive])
    again = sorted((c.id, c.street_id, c.persistent_id) for c in all_crimes(store, "2016-05"))
    assert again == first
    assert len({c[0] for c in first}) == len(first)


def test_ids_do_not_depend_on_load_order(make_store: Callable[[], Store]) -> None:
    months = ["2016-01", "2016-02", "2016-03"]
    files = [POLICEUK / m / f"{m}-{CITY}-street.csv" for m in months]
    forward, backward = make_store(), make_store()
    load_policeuk(forward, files)
    for f in reversed(files):
        load_policeuk(backward, [f])
    for m in months:
        a = sorted((c.id, c.street_id, c.persistent_id, c.street_name) for c in all_crimes(forward, m))
        b = sorted((c.id, c.street_id, c.persistent_id, c.street_name) for c in all_crimes(backward, m))
        assert a == b


def test_the_same_map_point_has_the_same_street_id_in_every_month(store: Store) -> None:
    load_policeuk(store, [POLICEUK / m / f"{m}-{CITY}-street.csv" for m in ("2016-01", "2016-02")])
    ids: dict[tuple[float, float, str], set[int]] = {}
    for m in ("2016-01", "2016-02"):
        for c in store.crimes(CrimeQuery(month=m)):
            assert c.lng is not None and c.lat is not None and c.street_id is not None
            ids.setdefault((c.lng, c.lat, c.street_name), set()).add(c.street_id)
    assert all(len(s) == 1 for s in ids.values())
    assert len({next(iter(s)) for s in ids.values()}) == len(ids)


def test_crime_ids_pack_month_force_and_row() -> None:
    assert crime_id("2017-01", CITY, 5) == crime_id("2017-01", CITY, 0) + 5
    assert crime_id("2017-02", CITY, 0) != crime_id("2017-01", CITY, 0)
    assert crime_id("2017-01", "btp", 0) != crime_id("2017-01", CITY, 0)
    assert crime_id("2055-04", "northern-ireland", 2**21 - 1) < 2**53


def test_a_newer_archive_of_a_stored_month_replaces_it(store: Store, tmp_path: Path) -> None:
    original = POLICEUK / "2016-04" / f"2016-04-{CITY}-street.csv"
    load_policeuk(store, [original, POLICEUK / "2016-03" / f"2016-03-{CITY}-street.csv"])
    newer = tmp_path / "2016-04" / original.name
    newer.parent.mkdir()
    lines = original.read_text().splitlines(keepends=True)
    newer.write_text("".join(lines[:101]))
    load_policeuk(store, [newer])
    assert len(all_crimes(store, "2016-04")) == 100
    assert len(all_crimes(store, "2016-03")) == len(csv_rows(POLICEUK / "2016-03" / f"2016-03-{CITY}-street.csv"))
    month = next(m for m in store.months() if m.month == "2016-04")
    assert month.crimes == 100


def test_outcomes_give_each_crime_its_history_and_latest_outcome_date(store: Store) -> None:
    load_policeuk(store, [POLICEUK])
    history: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(POLICEUK.glob(f"*/*-{CITY}-outcomes.csv")):
        for row in csv_rows(path):
            history.setdefault(row[0], []).append((row[1], row[9]))
    # A crime of 2016-01 whose outcomes arrived in several later months.
    street = {r[0] for r in csv_rows(POLICEUK / "2016-01" / f"2016-01-{CITY}-street.csv") if r[0]}
    pid = next(p for p, h in history.items() if p in street and len({m for m, _ in h}) >= 2)
    events = store.outcome_history(pid)
    assert sorted((e.month, e.outcome) for e in events) == sorted(set(history[pid]))
    crime = store.crime_by_persistent_id(pid)
    assert crime is not None and crime.month == "2016-01"
    assert crime.outcome_month == max(m for m, _ in history[pid])


def test_outcomes_loaded_before_their_street_file_still_date_the_outcome(store: Store) -> None:
    outcomes = POLICEUK / "2016-02" / f"2016-02-{CITY}-outcomes.csv"
    street = POLICEUK / "2016-01" / f"2016-01-{CITY}-street.csv"
    load_policeuk(store, [outcomes])
    load_policeuk(store, [street])
    pids = {r[0] for r in csv_rows(outcomes)} & {r[0] for r in csv_rows(street)}
    assert pids
    for pid in list(pids)[:20]:
        crime = store.crime_by_persistent_id(pid)
        assert crime is not None and crime.outcome_month == "2016-02"


def test_snake_case_headers_are_mapped_to_the_police_uk_columns(store: Store) -> None:
    path = POLICEUK / "2018-01" / "2018-01-essex-street.csv"
    load_policeuk(store, [path])
    assert len(all_crimes(store, "2018-01")) == len(csv_rows(path))


def test_crlf_files_load_like_lf_files(store: Store) -> None:
    path = POLICEUK / "2016-03" / "2016-03-cumbria-street.csv"
    assert b"\r\n" in path.read_bytes()[:300]
    load_policeuk(store, [path])
    crimes = list(store.crimes(CrimeQuery(month="2016-03", force="cumbria")))
    assert crimes and not any("\r" in c.context or "\r" in c.street_name for c in crimes)
    assert len(all_crimes(store, "2016-03")) == len(csv_rows(path))


def test_btp_rows_are_btp_locations_and_may_lack_a_crime_id(store: Store) -> None:
    load_policeuk(store, [POLICEUK / "2020-01" / "2020-01-btp-street.csv"])
    crimes = all_crimes(store, "2020-01")
    assert crimes and all(c.location_type == "BTP" and c.force == "btp" for c in crimes)
    assert any(c.persistent_id == "" and c.category != "anti-social-behaviour" for c in crimes)


def test_a_zip_archive_loads_like_its_folder(make_store: Callable[[], Store], tmp_path: Path) -> None:
    archive = tmp_path / "2016-06.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((POLICEUK / "2016-06").iterdir()):
            z.write(f, f"2016-06/{f.name}")
    from_zip, from_folder = make_store(), make_store()
    load_policeuk(from_zip, [archive])
    load_policeuk(from_folder, [POLICEUK / "2016-06"])
    key = lambda s: sorted((c.id, c.outcome_month or "") for c in all_crimes(s, "2016-06"))  # noqa: E731
    assert key(from_zip) == key(from_folder) != []


def test_stop_and_search_files_load_beside_street_files(store: Store, tmp_path: Path) -> None:
    folder = copy_month(tmp_path, "2017-02", ("street",))
    (folder / "2017-02" / f"2017-02-{CITY}-stop-and-search.csv").write_text("Type,Date\n")
    with pytest.raises(LoadError, match="wrong header for a stop-and-search file"):
        load_policeuk(store, [folder])  # read, not skipped (tests/test_load_stops.py has the rest)


def _assert_failed_load_changes_nothing(path: Path, bad: list[Path], message: str) -> None:
    store = SQLiteStore(path)
    load_policeuk(store, [POLICEUK / "2016-01"])
    before = fingerprint(path)
    with pytest.raises(LoadError, match=message):
        load_policeuk(store, bad)
    store.close()
    assert fingerprint(path) == before


def test_a_wrong_header_is_refused_naming_the_file_and_nothing_is_loaded(tmp_path: Path) -> None:
    good = copy_month(tmp_path, "2016-07")
    bad = good / "2016-07" / f"2016-07-{CITY}-street.csv"
    text = bad.read_text()
    bad.write_text(text.replace("Crime ID,Month", "Crime,Month", 1))
    _assert_failed_load_changes_nothing(tmp_path / "s.sqlite", [good], r"2016-07-city-of-london-street\.csv: line 1")


def test_a_bad_row_halfway_is_refused_naming_file_and_line_and_nothing_is_loaded(tmp_path: Path) -> None:
    good = copy_month(tmp_path, "2016-08")
    bad = good / "2016-08" / f"2016-08-{CITY}-street.csv"
    lines = bad.read_text().splitlines(keepends=True)
    fields = next(csv.reader([lines[300]]))
    fields[5] = "north"
    lines[300] = ",".join(fields) + "\n"
    bad.write_text("".join(lines))
    _assert_failed_load_changes_nothing(tmp_path / "s.sqlite", [good], r"line 301: longitude/latitude")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (9, "Jaywalking", "unknown crime type"),
        (1, "2016-09", "month '2016-09' in a file for 2016-08"),
        (0, "not-a-hash", "Crime ID must be 64 hexadecimal"),
        (4, "-999.0", "out of range"),
    ],
)
def test_every_kind_of_bad_row_is_refused(tmp_path: Path, column: int, value: str, message: str) -> None:
    good = copy_month(tmp_path, "2016-08", ("street",))
    bad = good / "2016-08" / f"2016-08-{CITY}-street.csv"
    lines = bad.read_text().splitlines(keepends=True)
    fields = next(csv.reader([lines[5]]))
    fields[column] = value
    lines[5] = ",".join(fields) + "\n"
    bad.write_text("".join(lines))
    _assert_failed_load_changes_nothing(tmp_path / "s.sqlite", [good], message)


def test_unknown_force_in_a_file_name_is_refused(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "2016-01" / "2016-01-gotham-street.csv"
    path.parent.mkdir()
    shutil.copy(POLICEUK / "2016-01" / f"2016-01-{CITY}-street.csv", path)
    with pytest.raises(LoadError, match="unknown force 'gotham'"):
        load_policeuk(store, [path])


def test_parallel_and_in_process_parsing_store_the_same_rows(tmp_path: Path) -> None:
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    sa, sb = SQLiteStore(a), SQLiteStore(b)
    load_policeuk(sa, [POLICEUK], parallel=True)
    load_policeuk(sb, [POLICEUK], parallel=False)
    sa.close()
    sb.close()
    assert fingerprint(a) == fingerprint(b)


@pytest.fixture(scope="module")
def generated_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    out = tmp_path_factory.mktemp("generated")
    summary = generate(out, months=["2024-01", "2024-02"], crimes_per_month=60_000, seed=7)
    return out, summary.crimes, summary.outcomes


def test_generated_archives_load_completely(store: Store, generated_archive: tuple[Path, int, int]) -> None:
    out, crimes, outcomes = generated_archive
    summary = load_policeuk(store, [out])
    assert (summary.crimes, summary.outcomes) == (crimes, outcomes)
    assert sum(m.crimes for m in store.months()) == crimes
    assert {m.month for m in store.months()} == {"2024-01", "2024-02"}


def test_a_load_killed_halfway_leaves_the_store_as_it_was(
    tmp_path: Path, generated_archive: tuple[Path, int, int]
) -> None:
    path = tmp_path / "s.sqlite"
    store = SQLiteStore(path)
    load_policeuk(store, [POLICEUK / "2016-01"])
    store.close()
    before = fingerprint(path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crimemap",
            "load",
            "--store",
            str(path),
            "--quiet",
            str(generated_archive[0]),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Wait until the load is writing (its WAL grows), then kill it without warning.
    wal = Path(str(path) + "-wal")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not wal.exists() or wal.stat().st_size < 2_000_000):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stderr:
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert fingerprint(path) == before
    reopened = SQLiteStore(path)
    assert [m.month for m in reopened.months()] == ["2016-01"]
    reopened.close()


def test_the_command_line_is_quiet_in_scripts_and_reports_a_summary(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "crimemap",
            "load",
            "--store",
            str(tmp_path / "s.sqlite"),
            str(POLICEUK / "2016-01"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stderr == ""
    assert "loaded" in result.stdout and "crimes" in result.stdout and "outcomes" in result.stdout
    failed = subprocess.run(
        [
            sys.executable,
            "-m",
            "crimemap",
            "load",
            "--store",
            str(tmp_path / "s.sqlite"),
            str(tmp_path / "nope"),
        ],
        capture_output=True,
        text=True,
    )
    assert (
        failed.returncode == 1 and "no such file or folder" in failed.stderr and "nothing was loaded" in failed.stderr
    )


def test_outcomes_are_at_their_crimes_map_point_whatever_the_name_case(store: Store) -> None:
    load_policeuk(store, [POLICEUK / "2016-01"])
    pid = "9a0874c4253249e9b19acf901553a1b2b283306a7d4e8e12ad5970d6d51a1812"  # "ARTIZAN STREET" in outcomes
    crime = store.crime_by_persistent_id(pid)
    assert crime is not None and crime.street_name == "On or near Artizan Street"
    at_point = list(store.outcomes(CrimeQuery(month="2016-01", street_id=crime.street_id)))
    assert [e.outcome for e in at_point if e.crime and e.crime.persistent_id == pid] == ["Offender given a caution"]
    street = store.street(crime.street_id)
    assert street is not None and street.name == "On or near Artizan Street"


def test_two_crimes_with_one_id_are_refused_and_nothing_is_stored(store: Store) -> None:
    from crimemap.errors import StoreError
    from crimemap.load.policeuk_files import find_sources
    from crimemap.load.policeuk_reader import read_street

    source = find_sources([POLICEUK / "2016-01" / f"2016-01-{CITY}-street.csv"])[0]
    crimes = list(read_street(source))
    other = [c._replace(month="2016-02") for c in crimes[:3]]  # the same ids in another month
    with store.writer() as w:
        w.replace_crimes("2016-01", CITY, crimes)
    with pytest.raises(StoreError, match="crime id"):
        with store.writer() as w:
            w.replace_crimes("2016-02", CITY, other)
    assert [m.month for m in store.months()] == ["2016-01"]
