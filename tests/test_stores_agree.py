"""Both stores answer the police.uk API's busy methods byte for byte alike, from the same data.

The embedded store (SQLite) and PostGIS each make ``crimes-street``,
``crimes-at-location``, ``crimes-no-location`` and ``outcomes-at-location`` bodies
from the JSON they keep for each crime, their own way; here hundreds of queries,
drawn at random over the real police.uk files and over a generated archive
(circles of every size, rectangles, polygons with notches and crossings, every
category, map points, forces), must give the same bodies, the same counts, and
the same answer to the 10,000-crime rule (asked with small caps, so that it
bites often).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import POLICEUK, _open_empty
from crimemap import geo, vocab
from crimemap.load.generate.archive import generate
from crimemap.load.generate.world import DENSEST_CENTRE, month_range
from crimemap.load.policeuk import load_policeuk
from crimemap.query import Area, Circle, CrimeQuery, Polygon
from crimemap.store.base import JsonList, Store

ST_PAULS = (-0.0983, 51.5138)


@pytest.fixture(scope="module", params=["real", "generated"])
def both(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    """An embedded and a PostGIS store holding the same data: the real files, or a generated archive."""
    if request.param == "real":
        sources = [POLICEUK]
    else:
        archive = tmp_path_factory.mktemp("archive")
        generate(archive, months=month_range("2024-06", 2), crimes_per_month=30_000, seed=3)
        sources = [archive]
    lite = _open_empty("sqlite", tmp_path_factory.mktemp("sqlite"))
    pg = _open_empty("postgis", tmp_path_factory.mktemp("postgis"))
    for store in (lite, pg):
        load_policeuk(store, sources)
    yield lite, pg
    lite.close()
    pg.close()


def same(a: JsonList, b: JsonList, limit: int) -> bool:
    """The same answer to the API: the same body under the cap, or both over it."""
    if a.found >= limit or b.found >= limit:
        return a.found >= limit and b.found >= limit
    return a == b


def centre_of(store: Store, month: str, rnd: random.Random) -> tuple[float, float]:
    """A place near crimes of ``month``: a stored crime's map point, moved a little."""
    crimes = list(store.crimes(CrimeQuery(month=month, limit=2000)))
    c = rnd.choice([c for c in crimes if c.lng is not None])
    assert c.lng is not None and c.lat is not None
    return c.lng + rnd.uniform(-0.01, 0.01), c.lat + rnd.uniform(-0.01, 0.01)


def random_area(rnd: random.Random, centre: tuple[float, float]) -> Area:
    lng, lat = centre
    kind = rnd.choice(["circle", "circle", "rectangle", "polygon", "crossing"])
    size = rnd.choice([0.001, 0.004, 0.01, 0.03])
    if kind == "circle":
        return Circle(centre, rnd.choice([50.0, 300.0, geo.ONE_MILE_M, 4_000.0]))
    if kind == "rectangle":
        w, h = size * rnd.uniform(0.5, 2), size * rnd.uniform(0.5, 2)
        return Polygon(
            ((lng - w, lat - h), (lng + w, lat - h), (lng + w, lat + h), (lng - w, lat + h), (lng - w, lat - h))
        )
    points = []
    for i in range(rnd.randint(3, 9)):
        angle = 2 * math.pi * i / 9 + rnd.uniform(0, 0.5)
        r = size * rnd.uniform(0.3, 1.5)
        points.append((lng + r * math.cos(angle), lat + r * math.sin(angle)))
    if kind == "crossing" and len(points) >= 4:
        points[1], points[2] = points[2], points[1]  # a bow tie: read as its valid parts
    return Polygon((*points, points[0]))


def test_crimes_street_bodies_are_the_same_on_both_stores(both: tuple[Store, Store]) -> None:
    lite, pg = both
    rnd = random.Random(11)
    months = [m.month for m in lite.months()]
    checked = 0
    for _ in range(150):
        month = rnd.choice(months)
        area = random_area(rnd, centre_of(lite, month, rnd))
        category = rnd.choice([None, None, rnd.choice(vocab.CATEGORIES).slug])
        query = CrimeQuery(month=month, area=area, category=category)
        limit = rnd.choice([10_001, 10_001, 200, 1])
        a, b = lite.crimes_json(query, limit), pg.crimes_json(query, limit)
        assert same(a, b, limit), (query, limit, a.found, b.found)
        checked += a.found > 0
    assert checked > 50, "most queries should find crimes"


