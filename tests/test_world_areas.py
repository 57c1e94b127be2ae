"""World-sized areas cost what the crimes in them cost, not what the area's size does (issue 19, item 2).

An area is read as ranges of grid cells, one seek and statement each; the world's 72,000 grid rows, month
by month, took 21.9 s for an OGC page of a 34,000-crime store, and a world polygon tens of seconds more
to classify. A tall area's rows are now merged into at most ``MAX_RANGE_ROWS`` ranges (their points
tested exactly) and a wide polygon is classified on a coarser grid. Every answer must stay the one the
whole store gives; the HTTP tests run on both stores (``policeuk_server`` serves the real files).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
import shapely

from api.policeuk.test_crimes import poly_param
from conftest import LiveServer
from crimemap import geo
from crimemap.geometry import areas
from crimemap.query import Area, Circle, Polygon

WORLD_BOX = Polygon(((-180.0, -90.0), (180.0, -90.0), (180.0, 90.0), (-180.0, 90.0), (-180.0, -90.0)))
WORLD_PENTAGON = Polygon(((-179.0, -89.0), (179.0, -89.0), (179.0, 89.0), (0.0, 89.5), (-179.0, 89.0), (-179.0, -89.0)))
"""Almost the world, and not a rectangle: its cells are classified against the polygon."""
POLE_TRIANGLE = Polygon(((-170.0, 89.0), (170.0, 89.0), (0.0, 89.9), (-170.0, 89.0)))
"""A sliver round the north pole 340 degrees wide, where no crime is."""
HALF_EARTH = Circle((0.0, 51.5), 10_000_000.0)

WITHIN = 5.0
"""Seconds a world-sized request must answer within: each took from 2 to 66 s before the ranges were bounded."""


@pytest.mark.parametrize("area", [WORLD_BOX, WORLD_PENTAGON, POLE_TRIANGLE, HALF_EARTH], ids=repr)
def test_a_world_sized_area_is_read_in_a_bounded_number_of_ranges(area: Area) -> None:
    """At most :data:`areas.MAX_RANGE_ROWS` rows of ranges, and at most three ranges a row (edge, inside, edge)."""
    ranges = list(areas.area_ranges(area))
    assert 0 < len(ranges) <= 3 * areas.MAX_RANGE_ROWS
    assert all(r.lo <= r.hi for r in ranges)
    assert all(a.hi < b.lo for a, b in zip(ranges, ranges[1:], strict=False)), "ranges in cell order, apart"
    assert ranges[0].lo >= 0, "no range reaches the cell of crimes without a location"


@pytest.mark.parametrize("area", [WORLD_PENTAGON, POLE_TRIANGLE], ids=repr)
def test_classifying_a_world_wide_polygon_tests_a_bounded_number_of_boxes(
    area: Polygon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cells of a polygon are classified by testing boxes against it: 7.5 million boxes for the
    pentagon (66 s) and 690,000 for the sliver at the pole (3 s) when every boundary cell was one box."""
    tested = []
    intersects = shapely.intersects

    def counted(a: Any, b: Any, **kwargs: Any) -> Any:
        tested.append(np.size(b))
        return intersects(a, b, **kwargs)

    monkeypatch.setattr(shapely, "intersects", counted)
    list(areas.polygon_ranges(area))
    assert 0 < sum(tested) <= areas.MAX_BOXES


def comb(teeth: int) -> Polygon:
    """A valid polygon whose edge runs through every cell of 4 by 2.5 degrees round London: ``teeth`` teeth
    narrower than a cell. Classifying its million edge cells one by one took 132 s."""
    width = 4.0 / teeth
    ring: list[tuple[float, float]] = []
    for i in range(teeth):
        x = -2.0 + i * width
        ring += [(x, 50.0), (x, 52.5), (x + width / 2, 52.5), (x + width / 2, 50.001)]
    return Polygon((*ring, (2.0, 49.99), (-2.0, 49.99), ring[0]))


