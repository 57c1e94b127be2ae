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
from functools import lru_cache
from typing import Any

import shapely

from crimemap import geo
from crimemap.query import Area, Circle
from crimemap.store import areas

CIRCLE_POINTS = 128
"""Vertices of the polygon that stands for a circle when shapes are tested against it."""


def destination(lng: float, lat: float, distance_m: float, bearing_deg: float) -> tuple[float, float]:
    """The point ``distance_m`` metres from ``(lng, lat)`` along a great circle at ``bearing_deg``."""
    d = distance_m / geo.EARTH_RADIUS_M
    phi, lam, theta = math.radians(lat), math.radians(lng), math.radians(bearing_deg)
    phi2 = math.asin(math.sin(phi) * math.cos(d) + math.cos(phi) * math.sin(d) * math.cos(theta))
    lam2 = lam + math.atan2(math.sin(theta) * math.sin(d) * math.cos(phi), math.cos(d) - math.sin(phi) * math.sin(phi2))
    return math.degrees(lam2), math.degrees(phi2)


@lru_cache(maxsize=256)
def _area_geometry(area: Area) -> Any:
    if isinstance(area, Circle):
        lng, lat = area.center
        ring = [destination(lng, lat, area.radius_m, 360.0 * i / CIRCLE_POINTS) for i in range(CIRCLE_POINTS)]
        return shapely.Polygon(ring)
    return areas.polygon_of(area.ring)


def area_geometry(area: Area) -> Any:
    """The shapely polygon a shape is tested against for ``area`` (see the module docstring)."""
    return _area_geometry(area)


def area_wkb(area: Area) -> bytes:
    return bytes(shapely.to_wkb(area_geometry(area)))


@lru_cache(maxsize=64)
def _prepared_wkb(wkb: bytes) -> Any:
    geometry = shapely.from_wkb(wkb)
    shapely.prepare(geometry)
    return geometry


def intersects(shape: bytes | None, area: bytes | None) -> int | None:
    """Whether two WKB geometries intersect (SQLite's ``cm_intersects``); NULL in, NULL out."""
    if shape is None or area is None:
        return None
    return int(shapely.intersects(_prepared_wkb(bytes(area)), _prepared_wkb(bytes(shape))))


def shape_fields(geometry: Any) -> tuple[float, float, bytes, tuple[float, float, float, float]]:
    """What a table stores of a shape: a point on its surface, its WKB and its bounds."""
    point = geometry.representative_point()
    return point.x, point.y, bytes(shapely.to_wkb(geometry)), tuple(geometry.bounds)


def geojson(shape: bytes) -> bytes:
    """A stored shape as a GeoJSON geometry object."""
    return str(shapely.to_geojson(shapely.from_wkb(shape))).encode()