def test_the_10000_crime_rule_counts_alike(both: tuple[Store, Store]) -> None:
    lite, pg = both
    rnd = random.Random(5)
    month = lite.months()[0].month
    for _ in range(40):
        query = CrimeQuery(month=month, area=random_area(rnd, centre_of(lite, month, rnd)))
        n = rnd.choice([0, 1, 10, 100, 1_000])
        assert lite.crimes_exceed(query, n) == pg.crimes_exceed(query, n), (query, n)


def test_crimes_at_every_map_point_and_without_location_are_the_same(both: tuple[Store, Store]) -> None:
    lite, pg = both
    for summary in lite.months():
        month = summary.month
        streets = sorted({c.street_id for c in lite.crimes(CrimeQuery(month=month, limit=3000)) if c.street_id})
        for street_id in streets[::7]:
            query = CrimeQuery(month=month, street_id=street_id)
            assert lite.crimes_json(query, 10_001) == pg.crimes_json(query, 10_001)
        for force in summary.forces:
            query = CrimeQuery(month=month, force=force, located=False)
            assert lite.crimes_json(query, 10_001) == pg.crimes_json(query, 10_001)
    assert pg.crimes_json(CrimeQuery(month=month, street_id=-1), 10_001) == JsonList(0, b"[]")


def test_outcomes_at_location_bodies_are_the_same_on_both_stores(both: tuple[Store, Store]) -> None:
    lite, pg = both
    rnd = random.Random(17)
    months = [m.month for m in lite.months()]
    for _ in range(60):
        month = rnd.choice(months)
        query = CrimeQuery(month=month, area=random_area(rnd, centre_of(lite, month, rnd)))
        limit = rnd.choice([10_001, 10_001, 50])
        a, b = lite.outcomes_json(query, limit), pg.outcomes_json(query, limit)
        assert same(a, b, limit), (query, limit, a.found, b.found)
    # At a map point: found by the point's position, kept by the crime's map point.
    for crime in list(lite.crimes(CrimeQuery(month=months[0], limit=400)))[::9]:
        if crime.street_id is None or crime.lng is None or crime.lat is None:
            continue
        for month in months:
            query = CrimeQuery(month=month, area=Circle((crime.lng, crime.lat), 1.0), street_id=crime.street_id)
            assert lite.outcomes_json(query, 10_001) == pg.outcomes_json(query, 10_001)


def test_a_dense_mile_is_the_same_in_the_embedded_stores_order(both: tuple[Store, Store]) -> None:
    lite, pg = both
    centre = ST_PAULS if lite.months()[-1].month < "2024-01" else DENSEST_CENTRE
    dense = 0
    for summary in lite.months():
        query = CrimeQuery(month=summary.month, area=Circle(centre, geo.ONE_MILE_M))
        a, b = lite.crimes_json(query, 10_001), pg.crimes_json(query, 10_001)
        assert a == b
        dense += a.found > 100
        assert lite.outcomes_json(query, 10_001) == pg.outcomes_json(query, 10_001)
        assert list(lite.crimes(query)) == list(pg.crimes(query))  # records too, in (cell, id) order
    assert dense, "some month should be dense there"


def test_the_real_files_agree_on_every_month_without_an_area(tmp_path: Path) -> None:
    """No area: the whole month's located crimes, the body of an export-like read."""
    lite, pg = _open_empty("sqlite", tmp_path / "a"), _open_empty("postgis", tmp_path / "b")
    try:
        for store in (lite, pg):
            load_policeuk(store, [POLICEUK / "2016-03", POLICEUK / "2020-01"])
        for month in ("2016-03", "2020-01"):
            query = CrimeQuery(month=month)
            assert lite.crimes_json(query, 100_000) == pg.crimes_json(query, 100_000)
            assert list(lite.outcomes(query)) == list(pg.outcomes(query))
    finally:
        lite.close()
        pg.close()
