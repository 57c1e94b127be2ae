"""One compiler from query values to SQL, spoken in each store's dialect.

A predicate tree (:mod:`crimemap.query`), an order and a keyset cursor become a
``WHERE``/``ORDER BY`` text and a list of bound parameters. What differs between
SQLite and PostgreSQL is small and lives in a :class:`Dialect`: the placeholder,
the boolean literals, where NULLs sort, how ``CONTAINS`` and areas are written.
Everything else (which terms exist, how a cursor continues, how a literal is
turned into a stored code an index can use) is written once, here, so both
stores answer every query the same way.

User text never becomes SQL: column names are looked up in a mapping the store
builds from the table's schema, operators come from a closed set, and every
value is a bound parameter.

    >>> from crimemap.query import Compare
    >>> params = []
    >>> compile_predicate(Compare("n", ">", 3), {"n": SqlColumn("c0")}, params, SQLITE_TEXT)
    'c0 > ?'
    >>> params
    [3]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from crimemap.geometry import areas
from crimemap.query import (
    And,
    Area,
    Circle,
    Compare,
    CompareNumber,
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
    ``encode``, when given, let comparisons run on the stored value instead (an
    integer code or month), which is what the indexes hold: ``encode`` raises or
    returns ``None`` when a literal has no stored equivalent. ``value`` converts
    a literal to the column's SQL type (SQLite keeps booleans as 0 and 1).
    """

    expr: str
    physical: str | None = None
    encode: Callable[[Any], Any] | None = None
    order_preserving: bool = False
    value: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Geometry:
    """The columns a source keeps its points in, for area tests.

    ``unit``: the unit-vector columns ``(x, y, z)`` when the source keeps them
    (the crimes); ``geom``: a PostGIS point column with a spatial index;
    ``shape``: the column of a geometry that is not only a point (polygons,
    :mod:`crimemap.geometry.shapes`): area tests then ask whether it intersects.
    """

    lng: str = "lng"
    lat: str = "lat"
    unit: tuple[str, str, str] | None = None
    geom: str | None = None
    shape: str | None = None

    def qualified(self, alias: str) -> Geometry:
        p = f"{alias}." if alias else ""
        return Geometry(
            p + self.lng,
            p + self.lat,
            tuple(p + u for u in self.unit) if self.unit else None,  # type: ignore[arg-type]
            p + self.geom if self.geom else None,
            p + self.shape if self.shape else None,
        )


class AreaWriter(Protocol):
    def __call__(self, area: Area, geometry: Geometry, params: list[Any]) -> str: ...


@dataclass(frozen=True)
class Dialect:
    """What one SQL engine spells its own way (see the module docstring)."""

    name: str
    placeholder: str
    true: str
    false: str
    area: AreaWriter
    """SQL testing that a point lies in an area (appends its parameters)."""
    contains: Callable[[str, str, list[Any]], str]
    """``CONTAINS``: SQL testing that the column (first argument) holds the lower-cased text (second)."""
    like: Callable[[str, str, list[Any]], str] = field(default=lambda *_: _no_like())
    """:class:`~crimemap.query.Like`: SQL matching the column against a CQL2 pattern (case-sensitive, ``%``,
    ``_``, ``\\`` escapes)."""
    number: Callable[[str, str, int | float, list[Any]], str] = field(default=lambda *_: _no_number())
    """:class:`~crimemap.query.CompareNumber`: SQL comparing a text column's numeric value (``expr op value``)."""
    nulls_sort_first: bool = True
    """Whether ``ORDER BY x`` already puts NULLs first (SQLite) or needs ``NULLS FIRST`` (PostgreSQL)."""
    text_value: Callable[[Any], Any] = field(default=lambda v: int(v) if isinstance(v, bool) else v)
    """A literal with no column to convert it (SQLite's booleans are integers)."""

    def param(self, col: SqlColumn | None, value: Any) -> Any:
        if col is not None and col.value is not None:
            return col.value(value)
        return self.text_value(value)

    def order_term(self, expr: str, descending: bool) -> str:
        if self.nulls_sort_first:
            return f"{expr} {'DESC' if descending else 'ASC'}"
        return f"{expr} {'DESC NULLS LAST' if descending else 'ASC NULLS FIRST'}"


def _no_like() -> str:
    raise NotImplementedError("this dialect has no LIKE")


def _no_number() -> str:
    raise NotImplementedError("this dialect cannot read text as numbers")


