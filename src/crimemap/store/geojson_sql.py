"""GeoJSON features rendered by the engine: the plan, written once, and what each dialect spells its own way.

A page of features crosses into Python as one ready string per feature instead of
a tuple of values to decode and dump: the SQL planned here (:class:`FeaturePlan`)
joins each feature in one call, the same bytes
:func:`crimemap.export.geojson.column_bytes` writes, and each store's ``dialect``
module gives the few functions that differ (:class:`JsonDialect`): how a string
is quoted as JSON, how a double is written, how a code is looked up in our own
vocabulary, how the parts are joined.

Exactness comes first. Where the engine cannot promise orjson's bytes (a double
PostgreSQL writes in another notation; a value of an unexpected type), that part
is SQL ``NULL``, joined as :data:`UNEXACT`, and the caller renders the page in
Python instead (:func:`all_exact`). Property names, which are user text in a
loaded table, are bound parameters, never SQL.

>>> plan = FeaturePlan(Layout(("name",)), key="gx_id", lng="lng", lat="lat",
...                    columns={"name": JsonColumn("c0", "string")})
>>> sql, params = plan.sql(SQLITE_JSON)  # doctest: +SKIP
>>> params  # doctest: +SKIP
['{"type":"Feature","id":', ',"geometry":', ',"properties":{"name":', '}}']
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Literal

import orjson

from crimemap.query import Scalar

JsonKind = Literal["integer", "double", "string", "boolean", "datetime", "json"]
"""How a column's SQL value is written: a column type, or ``json`` (the expression already renders JSON text)."""

UNEXACT = b"\x01"
"""What a part the engine could not write exactly becomes in a feature (see :attr:`JsonDialect.concat`): a
control character, which no JSON either engine writes holds unescaped. A page that holds one is written
by Python instead."""


def all_exact(features: list[bytes]) -> bool:
    """Whether the engine wrote every feature of a page exactly (none holds :data:`UNEXACT`)."""
    return not any(map(operator.contains, features, repeat(UNEXACT)))


@dataclass(frozen=True)
class JsonColumn:
    """One column as the engine renders it: its SQL expression and how its value is written."""

    expr: str
    kind: JsonKind


@dataclass(frozen=True)
class JsonDialect:
    """What an engine spells its own way when it writes JSON (each store's ``dialect`` module gives one).

    Each writer takes a SQL expression and returns SQL that renders its value as
    JSON text, ``'null'`` for SQL ``NULL``, or SQL ``NULL`` where the engine
    cannot match orjson exactly (see the module docstring).
    """

    placeholder: str
    concat: Callable[[list[str]], str]
    """SQL joining the parts' texts into one, a part that is NULL as :data:`UNEXACT` (one function call, not
    ``||`` after ``||``, which copies the text made so far at each step)."""
    integer: Callable[[str], str]
    double: Callable[[str], str]
    string: Callable[[str], str]
    boolean: Callable[[str], str]
    lookup: Callable[[str, Sequence[str]], str]
    """``lookup(code, texts)``: the text whose index is the code, ``texts`` being our own ready JSON, never user
    text (SQL ``NULL`` for a code out of range)."""


@dataclass(frozen=True)
class Layout:
    """How a page's features are written: which properties in which order, and which members.

    ``names`` are property names in output order; a name in ``key_as_text``
    is the feature's key as a JSON string (Maps Engine's ``gx_id``).
    ``with_id`` writes the key as the feature's ``id``; ``with_geometry``
    False leaves the ``geometry`` member out.
    """

    names: tuple[str, ...]
    key_as_text: frozenset[str] = frozenset()
    with_id: bool = True
    with_geometry: bool = True


@dataclass(frozen=True)
class FeaturePlan:
    """A feature of one table as one SQL expression: its key, its point, and its columns as JSON."""

    layout: Layout
    key: str
    lng: str
    lat: str
    columns: dict[str, JsonColumn] = field(default_factory=dict)

    def sql(self, dialect: JsonDialect) -> tuple[str, list[Scalar]]:
        """The SQL expression of one feature's GeoJSON text, and the parameters it binds, in order."""
        parts: list[str] = []
        params: list[Scalar] = []

        def fixed(text: str) -> None:
            parts.append(dialect.placeholder)
            params.append(text)

        layout = self.layout
        head = '{"type":"Feature"'
        if layout.with_id:
            fixed(head + ',"id":')
            parts.append(dialect.integer(self.key))
            head = ""
        if layout.with_geometry:
            fixed(head + ',"geometry":')
            parts.append(self._point(dialect))
            head = ""
        opening = ',"properties":{'
        for i, name in enumerate(layout.names):
            fixed(head + opening + ("," if i else "") + orjson.dumps(name).decode() + ":")
            head = opening = ""
            parts.append(self._value(name, dialect))
        fixed(head + (opening + "}}" if opening else "}}"))
        return dialect.concat(parts), params

    def _point(self, dialect: JsonDialect) -> str:
        lng, lat = dialect.double(self.lng), dialect.double(self.lat)
        return (
            f"CASE WHEN {self.lng} IS NULL THEN 'null' ELSE"
            f" '{{\"type\":\"Point\",\"coordinates\":[' || {lng} || ',' || {lat} || ']}}' END"
        )

    def _value(self, name: str, dialect: JsonDialect) -> str:
        if name in self.layout.key_as_text:
            return "'\"' || " + dialect.integer(self.key) + " || '\"'"
        column = self.columns[name]
        if column.kind == "json":
            return column.expr
        writer = {
            "integer": dialect.integer,
            "double": dialect.double,
            "string": dialect.string,
            "datetime": dialect.string,
            "boolean": dialect.boolean,
        }[column.kind]
        return writer(column.expr)


@dataclass(frozen=True)
class GeoJSONPage:
    """Features as the engine wrote them, in order, and each one's cursor (its order values, then its key)."""

    features: list[bytes]
    cursors: list[tuple[Scalar, ...]]


def json_texts(values: Sequence[str | None]) -> list[str]:
    """Our own vocabulary as ready JSON (``null`` for None), for :attr:`JsonDialect.lookup`."""
    return [orjson.dumps(v).decode() for v in values]


def sql_literal(text: str) -> str:
    """A SQL string literal of our own text (never user text): quotes doubled, no ``%``.

    >>> sql_literal('"It\\'s"')
    '\\'"It\\'\\'s"\\''
    """
    if "%" in text or "\x00" in text:
        raise ValueError(f"not a literal this module writes: {text!r}")
    return "'" + text.replace("'", "''") + "'"
