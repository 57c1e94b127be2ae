"""How the embedded store spells what the compiler (:mod:`crimemap.store.compiler`) leaves to a dialect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crimemap import geo
from crimemap.geometry import areas, shapes
from crimemap.geometry.areas import rectangle
from crimemap.query import Area, Circle
from crimemap.store.columnar import CrimeValues, Lookup
from crimemap.store.compiler import Dialect, Geometry
from crimemap.store.compiler import circle_sql as compiler_circle_sql
from crimemap.store.geojson_sql import JsonDialect, sql_literal


def circle_sql(circle: Circle, geometry: Geometry, params: list[Any]) -> str:
    """The exact circle test (:func:`crimemap.store.compiler.circle_sql`) with this engine's placeholder."""
    return compiler_circle_sql(circle, geometry, params, "?")


def shape_sql(area: Area, geometry: Geometry, params: list[Any]) -> str:
    """Whether a stored shape intersects the area: its box first, then GEOS (:mod:`crimemap.geometry.shapes`)."""
    shape = geometry.shape
    west, south, east, north = shapes.area_geometry(area).bounds
    params.extend([west, east, south, north, shapes.area_wkb(area)])
    return (
        f"({shape}_east >= ? AND {shape}_west <= ? AND {shape}_north >= ? AND {shape}_south <= ?"
        f" AND cm_intersects({shape}, ?))"
    )


def area_sql(area: Area, geometry: Geometry, params: list[Any]) -> str:
    """A bounding-box test, then the exact one (see :mod:`crimemap.geometry.areas`)."""
    if geometry.shape is not None:
        return shape_sql(area, geometry, params)
    lng, lat = geometry.lng, geometry.lat
    if isinstance(area, Circle):
        min_lng, min_lat, max_lng, max_lat = geo.circle_bbox(area.center[0], area.center[1], area.radius_m)
        if min_lng < -180 or max_lng > 180:  # across the antimeridian: no box
            return circle_sql(area, geometry, params)
        params.extend([min_lng, max_lng, min_lat, max_lat])
        return f"({lng} BETWEEN ? AND ? AND {lat} BETWEEN ? AND ? AND {circle_sql(area, geometry, params)})"
    box = rectangle(area.ring)
    if box is not None:
        params.extend([box[0], box[2], box[1], box[3]])
        return f"({lng} BETWEEN ? AND ? AND {lat} BETWEEN ? AND ?)"
    min_lng, min_lat, max_lng, max_lat = areas.polygon_of(area.ring).bounds
    params.extend([min_lng, max_lng, min_lat, max_lat, areas.polygon_key(area.ring)])
    return f"({lng} BETWEEN ? AND ? AND {lat} BETWEEN ? AND ? AND cm_in_polygon({lng}, {lat}, ?))"


def contains_sql(expr: str, text: str, params: list[Any]) -> str:
    """Case-insensitive substring, for all of Unicode.

    SQLite's ``lower`` knows ASCII only; Python's knows everything. Text that is
    all ASCII is lower-cased by SQLite (the same answer, fast); other text goes
    through ``cm_lower``, Python's.
    """
    params.extend([text, text])
    return f"(CASE WHEN {expr} GLOB '*[^ -~]*' THEN instr(cm_lower({expr}), ?) ELSE instr(lower({expr}), ?) END > 0)"


def number_sql(expr: str, op: str, value: int | float, params: list[Any]) -> str:
    """A text column's value as a number (``cm_number``: NULL unless it is :data:`~crimemap.query.NUMBER_TEXT`)."""
    params.append(value)
    return f"cm_number({expr}) {op} ?"


def like_to_glob(pattern: str) -> str:
    """A CQL2 LIKE pattern as a SQLite ``GLOB`` pattern, which is case-sensitive as LIKE must be.

    >>> like_to_glob(r"On or near %St_ 100\\% [x]*")
    'On or near *St? 100% [[]x][*]'
    """
    out, chars = [], iter(pattern)
    for c in chars:
        if c == "\\":
            c = next(chars, "\\")
            out.append(f"[{c}]" if c in "*?[" else c)
        elif c == "%":
            out.append("*")
        elif c == "_":
            out.append("?")
        else:
            out.append(f"[{c}]" if c in "*?[" else c)
    return "".join(out)


def like_sql(expr: str, pattern: str, params: list[Any]) -> str:
    params.append(like_to_glob(pattern))
    return f"{expr} GLOB ?"


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    true="1",
    false="0",
    area=area_sql,
    contains=contains_sql,
    like=like_sql,
    number=number_sql,
    nulls_sort_first=True,
)


_PID_MARK = 'CAST(\',"persistent_id":"\' AS BLOB)'

