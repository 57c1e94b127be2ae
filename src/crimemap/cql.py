"""Parse an OGC CQL2 ``filter`` (text or JSON) into the predicate tree, against a table's schema.

The OGC API - Features ``filter`` parameter (``filter-lang=cql2-text``, the
default, or ``cql2-json``) is parsed by the ``cql2`` library (Rust, tracks the
standard; it parsed a typical filter in about 30 µs where ``pygeofilter`` took
200 µs), which hands back the standard CQL2-JSON tree. This module translates
that tree into :mod:`crimemap.query` values, checking every property against
the table's schema, so a filter reaches a store exactly as a Maps Engine
``where`` clause does: as data, compiled with bound parameters.

    >>> parse_filter("crime_type = 'Burglary' AND S_INTERSECTS(geometry, BBOX(-0.1,51.5,-0.09,51.52))",
    ...              {"crime_type": "string"})  # doctest: +ELLIPSIS
    And(operands=(Compare(column='crime_type', op='=', value='Burglary'), Within(area=Polygon(...))))

What is understood (Basic CQL2, the advanced comparison operators, and
``S_INTERSECTS``):

* ``=``, ``<>``, ``<``, ``>``, ``<=``, ``>=`` between a property and a literal
  (either side); ``AND``, ``OR``, ``NOT``; ``IS [NOT] NULL``;
  ``[NOT] LIKE`` (string properties; ``%``, ``_``, ``\\`` escapes);
  ``[NOT] BETWEEN`` (as ``>= AND <=``); ``[NOT] IN (...)``.
* ``S_INTERSECTS(geometry, <g>)`` where ``<g>`` is ``BBOX(...)``, a
  ``POLYGON`` (one ring), a ``MULTIPOLYGON`` of such, or a ``POINT``
  (a feature exactly there). Coordinates are CRS84 longitude, latitude.
* Literals are typed by the property: numbers for ``integer``/``double``
  (``cql2`` reads every number as a double, so integers beyond 2^53 are
  refused rather than rounded), quoted strings for ``string``, ``TRUE``/``FALSE``
  for ``boolean``, ``DATE('...')``, ``TIMESTAMP('...')`` or an ISO 8601 string
  for ``datetime``.

Anything else (property-to-property comparisons, arithmetic, ``CASEI``,
temporal and array functions, other geometries) is a :class:`FilterError`
naming what is not supported. The text is limited to
:data:`~crimemap.where_syntax.MAX_CLAUSE_CHARS` characters, :data:`MAX_NESTING`
levels of parentheses and ``NOT`` (checked *before* parsing: the ``cql2``
parser recurses, and a few thousand nested parentheses overflow its stack)
and :data:`~crimemap.where.MAX_IN_VALUES` values in one ``IN``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import cql2
import orjson

from crimemap.query import (
    MAX_LOGIC_DEPTH,
    And,
    Circle,
    Compare,
    CompareOp,
    In,
    IsNull,
    Like,
    Not,
    Or,
    Polygon,
    Predicate,
    Within,
    logic_depth,
)
from crimemap.rings import RingError, check_ring
from crimemap.where import MAX_IN_VALUES
from crimemap.where_syntax import GEOMETRY, MAX_CLAUSE_CHARS, ColumnType

__all__ = ["FILTER_LANGS", "MAX_NESTING", "FilterError", "parse_filter", "translate"]

FILTER_LANGS = ("cql2-text", "cql2-json", "cql-text")
"""The ``filter-lang`` values understood; ``cql2-text`` is the default.

