"""Queries as data: what a reader asks a store for, before any SQL exists.

A request (a police.uk URL, a Maps Engine ``where`` clause, an export) becomes
one of these small frozen values; each store compiles it to its own SQL with
bound parameters. Nothing here knows about SQLite or PostGIS.

Points are ``(lng, lat)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Point: TypeAlias = tuple[float, float]
Scalar: TypeAlias = int | float | str | bool | None


@dataclass(frozen=True)
class Circle:
    """Every point within ``radius_m`` metres (great-circle) of ``center``."""

    center: Point
    radius_m: float


@dataclass(frozen=True)
class Polygon:
    """Every point inside or on a closed ring of ``(lng, lat)`` points (either orientation)."""

    ring: tuple[Point, ...]


Area: TypeAlias = Circle | Polygon

# ---- the predicate tree: what a Maps Engine ``where`` clause or a CQL2 ``filter`` parses into ----

CompareOp: TypeAlias = Literal["=", "<>", "<", ">", "<=", ">="]


@dataclass(frozen=True)
class Compare:
    """``column op value``; comparing with NULL is never true, as in SQL."""

    column: str
    op: CompareOp
    value: int | float | str | bool


NUMBER_TEXT = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,4})?"
"""Text that :class:`CompareNumber` reads as a number: ``2013``, ``-1.5``, ``.5``, ``2e3``; no spaces.

The same regular expression in Python and in PostgreSQL (exponents of at most
four digits keep every such number within PostgreSQL's ``numeric``).
"""


@dataclass(frozen=True)
class CompareNumber:
    """``column op value`` for a *string* column and a number: text that is a number compares as one.

    A GeoJSON table keeps the strings it was given (the 2014 NYC downloads have
    ``"YR": "2013"``), yet the NYC map asks ``YR=2013``: values matching
    :data:`NUMBER_TEXT` compare numerically, any other text (or NULL) never matches.
    """

    column: str
    op: CompareOp
    value: int | float


@dataclass(frozen=True)
class Contains:
    """``column CONTAINS 'text'``: case-insensitive substring match on a string column."""

    column: str
    text: str


@dataclass(frozen=True)
class Like:
    """``column LIKE pattern`` (CQL2's LIKE): case-sensitive, on a string column.

    In ``pattern``, ``%`` stands for any run of characters (none included),
    ``_`` for exactly one, and ``\\`` makes the character after it literal
    (``'100\\%'`` matches ``100%``). Each store translates the pattern to its
    own matcher (SQLite's ``GLOB``, PostgreSQL's ``LIKE``), always as a bound value.
    """

    column: str
    pattern: str


@dataclass(frozen=True)
class In:
    """``column IN (v1, v2, ...)``."""

    column: str
    values: tuple[int | float | str | bool, ...]


@dataclass(frozen=True)
class IsNull:
    """``column IS NULL``; ``IS NOT NULL`` is ``Not(IsNull(column))``."""

    column: str


@dataclass(frozen=True)
class Within:
    """The feature's geometry lies in ``area``: ``ST_INTERSECTS`` or ``ST_DISTANCE(...) < m``."""

    area: Area


@dataclass(frozen=True)
class Not:
    operand: Predicate


@dataclass(frozen=True)
class And:
    operands: tuple[Predicate, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Predicate, ...]


Predicate: TypeAlias = Compare | CompareNumber | Contains | Like | In | IsNull | Within | Not | And | Or

MAX_LOGIC_DEPTH = 12
"""Most levels of AND and OR nested in one another that a filter may have.

A store compiles a predicate to SQL, and SQLite's parser has a fixed stack: ``(a AND (b OR (c AND ...`` 32
levels deep overflows it ("parser stack overflow"), and so does ``NOT (a AND NOT (b AND ...`` 25 deep. A
chain of ANDs (or of ORs), however long, is one level, and NOTs count nothing (``NOT NOT x`` is ``x``)."""


def logic_depth(pred: Predicate) -> int:
    """Levels of AND and OR nested in one another in ``pred``, as :data:`MAX_LOGIC_DEPTH` counts them.

    >>> a = Compare("a", "=", 1)
    >>> logic_depth(Or((a, And((a, And((a, a)), Not(Or((a, a))))))))
    3
    """
    deepest = 0
    stack: list[tuple[Predicate, int, type | None]] = [(pred, 0, None)]
    while stack:
        node, depth, within = stack.pop()
        if isinstance(node, Not):
            stack.append((node.operand, depth, None))  # the store does not merge a chain through a NOT
        elif isinstance(node, And | Or):
            kind = type(node)
            inner = depth if kind is within else depth + 1
            deepest = max(deepest, inner)
            stack.extend((o, inner, kind) for o in node.operands)
    return deepest


@dataclass(frozen=True)
class OrderKey:
    column: str
    descending: bool = False


@dataclass(frozen=True)
class FeatureQuery:
    """A read of one feature table (the Maps Engine ``features`` call, an export).

    ``after`` is a keyset cursor: the sort-key values of the last feature of the
    previous page followed by its ``gx_id``; results continue strictly after it.
    ``columns`` of ``None`` means every column of the table's schema.
    """

    table: str
    where: Predicate | None = None
    columns: tuple[str, ...] | None = None
    order_by: tuple[OrderKey, ...] = ()
    after: tuple[Scalar, ...] | None = None
    limit: int | None = None


@dataclass(frozen=True)
class CrimeQuery:
    """A read of police.uk crimes (the ``/api/crimes-*`` calls).

    ``month`` is ``YYYY-MM``; ``category`` a slug or ``None`` for all-crime;
    ``located`` False selects the crimes stored without coordinates.
    ``limit`` lets a caller stop early: the 10,000-crime rule asks for 10,001.
    """

    month: str | None = None
    area: Area | None = None
    category: str | None = None
    force: str | None = None
    street_id: int | None = None
    located: bool = True
    limit: int | None = None


@dataclass(frozen=True)
class StopQuery:
    """A read of police.uk stops and searches (the ``/api/stops-*`` calls).

    ``month`` is ``YYYY-MM`` (``None``: every month); ``located`` True selects
    stops with coordinates, False those without, ``None`` both (``stops-force``).
    ``street_id`` selects the stops at one map point. ``limit`` lets a caller
    stop early: the 10,000-stop rule asks for 10,001.
    """

    month: str | None = None
    area: Area | None = None
    force: str | None = None
    street_id: int | None = None
    located: bool | None = True
    limit: int | None = None


def conjuncts(pred: Predicate | None) -> list[Predicate]:
    """The terms ``pred`` requires all of (its ANDs flattened; none for no predicate).

    A store reads what it can from them: the months, areas and (category, force)
    pairs a ``where`` confines a read to.

    >>> a, b = Compare("a", "=", 1), Compare("b", "=", 2)
    >>> conjuncts(And((a, And((b, Not(a)))))) == [a, b, Not(a)]
    True
    """
    if pred is None:
        return []
    if isinstance(pred, And):
        return [p for op in pred.operands for p in conjuncts(op)]
    return [pred]