CRIME_VALUES = CrimeValues(
    source="crimes",
    order="crimes.month, crimes.cell, crimes.id",
    values={
        "id": "crimes.id",
        "lng": "crimes.lng",
        "lat": "crimes.lat",
        # pid_text's cut, on bytes: instr and substr on text count characters, which costs twice as much.
        "pid": (
            "CASE WHEN crimes.pid_key IS NULL THEN '' ELSE CAST(substr(CAST(crimes.json AS BLOB),"
            f" instr(CAST(crimes.json AS BLOB), {_PID_MARK}) + 18, 64) AS TEXT) END"
        ),
        "month": "crimes.month",
        "force": "crimes.force",
        "falls_within": "crimes.falls_within",
        "street": Lookup("crimes.street_id", "SELECT id, name FROM streets", own="crimes.street_name", default=""),
        "lsoa_code": Lookup("crimes.lsoa", "SELECT code, lsoa_code FROM lsoas", default=""),
        "lsoa_name": Lookup("crimes.lsoa", "SELECT code, lsoa_name FROM lsoas", default=""),
        "category": "crimes.category",
        "outcome_name": Lookup("crimes.outcome", "SELECT code, name FROM outcome_kinds"),
        "outcome_month": "crimes.outcome_month",
        "context": "crimes.context",
        "location_subtype": "crimes.location_subtype",
        "street_id": "crimes.street_id",
    },
)
"""The crimes' stored values for a columnar read (:mod:`crimemap.store.columnar`): codes, and the
names of the LSOA, map point and outcome looked up a batch at a time (a join measured half the read)."""

# -- GeoJSON written by the engine (crimemap.store.geojson_sql) ------------------------------------------------

_DOUBLE = "printf('%!.15g', {x})"


def _double(x: str) -> str:
    """A REAL as orjson writes it: SQLite's ``printf('%!.15g')`` where that is orjson's text, else Python's.

    Within ``1e-4 <= |x| < 1e15`` both write decimals (``1.0`` for a whole
    number), and 15 digits that read back as the same double are its shortest
    form, which is what orjson writes. Longer doubles (SQLite's 16 and 17 digits
    round ties otherwise than orjson, measured) and those outside that range go
    through ``cm_json_number``, orjson itself.
    """
    double = _DOUBLE.format(x=x)
    return (
        f"CASE WHEN abs({x}) >= 1e-4 AND abs({x}) < 1e15 AND CAST({double} AS REAL) = {x}"
        f" THEN {double} ELSE cm_json_number({x}) END"
    )


def json_value(expr: str) -> str:
    """Any stored value as orjson writes what Python reads of it (SQLite's columns hold any type).

    ``json_quote`` escapes strings as orjson does (``\\u00XX`` in lower case, the
    short escapes, nothing else); doubles as :func:`_double` says. A blob is
    NULL: not written here.
    """
    x = expr
    return (
        f"CASE typeof({x}) WHEN 'null' THEN 'null' WHEN 'integer' THEN CAST({x} AS TEXT)"
        f" WHEN 'text' THEN json_quote({x}) WHEN 'real' THEN {_double(x)} END"
    )


def json_double(expr: str) -> str:
    """A REAL column's value (or NULL) as orjson writes it (see :func:`_double`)."""
    x = expr
    return f"CASE WHEN {x} IS NULL THEN 'null' WHEN typeof({x}) = 'real' THEN {_double(x)} ELSE {json_value(x)} END"


def json_boolean(expr: str) -> str:
    """A boolean kept as 0 or 1 as ``false``/``true`` (``null``), as :meth:`Store.feature_columns` reads it."""
    flag = f"CASE WHEN {expr} THEN 'true' ELSE 'false' END"
    return f"CASE typeof({expr}) WHEN 'null' THEN 'null' WHEN 'integer' THEN {flag} END"


def json_lookup(code: str, texts: Sequence[str]) -> str:
    """The ready JSON text at index ``code`` of our own vocabulary (NULL past its end)."""
    whens = " ".join(f"WHEN {i} THEN {sql_literal(t)}" for i, t in enumerate(texts))
    return f"CASE {code} {whens} END"


def json_concat(parts: list[str]) -> str:
    """The parts joined by one ``printf``, which writes into one buffer (each ``||`` copies what came before)."""
    marked = [p if p == "?" else f"coalesce({p}, char(1))" for p in parts]
    while len(marked) > _MAX_ARGUMENTS:  # SQLite takes at most 127 (SQLITE_MAX_FUNCTION_ARG)
        marked = [_printf(marked[i : i + _MAX_ARGUMENTS]) for i in range(0, len(marked), _MAX_ARGUMENTS)]
    return _printf(marked)


_MAX_ARGUMENTS = 100


def _printf(parts: list[str]) -> str:
    return "printf('" + "%s" * len(parts) + "', " + ", ".join(parts) + ")"


SQLITE_JSON = JsonDialect(
    placeholder="?",
    concat=json_concat,
    integer=json_value,
    double=json_double,
    string=json_value,
    boolean=json_boolean,
    lookup=json_lookup,
)
