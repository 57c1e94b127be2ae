"""Compile the predicate tree, areas and keyset cursors to PostgreSQL SQL with bound parameters.

The PostgreSQL twin of :mod:`crimemap.store.sqlite_predicates`, and it must
answer every query the same way:

- strings compare and sort byte-wise (``COLLATE "C"``, SQLite's ``BINARY``), and
  ``CONTAINS`` lower-cases ASCII only, as SQLite's ``lower()`` does;
- NULLs sort first ascending and last descending (``NULLS FIRST``/``NULLS LAST``);
- a circle is the exact great-circle distance with :data:`crimemap.geo.EARTH_RADIUS_M`
  (``cm_distance``, the same haversine as :func:`crimemap.geo.haversine_m`) after an
  index-friendly bounding-box test; PostGIS's own sphere has a slightly different
  radius, so ``ST_DWithin`` would disagree at the edge;
- a polygon is the same shapely polygon (made valid when it crosses itself) sent
  as WKB to ``ST_Intersects``.

User text never becomes SQL: column names map to expressions the store wrote,
operators come from a closed set, and every value is a ``%s`` parameter. No
``%`` appears in generated SQL other than placeholders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import shapely

from crimemap import geo
from crimemap.query import (
    And,
    Area,
    Circle,
    Compare,
    Contains,
    In,
    IsNull,
    Like,
    Not,
    Or,
    OrderKey,
    Predicate,
    Scalar,
    Within,
)
from crimemap.store.sqlite_predicates import polygon_of

_OPS = {"=": "=", "<>": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}

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
"""The great-circle distance in metres, term for term :func:`crimemap.geo.haversine_m`.

