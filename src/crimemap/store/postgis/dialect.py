"""How the PostGIS store spells what the compiler (:mod:`crimemap.store.compiler`) leaves to a dialect,
and the exact area tests its own reads use.

It must answer every query as the embedded store does:

- strings compare and sort byte-wise (``COLLATE "C"``, SQLite's ``BINARY``);
- NULLs sort first ascending and last descending (``NULLS FIRST``/``NULLS LAST``);
- a circle is the same dot product of unit vectors against the cosine of the
  angular radius (:mod:`crimemap.geometry.areas`): on the stored ``x, y, z`` where
  a table keeps them (the crimes), else computed from ``lng``/``lat`` with the
  same C library functions in the same order as
  :func:`crimemap.store.compiler.circle_sql`. PostGIS's own sphere has
  another radius, so ``ST_DWithin`` would disagree at the edge;
- a rectangle is two ``BETWEEN``\\ s; any other polygon is the same shapely
  polygon (made valid when it crosses itself), sent as WKB to ``ST_Intersects``
  (a point on the boundary is inside, as for shapely's ``intersects_xy``).

User text never becomes SQL: every value is a ``%s`` parameter, and no ``%``
appears in generated SQL other than placeholders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import shapely

from crimemap import geo
from crimemap.geometry import areas, shapes
from crimemap.geometry.areas import rectangle
from crimemap.query import NUMBER_TEXT, Area, Circle, Polygon
from crimemap.store.columnar import CrimeValues
from crimemap.store.compiler import Dialect, Geometry, SqlColumn
from crimemap.store.compiler import circle_sql as compiler_circle_sql
from crimemap.store.geojson_sql import JsonDialect, sql_literal


def text(expr: str) -> str:
    """``expr`` compared and sorted byte-wise, as SQLite does."""
    return f'({expr} COLLATE "C")'


def circle_sql(circle: Circle, geometry: Geometry, params: list[Any]) -> str:
    """The exact circle test (:func:`crimemap.store.compiler.circle_sql`) with this engine's placeholder."""
    return compiler_circle_sql(circle, geometry, params, "%s")


def polygon_sql(polygon: Polygon, geometry: Geometry, params: list[Any]) -> str:
    """The exact test of a polygon that is not a rectangle: ``ST_Intersects`` with its valid shapely form."""
    params.append(shapely.to_wkb(areas.polygon_of(polygon.ring)))
    point = geometry.geom or f"ST_SetSRID(ST_MakePoint({geometry.lng}, {geometry.lat}), 4326)"
    # A scalar subquery: the polygon is made once per statement, even under a prepared statement's generic plan.
    return f"ST_Intersects({point}, (SELECT ST_GeomFromWKB(%s, 4326)))"


def exact_sql(area: Area, geometry: Geometry, params: list[Any]) -> str:
    """The exact test of a point against an area, with no index in mind (the crimes' cell ranges narrow first)."""
    if isinstance(area, Circle):
        return circle_sql(area, geometry, params)
    box = rectangle(area.ring)
    if box is not None:
        params.extend([box[0], box[2], box[1], box[3]])
        return f"({geometry.lng} BETWEEN %s AND %s AND {geometry.lat} BETWEEN %s AND %s)"
    return polygon_sql(area, geometry, params)


def area_sql(area: Area, geometry: Geometry, params: list[Any]) -> str:
    """A bounding-box test an index can use, then the exact one.

    With a ``geom`` column (feature tables, map points) the box is a GiST-indexed
    ``&&``; without one (the crimes) it is ``BETWEEN`` on ``lng``/``lat``, as the
    embedded store writes it. A table of shapes (polygons, :mod:`crimemap.geometry.shapes`)
    asks GEOS whether each shape intersects the area, as shapely does.
    """
    if geometry.shape is not None:
        shape = shapes.area_geometry(area)
        params.extend([*shape.bounds, shapes.area_wkb(area)])
        return (
            f"({geometry.shape} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
            f" AND ST_Intersects({geometry.shape}, ST_SetSRID(ST_GeomFromWKB(%s), 4326)))"
        )
    if isinstance(area, Circle):
        min_lng, min_lat, max_lng, max_lat = geo.circle_bbox(area.center[0], area.center[1], area.radius_m)
    else:
        min_lng, min_lat, max_lng, max_lat = areas.polygon_of(area.ring).bounds
    if isinstance(area, Circle) and (min_lng < -180 or max_lng > 180):  # across the antimeridian: no box
        return circle_sql(area, geometry, params)
    if geometry.geom is not None:
        params.extend([min_lng, min_lat, max_lng, max_lat])
        box = f"{geometry.geom} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
    else:
        params.extend([min_lng, max_lng, min_lat, max_lat])
        box = f"{geometry.lng} BETWEEN %s AND %s AND {geometry.lat} BETWEEN %s AND %s"
    return f"({box} AND {exact_sql(area, geometry, params)})"


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


