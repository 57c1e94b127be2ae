"""Areas on the grid (crimemap.geometry.areas): the cells an area covers, and which of them lie wholly inside.

Both stores read only the cell ranges an area gives, and test the rows of a
range exactly only when it is not marked inside. So every point in the area
must fall in a range, and every point in an inside range must be in the area.
"""

from __future__ import annotations

import math
import random
import threading

import numpy as np
import pytest

from crimemap import geo
from crimemap.geometry.areas import (
    circle_ranges,
    circle_test,
    in_polygon,
    polygon_of,
    polygon_ranges,
    rectangle,
    unit_vector,
)
from crimemap.query import Circle, Polygon


def _range_of(ranges: list, cell: int):  # type: ignore[no-untyped-def,type-arg]
    found = [r for r in ranges if r.lo <= cell <= r.hi]
    return found[0] if found else None


def _in_circle(circle: Circle, lng: float, lat: float) -> bool:
    cx, cy, cz, threshold = circle_test(circle)
    x, y, z = unit_vector(lng, lat)
    return x * cx + y * cy + z * cz >= threshold


@pytest.mark.parametrize("radius", [100.0, 1609.344, 5000.0, 20000.0])
def test_circle_ranges_cover_the_circle_and_inside_cells_hold_only_points_inside(radius: float) -> None:
    rng = random.Random(int(radius))
    for _ in range(60):
        circle = Circle((rng.uniform(-5, 2), rng.uniform(49, 58)), radius)
        ranges = circle_ranges(circle)
        assert all(a.hi < b.lo for a, b in zip(ranges, ranges[1:], strict=False)), "sorted and disjoint"
        span = radius * 1.3 / 111_000
        for _ in range(500):
            lng = circle.center[0] + rng.uniform(-2 * span, 2 * span)
            lat = circle.center[1] + rng.uniform(-span, span)
            found = _range_of(ranges, geo.cell_of(lng, lat))
            if _in_circle(circle, lng, lat):
                assert found is not None
            if found is not None and found.inside:
                assert _in_circle(circle, lng, lat)


def test_most_of_a_mile_is_read_without_a_test() -> None:
    ranges = circle_ranges(Circle((-0.1276, 51.5073), geo.ONE_MILE_M))
    inside = sum(r.hi - r.lo + 1 for r in ranges if r.inside)
    assert inside / sum(r.hi - r.lo + 1 for r in ranges) > 0.5


def _random_ring(rng: random.Random) -> tuple[tuple[float, float], ...]:
    cx, cy = rng.uniform(-1, 1), rng.uniform(50, 53)
    size = rng.choice([0.003, 0.02, 0.2])
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(rng.randint(3, 12)))
    ring = [
        (cx + size * rng.uniform(0.2, 1) * math.cos(a), cy + size * rng.uniform(0.2, 1) * math.sin(a)) for a in angles
    ]
    return (*ring, ring[0])


def test_polygon_ranges_cover_the_polygon_and_inside_cells_hold_only_points_inside() -> None:
    rng = random.Random(1)
    for _ in range(80):
        polygon = Polygon(_random_ring(rng))
        ranges = list(polygon_ranges(polygon))
        assert all(a.hi < b.lo for a, b in zip(ranges, ranges[1:], strict=False))
        min_lng, min_lat, max_lng, max_lat = polygon_of(polygon.ring).bounds
        lng = np.array([rng.uniform(min_lng, max_lng) for _ in range(800)])
        lat = np.array([rng.uniform(min_lat, max_lat) for _ in range(800)])
        for x, y, inside in zip(lng, lat, in_polygon(polygon, lng, lat), strict=True):
            found = _range_of(ranges, geo.cell_of(x, y))
            if inside:
                assert found is not None
            if found is not None and found.inside:
                assert inside


def test_a_rectangle_is_recognised_and_its_ranges_found_by_arithmetic() -> None:
    ring = ((-0.2, 51.4), (0.0, 51.4), (0.0, 51.6), (-0.2, 51.6), (-0.2, 51.4))
    assert rectangle(ring) == (-0.2, 51.4, 0.0, 51.6)
    assert rectangle(((0, 0), (1, 0), (1, 1), (0, 0))) is None
    ranges = list(polygon_ranges(Polygon(ring)))
    whole_rows = 0.2 / geo.GRID_LAT - 2
    assert sum(r.inside for r in ranges) >= whole_rows


def test_the_whole_country_is_classified_a_band_at_a_time() -> None:
    country = Polygon(((-8.7, 49.8), (2.0, 49.8), (1.0, 61.0), (-8.7, 61.0), (-8.7, 49.8)))
    first = polygon_ranges(country)
    assert next(first).lo // geo.ROW_SPAN == geo.grid_row(49.8)


def test_ranges_stay_on_the_globe() -> None:
    for lng, lat in ((-180.0, 0.0), (180.0, 0.0), (0.0, -90.0), (0.0, 90.0), (-179.99, -89.99)):
        for r in circle_ranges(Circle((lng, lat), 5_000.0)):
            assert 0 <= r.lo <= r.hi


def test_threads_may_test_the_same_polygon_at_once() -> None:
    ring = _random_ring(random.Random(7))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(200):
                list(polygon_ranges(Polygon(ring)))
                in_polygon(Polygon(ring), np.array([ring[0][0]]), np.array([ring[0][1]]))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
