"""Areas on the grid: the cells a circle or a polygon covers, and exact membership tests.

Both stores answer "which points lie in this area" the same way, in two steps:

1. the grid (:mod:`crimemap.geo`) narrows the search to ranges of cells, one or a
   few per grid row, each marked ``inside`` when every point of its cells lies in
   the area (those rows need no further test);
2. the points of the other ranges are tested exactly: a circle by the dot product
   of unit vectors against the cosine of its angular radius (plain arithmetic a
   store can run in SQL), a polygon by shapely's ``intersects_xy`` (a point on
   the boundary is inside).

The circle test is the great-circle distance of :func:`crimemap.geo.haversine_m`
written as an angle: ``d <= r`` if and only if ``u(p) . u(c) >= cos(r / R)``.

    >>> ranges = circle_ranges(Circle((-0.09, 51.515), 1609.344))
    >>> len(ranges) > 10 and all(r.lo <= r.hi for r in ranges)
    True
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import shapely
from shapely.geometry import Polygon as ShapelyPolygon

from crimemap import deadline, geo
from crimemap.query import Area, Circle, Polygon
from crimemap.rings import check_ring

MAX_ROW = geo.grid_row(90.0 - 1e-9)
MAX_COL = geo.grid_col(180.0 - 1e-9)

MAX_POLYGON_VERTICES = 10_000
"""A polygon with more vertices than this is refused: its cell ranges would cost too much to find."""


class CellRange(NamedTuple):
    """Cells ``lo..hi`` of one grid row; ``inside``: every point of them lies in the area."""

    lo: int
    hi: int
    inside: bool = False


# -- circles -----------------------------------------------------------------------------------


def unit_vector(lng: float, lat: float) -> tuple[float, float, float]:
    """The point on the unit sphere: what the stores keep beside each crime's coordinates."""
    phi, lam = math.radians(lat), math.radians(lng)
    cos_phi = math.cos(phi)
    return cos_phi * math.cos(lam), cos_phi * math.sin(lam), math.sin(phi)


def circle_test(circle: Circle) -> tuple[float, float, float, float]:
    """``(cx, cy, cz, threshold)``: a point is in the circle when ``x*cx + y*cy + z*cz >= threshold``."""
    cx, cy, cz = unit_vector(*circle.center)
    angle = circle.radius_m / geo.EARTH_RADIUS_M
    threshold = math.cos(angle) if angle < math.pi else -2.0
    return cx, cy, cz, threshold