``cql-text`` is the draft standard's name, which GDAL's OGC API driver (3.12)
still sends with the filters it builds (``(a = 'x') AND (b > 1)``, valid
CQL2 text): it is read as ``cql2-text``.
"""

MAX_NESTING = 64
"""Deepest nesting of parentheses, and most ``NOT`` operators, accepted in one filter."""

Value = int | float | str | bool

_COMPARISONS: dict[str, CompareOp] = {"=": "=", "<>": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
_FLIPPED: dict[CompareOp, CompareOp] = {"=": "=", "<>": "<>", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
_EXACT_INTEGERS = 2**53
_NOT_WORD = re.compile(r"\bNOT\b", re.IGNORECASE)
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_PEST_POSITION = re.compile(r"-->\s*(\d+):(\d+)")
_PEST_EXPECTED = re.compile(r"=\s*(expected .*)")


class FilterError(ValueError):
    """A filter that is malformed or asks for something not supported; ``message`` says which and why."""

    def __init__(self, message: str, parameter: str = "filter") -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter


def parse_filter(text: str, schema: Mapping[str, ColumnType], lang: str = "cql2-text") -> Predicate:
    """The predicate a CQL2 filter in ``lang`` means over a table of ``schema``; :class:`FilterError` if none."""
    if lang not in FILTER_LANGS:
        raise FilterError(f"filter-lang must be one of {', '.join(FILTER_LANGS)}, not {lang!r}", "filter-lang")
    if len(text) > MAX_CLAUSE_CHARS:
        raise FilterError(f"the filter is {len(text):,} characters long; at most {MAX_CLAUSE_CHARS:,} are accepted")
    if lang == "cql2-json":
        try:
            tree = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise FilterError(f"the filter is not JSON: {e}") from None
        _check_json_depth(tree)
        return _shallow(translate(tree, schema))
    _check_text_nesting(text)  # cql2-text, or the draft's cql-text
    try:
        tree = cql2.parse_text(text).to_json()
    except (cql2.ParseError, ValueError) as e:
        raise FilterError(_describe_parse_error(text, str(e))) from None
    return _shallow(translate(tree, schema))


def _shallow(predicate: Predicate) -> Predicate:
    """``predicate``, unless it nests AND and OR deeper than the stores can compile (see :data:`MAX_LOGIC_DEPTH`)."""
    depth = logic_depth(predicate)
    if depth > MAX_LOGIC_DEPTH:
        raise FilterError(
            f"the filter nests AND and OR {depth} levels deep; at most {MAX_LOGIC_DEPTH} are accepted"
            " (a chain of ANDs, or of ORs, is one level)"
        )
    return predicate


def _check_text_nesting(text: str) -> None:
    bare = _QUOTED.sub("''", text)
    depth = deepest = 0
    for c in bare:
        if c == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif c == ")":
            depth -= 1
    if deepest > MAX_NESTING:
        raise FilterError(f"the filter nests parentheses {deepest} deep; at most {MAX_NESTING} levels are accepted")
    nots = len(_NOT_WORD.findall(bare))
    if nots > MAX_NESTING:
        raise FilterError(f"the filter has {nots} NOT operators; at most {MAX_NESTING} are accepted")


def _check_json_depth(tree: Any, depth: int = 0) -> None:
    if depth > 2 * MAX_NESTING:
        raise FilterError(f"the filter nests more than {MAX_NESTING} levels deep")
    if isinstance(tree, dict):
        for v in tree.values():
            _check_json_depth(v, depth + 1)
    elif isinstance(tree, list):
        for v in tree:
            _check_json_depth(v, depth + 1)


def _describe_parse_error(text: str, raw: str) -> str:
    """cql2's multi-line parser report as one line: what was expected, at which character."""
    where = _PEST_POSITION.search(raw)
    expected = _PEST_EXPECTED.search(raw)
    what = expected.group(1).strip() if expected else raw.strip().splitlines()[-1].strip() if raw.strip() else ""
    if where is None:
        return f"the filter is not CQL2 text: {what or raw}"
    line, column = int(where.group(1)), int(where.group(2))
    offset = sum(len(s) + 1 for s in text.split("\n")[: line - 1]) + column
    return f"the filter is not CQL2 text: {what} (at character {offset})"


# -- the CQL2-JSON tree -> predicates -------------------------------------------------------------------


