"""How the embedded store spells what the compiler (:mod:`crimemap.store.compiler`) leaves to a dialect."""

from __future__ import annotations

from typing import Any

from crimemap import geo
from crimemap.geometry import areas, shapes
from crimemap.geometry.areas import rectangle
from crimemap.query import Area, Circle
from crimemap.store.columnar import CrimeValues, Lookup
from crimemap.store.compiler import Dialect, Geometry
from crimemap.store.compiler import circle_sql as compiler_circle_sql


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
