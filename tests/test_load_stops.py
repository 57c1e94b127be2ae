"""Loading stop-and-search files: the guarantees of street files, on the real files, over both stores."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import POLICEUK
from crimemap.load.errors import LoadError
from crimemap.load.policeuk import load_policeuk
from crimemap.load.policeuk_files import crime_id
from crimemap.query import StopQuery
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore
from stops_truth import STOPS, files, rows_of
from test_load_policeuk import fingerprint

CITY = "city-of-london"


def all_stops(store: Store, month: str | None = None, force: str | None = None) -> list:  # type: ignore[type-arg]
    return list(store.stops(StopQuery(month=month, force=force, located=None)))


def copy_file(tmp: Path, month: str, force: str, folder: str = "archive") -> Path:
    target = tmp / folder / month / f"{month}-{force}-stop-and-search.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(STOPS / month / target.name, target)
    return target


def test_every_row_of_every_file_is_stored_with_and_without_location(store: Store) -> None:
    summary = load_policeuk(store, [STOPS])
    assert summary.stops == sum(len(rows_of(m, f)) for m, f in files()) == 16598
    for month, force in files():
        stored = all_stops(store, month, force)
        rows = rows_of(month, force)
        assert len(stored) == len(rows)
        assert sum(1 for s in stored if s.lat is None) == sum(1 for r in rows if not r.located)
    months = {m.month: m for m in store.stop_months()}
    assert months["2020-01"].forces == tuple(sorted(f for m, f in files() if m == "2020-01"))
    assert store.months() == []  # stops are not crimes


def test_a_stop_keeps_the_files_values(store: Store) -> None:
    load_policeuk(store, [STOPS / "2019-12"])
    stop = all_stops(store, "2019-12", CITY)[0]
    f = rows_of("2019-12", CITY)[0].fields
    assert (stop.type, stop.datetime, stop.gender, stop.age_range, stop.outcome) == (
        f["Type"], f["Date"], f["Gender"], f["Age range"], f["Outcome"],
    )  # fmt: skip
    assert (stop.lat, stop.lng) == (float(f["Latitude"]), float(f["Longitude"]))
    assert stop.outcome_linked_to_object_of_search is False and stop.operation is None
    assert stop.id == crime_id("2019-12", CITY, 0)


def test_loading_again_replaces_the_month_and_force(store: Store, tmp_path: Path) -> None:
    path = copy_file(tmp_path, "2020-01", CITY)
    load_policeuk(store, [path])
    load_policeuk(store, [path])
    assert len(all_stops(store, "2020-01", CITY)) == len(rows_of("2020-01", CITY))
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:11]) + "\n")  # a newer, shorter archive
    load_policeuk(store, [path])
    assert len(all_stops(store, "2020-01", CITY)) == 10
    assert [m.crimes for m in store.stop_months()] == [10]


def test_street_outcomes_and_stop_files_load_together_from_a_zip(
    make_store: Callable[[], Store], tmp_path: Path
) -> None:
    archive = tmp_path / "2016-03.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((POLICEUK / "2016-03").iterdir()):
            z.write(f, f"2016-03/{f.name}")
        z.write(
            STOPS / "2016-03" / f"2016-03-{CITY}-stop-and-search.csv", f"2016-03/2016-03-{CITY}-stop-and-search.csv"
        )
    from_zip, from_folders = make_store(), make_store()
    summary = load_policeuk(from_zip, [archive])
    load_policeuk(from_folders, [POLICEUK / "2016-03", STOPS / "2016-03"])
    assert summary.stops == len(rows_of("2016-03")) and summary.crimes > 0 and summary.outcomes > 0
    assert all_stops(from_zip) == all_stops(from_folders) != []


def test_a_date_in_the_month_before_stays_in_the_files_month(store: Store, tmp_path: Path) -> None:
    path = copy_file(tmp_path, "2019-12", "durham")
    lines = path.read_text().splitlines()
    first = lines[1].split(",")
    first[1] = "2019-11-30T23:30:00+00:00"  # 00:30 on the 1st, had it been BST
    path.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    load_policeuk(store, [path])
    stops = all_stops(store, "2019-12", "durham")
    assert stops[0].datetime == "2019-11-30T23:30:00+00:00" and stops[0].month == "2019-12"
    assert all_stops(store, "2019-11") == []


def test_each_file_advances_the_progress(store: Store) -> None:
    seen: list[tuple[str, str, int]] = []
    load_policeuk(store, [STOPS / "2020-01"], on_file=lambda s, rows: seen.append((s.kind, s.force, rows)))
    assert [(f, n) for _, f, n in seen] == [(f, len(rows_of("2020-01", f))) for m, f in files() if m == "2020-01"]
    assert {k for k, _, _ in seen} == {"stop-and-search"}


def test_parallel_and_in_process_parsing_store_the_same_stops(make_store: Callable[[], Store]) -> None:
    one, two = make_store(), make_store()
    load_policeuk(one, [STOPS / "2020-01"], parallel=True)
    load_policeuk(two, [STOPS / "2020-01"], parallel=False)
    assert all_stops(one) == all_stops(two) != []


# -- bad files: refused, named, and nothing stored ---------------------------------------------------------------


def _bad_copy(tmp: Path, line: int, column: int, value: str) -> Path:
    path = copy_file(tmp, "2020-01", "durham", folder="bad")
    lines = path.read_text().splitlines()
    fields = lines[line - 1].split(",")
    fields[column] = value
    lines[line - 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (0, "Horse search", "unknown Type 'Horse search'"),
        (1, "05/01/2020 10:00", "Date must be an ISO 8601 date and time"),
        (1, "", "Date must be an ISO 8601"),
        (4, "north", "latitude/longitude must be numbers"),
        (5, "200.0", "coordinates out of range"),
        (2, "Yes", "Part of a policing operation must be True, False or empty"),
        (13, "maybe", "Outcome linked to object of search must be True, False or empty"),
    ],
)
def test_a_bad_row_is_refused_naming_file_and_line_and_nothing_is_stored(
    make_store: Callable[[], Store], tmp_path: Path, column: int, value: str, message: str
) -> None:
    store = make_store()
    load_policeuk(store, [POLICEUK / "2016-01", STOPS / "2019-12"])
    before = (store.stop_months(), all_stops(store), store.tables())
    bad = _bad_copy(tmp_path, 120, column, value)
    good = copy_file(tmp_path, "2020-01", CITY, folder="bad")
    with pytest.raises(LoadError, match=f"2020-01-durham-stop-and-search.csv: line 120: {message}"):
        load_policeuk(store, [good, bad])
    assert (store.stop_months(), all_stops(store), store.tables()) == before


def test_a_wrong_header_is_refused(store: Store, tmp_path: Path) -> None:
    path = copy_file(tmp_path, "2020-01", CITY)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["Type,Date,Latitude,Longitude", *lines[1:]]) + "\n")
    with pytest.raises(LoadError, match="line 1: wrong header for a stop-and-search file"):
        load_policeuk(store, [path])
    assert store.stop_months() == [] and store.table("policeuk-stops") is None


def test_a_failed_load_leaves_the_embedded_file_byte_for_byte_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = SQLiteStore(path)
    load_policeuk(store, [STOPS / "2019-12"])
    before = fingerprint(path)
    with pytest.raises(LoadError):
        load_policeuk(store, [copy_file(tmp_path, "2020-01", "essex"), _bad_copy(tmp_path, 50, 0, "Bike search")])
    store.close()
    assert fingerprint(path) == before


def test_a_stop_load_killed_halfway_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = SQLiteStore(path)
    load_policeuk(store, [STOPS / "2019-12"])
    store.close()
    before = fingerprint(path)
    big = tmp_path / "big" / "2020-01" / "2020-01-essex-stop-and-search.csv"  # 1,820 rows copied 150 times
    big.parent.mkdir(parents=True)
    lines = (STOPS / "2020-01" / big.name).read_text().splitlines()
    big.write_text("\n".join([lines[0], *lines[1:] * 150]) + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "crimemap", "load", "--store", str(path), "--quiet", str(big.parent.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wal = Path(str(path) + "-wal")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not wal.exists() or wal.stat().st_size < 2_000_000):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stderr:
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert fingerprint(path) == before
    reopened = SQLiteStore(path)
    assert [m.month for m in reopened.stop_months()] == ["2019-12"]
    reopened.close()


def test_a_stop_load_killed_halfway_leaves_the_postgis_store_as_it_was(tmp_path: Path) -> None:
    """kill -9 of a load writing to PostgreSQL: the server rolls its transaction back; a new load goes ahead."""
    from crimemap.store.postgis import PostGISStore
    from pg_server import fresh_store_url

    url = fresh_store_url()
    store = PostGISStore(url)
    load_policeuk(store, [STOPS / "2019-12"])
    before = list(store.stops(StopQuery(month="2019-12", force="city-of-london")))
    big = tmp_path / "big" / "2020-01" / "2020-01-essex-stop-and-search.csv"  # 1,820 rows copied 150 times
    big.parent.mkdir(parents=True)
    lines = (STOPS / "2020-01" / big.name).read_text().splitlines()
    big.write_text("\n".join([lines[0], *lines[1:] * 150]) + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "crimemap", "load", "--store", url, "--quiet", str(big.parent.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(3)  # 273,000 stops take the load well over ten seconds here
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else "the load ended before it was killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stderr:
        proc.stderr.close()
    assert [m.month for m in store.stop_months()] == ["2019-12"]
    assert list(store.stops(StopQuery(month="2019-12", force="city-of-london"))) == before != []
    load_policeuk(store, [STOPS / "2020-01"])  # the killed load holds no lock
    assert [m.month for m in store.stop_months()] == ["2020-01", "2019-12"]
    store.close()


# -- map points ---------------------------------------------------------------------------------------------------


def test_stops_loaded_before_their_street_files_are_named_when_those_arrive(make_store: Callable[[], Store]) -> None:
    first_stops, together = make_store(), make_store()
    load_policeuk(first_stops, [STOPS / "2019-12"])
    unnamed = [s for s in all_stops(first_stops, "2019-12", CITY) if s.lat is not None]
    assert unnamed and all(s.street_name == "" for s in unnamed)
    load_policeuk(first_stops, [POLICEUK])
    load_policeuk(together, [POLICEUK, STOPS / "2019-12"])
    named = all_stops(first_stops, "2019-12", CITY)
    assert named == all_stops(together, "2019-12", CITY)
    assert sum(1 for s in named if s.street_name.startswith("On or near")) == 194
    q = StopQuery(month="2019-12", force=CITY, located=None)
    assert first_stops.stops_json(q, 10_000) == together.stops_json(q, 10_000)


def test_an_unnamed_point_gets_an_id_of_its_own_and_is_not_a_crime_map_point(store: Store) -> None:
    load_policeuk(store, [STOPS / "2019-12"])
    stop = next(s for s in all_stops(store, "2019-12", "essex") if s.lat is not None)
    assert stop.street_name == "" and stop.street_id is not None
    assert store.street(stop.street_id) is None and store.stop_location_known(stop.street_id)
    assert store.nearest_street(stop.lng, stop.lat) is None
