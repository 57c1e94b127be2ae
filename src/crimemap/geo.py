"""Distances, bounding boxes and the grid that keys crimes in space.

Points are ``(lng, lat)`` pairs in WGS 84 degrees everywhere in crimemap, the
order GeoJSON and shapely use; police.uk's ``lat,lng`` text is turned round at
the edge (see :func:`parse_poly`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from crimemap import numerals
from crimemap.echo import cut, echo

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), used for every great-circle distance."""

ONE_MILE_M = 1_609.344
"""police.uk's search radius for ``crimes-street`` by point."""

# The embedded store's spatial key: a grid of GRID_LAT x GRID_LNG degree cells,
# numbered row by row, so the cells of one grid row form one contiguous range.
GRID_LAT = 0.0025
GRID_LNG = 0.004
ROW_SPAN = 1 << 22
NO_CELL = -1
"""The cell of a crime stored without coordinates."""
LAST_ROW = int(math.floor(180.0 / GRID_LAT))
"""The grid row of latitude 90; rows run from 0 (latitude -90) to this."""
LAST_COL = int(math.floor(360.0 / GRID_LNG))
"""The grid column of longitude 180; columns run from 0 (longitude -180) to this."""


def haversine_m(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """Great-circle distance in metres.

    >>> round(haversine_m(-0.1, 51.5, -0.1, 51.51))
    1112
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def circle_bbox(lng: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """The ``(min_lng, min_lat, max_lng, max_lat)`` box holding a circle, with a small margin."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) * 1.0001
    coslat = max(math.cos(math.radians(min(89.9, abs(lat) + dlat))), 1e-6)
    dlng = min(180.0, dlat / coslat)
    return lng - dlng, lat - dlat, lng + dlng, lat + dlat


def grid_row(lat: float) -> int:
    return int(math.floor((lat + 90.0) / GRID_LAT))


def grid_col(lng: float) -> int:
    return int(math.floor((lng + 180.0) / GRID_LNG))


def _rows_between(min_lat: float, max_lat: float) -> range:
    """The grid rows from ``min_lat`` to ``max_lat``, clipped to the globe's.

    An area reaching past a pole would otherwise ask for row -1, whose last
    cell is :data:`NO_CELL`: the crimes stored without coordinates.
    """
    return range(max(0, grid_row(min_lat)), min(LAST_ROW, grid_row(max_lat)) + 1)


def _cols(min_lng: float, max_lng: float) -> tuple[int, int]:
    """The first and last grid column from ``min_lng`` to ``max_lng``, clipped to the globe's."""
    return max(0, grid_col(min_lng)), min(LAST_COL, grid_col(max_lng))


def cell_of(lng: float, lat: float) -> int:
    """The grid cell of a point: the embedded store's clustered spatial key."""
    return grid_row(lat) * ROW_SPAN + grid_col(lng)


def cell_ranges_for_box(min_lng: float, min_lat: float, max_lng: float, max_lat: float) -> Iterator[tuple[int, int]]:
    """One ``(first_cell, last_cell)`` range per grid row that the box touches."""
    c0, c1 = _cols(min_lng, max_lng)
    for row in _rows_between(min_lat, max_lat):
        yield row * ROW_SPAN + c0, row * ROW_SPAN + c1


def cell_ranges_for_circle(lng: float, lat: float, radius_m: float) -> list[tuple[int, int]]:
    """Cell ranges covering a circle, each grid row clipped to the circle's chord.

    Clipping row by row scans about 1.2 times the circle's area instead of the
    whole bounding box's 1.27 (and far less at fine grids), for a handful of
    index range scans.
    """
    min_lng, min_lat, max_lng, max_lat = circle_bbox(lng, lat, radius_m)
    dlat = (max_lat - min_lat) / 2
    half_width = (max_lng - min_lng) / 2
    ranges = []
    for row in _rows_between(min_lat, max_lat):
        south = row * GRID_LAT - 90.0
        north = south + GRID_LAT
        # The row's closest latitude to the centre decides the chord's width.
        nearest = min(max(lat, south), north)
        frac = min(1.0, abs(nearest - lat) / dlat) if dlat > 0 else 1.0
        w = half_width * math.sqrt(max(0.0, 1.0 - frac * frac)) + GRID_LNG
        if frac >= 1.0 and nearest != lat:
            continue
        c0, c1 = _cols(lng - w, lng + w)
        ranges.append((row * ROW_SPAN + c0, row * ROW_SPAN + c1))
    return ranges


def parse_latlng(lat_text: str, lng_text: str) -> tuple[float, float]:
    """Parse police.uk ``lat`` and ``lng`` parameters into ``(lng, lat)``.

    Raises ``ValueError`` with a message fit for a 400 response.
    """
    try:
        lat, lng = numerals.decimal(lat_text), numerals.decimal(lng_text)
    except (TypeError, ValueError):
        raise ValueError(f"lat and lng must be numbers, got lat={echo(lat_text)} lng={echo(lng_text)}") from None
    if not (math.isfinite(lat) and math.isfinite(lng)) or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise ValueError(
            f"lat must be in [-90, 90] and lng in [-180, 180], got lat={cut(lat_text)} lng={cut(lng_text)}"
        )
    return lng, lat


def parse_poly(text: str) -> tuple[tuple[float, float], ...]:
    """Parse police.uk's ``poly`` (``lat,lng:lat,lng:...``) into a closed ring of ``(lng, lat)``.

    >>> parse_poly("52.268,0.543:52.794,0.238:52.130,0.478")[0]
    (0.543, 52.268)
    """
    points = []
    for pair in text.strip().strip(":").split(":"):
        parts = pair.split(",")
        if len(parts) != 2:
            raise ValueError(f"poly must be lat,lng pairs separated by colons; {echo(pair)} is not a pair")
        points.append(parse_latlng(parts[0].strip(), parts[1].strip()))
    if len(points) < 3:
        raise ValueError("poly needs at least three lat,lng pairs")
    if points[0] != points[-1]:
        points.append(points[0])
    return tuple(points)
