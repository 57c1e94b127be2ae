"""The synthetic archive must look like police.uk's to every consumer.

Most checks read one shared archive (three months across a year end, 50,000
crimes a month) with the csv module, as a loader would.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from crimemap.geo import ONE_MILE_M, haversine_m
from crimemap.load.generate.archive import GenerateSummary, generate
from crimemap.load.generate.world import DENSEST_CENTRE, TOWNS, month_range
from crimemap.vocab import CATEGORY_BY_NAME, FORCE_BY_ID, OUTCOME_BY_NAME

REAL = Path(__file__).parents[2] / "shared" / "data" / "policeuk"
MONTHS = ["2016-11", "2016-12", "2017-01"]
PER_MONTH = 50_000
SEED = 3

Row = dict[str, str]


def _read(path: Path) -> list[Row]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    out = tmp_path_factory.mktemp("archive")
    return out, generate(out, months=MONTHS, crimes_per_month=PER_MONTH, seed=SEED)


@pytest.fixture(scope="module")
def street(archive: tuple[Path, GenerateSummary]) -> dict[str, list[Row]]:
    """Street rows by file name."""
    out, _ = archive
    return {p.name: _read(p) for p in sorted(out.glob("*/*-street.csv"))}


@pytest.fixture(scope="module")
def outcomes(archive: tuple[Path, GenerateSummary]) -> dict[str, list[Row]]:
    """Outcome rows by file name, in month order."""
    out, _ = archive
    return {p.name: _read(p) for p in sorted(out.glob("*/*-outcomes.csv"))}


def _all(files: dict[str, list[Row]]) -> list[Row]:
    return [row for rows in files.values() for row in rows]


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_month_range_counts_back_from_the_last_month_oldest_first() -> None:
    assert month_range("2017-02", 4) == ["2016-11", "2016-12", "2017-01", "2017-02"]
    assert month_range("2016-01", 1) == ["2016-01"]
    assert month_range("2016-01", 0) == []


def test_bad_months_are_refused() -> None:
    with pytest.raises(ValueError):
        month_range("2016-13", 2)
    with pytest.raises(ValueError):
        generate(Path("unused"), months=["2016/01"], crimes_per_month=1)


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    for name in ("a", "b"):
        generate(tmp_path / name, months=["2016-01", "2016-02"], crimes_per_month=3_000, seed=9)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert first and first == second


def test_different_seeds_give_different_files(tmp_path: Path) -> None:
    for seed in (1, 2):
        generate(tmp_path / str(seed), months=["2016-01"], crimes_per_month=3_000, seed=seed)
    one, two = _files(tmp_path / "1"), _files(tmp_path / "2")
    assert one.keys() & two.keys()
    assert all(one[k] != two[k] for k in one.keys() & two.keys())


def test_a_months_crimes_do_not_depend_on_the_other_months_generated(tmp_path: Path) -> None:
    generate(tmp_path / "alone", months=["2016-12"], crimes_per_month=2_000, seed=SEED)
    generate(tmp_path / "range", months=month_range("2017-02", 4), crimes_per_month=2_000, seed=SEED)

    def crimes(out: Path) -> list[tuple[str, ...]]:
        # The Last outcome category may differ: later months give outcomes room to arrive.
        return [tuple(r.values())[:10] for p in sorted(out.glob("2016-12/*-street.csv")) for r in _read(p)]

    assert crimes(tmp_path / "alone") == crimes(tmp_path / "range")


def test_files_follow_the_archive_layout(archive: tuple[Path, GenerateSummary]) -> None:
    out, summary = archive
    assert sorted(p.name for p in out.iterdir()) == MONTHS
    for path in summary.files:
        month, name = path.parent.name, path.name
        m = re.fullmatch(r"(\d{4}-\d{2})-([a-z-]+)-(street|outcomes)\.csv", name)
        assert m is not None and m.group(1) == month and m.group(2) in FORCE_BY_ID
    assert (out / "2016-12" / "2016-12-metropolitan-street.csv") in summary.files
    assert (out / "2016-12" / "2016-12-metropolitan-outcomes.csv") in summary.files


def test_summary_counts_the_rows_written(
    archive: tuple[Path, GenerateSummary], street: dict[str, list[Row]], outcomes: dict[str, list[Row]]
) -> None:
    _, summary = archive
    assert summary.crimes == len(_all(street)) == len(MONTHS) * PER_MONTH
    assert summary.outcomes == len(_all(outcomes)) > 0


def test_headers_and_line_ends_match_the_real_files(archive: tuple[Path, GenerateSummary]) -> None:
    real_street = REAL / "2016-01" / "2016-01-city-of-london-street.csv"
    real_outcomes = REAL / "2016-01" / "2016-01-city-of-london-outcomes.csv"
    if not real_street.exists():
        pytest.skip("real police.uk files not available")
    out, _ = archive
    ours_street = (out / "2016-12" / "2016-12-city-of-london-street.csv").read_bytes()
    ours_outcomes = (out / "2016-12" / "2016-12-city-of-london-outcomes.csv").read_bytes()
    assert ours_street.split(b"\n", 1)[0] == real_street.read_bytes().split(b"\n", 1)[0]
    assert ours_outcomes.split(b"\n", 1)[0] == real_outcomes.read_bytes().split(b"\n", 1)[0]
    assert b"\r" not in ours_street and b"\r" not in ours_outcomes
    assert ours_street.endswith(b",\n")


def test_reported_by_is_the_forces_name_from_the_vocabulary(street: dict[str, list[Row]]) -> None:
    for name, rows in street.items():
        force = FORCE_BY_ID[name[len("2016-12-") : -len("-street.csv")]]
        assert {(r["Reported by"], r["Falls within"]) for r in rows} == {(force.name, force.name)}
        assert {r["Month"] for r in rows} == {name[:7]}


def test_coordinates_have_six_decimals_and_lsoas_look_real(street: dict[str, list[Row]]) -> None:
    located = [r for r in _all(street) if r["Longitude"]]
    assert all(re.fullmatch(r"-?\d+\.\d{6}", r["Longitude"]) for r in located)
    assert all(re.fullmatch(r"\d+\.\d{6}", r["Latitude"]) for r in located)
    assert all(re.fullmatch(r"[EW]01\d{6}", r["LSOA code"]) for r in located)
    assert all(re.fullmatch(r".+ \d{3}[A-Z]", r["LSOA name"]) for r in located)
    assert all(r["Location"].startswith("On or near ") for r in located)
    assert all(49.8 < float(r["Latitude"]) < 55.9 and -6 < float(r["Longitude"]) < 2 for r in located)


def test_many_crimes_share_a_map_point(street: dict[str, list[Row]]) -> None:
    rows = [r for r in _all(street) if r["Longitude"]]
    points = {(r["Longitude"], r["Latitude"]) for r in rows}
    assert len(points) < len(rows) / 2
    places = Counter(r["Location"] for r in rows)
    assert places["On or near Supermarket"] > 0 and places["On or near Parking Area"] > 0


def test_category_mix_is_like_the_real_data(street: dict[str, list[Row]]) -> None:
    rows = _all(street)
    share = {
        slug: n / len(rows) for slug, n in Counter(CATEGORY_BY_NAME[r["Crime type"].lower()].slug for r in rows).items()
    }
    assert share["violent-crime"] == pytest.approx(0.30, abs=0.02)
    assert share["anti-social-behaviour"] == pytest.approx(0.20, abs=0.02)
    assert share["shoplifting"] == pytest.approx(0.07, abs=0.01)
    assert share["robbery"] == pytest.approx(0.01, abs=0.005)


def test_anti_social_behaviour_has_no_crime_id_and_no_outcome(street: dict[str, list[Row]]) -> None:
    asb = [r for r in _all(street) if r["Crime type"] == "Anti-social behaviour"]
    assert asb
    assert all(r["Crime ID"] == "" and r["Last outcome category"] == "" for r in asb)


def test_other_crimes_have_a_persistent_id_and_a_known_outcome(street: dict[str, list[Row]]) -> None:
    rows = [r for name, rows in street.items() if "-btp-" not in name for r in rows]
    crimes = [r for r in rows if r["Crime type"] != "Anti-social behaviour"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", r["Crime ID"]) for r in crimes)
    assert all(r["Last outcome category"].lower() in OUTCOME_BY_NAME for r in crimes)
    assert all(r["Context"] == "" for r in rows)
    ids = [r["Crime ID"] for r in _all(street) if r["Crime ID"]]
    assert len(ids) == len(set(ids))


def test_some_rows_have_no_location_exactly_as_in_the_real_files(street: dict[str, list[Row]]) -> None:
    rows = _all(street)
    hidden = [r for r in rows if r["Location"] == "No Location"]
    assert len(hidden) / len(rows) == pytest.approx(0.015, abs=0.004)
    assert all(r["Longitude"] == r["Latitude"] == r["LSOA code"] == r["LSOA name"] == "" for r in hidden)
    assert all(r["Longitude"] for r in rows if r["Location"] != "No Location")


def test_british_transport_police_reports_three_percent_at_stations(street: dict[str, list[Row]]) -> None:
    btp = street["2016-12-btp-street.csv"]
    assert len(btp) / PER_MONTH == pytest.approx(0.03, abs=0.005)
    assert all(r["Location"].endswith("Station)") for r in btp)
    assert any(r["Crime ID"] == "" and r["Crime type"] != "Anti-social behaviour" for r in btp)
    assert any(r["Crime ID"] for r in btp)


def test_every_outcome_refers_to_a_crime_of_the_same_or_an_earlier_month(
    street: dict[str, list[Row]], outcomes: dict[str, list[Row]]
) -> None:
    crime_month = {r["Crime ID"]: r["Month"] for r in _all(street) if r["Crime ID"]}
    rows = _all(outcomes)
    assert rows
    assert all(r["Crime ID"] in crime_month and crime_month[r["Crime ID"]] <= r["Month"] for r in rows)
    assert any(crime_month[r["Crime ID"]] < r["Month"] for r in rows), "no outcome arrives late"
    assert {r["Month"] for r in rows} <= set(MONTHS)


def test_outcome_rows_repeat_the_crimes_location_and_force(
    street: dict[str, list[Row]], outcomes: dict[str, list[Row]]
) -> None:
    columns = ("Reported by", "Longitude", "Latitude", "Location", "LSOA code", "LSOA name")
    crime = {r["Crime ID"]: tuple(r[c] for c in columns) for r in _all(street) if r["Crime ID"]}
    assert all(crime[r["Crime ID"]] == tuple(r[c] for c in columns) for r in _all(outcomes))


def test_last_outcome_category_is_the_latest_outcome(
    street: dict[str, list[Row]], outcomes: dict[str, list[Row]]
) -> None:
    history: defaultdict[str, list[str]] = defaultdict(list)
    for row in _all(outcomes):  # files in month order, rows in file order
        history[row["Crime ID"]].append(row["Outcome type"])
    last = {r["Crime ID"]: r["Last outcome category"] for r in _all(street) if r["Crime ID"]}
    assert all(last[crime] == seen[-1] for crime, seen in history.items())
    assert any(seen[0] == "Suspect charged" and len(seen) > 1 for seen in history.values())
    # As in the real files, crimes still under investigation have no outcome rows.
    assert all(last[c] != "Under investigation" for c in history)
    assert "Under investigation" in last.values()


def test_zip_holds_the_month_in_the_archive_layout(tmp_path: Path) -> None:
    def make(name: str, zipped: bool) -> GenerateSummary:
        return generate(tmp_path / name, months=["2016-01", "2016-02"], crimes_per_month=2_000, seed=5, zipped=zipped)

    make("plain", zipped=False)
    summary = make("zipped", zipped=True)
    assert summary.files == [tmp_path / "zipped" / "2016-01.zip", tmp_path / "zipped" / "2016-02.zip"]
    unzipped = {}
    for path in summary.files:
        with zipfile.ZipFile(path) as z:
            assert all(n.startswith(f"{path.stem}/{path.stem}-") for n in z.namelist())
            unzipped.update({n: z.read(n) for n in z.namelist()})
    assert unzipped == _files(tmp_path / "plain")
    again = make("again", zipped=True)
    assert [p.read_bytes() for p in again.files] == [p.read_bytes() for p in summary.files]


def test_progress_counts_up_to_the_crimes_asked_for(tmp_path: Path) -> None:
    written: list[int] = []
    summary = generate(tmp_path, months=["2016-01", "2016-02"], crimes_per_month=1_000, progress=written.append)
    assert sum(written) == summary.crimes == 2_000
    assert len(written) > 2


def test_densest_centre_holds_1500_to_3000_crimes_a_mile_around_at_500000_a_month(
    street: dict[str, list[Row]],
) -> None:
    # At a tenth of the benchmark's 500,000 crimes a month: 150 to 300.
    rows = [r for name, rows in street.items() if name.startswith("2016-12") for r in rows]
    points = [(float(r["Longitude"]), float(r["Latitude"])) for r in rows if r["Longitude"]]

    def near(lng: float, lat: float) -> int:
        return sum(haversine_m(lng, lat, x, y) <= ONE_MILE_M for x, y in points if abs(y - lat) < 0.03)

    densest = near(*DENSEST_CENTRE)
    assert 150 <= densest <= 300
    assert all(near(t.lng, t.lat) < densest for t in TOWNS if (t.lng, t.lat) != DENSEST_CENTRE)
