"""Geometries that are not points: polygons in feature tables (police force boundaries, any GeoJSON).

A feature table holds points, or, when any of its features is a Polygon or
MultiPolygon, *shapes*: each feature keeps its geometry as WKB (``shape``),
its bounding box, and a point on its surface as its ``lng``/``lat`` (so that
readers that want one point, a CSV export say, still have one).

``ST_INTERSECTS(geometry, polygon)`` on such a table asks whether the shape
intersects the polygon (GEOS answers in both stores: shapely here, PostGIS
there); ``ST_DISTANCE(geometry, point) < m`` asks whether it intersects the
circle, drawn as a polygon of :data:`CIRCLE_POINTS` points on it, the same
polygon for both stores.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any

import shapely

from crimemap import geo
from crimemap.geometry import areas
from crimemap.query import Area, Circle
from crimemap.rings import check_ring

CIRCLE_POINTS = 128
"""Vertices of the polygon that stands for a circle when shapes are tested against it."""


def destination(lng: float, lat: float, distance_m: float, bearing_deg: float) -> tuple[float, float]:
    """The point ``distance_m`` metres from ``(lng, lat)`` along a great circle at ``bearing_deg``."""
    d = distance_m / geo.EARTH_RADIUS_M
    phi, lam, theta = math.radians(lat), math.radians(lng), math.radians(bearing_deg)
    phi2 = math.asin(math.sin(phi) * math.cos(d) + math.cos(phi) * math.sin(d) * math.cos(theta))
    lam2 = lam + math.atan2(math.sin(theta) * math.sin(d) * math.cos(phi), math.cos(d) - math.sin(phi) * math.sin(phi2))
    return math.degrees(lam2), math.degrees(phi2)


_PER_THREAD = threading.local()
_CACHED = 64


def _per_thread(kind: str, key: Any, make: Any) -> Any:
    """A geometry made once per thread and key: GEOS's prepared geometries are not safe to share
    between threads (as :func:`crimemap.geometry.areas.polygon_of` found), so each thread keeps its own few."""
    cache: OrderedDict[Any, Any] | None = getattr(_PER_THREAD, kind, None)
    if cache is None:
        cache = OrderedDict()
        setattr(_PER_THREAD, kind, cache)
    found = cache.get(key)
    if found is None:
        found = cache[key] = make(key)
        if len(cache) > _CACHED:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return found


def _circle(circle: Circle) -> Any:
    lng, lat = circle.center
    ring = [destination(lng, lat, circle.radius_m, 360.0 * i / CIRCLE_POINTS) for i in range(CIRCLE_POINTS)]
    shape = shapely.Polygon(ring)
    shapely.prepare(shape)
    return shape


def area_geometry(area: Area) -> Any:
    """The shapely polygon a shape is tested against for ``area`` (see the module docstring)."""
    if isinstance(area, Circle):
        return _per_thread("circles", area, _circle)
    return areas.polygon_of(area.ring)


def area_wkb(area: Area) -> bytes:
    return bytes(shapely.to_wkb(area_geometry(area)))


def _from_wkb(wkb: bytes) -> Any:
    geometry = shapely.from_wkb(wkb)
    shapely.prepare(geometry)
    return geometry


def intersects(shape: bytes | None, area: bytes | None) -> int | None:
    """Whether two WKB geometries intersect (SQLite's ``cm_intersects``); NULL in, NULL out."""
    if shape is None or area is None:
        return None
    return int(
        shapely.intersects(_per_thread("wkb", bytes(area), _from_wkb), _per_thread("wkb", bytes(shape), _from_wkb))
    )


def polygonal(geometry: Any) -> Any:
    """``geometry`` (a Polygon or MultiPolygon) made valid, as a Polygon or MultiPolygon.

    GEOS makes a polygon with crossing or touching rings valid by cutting it up,
    and keeps what collapsed (a spike of a ring, say) as lines and points in a
    GeometryCollection; those have no area, so only the polygons are kept. The
    real Derbyshire boundary is such a polygon: a MultiPolygon comes back. That repair grows with the
    square of a ring's crossings and cannot be interrupted, so a ring that crosses itself more than
    :data:`crimemap.rings.MAX_CROSSINGS` times is refused first with :class:`~crimemap.rings.RingError`
    (a 10,000-point star would grow the process until the kernel killed it).

    >>> polygonal(shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])).geom_type  # a bow tie
    'MultiPolygon'
    """
    if geometry.is_valid:
        return geometry
    for polygon in shapely.get_parts(geometry):
        for ring in (polygon.exterior, *polygon.interiors):
            check_ring([(x, y) for x, y in shapely.get_coordinates(ring).tolist()])
    fixed = shapely.make_valid(geometry)
    if fixed.geom_type in ("Polygon", "MultiPolygon"):
        return fixed
    polygons = []
    for part in shapely.get_parts(fixed):
        if part.geom_type == "Polygon":
            polygons.append(part)
        elif part.geom_type == "MultiPolygon":
            polygons.extend(part.geoms)
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def shape_fields(geometry: Any) -> tuple[float, float, bytes, tuple[float, float, float, float]]:
    """What a table stores of a shape: a point on its surface, its WKB and its bounds."""
    point = geometry.representative_point()
    return point.x, point.y, bytes(shapely.to_wkb(geometry)), tuple(geometry.bounds)


def geojson(shape: bytes) -> bytes:
    """A stored shape as a GeoJSON geometry object."""
    return str(shapely.to_geojson(shapely.from_wkb(shape))).encode()