def in_circle(circle: Circle, lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Which points lie in the circle (vectorised; the same arithmetic as the stores' SQL)."""
    cx, cy, cz, threshold = circle_test(circle)
    phi, lam = np.radians(lat), np.radians(lng)
    cos_phi = np.cos(phi)
    dot = cos_phi * np.cos(lam) * cx + cos_phi * np.sin(lam) * cy + np.sin(phi) * cz
    return dot >= threshold


def circle_ranges(circle: Circle) -> list[CellRange]:
    """Cell ranges covering a circle, one per grid row, clipped to the circle's chord.

    A circle that crosses the antimeridian gets two ranges in a row; rows and
    columns are clamped to the grid, so no range reaches the cell of points
    without a location.
    """
    lng, lat = circle.center
    min_lng, min_lat, max_lng, max_lat = geo.circle_bbox(lng, lat, circle.radius_m)
    dlat = (max_lat - min_lat) / 2
    half_width = (max_lng - min_lng) / 2
    ranges: list[CellRange] = []
    first, last = max(0, geo.grid_row(min_lat)), min(MAX_ROW, geo.grid_row(max_lat))
    if last - first + 1 > MAX_RANGE_ROWS:
        wraps = max_lng - min_lng >= 360.0 or min_lng < -180.0 or max_lng > 180.0
        col0, col1 = (0, MAX_COL) if wraps else (max(0, geo.grid_col(min_lng)), min(MAX_COL, geo.grid_col(max_lng)))
        return list(_bands(first, last, col0, col1))
    for row in range(first, last + 1):
        south = row * geo.GRID_LAT - 90.0
        nearest = min(max(lat, south), south + geo.GRID_LAT)
        frac = min(1.0, abs(nearest - lat) / dlat) if dlat > 0 else 1.0
        if frac >= 1.0 and nearest != lat:
            continue
        w = half_width * math.sqrt(max(0.0, 1.0 - frac * frac)) + geo.GRID_LNG
        spans = _row_span(row, lng - w, lng + w)
        inner = _inside_columns(circle, row) if len(spans) == 1 else None
        if inner is None:
            ranges.extend(CellRange(lo, hi) for lo, hi in spans)
            continue
        (lo, hi), base = spans[0], row * geo.ROW_SPAN
        first_in, last_in = max(lo, base + inner[0]), min(hi, base + inner[1])
        if first_in > last_in:
            ranges.append(CellRange(lo, hi))
            continue
        if lo < first_in:
            ranges.append(CellRange(lo, first_in - 1))
        ranges.append(CellRange(first_in, last_in, True))
        if last_in < hi:
            ranges.append(CellRange(last_in + 1, hi))
    return ranges


_INSIDE_MARGIN_DEG = 1e-8
"""Degrees (about a millimetre) by which a cell called inside a circle must be inside: far beyond rounding."""


def _inside_columns(circle: Circle, row: int) -> tuple[int, int] | None:
    """The columns of ``row`` whose cells lie wholly inside a circle (None: none, or not worth finding).

    A cell bounded by two meridians and two parallels is inside a circle when
    its four corners are: along a parallel the distance grows with the
    longitude away from the centre's, and along a meridian it has one minimum.
    So the cells inside are those within the chord of the circle at both of the
    row's edges, found by spherical trigonometry, less a millimetre.
    """
    clng, clat = circle.center
    angle = circle.radius_m / geo.EARTH_RADIUS_M
    if angle > 0.01 or abs(clat) > 80:
        return None
    south = row * geo.GRID_LAT - 90.0
    phic = math.radians(clat)
    width = 180.0
    for edge in (south, south + geo.GRID_LAT):
        phi = math.radians(edge)
        cos_dlng = (math.cos(angle) - math.sin(phi) * math.sin(phic)) / (math.cos(phi) * math.cos(phic))
        if cos_dlng > 1.0:
            return None
        width = min(width, math.degrees(math.acos(max(-1.0, cos_dlng))))
    width -= _INSIDE_MARGIN_DEG
    first = geo.grid_col(clng - width) + 1
    last = geo.grid_col(clng + width) - 1
    return (first, last) if first <= last else None


def _row_span(row: int, west: float, east: float) -> list[tuple[int, int]]:
    """The cells of ``row`` between two longitudes, in cell order, wrapping round the antimeridian."""
    base = row * geo.ROW_SPAN
    if east - west >= 360.0:
        return [(base, base + MAX_COL)]
    spans = []
    if west < -180.0:
        spans.append((geo.grid_col(west + 360.0), MAX_COL))
        west = -180.0
    if east > 180.0:
        spans.append((0, min(MAX_COL, geo.grid_col(east - 360.0))))
        east = 180.0 - 1e-9
    spans.append((max(0, geo.grid_col(west)), min(MAX_COL, geo.grid_col(east))))
    return [(base + lo, base + hi) for lo, hi in sorted(spans)]


# -- polygons ----------------------------------------------------------------------------------


def polygon_key(ring: tuple[tuple[float, float], ...]) -> str:
    """A text key for a ring (the cache key of its prepared polygon)."""
    return ";".join(f"{x!r},{y!r}" for x, y in ring)


_PER_THREAD = threading.local()
_CACHED = 64


def prepared_polygon(key: str) -> ShapelyPolygon:
    """The prepared polygon of a key, one per thread.

    GEOS's prepared geometries are not safe to use from two threads at once
    (two requests with the same polygon crashed the process), so each thread
    keeps its own few.
    """
    cache: OrderedDict[str, ShapelyPolygon] | None = getattr(_PER_THREAD, "polygons", None)
    if cache is None:
        cache = _PER_THREAD.polygons = OrderedDict()
    poly = cache.get(key)
    if poly is None:
        poly = cache[key] = _prepare(key)
        if len(cache) > _CACHED:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return poly


def _prepare(key: str) -> ShapelyPolygon:
    return polygon_shape(tuple((float(x), float(y)) for x, y in (p.split(",") for p in key.split(";"))))


def polygon_shape(ring: tuple[tuple[float, float], ...]) -> ShapelyPolygon:
    """The prepared shapely polygon of a ring, made valid if it crosses itself, uncached
    (:func:`polygon_of` is this, kept per thread): the polygon every exact test of the ring uses."""
    poly = ShapelyPolygon(ring)
    if not poly.is_valid:
        check_ring(ring)  # the APIs refuse such a ring; a caller of the store that did not gets a ValueError
        poly = shapely.make_valid(poly)
        deadline.check()
    shapely.prepare(poly)
    return poly


def polygon_of(ring: tuple[tuple[float, float], ...]) -> ShapelyPolygon:
    """The prepared shapely polygon of a ring, made valid if it crosses itself."""
    return prepared_polygon(polygon_key(ring))


def in_polygon(polygon: Polygon, lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Which points lie in the polygon or on its boundary (vectorised)."""
    return np.asarray(shapely.intersects_xy(polygon_of(polygon.ring), lng, lat), dtype=bool)


def in_area(area: Area, lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Which points lie in ``area``."""
    if isinstance(area, Circle):
        return in_circle(area, lng, lat)
    return in_polygon(area, lng, lat)


_EPSILON = 1e-9
"""Degrees a cell is grown by before it is called inside, so that rounding can never admit a point outside."""

Block = tuple[int, int, int, int]
"""``(first row, first column, last row, last column)`` of a block of cells."""

_BLOCK = 32
"""Cells on a side of the blocks a polygon's box is first cut into (a band of rows at a time)."""


MAX_RANGE_ROWS = 1_024
"""The most grid rows (2.6 degrees of latitude) an area's ranges keep apart; a taller area's are merged.

Each range is a seek and a statement: the world's 72,000 rows, month by month, took seconds to read from
a store of a few thousand crimes. Merged rows are read whole from the area's first column in the first
row to its last in the last, and their points tested exactly, so the work follows the crimes those rows
hold, not the area's size."""

MAX_BLOCK_SIDES = 1_024
"""A polygon's box is classified on a grid of at most this many blocks a side: a polygon wider than that
many cells keeps blocks of several cells on its boundary (tested exactly) instead of single cells."""


MAX_BOXES = 8_192
"""The most blocks of cells tested against one polygon (under a second, even for one of 10,000 points).

A valid polygon can have a boundary everywhere: a comb of 2,500 teeth across 1,000 by 1,000 cells had a
million cells on its edge, and classifying them took 132 s. Past this many tests, the blocks still
straddling the edge are kept whole, and their points tested exactly: the work follows the crimes."""


class _Budget:
    """What is left of :data:`MAX_BOXES` for one polygon."""

    def __init__(self) -> None:
        self.left = MAX_BOXES

    def take(self, boxes: int) -> bool:
        """Whether ``boxes`` more may be tested (and, if so, count them)."""
        if boxes > self.left:
            return False
        self.left -= boxes
        return True


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def polygon_ranges(polygon: Polygon) -> Iterator[CellRange]:
    """Cell ranges covering a polygon, each marked inside or not, in cell order.

    The polygon's box is cut into blocks of cells, and blocks are quartered
    while they straddle the boundary (each level one vectorised shapely call):
    a block wholly inside the polygon is inside, one wholly outside is dropped,
    and single cells on the boundary are kept for the exact test. The work is
    proportional to the boundary's length in cells, not to the area, and it is
    done a band of rows at a time, so a reader that stops early (the
    10,000-crime rule) never classifies the rest; each level stops the request's work past its time
    budget or once its client is gone (:func:`crimemap.deadline.check`). A polygon more than
    :data:`MAX_BLOCK_SIDES` cells wide keeps blocks that wide on its boundary,
    and one more than :data:`MAX_RANGE_ROWS` rows tall is read in merged bands
    of rows (:func:`_tall_polygon_ranges`).
    """
    box = rectangle(polygon.ring)
    if box is not None:
        yield from rectangle_ranges(*box)
        return
    poly = polygon_of(polygon.ring)
    min_lng, min_lat, max_lng, max_lat = poly.bounds
    row0, row1 = max(0, geo.grid_row(min_lat)), min(MAX_ROW, geo.grid_row(max_lat))
    col0, col1 = max(0, geo.grid_col(min_lng)), min(MAX_COL, geo.grid_col(max_lng))
    budget = _Budget()
    if row1 - row0 + 1 > MAX_RANGE_ROWS:
        yield from _tall_polygon_ranges(poly, row0, col0, row1, col1, budget)
        return
    least = _ceil_div(col1 - col0 + 1, MAX_BLOCK_SIDES)
    wide = _BLOCK * least
    for band in range(row0, row1 + 1, _BLOCK):
        band_end = min(band + _BLOCK - 1, row1)
        blocks = [(band, c, band_end, min(c + wide - 1, col1)) for c in range(col0, col1 + 1, wide)]
        yield from _band_ranges(poly, blocks, band, band_end, budget, least)


def _boxes(blocks: list[Block], rows: int = 1, cols: int = 1) -> np.ndarray:
    """The shapely boxes of ``blocks`` (in units of ``rows`` x ``cols`` cells), grown by :data:`_EPSILON`."""
    arr = np.array(blocks, dtype=np.float64)
    west = arr[:, 1] * cols * geo.GRID_LNG - 180.0 - _EPSILON
    south = arr[:, 0] * rows * geo.GRID_LAT - 90.0 - _EPSILON
    east = (arr[:, 3] + 1) * cols * geo.GRID_LNG - 180.0 + _EPSILON
    north = (arr[:, 2] + 1) * rows * geo.GRID_LAT - 90.0 + _EPSILON
    return np.asarray(shapely.box(west, south, east, north))


def _tall_polygon_ranges(
    poly: ShapelyPolygon, row0: int, col0: int, row1: int, col1: int, budget: _Budget
) -> Iterator[CellRange]:
    """One range per band of rows of a polygon taller than :data:`MAX_RANGE_ROWS` rows, tested exactly.

    The box is classified on a coarse grid (bands of rows, by as many columns as keep it
    :data:`MAX_BLOCK_SIDES` wide), and each band's range runs from the first coarse cell the polygon
    touches in it to the last.
    """
    rows = _ceil_div(row1 - row0 + 1, MAX_RANGE_ROWS)
    cols = _ceil_div(col1 - col0 + 1, MAX_BLOCK_SIDES)
    first_band, last_band = row0 // rows, row1 // rows
    west = np.full(last_band - first_band + 1, np.iinfo(np.int64).max)
    east = np.full(last_band - first_band + 1, -1)
    blocks: list[Block] = [(first_band, col0 // cols, last_band, col1 // cols)]
    while blocks:
        deadline.check()
        if budget.take(len(blocks)):
            boxes = _boxes(blocks, rows, cols)
            covered = shapely.covers(poly, boxes).tolist()
            touching = shapely.intersects(poly, boxes).tolist()
        else:  # kept whole, untested: their points get the exact test
            covered, touching = [True] * len(blocks), [True] * len(blocks)
        split: list[Block] = []
        for (r0, c0, r1, c1), whole, touch in zip(blocks, covered, touching, strict=True):
            if not touch:
                continue
            if whole or (r0 == r1 and c0 == c1):
                touched = slice(r0 - first_band, r1 - first_band + 1)
                west[touched] = np.minimum(west[touched], c0)
                east[touched] = np.maximum(east[touched], c1)
                continue
            split.extend(_quarters(r0, c0, r1, c1))
        blocks = split
    for offset, (w, e) in enumerate(zip(west.tolist(), east.tolist(), strict=True)):
        if e < 0:
            continue
        band = first_band + offset
        first, last = max(row0, band * rows), min(row1, band * rows + rows - 1)
        lo, hi = max(col0, w * cols), min(col1, e * cols + cols - 1)
        yield CellRange(first * geo.ROW_SPAN + lo, last * geo.ROW_SPAN + hi, False)


def _quarters(r0: int, c0: int, r1: int, c1: int) -> Iterator[Block]:
    rm, cm = (r0 + r1) // 2, (c0 + c1) // 2
    for a0, a1 in ((r0, rm), (rm + 1, r1)):
        for b0, b1 in ((c0, cm), (cm + 1, c1)):
            if a0 <= a1 and b0 <= b1:
                yield a0, b0, a1, b1


def _band_ranges(
    poly: ShapelyPolygon, blocks: list[Block], first: int, last: int, budget: _Budget, least: int = 1
) -> list[CellRange]:
    """The ranges of rows ``first..last``, classifying ``blocks`` (row0, col0, row1, col1) as they straddle.

    A straddling block of one row and at most ``least`` columns is kept whole for the exact test, and so
    is every block once the polygon's ``budget`` of tests is spent."""
    spans: list[list[tuple[int, int, bool]]] = [[] for _ in range(first, last + 1)]
    while blocks:
        deadline.check()
        tested = budget.take(len(blocks))
        if tested:
            boxes = _boxes(blocks)
            covered = shapely.covers(poly, boxes).tolist()
            touching = shapely.intersects(poly, boxes).tolist()
        else:  # kept whole, untested: their points get the exact test
            covered, touching = [False] * len(blocks), [True] * len(blocks)
        split: list[Block] = []
        for (r0, c0, r1, c1), whole, touch in zip(blocks, covered, touching, strict=True):
            if not touch:
                continue
            if whole or not tested or (r0 == r1 and c1 - c0 < least):
                for r in range(r0, r1 + 1):
                    spans[r - first].append((c0, c1, bool(whole)))
                continue
            split.extend(_quarters(r0, c0, r1, c1))
        blocks = split
    ranges: list[CellRange] = []
    for offset, row_spans in enumerate(spans):
        if not row_spans:
            continue
        base = (first + offset) * geo.ROW_SPAN
        row_spans.sort()
        lo, hi, inside = row_spans[0]
        for c0, c1, whole in row_spans[1:]:
            if whole == inside and c0 == hi + 1:
                hi = c1
            else:
                ranges.append(CellRange(base + lo, base + hi, inside))
                lo, hi, inside = c0, c1, whole
        ranges.append(CellRange(base + lo, base + hi, inside))
    return ranges


def rectangle(ring: tuple[tuple[float, float], ...]) -> tuple[float, float, float, float] | None:
    """``(min_lng, min_lat, max_lng, max_lat)`` when a closed ring is an axis-aligned rectangle.

    The commonest polygon of all (a map's view, a bounding box): its cells are
    found by arithmetic, and its points tested by comparisons.
    """
    if len(ring) != 5 or ring[0] != ring[-1]:
        return None
    xs, ys = {p[0] for p in ring}, {p[1] for p in ring}
    if len(xs) != 2 or len(ys) != 2:
        return None
    if any(a[0] != b[0] and a[1] != b[1] for a, b in zip(ring, ring[1:], strict=False)):
        return None
    return min(xs), min(ys), max(xs), max(ys)


def rectangle_ranges(min_lng: float, min_lat: float, max_lng: float, max_lat: float) -> Iterator[CellRange]:
    """The cell ranges of a rectangle: per grid row, the whole cells inside it, and the cut ones at its sides."""
    row0, row1 = max(0, geo.grid_row(min_lat)), min(MAX_ROW, geo.grid_row(max_lat))
    if row1 - row0 + 1 > MAX_RANGE_ROWS:
        yield from _bands(row0, row1, max(0, geo.grid_col(min_lng)), min(MAX_COL, geo.grid_col(max_lng)))
        return
    yield from _rectangle_rows(min_lng, min_lat, max_lng, max_lat)


def _bands(row0: int, row1: int, col0: int, col1: int) -> Iterator[CellRange]:
    """Columns ``col0..col1`` of rows ``row0..row1``, merged into at most :data:`MAX_RANGE_ROWS` ranges
    (each holding the cells between, tested exactly)."""
    per_band = -(-(row1 - row0 + 1) // MAX_RANGE_ROWS)
    for first in range(row0, row1 + 1, per_band):
        last = min(first + per_band - 1, row1)
        yield CellRange(first * geo.ROW_SPAN + col0, last * geo.ROW_SPAN + col1, False)


def _rectangle_rows(min_lng: float, min_lat: float, max_lng: float, max_lat: float) -> Iterator[CellRange]:
    row0, row1 = max(0, geo.grid_row(min_lat)), min(MAX_ROW, geo.grid_row(max_lat))
    col0, col1 = max(0, geo.grid_col(min_lng)), min(MAX_COL, geo.grid_col(max_lng))
    # Whole cells: those whose edges (grown by a hair) lie within the rectangle.
    in_col0 = col0 if (col0 * geo.GRID_LNG - 180.0) - _EPSILON >= min_lng else col0 + 1
    in_col1 = col1 if ((col1 + 1) * geo.GRID_LNG - 180.0) + _EPSILON <= max_lng else col1 - 1
    for row in range(row0, row1 + 1):
        base = row * geo.ROW_SPAN
        south = row * geo.GRID_LAT - 90.0
        whole_row = south - _EPSILON >= min_lat and south + geo.GRID_LAT + _EPSILON <= max_lat
        if not whole_row or in_col0 > in_col1:
            yield CellRange(base + col0, base + col1, False)
            continue
        if in_col0 > col0:
            yield CellRange(base + col0, base + in_col0 - 1, False)
        yield CellRange(base + in_col0, base + in_col1, True)
        if in_col1 < col1:
            yield CellRange(base + in_col1 + 1, base + col1, False)


def area_ranges(area: Area) -> Iterator[CellRange]:
    """The cell ranges of an area, in cell order (see :func:`circle_ranges`, :func:`polygon_ranges`)."""
    if isinstance(area, Circle):
        return iter(circle_ranges(area))
    return polygon_ranges(area)
