"""Compile the predicate tree and keyset cursors to SQLite SQL with bound parameters.

User text never becomes SQL here: column names are looked up in a mapping the
store builds from the table's schema (to physical names like ``c3``), operators
come from a closed set, and every value is a ``?`` parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import shapely
from shapely.geometry import Polygon as ShapelyPolygon

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

_OPS = {"=": "=", "<>": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}


@dataclass(frozen=True)
class SqlColumn:
    """How one logical column reads in SQL.

    ``expr`` renders the column's user-visible value. ``physical`` and
    ``encode``, when given, let comparisons run on the stored value instead
    (an integer code or month), which is what the indexes hold: ``encode``
    returns ``None`` when a literal has no stored equivalent.
    """

    expr: str
    physical: str | None = None
    encode: Callable[[Any], Any] | None = None
    order_preserving: bool = False


def _encoded(col: SqlColumn, value: Any) -> tuple[str, Any] | None:
    if col.physical is None or col.encode is None:
        return None
    try:
        stored = col.encode(value)
    except (ValueError, KeyError, TypeError):
        return None
    return None if stored is None else (col.physical, stored)


def _sql_value(value: Scalar) -> Any:
    return int(value) if isinstance(value, bool) else value


def compile_predicate(pred: Predicate, columns: Mapping[str, SqlColumn], params: list[Any]) -> str:
    """SQL text for ``pred``; appends its values to ``params``."""
    if isinstance(pred, Compare):
        col = columns[pred.column]
        enc = _encoded(col, pred.value)
        if enc is not None and (pred.op in ("=", "<>") or col.order_preserving):
            params.append(enc[1])
            return f"{enc[0]} {_OPS[pred.op]} ?"
        params.append(_sql_value(pred.value))
        return f"{col.expr} {_OPS[pred.op]} ?"
    if isinstance(pred, Contains):
        params.append(pred.text.lower())
        return f"instr(lower({columns[pred.column].expr}), ?) > 0"
    if isinstance(pred, Like):
        params.append(like_to_glob(pred.pattern))
        return f"{columns[pred.column].expr} GLOB ?"
    if isinstance(pred, In):
        col = columns[pred.column]
        if not pred.values:
            return "0"
        encoded = [_encoded(col, v) for v in pred.values]
        if all(e is not None for e in encoded):
            params.extend(e[1] for e in encoded if e is not None)
            return f"{col.physical} IN ({','.join('?' * len(encoded))})"
        params.extend(_sql_value(v) for v in pred.values)
        return f"{col.expr} IN ({','.join('?' * len(pred.values))})"
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


def compile_area(area: Area, params: list[Any]) -> str:
    """A bounding-box test (cheap, index-friendly) and then the exact one."""
    if isinstance(area, Circle):
        lng, lat = area.center
        min_lng, min_lat, max_lng, max_lat = geo.circle_bbox(lng, lat, area.radius_m)
        params.extend([min_lng, max_lng, min_lat, max_lat, lng, lat, area.radius_m])
        return "(lng BETWEEN ? AND ? AND lat BETWEEN ? AND ? AND cm_distance(lng, lat, ?, ?) <= ?)"
    min_lng, min_lat, max_lng, max_lat = polygon_of(area.ring).bounds
    params.extend([min_lng, max_lng, min_lat, max_lat, polygon_key(area.ring)])
    return "(lng BETWEEN ? AND ? AND lat BETWEEN ? AND ? AND cm_in_polygon(lng, lat, ?))"


# -- SQL functions the compiled predicates call ----------------------------------------


def polygon_key(ring: tuple[tuple[float, float], ...]) -> str:
    """A text key for a ring, passed as a bound parameter to ``cm_in_polygon``."""
    return ";".join(f"{x!r},{y!r}" for x, y in ring)


@lru_cache(maxsize=256)
def _prepared(key: str) -> ShapelyPolygon:
    ring = [tuple(float(v) for v in p.split(",")) for p in key.split(";")]
    poly = ShapelyPolygon(ring)
    if not poly.is_valid:
        poly = shapely.make_valid(poly)
    shapely.prepare(poly)
    return poly


def polygon_of(ring: tuple[tuple[float, float], ...]) -> ShapelyPolygon:
    """The prepared shapely polygon of a ring, made valid if it crosses itself."""
    return _prepared(polygon_key(ring))


def sql_in_polygon(lng: float | None, lat: float | None, key: str) -> int | None:
    if lng is None or lat is None:
        return None
    return int(shapely.intersects_xy(_prepared(key), lng, lat))


def sql_distance(lng: float | None, lat: float | None, clng: float, clat: float) -> float | None:
    if lng is None or lat is None:
        return None
    return geo.haversine_m(lng, lat, clng, clat)


def register_functions(conn: Any) -> None:
    conn.create_function("cm_in_polygon", 3, sql_in_polygon, deterministic=True)
    conn.create_function("cm_distance", 4, sql_distance, deterministic=True)


# -- keyset pagination -----------------------------------------------------------------


def order_clause(order: tuple[OrderKey, ...], columns: Mapping[str, SqlColumn], key: str) -> str:
    """``ORDER BY`` for the sort keys then the row key; SQLite puts NULLs first ascending."""
    parts = [f"{columns[k.column].expr} {'DESC' if k.descending else 'ASC'}" for k in order]
    return "ORDER BY " + ", ".join([*parts, f"{key} ASC"])


def keyset_condition(
    order: tuple[OrderKey, ...],
    columns: Mapping[str, SqlColumn],
    key: str,
    after: tuple[Scalar, ...],
    params: list[Any],
) -> str:
    """Rows strictly after the cursor in :func:`order_clause` order, NULLs included."""
    exprs = [(columns[k.column].expr, k.descending) for k in order] + [(key, False)]
    if len(after) != len(exprs):
        raise ValueError("page token does not fit this query")
    alternatives = []
    for i, (expr, desc) in enumerate(exprs):
        if after[i] is None and desc:
            continue  # NULLs sort last descending: nothing follows a NULL here but what ties on it
        terms = []
        for j in range(i):
            prev_expr, value = exprs[j][0], after[j]
            if value is None:
                terms.append(f"{prev_expr} IS NULL")
            else:
                params.append(_sql_value(value))
                terms.append(f"{prev_expr} = ?")
        value = after[i]
        if value is None:
            # NULLs sort first ascending (so any value follows) and last descending.
            if desc:
                continue
            terms.append(f"{expr} IS NOT NULL")
        elif desc:
            params.append(_sql_value(value))
            terms.append(f"({expr} < ? OR {expr} IS NULL)")
        else:
            params.append(_sql_value(value))
            terms.append(f"{expr} > ?")
        alternatives.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(alternatives) + ")" if alternatives else "0"
