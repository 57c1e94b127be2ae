"""Crime counts (``Store.stats``) against an independent count of the loaded files, on both stores.

The store holds every real police.uk file of ``shared/data`` and two generated
months spread over England and Wales. The expected counts are made here from
the CSV files themselves (the csv module, the grid formula written out, a
point-in-polygon test of the tests' own), never from the store, so a query
answered from pre-aggregated counts, from crimes, or from both (an area's
inside cells and its edge) must come to exactly the same numbers.
"""

from __future__ import annotations

import csv
import math
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

import crimemap.store.sqlite as sqlite_store
from api.policeuk.test_crimes import inside
from conftest import POLICEUK, STORE_KINDS, _open_empty
from crimemap import vocab
from crimemap.load.generate.archive import generate
from crimemap.load.policeuk import load_policeuk
from crimemap.months import format_month, parse_month
from crimemap.query import Polygon
from crimemap.records import Crime
from crimemap.stats_query import StatsQuery, parse_stats
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore
from crimemap.store.sqlite.load_connection import LocalConnection
from crimemap.store.sqlite.stats import rebuild

GENERATED_MONTHS = ["2024-05", "2024-06"]


@dataclass(frozen=True)
class Crow:
    """One street CSV row, as the tests count it."""

    month: str
    force: str
    category: str
    outcome: str | None
    lsoa: str
    lng: float | None
    lat: float | None


def _read_street_files(folder: Path) -> list[Crow]:
    rows = []
    for path in sorted(folder.glob("*/*-street.csv")):
        force = path.stem[8 : -len("-street")]
        with path.open(newline="", encoding="utf-8-sig") as f:
            for raw in csv.DictReader(f):
                r = {k.strip().lower().replace(" ", "_"): v for k, v in raw.items()}
                outcome = r["last_outcome_category"].strip()
                located = bool(r["longitude"].strip())
                rows.append(
                    Crow(
                        r["month"],
                        force,
                        vocab.CATEGORY_BY_NAME[r["crime_type"].lower()].slug,
                        vocab.outcome_by_name(outcome).slug if outcome else None,
                        r["lsoa_code"],
                        float(r["longitude"]) if located else None,
                        float(r["latitude"]) if located else None,
                    )
                )
    return rows


@pytest.fixture(scope="session")
def generated_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    generate(out, months=GENERATED_MONTHS, crimes_per_month=20_000, seed=11)
    return out


@pytest.fixture(scope="session")
def file_rows(generated_archive: Path) -> list[Crow]:
    return _read_street_files(POLICEUK) + _read_street_files(generated_archive)


@pytest.fixture(scope="session", params=STORE_KINDS)
def stats_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, generated_archive: Path
) -> Iterator[Store]:
    """The real files and the generated months, loaded once per store kind; tests only read it."""
    st = _open_empty(request.param, tmp_path_factory.mktemp("stats"))
    load_policeuk(st, [POLICEUK])
    load_policeuk(st, [generated_archive])
    yield st
    st.close()


# -- the independent count ----------------------------------------------------------------------------


def _cell(lng: float, lat: float, level: int) -> tuple[int, int]:
    return math.floor((lat + 90.0) / 0.0025) >> level, math.floor((lng + 180.0) / 0.004) >> level


def _in_area(area: Polygon, lng: float, lat: float) -> bool:
    xs = {p[0] for p in area.ring}
    ys = {p[1] for p in area.ring}
    if len(area.ring) == 5 and len(xs) == 2 and len(ys) == 2:
        return min(xs) <= lng <= max(xs) and min(ys) <= lat <= max(ys)
    return inside(lat, lng, [(y, x) for x, y in area.ring])


