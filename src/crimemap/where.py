"""Parse the Maps Engine ``where``, ``select`` and ``orderBy`` parameters into query values.

The Google Maps Engine v1 ``tables/{id}/features`` call takes a small SQL-like
language in its ``where`` parameter. Clients such as the NYC Crime Map send it
verbatim, e.g.::

    MO=10 AND YR=2013 AND ST_INTERSECTS(geometry,ST_GEOMFROMTEXT('POLYGON((...))')) AND X<>0

This module turns that text, checked against a table's schema, into the
predicate tree of :mod:`crimemap.query`. It never produces SQL: each store
compiles the tree with bound parameters, so user text cannot reach a database.

The parser is hand-written (a tokenizer and a recursive-descent parser) because
the language is tiny, every error must name the parameter, the problem and the
character where it happened, and a general SQL parser would accept far more
than Maps Engine did -- which is exactly what must be refused here.

Decisions, where the Maps Engine documentation is silent:

* Keywords (``AND``, ``OR``, ``NOT``, ``IN``, ``IS``, ``NULL``, ``CONTAINS``,
  ``TRUE``, ``FALSE``, ``ASC``, ``DESC``) and function names are
  case-insensitive; column names are case-sensitive. A column whose name is a
  keyword or is not a plain word can be written in double quotes or backticks
  (``"Crime type"``, ```MO```), doubling the quote to include it.
* ``geometry`` (exactly so) is the only geometry column and may only appear as
  an argument of ``ST_INTERSECTS`` or ``ST_DISTANCE`` (and in ``select``).
* A comparison has a column (or ``ST_DISTANCE``) on one side and a literal on
  the other, in either order: ``5 < X`` means ``X > 5``. Constant conditions
  (``1=1``) and column-to-column comparisons are refused.
* ``!=`` is accepted as ``<>``. ``NOT`` binds tighter than ``AND``, which binds
  tighter than ``OR``; nested ``AND``/``OR`` are flattened.
* ``ST_DISTANCE(...) < m`` and ``<= m`` both mean "within ``m`` metres"
  (:class:`~crimemap.query.Circle` includes its boundary); ``>``/``>=`` are its
  negation.
* Datetime columns compare with quoted ISO 8601 strings, which are validated
  and passed on unchanged.
* A string column compared with a number (``YR = 2013``, ``MO IN (1, 2)``,
  ``TOT > 5``) compares the values that are numbers written as text
  (``"2013"``, ``"2013.0"``, ``"-1.5"``, ``"2e3"``; no spaces) as numbers, and
  never matches other text: a GeoJSON table keeps the strings it was given (the
  2014 NYC downloads have ``"YR": "2013"``) and the NYC Crime Map still asks
  ``MO=10 AND YR=2013`` (:class:`~crimemap.query.CompareNumber`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NoReturn, TypeAlias, TypeVar

from crimemap.query import (
    MAX_LOGIC_DEPTH,
    And,
    Circle,
    Compare,
    CompareNumber,
    CompareOp,
    Contains,
    In,
    IsNull,
    Not,
    Or,
    Point,
    Polygon,
    Predicate,
    Within,
    logic_depth,
)
from crimemap.rings import RingError, check_ring
from crimemap.where_syntax import (
    GEOMETRY,
    KEYWORDS,
    ColumnType,
    Token,
    WhereError,
    check_length,
    check_schema,
    describe,
    tokenize,
    unknown_column,
)

__all__ = ["MAX_DEPTH", "MAX_IN_VALUES", "parse_where"]

Value: TypeAlias = int | float | str | bool

MAX_DEPTH = 64
"""Deepest nesting of parentheses and ``NOT`` accepted in a ``where`` clause."""

MAX_IN_VALUES = 1000
"""Most values accepted in one ``IN (...)`` list."""

_OPS: dict[str, CompareOp] = {"=": "=", "<>": "<>", "!=": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
_FLIPPED: dict[CompareOp, CompareOp] = {"=": "=", "<>": "<>", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
_INT_LIMIT = 2**63 - 1  # what every store can bind as an integer

_T = TypeVar("_T")


# ---- operands: what may stand on either side of a comparison ------------------------


@dataclass(frozen=True)
class _Column:
    name: str
    type: ColumnType
    pos: int


@dataclass(frozen=True)
class _Literal:
    value: Value
    kind: Literal["number", "string", "boolean"]
    pos: int
    text: str


@dataclass(frozen=True)
class _Distance:
    """``ST_DISTANCE(geometry, ST_POINT(lng, lat))``, waiting for its comparison."""

    center: Point
    pos: int


_Operand: TypeAlias = _Column | _Literal | _Distance


def _describe_literal(lit: _Literal) -> str:
    if lit.kind == "string":
        return f"the string {lit.text}"
    return f"the {lit.kind} {lit.text}"


# ---- the where parser ---------------------------------------------------------------


# The grammar, keywords and function names case-insensitive:
#
#   or_expr   := and_expr (OR and_expr)*
#   and_expr  := not_expr (AND not_expr)*
#   not_expr  := NOT not_expr | primary
#   primary   := '(' or_expr ')' | condition
#   condition := ST_INTERSECTS '(' geometry ',' ST_GEOMFROMTEXT '(' string ')' ')'
#              | column IS [NOT] NULL | column [NOT] IN '(' literal (',' literal)* ')'
#              | column CONTAINS string | operand compare_op operand
#   operand   := column | literal | ST_DISTANCE '(' geometry ',' ST_POINT '(' number ',' number ')' ')'


class _Parser:
    """Recursive descent over the grammar above, one method per rule, one token of lookahead."""

    def __init__(self, text: str, schema: Mapping[str, ColumnType]) -> None:
        self.schema = schema
        self.tokens = tokenize(text, "where")
        self.i = 0
        self.depth = 0

    # -- token helpers

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def fail(self, message: str, pos: int | None) -> NoReturn:
        raise WhereError(message, parameter="where", position=pos)

    @staticmethod
    def is_keyword(tok: Token, *words: str) -> bool:
        return tok.kind == "ident" and tok.text.upper() in words

    def expect(self, kind: str, context: str) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            self.fail(f"expected {kind!r} {context}, found {describe(tok)}", tok.pos)
        return self.advance()

    def is_call(self, *names: str) -> bool:
        return self.peek().kind == "ident" and self.peek().text.upper() in names and self.peek(1).kind == "("

    def enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"the clause nests parentheses and NOT more than {MAX_DEPTH} deep", tok.pos)

    # -- boolean structure

    def parse(self) -> Predicate:
        pred = self.or_expr()
        tok = self.peek()
        if tok.kind == ")":
            self.fail("unbalanced ')': there is no '(' to close", tok.pos)
        if tok.kind != "end":
            self.fail(f"expected AND, OR or the end of the clause, found {describe(tok)}", tok.pos)
        return pred

    def or_expr(self) -> Predicate:
        operands = [self.and_expr()]
        while self.is_keyword(self.peek(), "OR"):
            self.advance()
            operands.append(self.and_expr())
        if len(operands) == 1:
            return operands[0]
        return Or(tuple(q for p in operands for q in (p.operands if isinstance(p, Or) else (p,))))

    def and_expr(self) -> Predicate:
        operands = [self.not_expr()]
        while self.is_keyword(self.peek(), "AND"):
            self.advance()
            operands.append(self.not_expr())
        if len(operands) == 1:
            return operands[0]
        return And(tuple(q for p in operands for q in (p.operands if isinstance(p, And) else (p,))))

    def not_expr(self) -> Predicate:
        tok = self.peek()
        if not self.is_keyword(tok, "NOT"):
            return self.primary()
        self.advance()
        self.enter(tok)
        operand = self.not_expr()
        self.depth -= 1
        return Not(operand)

    def primary(self) -> Predicate:
        tok = self.peek()
        if tok.kind != "(":
            return self.condition()
        self.advance()
        self.enter(tok)
        pred = self.or_expr()
        self.depth -= 1
        close = self.peek()
        if close.kind != ")":
            self.fail(
                f"expected ')' to close the '(' at character {tok.pos + 1}, found {describe(close)}",
                close.pos,
            )
        self.advance()
        return pred

    # -- conditions

    def condition(self) -> Predicate:
        if self.is_call("ST_INTERSECTS"):
            pred = self.st_intersects()
            if self.peek().kind == "op":
                self.fail("ST_INTERSECTS(...) is a condition by itself and cannot be compared", self.peek().pos)
            return pred
        left = self.operand("a condition")
        tok = self.peek()
        if isinstance(left, _Column):
            if self.is_keyword(tok, "IS"):
                return self.is_null(left)
            if self.is_keyword(tok, "NOT"):
                self.advance()
                if not self.is_keyword(self.peek(), "IN"):
                    self.fail(f"expected IN after NOT, found {describe(self.peek())}", self.peek().pos)
                return Not(self.in_list(left))
            if self.is_keyword(tok, "IN"):
                return self.in_list(left)
            if self.is_keyword(tok, "CONTAINS"):
                return self.contains(left)
        if tok.kind != "op":
            if isinstance(left, _Column):
                self.fail(
                    f"expected an operator (=, <>, <, >, <=, >=, CONTAINS, IN, IS) after column "
                    f"{left.name!r}, found {describe(tok)}",
                    tok.pos,
                )
            self.fail(f"expected a comparison operator, found {describe(tok)}", tok.pos)
        self.advance()
        right = self.operand("a value")
        return self.comparison(left, _OPS[tok.text], right)

    def comparison(self, left: _Operand, op: CompareOp, right: _Operand) -> Predicate:
        if isinstance(left, _Literal):
            if isinstance(right, _Literal):
                self.fail(
                    "a comparison needs a column or ST_DISTANCE on one side; constant conditions are not allowed",
                    left.pos,
                )
            left, right, op = right, left, _FLIPPED[op]
        if not isinstance(right, _Literal):
            if isinstance(left, _Distance) or isinstance(right, _Distance):
                self.fail("ST_DISTANCE(...) must be compared with a number of metres", right.pos)
            self.fail("comparing two columns is not supported; compare a column with a value", right.pos)
        if isinstance(left, _Distance):
            return self.distance(left, op, right)
        value = self.typed(left, right, op)
        if left.type == "string" and right.kind == "number":
            return CompareNumber(left.name, op, float(value) if isinstance(value, float) else int(value))
        return Compare(left.name, op, value)

    def is_null(self, column: _Column) -> Predicate:
        self.advance()  # IS
        negate = self.is_keyword(self.peek(), "NOT")
        if negate:
            self.advance()
        tok = self.peek()
        if not self.is_keyword(tok, "NULL"):
            self.fail(f"expected NULL or NOT NULL after IS, found {describe(tok)}", tok.pos)
        self.advance()
        return Not(IsNull(column.name)) if negate else IsNull(column.name)

    def in_list(self, column: _Column) -> Predicate:
        self.advance()  # IN
        self.expect("(", "after IN")
        if self.peek().kind == ")":
            self.fail("IN needs at least one value", self.peek().pos)
        values: list[Value] = []
        numbers: list[int | float] = []  # compared with a string column's numeric text
        while True:
            if len(values) + len(numbers) == MAX_IN_VALUES:
                self.fail(f"an IN list may hold at most {MAX_IN_VALUES} values", self.peek().pos)
            lit = self.literal()
            value = self.typed(column, lit, None)
            if column.type == "string" and lit.kind == "number":
                numbers.append(float(value) if isinstance(value, float) else int(value))
            else:
                values.append(value)
            tok = self.advance()
            if tok.kind == ")":
                return _in(column.name, values, numbers)
            if tok.kind != ",":
                self.fail(f"expected ',' or ')' in the IN list, found {describe(tok)}", tok.pos)

    def contains(self, column: _Column) -> Contains:
        self.advance()  # CONTAINS
        if column.type != "string":
            self.fail(f"CONTAINS needs a string column; {column.name!r} is {column.type}", column.pos)
        tok = self.peek()
        if tok.kind != "str":
            self.fail(f"expected a quoted string after CONTAINS, found {describe(tok)}", tok.pos)
        self.advance()
        return Contains(column.name, tok.value)

    # -- operands and literals

    def operand(self, what: str) -> _Operand:
        tok = self.peek()
        if tok.kind in ("num", "str", "+", "-") or self.is_keyword(tok, "TRUE", "FALSE", "NULL"):
            return self.literal()
        if tok.kind == "ident" and self.peek(1).kind == "(":
            name = tok.text.upper()
            if name == "ST_DISTANCE":
                return self.st_distance()
            if name == "ST_INTERSECTS":
                self.fail("ST_INTERSECTS(...) is a condition by itself and cannot be compared", tok.pos)
            if name in ("ST_POINT", "ST_GEOMFROMTEXT"):
                inside = "ST_DISTANCE" if name == "ST_POINT" else "ST_INTERSECTS"
                self.fail(f"{name} can only be used inside {inside}", tok.pos)
            self.fail(f"unknown function {tok.text!r}; supported: ST_INTERSECTS, ST_DISTANCE", tok.pos)
        if tok.kind == "qident" or (tok.kind == "ident" and tok.text.upper() not in KEYWORDS):
            return self.column()
        self.fail(f"expected {what}, found {describe(tok)}", tok.pos)

    def column(self) -> _Column:
        tok = self.advance()
        name = tok.value if tok.kind == "qident" else tok.text
        if name == GEOMETRY:
            self.fail("geometry can only be used inside ST_INTERSECTS or ST_DISTANCE", tok.pos)
        if name not in self.schema:
            self.fail(unknown_column(name, self.schema, tok.text[0]), tok.pos)
        return _Column(name, self.schema[name], tok.pos)

    def literal(self) -> _Literal:
        tok = self.advance()
        if tok.kind == "str":
            return _Literal(tok.value, "string", tok.pos, tok.text)
        if self.is_keyword(tok, "TRUE", "FALSE"):
            return _Literal(tok.text.upper() == "TRUE", "boolean", tok.pos, tok.text.upper())
        if self.is_keyword(tok, "NULL"):
            self.fail("NULL is not a value; test for missing values with IS NULL or IS NOT NULL", tok.pos)
        sign = ""
        num = tok
        if tok.kind in ("+", "-"):
            sign, num = tok.text, self.advance()
        if num.kind != "num":
            self.fail(f"expected a value, found {describe(num)}", num.pos)
        return _Literal(self.number(num, negative=sign == "-"), "number", tok.pos, sign + num.text)

    def number(self, tok: Token, negative: bool) -> int | float:
        if tok.text.isdigit():
            digits = tok.text.lstrip("0")
            if len(digits) > 19 or int(digits or "0") > _INT_LIMIT:
                self.fail(f"integer {tok.text} is out of range", tok.pos)
            value: int | float = int(digits or "0")
        else:
            value = float(tok.text)
            if not math.isfinite(value):
                self.fail(f"number {tok.text} is out of range", tok.pos)
        return -value if negative else value

    def typed(self, column: _Column, lit: _Literal, op: CompareOp | None) -> Value:
        """``lit``'s value if it may be compared with ``column`` (``op`` ``None`` for IN)."""
        name, ctype = column.name, column.type
        if ctype in ("integer", "double"):
            if lit.kind != "number":
                self.fail(
                    f"column {name!r} is {ctype}; compare it with a number, not {_describe_literal(lit)}",
                    lit.pos,
                )
        elif ctype == "string":
            if lit.kind == "boolean":
                self.fail(
                    f"column {name!r} is string; compare it with a quoted string such as '{lit.text}', "
                    f"not {_describe_literal(lit)}",
                    lit.pos,
                )
        elif ctype == "datetime":
            if lit.kind != "string" or not _is_iso_datetime(str(lit.value)):
                self.fail(
                    f"column {name!r} is datetime; compare it with a quoted ISO 8601 date or time "
                    f"such as '2013-10-31' or '2013-10-31T12:00:00Z', not {_describe_literal(lit)}",
                    lit.pos,
                )
        else:  # boolean
            if lit.kind != "boolean":
                self.fail(
                    f"column {name!r} is boolean; compare it with TRUE or FALSE, not {_describe_literal(lit)}",
                    lit.pos,
                )
            if op not in (None, "=", "<>"):
                self.fail(f"boolean column {name!r} can only be compared with = or <>", lit.pos)
        return lit.value

    # -- spatial functions

    def geometry_call(self, inner: str, parse_inner: Callable[[], _T]) -> _T:
        """The two arguments of ST_INTERSECTS/ST_DISTANCE: ``geometry`` and ``inner(...)``, either order."""
        fn = self.advance()
        name = fn.text.upper()
        self.advance()  # '('
        seen_geometry = False
        shape: _T | None = None
        for index in range(2):
            if index:
                self.expect(",", f"between the arguments of {name}")
            tok = self.peek()
            if not seen_geometry and (tok.value if tok.kind == "qident" else tok.text) == GEOMETRY:
                self.advance()
                seen_geometry = True
            elif shape is None and self.is_call(inner):
                shape = parse_inner()
            else:
                self.fail(f"{name} takes geometry and {inner}(...) as arguments, found {describe(tok)}", tok.pos)
        self.expect(")", f"to close {name}")
        assert shape is not None
        return shape

    def st_intersects(self) -> Within:
        return Within(self.geometry_call("ST_GEOMFROMTEXT", self.st_geomfromtext))

    def st_geomfromtext(self) -> Polygon:
        self.advance()  # ST_GEOMFROMTEXT
        self.advance()  # '('
        tok = self.peek()
        if tok.kind != "str":
            self.fail(f"ST_GEOMFROMTEXT takes one quoted WKT POLYGON, found {describe(tok)}", tok.pos)
        self.advance()
        self.expect(")", "to close ST_GEOMFROMTEXT")
        return _parse_polygon_wkt(tok.value, tok.pos + 1)

    def st_distance(self) -> _Distance:
        pos = self.peek().pos
        return _Distance(self.geometry_call("ST_POINT", self.st_point), pos)

    def st_point(self) -> Point:
        self.advance()  # ST_POINT
        self.advance()  # '('
        coords: list[float] = []
        for index, (axis, limit) in enumerate((("longitude", 180.0), ("latitude", 90.0))):
            if index:
                self.expect(",", "between the longitude and latitude of ST_POINT")
            lit = self.literal()
            if lit.kind != "number":
                self.fail(f"ST_POINT takes a numeric {axis}, not {_describe_literal(lit)}", lit.pos)
            if abs(float(lit.value)) > limit:
                self.fail(f"{axis} {lit.text} is outside -{limit:g}..{limit:g}", lit.pos)
            coords.append(float(lit.value))
        self.expect(")", "to close ST_POINT(longitude, latitude)")
        return coords[0], coords[1]

    def distance(self, dist: _Distance, op: CompareOp, lit: _Literal) -> Predicate:
        if op in ("=", "<>"):
            self.fail("ST_DISTANCE(...) can only be compared with <, <=, > or >=", dist.pos)
        if lit.kind != "number" or float(lit.value) < 0:
            self.fail(
                f"ST_DISTANCE(...) must be compared with a number of metres >= 0, not {_describe_literal(lit)}",
                lit.pos,
            )
        within = Within(Circle(dist.center, float(lit.value)))
        return within if op in ("<", "<=") else Not(within)