def test_a_polygon_with_an_edge_everywhere_is_classified_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    tested = []
    intersects = shapely.intersects

    def counted(a: Any, b: Any, **kwargs: Any) -> Any:
        tested.append(np.size(b))
        return intersects(a, b, **kwargs)

    monkeypatch.setattr(shapely, "intersects", counted)
    ranges = list(areas.polygon_ranges(comb(2_499)))
    assert 0 < sum(tested) <= areas.MAX_BOXES
    rows = {row for r in ranges for row in range(r.lo // geo.ROW_SPAN, r.hi // geo.ROW_SPAN + 1)}
    assert rows == set(range(geo.grid_row(49.99), geo.grid_row(52.5) + 1)), "every row of the comb is read"


def test_a_comb_answers_exactly_the_crimes_inside_it(policeuk_server: LiveServer) -> None:
    client = policeuk_server.client
    area = comb(2_499)
    box = [(52.6, -2.1), (52.6, 2.1), (49.9, 2.1), (49.9, -2.1)]
    every = client.post("/api/crimes-street/all-crime", data={"poly": poly_param(box), "date": "2016-06"}).json()
    inside = shapely.Polygon(area.ring)
    lng = np.array([float(c["location"]["longitude"]) for c in every])
    lat = np.array([float(c["location"]["latitude"]) for c in every])
    expected = sorted(c["id"] for c, yes in zip(every, shapely.intersects_xy(inside, lng, lat), strict=True) if yes)
    ring = poly_param([(lat, lng) for lng, lat in area.ring[:-1]])
    got, took = _timed(lambda: client.post("/api/crimes-street/all-crime", data={"poly": ring, "date": "2016-06"}))
    assert got.status_code == 200, got.text
    assert took < WITHIN
    assert sorted(c["id"] for c in got.json()) == expected and expected


@pytest.mark.parametrize("area", [WORLD_BOX, WORLD_PENTAGON, HALF_EARTH], ids=repr)
def test_merged_ranges_still_cover_every_point_of_the_area(area: Area) -> None:
    """Points all over the area fall in a range: merging must not drop a cell."""
    ranges = list(areas.area_ranges(area))
    for lat in range(-88, 89, 7):
        for lng in range(-178, 179, 11):
            if not areas.in_area(area, np.array([float(lng)]), np.array([float(lat)])).all():
                continue
            cell = geo.cell_of(lng, lat)
            assert any(r.lo <= cell <= r.hi for r in ranges), (lng, lat)


def test_a_small_polygon_keeps_its_cell_by_cell_ranges() -> None:
    """Areas of ordinary size are read exactly as before: single boundary cells, interior cells marked inside."""
    ring = ((-0.11, 51.50), (-0.07, 51.50), (-0.07, 51.52), (-0.09, 51.53), (-0.11, 51.52), (-0.11, 51.50))
    ranges = list(areas.polygon_ranges(Polygon(ring)))
    rows = {r.lo // geo.ROW_SPAN for r in ranges}
    assert len(rows) == geo.grid_row(51.53) - geo.grid_row(51.50) + 1
    assert any(r.inside for r in ranges)
    assert all(r.lo // geo.ROW_SPAN == r.hi // geo.ROW_SPAN for r in ranges), "no range spans two rows"


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def _ids(features: list[dict[str, Any]]) -> list[Any]:
    return sorted(f["id"] if "id" in f else f["properties"]["id"] for f in features)


def test_a_world_polygon_answers_every_crime_of_the_month(policeuk_server: LiveServer) -> None:
    client = policeuk_server.client
    every = client.get("/api/crimes-street/all-crime", params={"lat": "51.515", "lng": "-0.09", "date": "2016-06"})
    assert every.status_code == 200 and every.json()
    ring = [(lat, lng) for lng, lat in WORLD_PENTAGON.ring]
    world, took = _timed(
        lambda: client.post("/api/crimes-street/all-crime", data={"poly": poly_param(ring), "date": "2016-06"})
    )
    assert world.status_code == 200, world.text
    assert took < WITHIN
    assert {c["id"] for c in world.json()} >= {c["id"] for c in every.json()}
    pole = poly_param([(lat, lng) for lng, lat in POLE_TRIANGLE.ring])
    empty, took = _timed(lambda: client.get("/api/crimes-street/all-crime", params={"poly": pole, "date": "2016-06"}))
    assert (empty.status_code, empty.json(), took < WITHIN) == (200, [], True)


def test_an_ogc_world_bbox_answers_the_page_the_whole_collection_does(policeuk_server: LiveServer) -> None:
    client = policeuk_server.client
    items = "/ogc/collections/policeuk-crimes/items"
    page, took = _timed(lambda: client.get(items, params={"limit": 10_000, "bbox": "-180,-90,180,90"}))
    assert page.status_code == 200, page.text
    assert took < WITHIN
    assert page.json()["numberReturned"] == 10_000
    month = {"limit": 10_000, "datetime": "2016-06"}
    whole = client.get(items, params=month).json()["features"]
    world = client.get(items, params={**month, "bbox": "-180,-90,180,90"}).json()["features"]
    assert _ids(world) == _ids([f for f in whole if f["geometry"] is not None])


def test_maps_engine_and_downloads_with_a_world_polygon_answer_every_located_crime(
    policeuk_server: LiveServer,
) -> None:
    client = policeuk_server.client
    world = "POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90))"
    features = "/mapsengine/v1/tables/policeuk-crimes/features"
    month = "month = '2016-06'"
    whole = client.get(features, params={"where": month, "maxResults": 1000})
    page, took = _timed(lambda: client.get(features, params={"where": month, "intersects": world, "maxResults": 1000}))
    assert page.status_code == 200, page.text
    assert took < WITHIN
    located = [f for f in whole.json()["features"] if f["geometry"] is not None]
    assert _ids(page.json()["features"]) == _ids(located)
    csv, took = _timed(
        lambda: client.get(
            "/download/policeuk-crimes.csv", params={"where": f"ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('{world}'))"}
        )
    )
    assert csv.status_code == 200
    assert took < WITHIN
    assert csv.text.count("\n") > 9_000


def test_crime_counts_by_cell_over_the_world_are_the_counts_of_every_cell(policeuk_server: LiveServer) -> None:
    client = policeuk_server.client
    params = {"group": "cell", "zoom": "13", "months": "2016-06"}
    whole = client.get("/stats/crimes", params=params)
    world, took = _timed(lambda: client.get("/stats/crimes", params={**params, "bbox": "-180,-90,180,90"}))
    assert world.status_code == 200, world.text
    assert took < WITHIN
    assert world.json() == whole.json()