NULL in, NULL out (``least`` alone would turn a NULL into 1). A plain SQL
function, not STRICT, so the planner inlines it into each query.
"""


@dataclass(frozen=True)
class PgColumn:
    """How one logical column reads in SQL (see :class:`~crimemap.store.sqlite_predicates.SqlColumn`).

    ``expr`` renders the user-visible value (string expressions carry ``COLLATE "C"``);
    ``physical``/``encode`` let comparisons run on the stored, indexed value;
    ``value`` converts a literal to the column's SQL type (booleans stay booleans).
    """

    expr: str
    physical: str | None = None
    encode: Callable[[Any], Any] | None = None
    order_preserving: bool = False
    value: Callable[[Any], Any] | None = None


def text(expr: str) -> str:
    """``expr`` compared and sorted byte-wise, as SQLite does."""
    return f'({expr} COLLATE "C")'


def _encoded(col: PgColumn, value: Any) -> tuple[str, Any] | None:
    if col.physical is None or col.encode is None:
        return None
    try:
        stored = col.encode(value)
    except (ValueError, KeyError, TypeError):
        return None
    return None if stored is None else (col.physical, stored)


def _param(col: PgColumn, value: Any) -> Any:
    return col.value(value) if col.value is not None else value


def compile_predicate(pred: Predicate, columns: Mapping[str, PgColumn], params: list[Any]) -> str:
    """SQL text for ``pred``; appends its values to ``params``."""
    if isinstance(pred, Compare):
        col = columns[pred.column]
        enc = _encoded(col, pred.value)
        if enc is not None and (pred.op in ("=", "<>") or col.order_preserving):
            params.append(enc[1])
            return f"{enc[0]} {_OPS[pred.op]} %s"
        params.append(_param(col, pred.value))
        return f"{col.expr} {_OPS[pred.op]} %s"
    if isinstance(pred, Contains):
        params.append(pred.text.lower())
        return f"strpos(lower({columns[pred.column].expr}), %s) > 0"
    if isinstance(pred, Like):
        # PostgreSQL's LIKE has CQL2's wildcards and escape; a lone final backslash becomes literal.
        trailing = len(pred.pattern) - len(pred.pattern.rstrip("\\"))
        params.append(pred.pattern + "\\" * (trailing % 2))
        return f"{columns[pred.column].expr} LIKE %s"
    if isinstance(pred, In):
        col = columns[pred.column]
        if not pred.values:
            return "FALSE"
        encoded = [_encoded(col, v) for v in pred.values]
        if all(e is not None for e in encoded):
            params.extend(e[1] for e in encoded if e is not None)
            return f"{col.physical} IN ({','.join(['%s'] * len(encoded))})"
        params.extend(_param(col, v) for v in pred.values)
        return f"{col.expr} IN ({','.join(['%s'] * len(pred.values))})"
    if isinstance(pred, IsNull):
        return f"{columns[pred.column].expr} IS NULL"
    if isinstance(pred, Not):
        return f"NOT ({compile_predicate(pred.operand, columns, params)})"
    if isinstance(pred, And):
        return "(" + " AND ".join(compile_predicate(p, columns, params) for p in pred.operands) + ")"
    if isinstance(pred, Or):
        return "(" + " OR ".join(compile_predicate(p, columns, params) for p in pred.operands) + ")"
    if isinstance(pred, Within):
        return compile_area(pred.area, params)
    raise TypeError(f"not a predicate: {pred!r}")


def compile_area(area: Area, params: list[Any], alias: str = "") -> str:
    """The GiST-indexed bounding-box test on ``geom``, then the exact one."""
    p = f"{alias}." if alias else ""
    if isinstance(area, Circle):
        lng, lat = float(area.center[0]), float(area.center[1])
        params.extend([*geo.circle_bbox(lng, lat, area.radius_m), lng, lat, float(area.radius_m)])
        return f"({p}geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326) AND cm_distance({p}lng, {p}lat, %s, %s) <= %s)"
    poly = polygon_of(area.ring)
    params.extend([*poly.bounds, shapely.to_wkb(poly)])
    return (
        f"({p}geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
        f" AND ST_Intersects({p}geom, ST_SetSRID(ST_GeomFromWKB(%s), 4326)))"
    )


# -- keyset pagination -----------------------------------------------------------------


def order_clause(order: tuple[OrderKey, ...], columns: Mapping[str, PgColumn], key: str) -> str:
    """``ORDER BY`` the sort keys then the row key, NULLs where SQLite puts them."""
    parts = [f"{columns[k.column].expr} {'DESC NULLS LAST' if k.descending else 'ASC NULLS FIRST'}" for k in order]
    return "ORDER BY " + ", ".join([*parts, f"{key} ASC"])


def keyset_condition(
    order: tuple[OrderKey, ...],
    columns: Mapping[str, PgColumn],
    key: str,
    after: tuple[Scalar, ...],
    params: list[Any],
) -> str:
    """Rows strictly after the cursor in :func:`order_clause` order, NULLs included."""
    exprs: list[tuple[str, bool, PgColumn | None]] = [
        (columns[k.column].expr, k.descending, columns[k.column]) for k in order
    ]
    exprs.append((key, False, None))
    if len(after) != len(exprs):
        raise ValueError("page token does not fit this query")

    def bind(col: PgColumn | None, value: Scalar) -> None:
        params.append(_param(col, value) if col is not None else value)

    alternatives = []
    for i, (expr, desc, col) in enumerate(exprs):
        if after[i] is None and desc:
            continue  # NULLs sort last descending: nothing follows a NULL here but what ties on it
        terms = []
        for j in range(i):
            prev_expr, value = exprs[j][0], after[j]
            if value is None:
                terms.append(f"{prev_expr} IS NULL")
            else:
                bind(exprs[j][2], value)
                terms.append(f"{prev_expr} = %s")
        value = after[i]
        if value is None:
            terms.append(f"{expr} IS NOT NULL")
        elif desc:
            bind(col, value)
            terms.append(f"({expr} < %s OR {expr} IS NULL)")
        else:
            bind(col, value)
            terms.append(f"{expr} > %s")
        alternatives.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(alternatives) + ")" if alternatives else "FALSE"