def _in(column: str, values: list[Value], numbers: list[int | float]) -> Predicate:
    """``column IN (...)``: the values as they are, and the numbers a string column's text may be."""
    alternatives: list[Predicate] = [In(column, tuple(values))] if values else []
    alternatives.extend(CompareNumber(column, "=", n) for n in numbers)
    return alternatives[0] if len(alternatives) == 1 else Or(tuple(alternatives))


def _is_iso_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


# ---- WKT: just POLYGON((lng lat, ...)) ------------------------------------------------

_WKT_TOKEN = re.compile(
    r"\s*(?:(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)|(?P<word>[A-Za-z]\w*)|(?P<punct>[(),]))"
)


def _parse_polygon_wkt(wkt: str, base: int) -> Polygon:
    """A :class:`Polygon` from ``POLYGON((lng lat, ...))``; ``base`` is the WKT's offset in the clause.

    Only a single outer ring of 2-D points is supported: that is what a map's
    viewport or a drawn area sends, and what the stores can test cheaply. The
    ring is closed if it is not already.
    """
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(wkt):
        m = _WKT_TOKEN.match(wkt, pos)
        if m is None or m.end() == pos:
            if not wkt[pos:].strip():
                break
            bad = pos + len(wkt[pos:]) - len(wkt[pos:].lstrip())
            raise WhereError(f"unexpected {wkt[bad]!r} in WKT", position=base + bad)
        kind = m.lastgroup or ""
        tokens.append((m.group(kind), kind, base + m.start(kind)))
        pos = m.end()
    tokens.append(("", "end", base + len(wkt)))
    i = 0

    def take(expected: str, context: str) -> tuple[str, str, int]:
        nonlocal i
        text, kind, at = tokens[i]
        if (kind == "punct" and text != expected) or (kind != "punct" and expected != kind):
            found = "the end of the WKT" if kind == "end" else repr(text)
            raise WhereError(f"expected {context} in WKT, found {found}", position=at)
        i += 1
        return text, kind, at

    word, _, at = take("word", "a geometry type")
    if word.upper() != "POLYGON":
        raise WhereError(f"only POLYGON is supported in ST_GEOMFROMTEXT, not {word}", position=at)
    if tokens[i][0].upper() == "EMPTY":
        raise WhereError("an empty POLYGON matches nothing and is not supported", position=tokens[i][2])
    take("(", "'(' after POLYGON")
    take("(", "'(' to open the polygon's ring")
    ring: list[Point] = []
    while True:
        lng_text, _, lng_at = take("num", "a longitude")
        lat_text, _, lat_at = take("num", "a latitude")
        lng, lat = float(lng_text), float(lat_text)
        if not (math.isfinite(lng) and -180 <= lng <= 180):
            raise WhereError(f"longitude {lng_text} is outside -180..180", position=lng_at)
        if not (math.isfinite(lat) and -90 <= lat <= 90):
            raise WhereError(f"latitude {lat_text} is outside -90..90", position=lat_at)
        ring.append((lng, lat))
        if tokens[i][0] != ",":
            break
        i += 1
    if tokens[i][1] == "num":
        raise WhereError("only 2-D points (longitude latitude) are supported in WKT", position=tokens[i][2])
    _, _, close_at = take(")", "',' or ')' in the polygon's ring")
    if tokens[i][0] == ",":
        raise WhereError("polygons with holes are not supported", position=tokens[i][2])
    take(")", "')' to close POLYGON")
    take("end", "the end of the WKT")
    if len(set(ring)) < 3:
        raise WhereError("a polygon needs at least 3 distinct points", position=close_at)
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    try:
        check_ring(ring)
    except RingError as e:
        raise WhereError(str(e), position=close_at) from None
    return Polygon(tuple(ring))


# ---- public API -----------------------------------------------------------------------


def parse_where(text: str, schema: Mapping[str, ColumnType]) -> Predicate:
    """The predicate of a Maps Engine ``where`` clause, checked against ``schema``.

    Raises :class:`WhereError` (``parameter='where'``) for anything malformed
    or unsupported, including an empty clause: a caller with no ``where``
    parameter simply has no predicate.
    """
    check_schema(schema)
    check_length(text, "where")
    if not text.strip():
        raise WhereError("the where clause is empty")
    predicate = _Parser(text, schema).parse()
    depth = logic_depth(predicate)
    if depth > MAX_LOGIC_DEPTH:
        raise WhereError(
            f"the clause nests AND and OR {depth} levels deep; at most {MAX_LOGIC_DEPTH} are accepted"
            " (a chain of ANDs, or of ORs, is one level)"
        )
    return predicate