def _unsupported_area(area: Area, geometry: Geometry, params: list[Any]) -> str:
    raise NotImplementedError("this dialect has no area test")


def _instr(expr: str, text: str, params: list[Any]) -> str:
    params.append(text)
    return f"instr(lower({expr}), ?) > 0"


SQLITE_TEXT = Dialect("sqlite (text only)", "?", "1", "0", _unsupported_area, _instr)
"""A dialect for examples and tests of the compiler alone; stores bring their own."""


def _encoded(col: SqlColumn, value: Any) -> tuple[str, Any] | None:
    if col.physical is None or col.encode is None:
        return None
    try:
        stored = col.encode(value)
    except (ValueError, KeyError, TypeError):
        return None
    return None if stored is None else (col.physical, stored)


def compile_predicate(
    pred: Predicate,
    columns: Mapping[str, SqlColumn],
    params: list[Any],
    dialect: Dialect,
    geometry: Geometry = Geometry(),
) -> str:
    """SQL text for ``pred``; appends its values to ``params``."""
    p = dialect.placeholder
    if isinstance(pred, Compare):
        col = columns[pred.column]
        enc = _encoded(col, pred.value)
        if enc is not None and (pred.op in ("=", "<>") or col.order_preserving):
            params.append(enc[1])
            return f"{enc[0]} {_OPS[pred.op]} {p}"
        params.append(dialect.param(col, pred.value))
        return f"{col.expr} {_OPS[pred.op]} {p}"
    if isinstance(pred, Like):
        return dialect.like(columns[pred.column].expr, pred.pattern, params)
    if isinstance(pred, CompareNumber):
        return dialect.number(columns[pred.column].expr, _OPS[pred.op], pred.value, params)
    if isinstance(pred, Contains):
        return dialect.contains(columns[pred.column].expr, pred.text.lower(), params)
    if isinstance(pred, In):
        col = columns[pred.column]
        if not pred.values:
            return dialect.false
        encoded = [_encoded(col, v) for v in pred.values]
        if all(e is not None for e in encoded):
            params.extend(e[1] for e in encoded if e is not None)
            return f"{col.physical} IN ({','.join([p] * len(encoded))})"
        params.extend(dialect.param(col, v) for v in pred.values)
        return f"{col.expr} IN ({','.join([p] * len(pred.values))})"
    if isinstance(pred, IsNull):
        return f"{columns[pred.column].expr} IS NULL"
    if isinstance(pred, Not):
        operand = pred.operand
        if isinstance(operand, Not):  # NOT NOT x is x: a chain of NOTs costs no depth
            return compile_predicate(operand.operand, columns, params, dialect, geometry)
        inner = compile_predicate(operand, columns, params, dialect, geometry)
        return f"NOT {inner}" if isinstance(operand, And | Or) else f"NOT ({inner})"
    if isinstance(pred, And | Or):
        operands = _flattened(pred) if isinstance(pred, And) else _equalities_as_lists(_flattened(pred))
        terms = [compile_predicate(o, columns, params, dialect, geometry) for o in operands]
        return _grouped(terms, " AND " if isinstance(pred, And) else " OR ")
    if isinstance(pred, Within):
        return dialect.area(pred.area, geometry, params)
    raise TypeError(f"not a predicate: {pred!r}")


_GROUP = 64
"""Terms of an AND or OR chain joined at one level; longer chains are grouped in parentheses of this many.

SQLite parses ``a OR b OR c ...`` into a tree as deep as the chain is long and refuses one deeper than 1,000
("Expression tree is too large"); grouped, 1,000 terms are a tree 80 deep, under one more parenthesis."""


def _flattened(pred: And | Or) -> list[Predicate]:
    """The operands of an AND (OR) chain, with those that are themselves ANDs (ORs) spliced in:
    ``(a AND (b AND c))`` is ``a AND b AND c``, one level of parentheses where it was two."""
    kind = type(pred)
    found: list[Predicate] = []
    stack = list(reversed(pred.operands))
    while stack:
        operand = stack.pop()
        if type(operand) is kind:
            stack.extend(reversed(operand.operands))
        else:
            found.append(operand)
    return found