def expected(rows: list[Crow], q: StatsQuery) -> list[tuple[Any, ...]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    for r in rows:
        if q.months is not None and not q.months[0] <= r.month <= q.months[1]:
            continue
        if q.categories and r.category not in q.categories:
            continue
        if q.forces and r.force not in q.forces:
            continue
        if (q.area is not None or "cell" in q.group) and (r.lng is None or r.lat is None):
            continue
        if q.area is not None and not _in_area(q.area, r.lng, r.lat):  # type: ignore[arg-type]
            continue
        values = {
            "month": r.month,
            "category": r.category,
            "force": r.force,
            "outcome": r.outcome,
            "lsoa": r.lsoa,
            "cell": _cell(r.lng, r.lat, q.level) if r.lng is not None and r.lat is not None else None,
        }
        counts[tuple(values[g] for g in q.group)] += 1
    if not q.group and not counts:
        counts[()] = 0
    ordered = sorted(counts.items(), key=lambda kv: tuple((v is not None, v if v is not None else "") for v in kv[0]))
    return [(*k, n) for k, n in ordered]


# -- the queries --------------------------------------------------------------------------------------

LONDON_BOX = "-0.6,51.25,0.35,51.75"
CITY_BOX = "-0.112,51.506,-0.072,51.522"
NATIONAL_BOX = "-8.5,49.8,2.2,56.0"
CHELMSFORD_BOX = "0.40,51.70,0.52,51.77"
TRIANGLE = "51.3,-0.5:51.7,-0.45:51.55,0.3"  # lat,lng: much of London
CONCAVE = "51.40,-0.40:51.62,-0.40:51.62,0.20:51.56,0.20:51.56,-0.10:51.46,-0.10:51.46,0.20:51.40,0.20"
CITY_POLY = "51.5201,-0.1003:51.5201,-0.0801:51.5051,-0.0801:51.5051,-0.1003"

QUERIES: list[dict[str, str]] = [
    {},
    {"group": "month"},
    {"group": "month,category"},
    {"group": "category,month", "months": "2024-05..2024-06"},
    {"group": "force"},
    {"group": "force,category", "months": "2017-01"},
    {"group": "outcome"},
    {"group": "outcome", "months": "2016-01..2016-12", "force": "city-of-london"},
    {"group": "lsoa", "months": "2017-01", "force": "city-of-london"},
    {"group": "lsoa,category", "bbox": CITY_BOX, "months": "2016-06"},
    {"group": "cell", "zoom": "6"},
    {"group": "cell", "zoom": "6", "months": "2024-06"},
    {"group": "cell", "zoom": "3", "months": "2024-06"},
    {"group": "cell,category", "zoom": "9", "months": "2024-05"},
    {"group": "cell", "zoom": "10", "months": "2024-06", "category": "burglary,robbery"},
    {"group": "cell", "zoom": "12", "months": "2024-06"},
    {"group": "cell", "zoom": "15", "months": "2017-01"},
    {"group": "month", "bbox": NATIONAL_BOX},
    {"group": "cell", "zoom": "6", "bbox": NATIONAL_BOX, "months": "2024-06"},
    {"group": "month,category", "bbox": LONDON_BOX},
    {"group": "cell", "zoom": "9", "bbox": LONDON_BOX, "months": "2024-05"},
    {"group": "cell", "zoom": "7", "bbox": LONDON_BOX},
    {"group": "month", "bbox": CITY_BOX},
    {"group": "category", "bbox": CHELMSFORD_BOX, "months": "2018-01"},
    {"group": "month", "poly": TRIANGLE},
    {"group": "category", "poly": TRIANGLE, "months": "2024-06"},
    {"group": "cell", "zoom": "8", "poly": CONCAVE},
    {"group": "month,force", "poly": CONCAVE, "force": "metropolitan,city-of-london,btp"},
    {"group": "category", "poly": CITY_POLY, "months": "2017-01"},
    {"group": "outcome", "poly": CITY_POLY},
    {"months": "2016-03", "force": "cumbria"},
    {"group": "month", "months": "1999-01..1999-12"},
    {"force": "northern-ireland"},  # a total of nothing is 0 (SQL's sum of no rows is NULL)
    {"group": "cell", "zoom": "4", "force": "northern-ireland", "bbox": NATIONAL_BOX},
]


@pytest.mark.parametrize(
    "params", QUERIES, ids=["&".join(f"{k}={v}" for k, v in q.items()) or "total" for q in QUERIES]
)
def test_counts_equal_an_independent_count_of_the_loaded_files(
    stats_store: Store, file_rows: list[Crow], params: dict[str, str]
) -> None:
    query = parse_stats(**params)
    got = stats_store.stats(query)
    want = expected(file_rows, query)
    assert got == want
    if (params.get("bbox") or params.get("poly") or "cell" in query.group) and query.forces != ("northern-ireland",):
        assert sum(r[-1] for r in got) > 0  # the areas hold crimes: their edges and insides were counted


def test_counts_cover_every_crime_stored(stats_store: Store, file_rows: list[Crow]) -> None:
    (total,) = stats_store.stats(StatsQuery())
    assert total == (len(file_rows),)
    assert {m.month: m.crimes for m in stats_store.months()} == dict(stats_store.stats(StatsQuery(group=("month",))))


# -- keeping counts up to date -----------------------------------------------------------------------


def _crime(i: int, month: str, force: str, category: str, lng: float | None, lat: float | None) -> Crime:
    force_name = vocab.FORCE_BY_ID[force].name
    return Crime(
        parse_month(month) * 1_000_000 + i, month, force, force_name, lng, lat, 10_000 + i if lng else None,
        "On or near Test Street", "E01000001", "City of London 001A", category, "", "Force", "", "",
        None, None,
    )  # fmt: skip


def test_counts_follow_a_reload_that_replaces_a_month_and_force(make_store: Any) -> None:
    store: Store = make_store()
    with store.writer() as w:
        w.replace_crimes("2020-03", "essex", [_crime(i, "2020-03", "essex", "burglary", 0.47, 51.73) for i in range(5)])
        w.replace_crimes(
            "2020-03", "kent", [_crime(i + 100, "2020-03", "kent", "drugs", 0.52, 51.27) for i in range(3)]
        )
    by_force = StatsQuery(group=("force", "category"))
    cells = StatsQuery(group=("cell",), level=6)
    assert store.stats(by_force) == [("essex", "burglary", 5), ("kent", "drugs", 3)]
    with store.writer() as w:
        w.replace_crimes(
            "2020-03",
            "essex",
            [_crime(i, "2020-03", "essex", "robbery", 0.47, 51.73) for i in range(2)]
            + [_crime(9, "2020-03", "essex", "robbery", None, None)],
        )
    assert store.stats(by_force) == [("essex", "robbery", 3), ("kent", "drugs", 3)]
    assert sum(r[-1] for r in store.stats(cells)) == 5  # the crime without a location has no cell
    bbox = replace(cells, area=parse_stats(bbox="0.4,51.7,0.5,51.8").area)
    assert store.stats(bbox) == [(_cell(0.47, 51.73, 6), 2)]


def test_a_reload_of_other_forces_in_neighbouring_months_keeps_the_counts_it_did_not_replace(make_store: Any) -> None:
    # The counts of consecutive months are remade in one pass: only the (month, force) sets replaced.
    store: Store = make_store()
    with store.writer() as w:
        for month in ("2020-03", "2020-04", "2020-05"):
            w.replace_crimes(month, "essex", [_crime(i, month, "essex", "burglary", 0.47, 51.73) for i in range(5)])
            w.replace_crimes(month, "kent", [_crime(i + 100, month, "kent", "drugs", 0.52, 51.27) for i in range(3)])
    with store.writer() as w:
        w.replace_crimes("2020-03", "essex", [_crime(i, "2020-03", "essex", "robbery", 0.47, 51.73) for i in range(2)])
        w.replace_crimes("2020-04", "kent", [_crime(100, "2020-04", "kent", "shoplifting", 0.52, 51.27)])
    assert store.stats(StatsQuery(group=("month", "force", "category"))) == [
        ("2020-03", "essex", "robbery", 2),
        ("2020-03", "kent", "drugs", 3),
        ("2020-04", "essex", "burglary", 5),
        ("2020-04", "kent", "shoplifting", 1),
        ("2020-05", "essex", "burglary", 5),
        ("2020-05", "kent", "drugs", 3),
    ]
    assert sum(r[-1] for r in store.stats(StatsQuery(group=("month", "cell"), level=6))) == 19


def test_a_set_replaced_twice_in_one_load_is_counted_as_its_last_replacement(make_store: Any) -> None:
    # The counts are made from the rows as a load writes them: the first replacement's rows must not count.
    store: Store = make_store()
    with store.writer() as w:
        w.replace_crimes("2020-03", "essex", [_crime(i, "2020-03", "essex", "burglary", 0.47, 51.73) for i in range(5)])
        w.replace_crimes("2020-03", "kent", [_crime(i + 9, "2020-03", "kent", "drugs", 0.52, 51.27) for i in range(3)])
        w.replace_crimes("2020-03", "essex", [_crime(i, "2020-03", "essex", "robbery", 0.47, 51.73) for i in range(2)])
    assert store.stats(StatsQuery(group=("force", "category"))) == [("essex", "robbery", 2), ("kent", "drugs", 3)]
    assert sum(r[-1] for r in store.stats(StatsQuery(group=("cell",), level=6))) == 5


@pytest.mark.parametrize("through_driver", [False, True], ids=["sqlite3", "driver"])
def test_the_counts_a_load_makes_as_it_writes_are_those_counted_back_from_its_stored_crimes(
    tmp_path: Path, generated_archive: Path, monkeypatch: pytest.MonkeyPatch, through_driver: bool
) -> None:
    if through_driver:
        monkeypatch.setattr(sqlite_store, "DRIVER_MIN_ROWS", 0)
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path) as st:
        load_policeuk(st, [POLICEUK, generated_archive])
        load_policeuk(st, [POLICEUK])  # a reload: its sets' counts replaced
    conn = sqlite3.connect(path, isolation_level=None)
    tables = ("stats_totals", "stats_outcomes", "stats_cells")

    def kept() -> dict[str, list[Any]]:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}")) for t in tables}

    made_by_loads = kept()
    conn.execute("BEGIN")
    rebuild(LocalConnection(conn))
    assert kept() == made_by_loads
    stored = conn.execute("SELECT count(*) FROM crimes").fetchone()[0]
    assert sum(n for *_, n in made_by_loads["stats_totals"]) == stored
    conn.execute("ROLLBACK")
    conn.close()


