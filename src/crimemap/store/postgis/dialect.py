"""How the PostGIS store spells what the compiler (:mod:`crimemap.store.compiler`) leaves to a dialect.

It must answer every query as the embedded store does:

- strings compare and sort byte-wise (``COLLATE "C"``, SQLite's ``BINARY``);
- NULLs sort first ascending and last descending (``NULLS FIRST``/``NULLS LAST``);
- a circle is the same dot product of unit vectors against the cosine of the
  angular radius (:mod:`crimemap.store.areas`), computed with the same C library
  functions in the same order, after the GiST-indexed bounding-box test;
  PostGIS's own sphere has another radius, so ``ST_DWithin`` would disagree at
  the edge;
- a polygon is the same shapely polygon (made valid when it crosses itself),
  sent as WKB to ``ST_Intersects``.

User text never becomes SQL: every value is a ``%s`` parameter, and no ``%``
appears in generated SQL other than placeholders.
"""

from __future__ import annotations

from typing import Any

import shapely

from crimemap import geo
from crimemap.query import NUMBER_TEXT, Area, Circle
from crimemap.store import areas, shapes
from crimemap.store.compiler import Dialect, Geometry, SqlColumn

DISTANCE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION cm_distance(lng1 double precision, lat1 double precision,
                                       lng2 double precision, lat2 double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN lng1 IS NULL OR lat1 IS NULL OR lng2 IS NULL OR lat2 IS NULL THEN NULL
    ELSE 2 * {geo.EARTH_RADIUS_M!r} * asin(least(1.0::double precision, sqrt(
        power(sin((radians(lat2) - radians(lat1)) / 2), 2)
        + cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians(lng2 - lng1) / 2), 2)))) END
$$
"""
"""The great-circle distance in metres, term for term :func:`crimemap.geo.haversine_m` (nearest map point).

NULL in, NULL out (``least`` alone would turn a NULL into 1). A plain SQL
function, not STRICT, so the planner inlines it into each query.
"""


def text(expr: str) -> str:
    """``expr`` compared and sorted byte-wise, as SQLite does."""
    return f'({expr} COLLATE "C")'


def circle_sql(circle: Circle, geometry: Geometry, params: list[Any]) -> str:
    """The exact circle test, as :func:`crimemap.store.sqlite.dialect.circle_sql` writes it."""
    lng, lat = geometry.lng, geometry.lat
    params.extend(areas.circle_test(circle))
    return (
        f"(cos(radians({lat})) * cos(radians({lng})) * %s + cos(radians({lat})) * sin(radians({lng})) * %s"
        f" + sin(radians({lat})) * %s >= %s)"
    )


def area_sql(area: Area, geometry: Geometry, params: list[Any]) -> str:
    """The GiST-indexed bounding-box test on ``geom``, then the exact one."""
    if geometry.shape is not None:  # polygons (crimemap.store.shapes): GEOS decides, as shapely does
        shape = shapes.area_geometry(area)
        params.extend([*shape.bounds, shapes.area_wkb(area)])
        return (
            f"({geometry.shape} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
            f" AND ST_Intersects({geometry.shape}, ST_SetSRID(ST_GeomFromWKB(%s), 4326)))"
        )
    geom = geometry.geom or "geom"
    if isinstance(area, Circle):
        lng, lat = float(area.center[0]), float(area.center[1])
        params.extend(geo.circle_bbox(lng, lat, area.radius_m))
        return f"({geom} && ST_MakeEnvelope(%s, %s, %s, %s, 4326) AND {circle_sql(area, geometry, params)})"
    poly = areas.polygon_of(area.ring)
    params.extend([*poly.bounds, shapely.to_wkb(poly)])
    return (
        f"({geom} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
        f" AND ST_Intersects({geom}, ST_SetSRID(ST_GeomFromWKB(%s), 4326)))"
    )


UNICODE_COLLATION = "und-x-icu"
"""ICU's root locale, which PostgreSQL creates when built with ICU (Debian's is). ``lower`` under the
``"C"`` collation of string columns knows ASCII only; under this one it lower-cases all of Unicode, as
Python's ``str.lower`` does for the embedded store (``"CAFÉ"`` -> ``"café"``)."""


def contains_sql(expr: str, text_: str, params: list[Any]) -> str:
    """Case-insensitive substring over all of Unicode, as the embedded store's."""
    params.append(text_)
    return f'strpos(lower({expr} COLLATE "{UNICODE_COLLATION}"), %s) > 0'


def number_sql(expr: str, op: str, value: int | float, params: list[Any]) -> str:
    """A text column's value as a number when it is :data:`~crimemap.query.NUMBER_TEXT` (``numeric``: exact)."""
    params.extend([f"^{NUMBER_TEXT}$", value])
    return f"(CASE WHEN {expr} ~ %s THEN CAST({expr} AS numeric) END) {op} CAST(%s AS numeric)"


POSTGIS = Dialect(
    name="postgis",
    placeholder="%s",
    true="TRUE",
    false="FALSE",
    area=area_sql,
    contains=contains_sql,
    number=number_sql,
    nulls_sort_first=False,
    text_value=lambda v: v,
)

PgColumn = SqlColumn
"""Columns read the same way in both stores (string expressions carry ``COLLATE "C"``)."""