def like_sql(expr: str, pattern: str, params: list[Any]) -> str:
    """PostgreSQL's LIKE has CQL2's wildcards and escape; a lone final backslash becomes literal."""
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    params.append(pattern + "\\" * (trailing % 2))
    return f"{expr} LIKE %s"


POSTGIS = Dialect(
    name="postgis",
    placeholder="%s",
    true="TRUE",
    false="FALSE",
    area=area_sql,
    contains=contains_sql,
    like=like_sql,
    number=number_sql,
    nulls_sort_first=False,
    text_value=lambda v: v,
)

PgColumn = SqlColumn
"""Columns read the same way in both stores (string expressions carry ``COLLATE "C"``)."""


CRIME_VALUES = CrimeValues(
    source="crimes",
    order="month, cell, id",
    values={
        "id": "id",
        "lng": "lng",
        "lat": "lat",
        "pid": "coalesce(encode(pid, 'hex'), '')",
        "month": "month",
        "force": "force",
        "falls_within": "falls_within",
        "street": "street_name",
        "lsoa_code": "lsoa_code",
        "lsoa_name": "lsoa_name",
        "category": "category",
        "outcome_name": "(SELECT name FROM outcome_kinds WHERE code = crimes.outcome)",
        "outcome_month": "outcome_month",
        "context": "context",
        "location_subtype": "location_subtype",
        "street_id": "street_id",
    },
)
"""The crimes' stored values for a columnar read (:mod:`crimemap.store.columnar`): codes, and the
texts this store keeps on each crime (street, LSOA)."""

# -- GeoJSON written by the engine (crimemap.store.geojson_sql) ------------------------------------------------


def json_string(expr: str) -> str:
    """Text as JSON: ``to_json`` escapes as orjson does (short escapes, ``\\u00XX`` in lower case, no others).

    ``to_json`` costs about 1 us a call, so text with nothing to escape (nearly all)
    is only quoted; a regular expression, compiled once, finds the rest.
    """
    x = f"({expr})"
    return (
        f"CASE WHEN {x} IS NULL THEN 'null' WHEN {x} ~ '[\\x01-\\x1f\"\\\\]' THEN to_json({x})::text"
        f" ELSE '\"' || {x} || '\"' END"
    )


def json_integer(expr: str) -> str:
    return f"coalesce(({expr})::text, 'null')"


def json_double(expr: str) -> str:
    """A double as orjson writes it, from PostgreSQL's shortest exact digits.

    Within ``1e-4 <= |x| < 1e15`` both write the same decimals (orjson adds ``.0``
    to a whole number); zero is ``0.0`` or ``-0.0``; within ``1e-5 <= |x| < 1e-4``
    PostgreSQL writes ``1.2e-05`` where orjson writes ``0.000012``, so its digits
    are moved. Any other double (and text that would not read back as the same
    double, as under ``extra_float_digits`` below 1) is NULL: written by Python.
    """
    x = f"({expr})"
    small = (
        f"CASE WHEN {x} < 0 THEN '-' ELSE '' END || '0.0000' || replace(split_part(abs({x})::text, 'e', 1), '.', '')"
    )
    return (
        f"CASE WHEN {x} IS NULL THEN 'null' WHEN {x} = 0 THEN CASE WHEN {x}::text = '-0' THEN '-0.0' ELSE '0.0' END"
        f" WHEN {x}::text::float8 <> {x} THEN NULL"
        f" WHEN abs({x}) >= 1e-4 AND abs({x}) < 1e15"
        f" THEN CASE WHEN {x} = trunc({x}) THEN {x}::text || '.0' ELSE {x}::text END"
        f" WHEN abs({x}) >= 1e-5 AND abs({x}) < 1e-4 THEN {small} END"
    )


def json_boolean(expr: str) -> str:
    return f"CASE WHEN ({expr}) IS NULL THEN 'null' WHEN ({expr}) THEN 'true' ELSE 'false' END"


def json_lookup(code: str, texts: Sequence[str]) -> str:
    """The ready JSON text at index ``code`` of our own vocabulary (NULL past its end)."""
    return f"(ARRAY[{', '.join(sql_literal(t) for t in texts)}]::text[])[({code}) + 1]"


_MAX_ARGUMENTS = 100
"""PostgreSQL's limit on a function's arguments (``FUNC_MAX_ARGS``), ``concat``'s too."""


def json_concat(parts: list[str]) -> str:
    """The parts joined by ``concat`` (in groups of at most 100 arguments), a NULL part as ``chr(1)``."""
    marked = [p if p == "%s::text" else f"coalesce({p}, chr(1))" for p in parts]
    while len(marked) > _MAX_ARGUMENTS:
        marked = [f"concat({', '.join(marked[i : i + _MAX_ARGUMENTS])})" for i in range(0, len(marked), _MAX_ARGUMENTS)]
    return f"concat({', '.join(marked)})"


POSTGIS_JSON = JsonDialect(
    placeholder="%s::text",
    concat=json_concat,
    integer=json_integer,
    double=json_double,
    string=json_string,
    boolean=json_boolean,
    lookup=json_lookup,
)