def test_a_file_made_before_the_counts_gets_them_on_its_first_writable_open(
    tmp_path: Path, file_rows: list[Crow]
) -> None:
    path = tmp_path / "old.sqlite"
    with SQLiteStore(path) as st:
        load_policeuk(st, [POLICEUK])
    conn = sqlite3.connect(path)
    with conn:
        for table in ("stats_totals", "stats_outcomes", "stats_cells"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM meta WHERE key = 'stats_built'")
    conn.close()
    real = [r for r in file_rows if r.month < "2024"]
    query = parse_stats(group="month,category", bbox=LONDON_BOX)
    with SQLiteStore(path, readonly=True) as st:
        assert st.stats(query) == expected(real, query)  # counted from the crimes: no tables yet
    with SQLiteStore(path) as st:
        assert st.stats(query) == expected(real, query)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT sum(crimes) FROM stats_totals").fetchone()[0] == len(real)
    conn.close()


def test_months_are_named_as_the_api_names_them() -> None:
    assert format_month(parse_month("2024-06")) == "2024-06"


def test_a_postgis_store_made_before_the_counts_gets_them_when_opened(file_rows: list[Crow]) -> None:
    import psycopg

    from crimemap.store.postgis import PostGISStore
    from pg_server import fresh_store_url

    url = fresh_store_url()
    with PostGISStore(url) as st:
        load_policeuk(st, [POLICEUK])
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("stats_totals", "stats_outcomes", "stats_cells"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM meta WHERE key = 'stats_built'")
    real = [r for r in file_rows if r.month < "2024"]
    query = parse_stats(group="month,category", bbox=LONDON_BOX)
    with PostGISStore(url) as st:
        assert st.stats(query) == expected(real, query)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT sum(crimes) FROM stats_totals").fetchone()
        assert row is not None and row[0] == len(real)


def test_postgis_loads_that_swap_months_in_keep_the_counts(file_rows: list[Crow], generated_archive: Path) -> None:
    """Loads build each month aside and swap it in before counting it: the counts read the months swapped in."""
    from crimemap.store.postgis import PostGISStore
    from pg_server import fresh_store_url

    with PostGISStore(fresh_store_url()) as st:
        load_policeuk(st, [POLICEUK])  # into an empty store
        load_policeuk(st, [generated_archive])  # the generated months, keeping the real ones
        load_policeuk(st, [generated_archive])  # again, replacing them
        for params in QUERIES[:12] + QUERIES[18:23]:
            query = parse_stats(**params)
            assert st.stats(query) == expected(file_rows, query), params