def translate(node: Any, schema: Mapping[str, ColumnType]) -> Predicate:
    """The predicate of a CQL2-JSON boolean expression (what ``cql2`` parses text into)."""
    if not isinstance(node, dict) or "op" not in node:
        raise FilterError(f"expected a condition, found {_show(node)}")
    op = str(node["op"]).lower()
    args = node.get("args")
    if not isinstance(args, list):
        raise FilterError(f"the arguments of {op!r} must be a list")
    if op in ("and", "or"):
        if len(args) < 2:
            raise FilterError(f"{op.upper()} needs at least two conditions")
        parts: list[Predicate] = []
        kind = And if op == "and" else Or
        for a in args:
            p = translate(a, schema)
            parts.extend(p.operands if isinstance(p, kind) else (p,))
        return kind(tuple(parts))
    if op == "not":
        _arity(op, args, 1)
        return Not(translate(args[0], schema))
    if op in _COMPARISONS:
        return _comparison(_COMPARISONS[op], args, schema)
    if op == "isnull":
        _arity("IS NULL", args, 1)
        return IsNull(_property(args[0], schema, "IS NULL"))
    if op == "like":
        return _like(args, schema)
    if op == "between":
        _arity("BETWEEN", args, 3)
        name = _property(args[0], schema, "BETWEEN")
        return And(
            (Compare(name, ">=", _typed(name, schema, args[1])), Compare(name, "<=", _typed(name, schema, args[2])))
        )
    if op == "in":
        return _in(args, schema)
    if op == "s_intersects":
        return _s_intersects(args)
    raise FilterError(
        f"{op.upper()} is not supported; filters may use comparisons (= <> < > <= >=), AND, OR, NOT, IS NULL,"
        " LIKE, BETWEEN, IN and S_INTERSECTS(geometry, BBOX/POLYGON/MULTIPOLYGON/POINT)"
    )


def _arity(op: str, args: list[Any], n: int) -> None:
    if len(args) != n:
        raise FilterError(f"{op} takes {n} argument{'s' if n > 1 else ''}, not {len(args)}")


def _is_property(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"property"}


def _property(node: Any, schema: Mapping[str, ColumnType], context: str) -> str:
    if isinstance(node, dict) and "op" in node:
        raise FilterError(f"{str(node['op']).upper()} is not supported inside {context}; use a property name")
    if not _is_property(node):
        raise FilterError(f"{context} needs a property (a column name) on its left, found {_show(node)}")
    name = str(node["property"])
    if name == GEOMETRY:
        raise FilterError(f"geometry can only be used in S_INTERSECTS, not in {context}")
    if name not in schema:
        known = ", ".join(sorted(schema))
        raise FilterError(f"unknown property {name!r}; the queryables are {known}")
    return name


def _comparison(op: CompareOp, args: list[Any], schema: Mapping[str, ColumnType]) -> Predicate:
    _arity(op, args, 2)
    left, right = args
    if not _is_property(left) and _is_property(right):
        left, right, op = right, left, _FLIPPED[op]
    name = _property(left, schema, f"a comparison ({op})")
    if _is_property(right):
        raise FilterError("comparing two properties is not supported; compare a property with a value")
    value = _typed(name, schema, right)
    if schema[name] == "boolean" and op not in ("=", "<>"):
        raise FilterError(f"boolean property {name!r} can only be compared with = or <>")
    return Compare(name, op, value)


def _like(args: list[Any], schema: Mapping[str, ColumnType]) -> Like:
    _arity("LIKE", args, 2)
    name = _property(args[0], schema, "LIKE")
    if schema[name] != "string":
        raise FilterError(f"LIKE needs a string property; {name!r} is {schema[name]}")
    if not isinstance(args[1], str):
        raise FilterError(f"LIKE needs a quoted pattern such as 'On or near%', not {_show(args[1])}")
    return Like(name, args[1])


def _in(args: list[Any], schema: Mapping[str, ColumnType]) -> In:
    _arity("IN", args, 2)
    name = _property(args[0], schema, "IN")
    values = args[1]
    if not isinstance(values, list) or not values:
        raise FilterError("IN needs a list of at least one value")
    if len(values) > MAX_IN_VALUES:
        raise FilterError(f"an IN list may hold at most {MAX_IN_VALUES} values, not {len(values)}")
    return In(name, tuple(_typed(name, schema, v) for v in values))


def _typed(name: str, schema: Mapping[str, ColumnType], literal: Any) -> Value:
    """``literal`` as a value of column ``name``'s type, or a :class:`FilterError` saying what fits."""
    ctype = schema[name]
    if literal is None:
        raise FilterError(f"NULL is not a value; test {name!r} with IS NULL or IS NOT NULL")
    if ctype in ("integer", "double"):
        if isinstance(literal, bool) or not isinstance(literal, int | float) or not math.isfinite(literal):
            raise FilterError(f"property {name!r} is {ctype}; compare it with a number, not {_show(literal)}")
        if ctype == "double":
            return float(literal)
        if float(literal) != int(literal):
            return float(literal)  # x = 2.5 on an integer column is simply never true
        if abs(literal) >= _EXACT_INTEGERS:
            raise FilterError(f"integer {_show(literal)} is too large to compare exactly (the limit is 2^53)")
        return int(literal)
    if ctype == "boolean":
        if not isinstance(literal, bool):
            raise FilterError(f"property {name!r} is boolean; compare it with TRUE or FALSE, not {_show(literal)}")
        return literal
    if ctype == "datetime":
        return _instant(name, literal)
    if not isinstance(literal, str):
        raise FilterError(
            f"property {name!r} is string; compare it with a quoted string such as '{_show(literal)}',"
            f" not {_show(literal)}"
        )
    return literal


