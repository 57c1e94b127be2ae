"""The counts kept per neighbourhood (``stats_neighbourhoods``): made at load time in both stores, kept right
whatever is loaded in whatever order, made for a store from before them, and never answered for other
boundaries; and the other groups, counted point by point, answer as each neighbourhood's own area count."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import shapely

from crimemap.load.generate.archive import generate
from crimemap.load.generate.neighbourhoods import write_neighbourhoods
from crimemap.load.neighbourhoods import load_neighbourhoods
from crimemap.load.policeuk import load_policeuk
from crimemap.neighbourhood_stats import CountedAreas, count_crimes, count_stops, grouping
from crimemap.query import CrimeQuery
from crimemap.stats_query import parse_stats
from crimemap.stats_stops_query import parse_stop_stats
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore

MONTHS = ["2024-05", "2024-06"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("archive")
    generate(out, months=MONTHS, crimes_per_month=8_000, stops_per_month=2_000)
    write_neighbourhoods(out / "many.zip", count=60)
    write_neighbourhoods(out / "few.zip", count=25)  # other shapes for the same forces
    return out


def _truth(store: Store, group: str) -> Counter[tuple[str, ...]]:
    """Crimes by ``force/id`` (and month or category), each point tested against every boundary, edges in."""
    shapes = []
    for force, nbhd, body in store.documents("boundary"):
        ring = [(float(p["longitude"]), float(p["latitude"])) for p in orjson.loads(body)]
        polygon = shapely.Polygon(ring)
        shapes.append((f"{force}/{nbhd}", polygon if polygon.is_valid else shapely.make_valid(polygon)))
    counts: Counter[tuple[str, ...]] = Counter()
    for month in MONTHS:
        for crime in store.crimes(CrimeQuery(month=month)):
            if crime.lng is None or crime.lat is None:
                continue
            point = shapely.Point(crime.lng, crime.lat)
            for key, shape in shapes:
                if shape.covers(point):
                    counts[(key, crime.month) if group == "month" else (key,)] += 1
    return counts


def _kept(store: Store, group: str) -> list[tuple[Any, ...]] | None:
    query = grouping(parse_stats)(group=f"neighbourhood,{group}" if group else "neighbourhood")
    return store.neighbourhood_stats(query, CountedAreas.of(store).fingerprint)


def _as_counter(rows: list[tuple[Any, ...]] | None) -> Counter[tuple[str, ...]]:
    assert rows is not None, "the kept counts did not answer"
    return Counter({tuple(row[:-1]): row[-1] for row in rows})


def test_the_kept_counts_follow_every_load_in_any_order(store: Store, archive: Path) -> None:
    load_neighbourhoods(store, [archive / "many.zip"])
    assert _kept(store, "") == []  # no crimes yet
    load_policeuk(store, [archive])  # crimes into neighbourhoods already there: the loaded sets counted
    assert _as_counter(_kept(store, "month")) == _truth(store, "month") and len(_truth(store, "month")) > 50
    load_policeuk(store, [archive])  # the same months again: replaced, not added to
    assert _as_counter(_kept(store, "")) == _truth(store, "")
    load_neighbourhoods(store, [archive / "few.zip"])  # other boundaries: every month counted again
    truth = _truth(store, "month")
    assert _as_counter(_kept(store, "month")) == truth
    rows = count_crimes(store, grouping(parse_stats)(group="month,neighbourhood"))
    assert Counter({(r[1], r[0]): r[-1] for r in rows}) == truth


def test_postgis_loads_keep_the_counts_of_the_months_they_swapped_in(archive: Path) -> None:
    from crimemap.store.postgis import PostGISStore
    from pg_server import fresh_store_url

    with PostGISStore(fresh_store_url()) as store:
        load_neighbourhoods(store, [archive / "many.zip"])
        load_policeuk(store, [archive])
        assert _as_counter(_kept(store, "month")) == _truth(store, "month")


def _forget_the_kept_counts(store: Store) -> None:
    """Make the store as a crimemap from before the counts per neighbourhood left it."""
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.url)
        with conn:
            conn.execute("DROP TABLE stats_neighbourhoods")
            conn.execute("DELETE FROM meta WHERE key = 'stats_neighbourhoods'")
        conn.close()
        return
    import psycopg

    with psycopg.connect(store.url, autocommit=True) as conn:
        conn.execute("DROP TABLE stats_neighbourhoods")
        conn.execute("DELETE FROM meta WHERE key = 'stats_neighbourhoods'")


def test_a_store_made_before_the_kept_counts_gets_them_when_opened(
    make_store: Callable[[], Store], archive: Path
) -> None:
    store = make_store()
    load_policeuk(store, [archive])
    load_neighbourhoods(store, [archive / "many.zip"])
    before = count_crimes(store, grouping(parse_stats)(group="neighbourhood,category"))
    _forget_the_kept_counts(store)
    if isinstance(store, SQLiteStore):
        with SQLiteStore(store.url, readonly=True) as readonly:  # no table yet: counted point by point
            assert _kept(readonly, "category") is None
            assert count_crimes(readonly, grouping(parse_stats)(group="neighbourhood,category")) == before
    reopened = type(store)(store.url)
    try:
        assert _kept(reopened, "category") == before
    finally:
        reopened.close()


def test_counts_kept_for_other_boundaries_are_never_answered(store: Store, archive: Path) -> None:
    load_policeuk(store, [archive])
    load_neighbourhoods(store, [archive / "many.zip"])
    query = grouping(parse_stats)(group="neighbourhood")
    assert store.neighbourhood_stats(query, "another fingerprint") is None
    assert store.neighbourhood_stats(query, CountedAreas.of(store).fingerprint)


@pytest.mark.parametrize("group", ["neighbourhood,outcome", "lsoa,neighbourhood", "neighbourhood,cell"])
def test_crime_groups_the_kept_counts_lack_are_each_neighbourhoods_own_count(
    store: Store, archive: Path, group: str
) -> None:
    load_policeuk(store, [archive])
    load_neighbourhoods(store, [archive / "many.zip"])
    query = grouping(parse_stats)(group=group, months="2024-06", zoom="12")
    assert store.neighbourhood_stats(query, CountedAreas.of(store).fingerprint) is None
    rows = count_crimes(store, query)
    at = query.group.index("neighbourhood")
    rest = tuple(g for g in query.group if g != "neighbourhood")
    expected = []
    for area in CountedAreas.of(store).areas:
        for row in store.stats(replace(query, group=rest, area=area.area)):
            if row[-1]:
                expected.append((*row[:at], area.key, *row[at:]))
    assert rows == sorted(expected, key=lambda r: tuple((v is not None, v if v is not None else "") for v in r[:-1]))
    assert len(rows) > 100


def test_stop_counts_by_neighbourhood_are_each_neighbourhoods_own_count(store: Store, archive: Path) -> None:
    load_policeuk(store, [archive])
    load_neighbourhoods(store, [archive / "many.zip"])
    query = grouping(parse_stop_stats)(group="type,neighbourhood,force")
    rows = count_stops(store, query)
    expected = []
    for area in CountedAreas.of(store).areas:
        for row in store.stop_stats(replace(query, group=("type", "force"), area=area.area)):
            if row[-1]:
                expected.append((row[0], area.key, row[1], row[2]))
    assert rows == sorted(expected, key=lambda r: tuple((v is not None, v if v is not None else "") for v in r[:-1]))
    assert len(rows) > 20