def _equalities_as_lists(operands: list[Predicate]) -> list[Predicate]:
    """The operands of an OR chain, with its equalities on one column (and of one type) made one ``IN`` list,
    in the place of the first: ``a = 1 OR b = 2 OR a = 3`` is ``a IN (1, 3) OR b = 2``.

    The same rows, at the cost of one term: a column read through a lookup (the street name of a police.uk
    crime) is read once per row instead of once per term, and the list is searched, not scanned. 300 ORed
    names no street has ran past the 10 s budget on SQLite."""
    values: dict[tuple[str, type], list[int | float | str | bool]] = {}
    for operand in operands:
        if isinstance(operand, Compare) and operand.op == "=":
            values.setdefault((operand.column, type(operand.value)), []).append(operand.value)
    if all(len(found) < 2 for found in values.values()):
        return operands
    merged: list[Predicate] = []
    for operand in operands:
        if not (isinstance(operand, Compare) and operand.op == "="):
            merged.append(operand)
            continue
        found = values.pop((operand.column, type(operand.value)), None)
        if found is not None:
            merged.append(In(operand.column, tuple(found)) if len(found) > 1 else operand)
    return merged


def _grouped(terms: list[str], joiner: str) -> str:
    """``terms`` joined in parentheses, in nested groups of at most :data:`_GROUP`."""
    while len(terms) > _GROUP:
        terms = ["(" + joiner.join(terms[i : i + _GROUP]) + ")" for i in range(0, len(terms), _GROUP)]
    return "(" + joiner.join(terms) + ")"


# -- order and keyset pages ---------------------------------------------------------------------


def order_clause(order: tuple[OrderKey, ...], columns: Mapping[str, SqlColumn], key: str, dialect: Dialect) -> str:
    """``ORDER BY`` the sort keys then the row key; NULLs first ascending and last descending."""
    parts = [dialect.order_term(columns[k.column].expr, k.descending) for k in order]
    return "ORDER BY " + ", ".join([*parts, f"{key} ASC"])


def keyset_condition(
    order: tuple[OrderKey, ...],
    columns: Mapping[str, SqlColumn],
    key: str,
    after: tuple[Scalar, ...],
    params: list[Any],
    dialect: Dialect,
) -> str:
    """Rows strictly after the cursor in :func:`order_clause` order, NULLs included.

    ``after`` holds the last row's sort-key values then its key; a NULL sorts
    first ascending (anything follows it) and last descending (only ties follow).
    """
    exprs: list[tuple[str, bool, SqlColumn | None]] = [
        (columns[k.column].expr, k.descending, columns[k.column]) for k in order
    ]
    exprs.append((key, False, None))
    if len(after) != len(exprs):
        raise ValueError("page token does not fit this query")
    p = dialect.placeholder
    alternatives = []
    for i, (expr, desc, col) in enumerate(exprs):
        value = after[i]
        if value is None and desc:
            continue
        terms = []
        for j, (prev_expr, _, prev_col) in enumerate(exprs[:i]):
            prev = after[j]
            if prev is None:
                terms.append(f"{prev_expr} IS NULL")
            else:
                params.append(dialect.param(prev_col, prev))
                terms.append(f"{prev_expr} = {p}")
        if value is None:
            terms.append(f"{expr} IS NOT NULL")
        elif desc:
            params.append(dialect.param(col, value))
            terms.append(f"({expr} < {p} OR {expr} IS NULL)")
        else:
            params.append(dialect.param(col, value))
            terms.append(f"{expr} > {p}")
        alternatives.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(alternatives) + ")" if alternatives else dialect.false


def unit_sql(geometry: Geometry) -> tuple[str, str, str]:
    """The unit vector of a point in SQL: stored columns when the source has them, else computed.

    Computed, it is the arithmetic of :func:`crimemap.geometry.areas.unit_vector`,
    in the same order, with the same C library functions in both engines, so
    both stores and Python give the same bits.
    """
    if geometry.unit is not None:
        return geometry.unit
    lng, lat = geometry.lng, geometry.lat
    return (
        f"cos(radians({lat})) * cos(radians({lng}))",
        f"cos(radians({lat})) * sin(radians({lng}))",
        f"sin(radians({lat}))",
    )


def circle_sql(circle: Circle, geometry: Geometry, params: list[Any], mark: str) -> str:
    """The exact circle test: the unit vectors' dot product against the cosine of the angular radius.

    ``mark`` is the engine's placeholder; the parameters are appended to ``params``.
    """
    x, y, z = unit_sql(geometry)
    params.extend(areas.circle_test(circle))
    return f"({x} * {mark} + {y} * {mark} + {z} * {mark} >= {mark})"