def _instant(name: str, literal: Any) -> str:
    """A DATE/TIMESTAMP literal (or ISO 8601 string) as the stored text of a datetime column."""
    text = literal.get("date") or literal.get("timestamp") if isinstance(literal, dict) else literal
    if isinstance(text, str):
        try:
            if len(text) == 10:
                return date.fromisoformat(text).isoformat()
            stamp = datetime.fromisoformat(text).isoformat()
            return stamp[:-6] + "Z" if stamp.endswith("+00:00") else stamp
        except ValueError:
            pass
    raise FilterError(
        f"property {name!r} is datetime; compare it with DATE('2015-03-01'), TIMESTAMP('2015-03-01T12:00:00Z')"
        f" or an ISO 8601 string, not {_show(literal)}"
    )


# -- S_INTERSECTS ---------------------------------------------------------------------------------------------


def _s_intersects(args: list[Any]) -> Predicate:
    _arity("S_INTERSECTS", args, 2)
    first, second = args
    if not (_is_property(first) and first["property"] == GEOMETRY):
        first, second = second, first
    if not (_is_property(first) and first["property"] == GEOMETRY):
        raise FilterError("S_INTERSECTS takes the property geometry and a BBOX, POLYGON, MULTIPOLYGON or POINT")
    if isinstance(second, dict) and "bbox" in second:
        return Within(_bbox_polygon(second["bbox"]))
    kind = second.get("type") if isinstance(second, dict) else None
    coords = second.get("coordinates") if isinstance(second, dict) else None
    if kind == "Polygon":
        return Within(_polygon(coords))
    if kind == "MultiPolygon" and isinstance(coords, list) and coords:
        polygons = [Within(_polygon(p)) for p in coords]
        return polygons[0] if len(polygons) == 1 else Or(tuple(polygons))
    if kind == "Point" and isinstance(coords, list) and len(coords) >= 2:
        lng, lat = _lng_lat(coords)
        return Within(Circle((lng, lat), 0.0))
    raise FilterError(
        f"S_INTERSECTS supports BBOX, POLYGON, MULTIPOLYGON and POINT geometries, not {kind or _show(second)}"
    )


def _lng_lat(position: Any) -> tuple[float, float]:
    if not (isinstance(position, list) and len(position) >= 2 and all(isinstance(v, int | float) for v in position)):
        raise FilterError(f"a position is a longitude and a latitude, not {_show(position)}")
    lng, lat = float(position[0]), float(position[1])
    if not (math.isfinite(lng) and math.isfinite(lat) and -180 <= lng <= 180 and -90 <= lat <= 90):
        raise FilterError(f"a position must be a longitude in -180..180 and a latitude in -90..90, not {lng}, {lat}")
    return lng, lat


def _polygon(rings: Any) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise FilterError("a POLYGON needs a ring of positions")
    if len(rings) > 1:
        raise FilterError("polygons with holes are not supported in S_INTERSECTS")
    ring = tuple(_lng_lat(p) for p in rings[0])
    if len(ring) < 4 or ring[0] != ring[-1]:
        raise FilterError("a POLYGON ring needs at least four positions, the last the same as the first")
    try:
        check_ring(ring)
    except RingError as e:
        raise FilterError(str(e)) from None
    return Polygon(ring)


def _bbox_polygon(bbox: Any) -> Polygon:
    if not isinstance(bbox, list) or len(bbox) not in (4, 6):
        raise FilterError("BBOX takes four numbers (or six, with heights): west, south, east, north")
    west, south = _lng_lat(bbox[0:2])
    east, north = _lng_lat(bbox[2:4] if len(bbox) == 4 else bbox[3:5])
    if south > north or west > east:
        raise FilterError("BBOX is west, south, east, north, with south <= north and west <= east")
    return Polygon(((west, south), (east, south), (east, north), (west, north), (west, south)))


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
