"""Synthetic stop-and-search files: the real layout and header, deterministic, loadable, on the crimes' map points."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from crimemap.load.generate.archive import generate
from crimemap.load.generate.world import DENSEST_CENTRE
from crimemap.load.policeuk import load_policeuk
from crimemap.load.stops import STOPS_HEADER
from crimemap.query import Circle, StopQuery
from crimemap.store.sqlite import SQLiteStore
from stops_truth import STOPS

MONTHS = ["2024-06", "2024-07"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "archive"
    summary = generate(out, months=MONTHS, crimes_per_month=30_000, seed=3, stops_per_month=5_000)
    assert summary.stops == 10_000
    return out


def rows(archive: Path, month: str) -> list[dict[str, str]]:
    found = []
    for path in sorted((archive / month).glob("*-stop-and-search.csv")):
        with path.open(newline="") as f:
            found.extend(csv.DictReader(f))
    return found


def test_stop_files_have_the_real_header_one_per_force(archive: Path) -> None:
    real = (STOPS / "2020-01" / "2020-01-essex-stop-and-search.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    files = sorted((archive / "2024-06").glob("*-stop-and-search.csv"))
    assert len(files) > 40 and any(f.name == "2024-06-metropolitan-stop-and-search.csv" for f in files)
    for path in files:
        assert path.read_text().splitlines()[0] == real == ",".join(STOPS_HEADER)


def test_the_mix_is_realistic_with_fields_left_empty(archive: Path) -> None:
    june = rows(archive, "2024-06")
    assert len(june) == 5_000
    types = Counter(r["Type"] for r in june)
    assert types["Person search"] > types["Person and Vehicle search"] > types["Vehicle search"] > 0
    assert 0.6 < Counter(r["Outcome"] for r in june)["A no further action disposal"] / len(june) < 0.76
    for column in ("Age range", "Self-defined ethnicity", "Outcome linked to object of search", "Outcome"):
        assert any(r[column] == "" for r in june), column
    assert all(r["Latitude"] == "" for r in june if r["Latitude"] == "" and r["Longitude"] == "")
    assert any(r["Latitude"] == "" for r in june)
    assert all(r["Date"].endswith("+00:00") for r in june)
    assert any(r["Date"].startswith("2024-05-31T23:") for r in june)  # midnight BST is 23:00 UTC


def test_the_same_seed_gives_the_same_bytes_and_leaves_the_crime_files_unchanged(tmp_path: Path) -> None:
    with_stops = generate(tmp_path / "a", months=["2024-01"], crimes_per_month=5_000, seed=9, stops_per_month=800)
    again = generate(tmp_path / "b", months=["2024-01"], crimes_per_month=5_000, seed=9, stops_per_month=800)
    without = generate(tmp_path / "c", months=["2024-01"], crimes_per_month=5_000, seed=9)
    assert [p.read_bytes() for p in with_stops.files] == [p.read_bytes() for p in again.files]
    crime_files = [p for p in with_stops.files if not p.name.endswith("-stop-and-search.csv")]
    assert [p.read_bytes() for p in crime_files] == [p.read_bytes() for p in without.files]


def test_generated_stops_load_and_lie_on_the_crimes_map_points(archive: Path, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    summary = load_policeuk(store, [archive])
    assert summary.stops == 10_000 and [m.month for m in store.stop_months()] == MONTHS[::-1]
    near = list(store.stops(StopQuery(month="2024-06", area=Circle(DENSEST_CENTRE, 1_609.344))))
    assert near and sum(1 for s in near if s.street_name.startswith("On or near")) > len(near) / 2
    assert not any(
        s.lat is not None for s in store.stops(StopQuery(month="2024-06", force="south-yorkshire", located=None))
    )
    store.close()
