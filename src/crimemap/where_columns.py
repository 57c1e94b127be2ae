"""The column lists of the Maps Engine ``select`` and ``orderBy`` parameters, checked against a table's schema."""

from __future__ import annotations

from collections.abc import Mapping

from crimemap.query import OrderKey
from crimemap.where_syntax import (
    GEOMETRY,
    ColumnType,
    Token,
    WhereError,
    check_length,
    check_schema,
    describe,
    tokenize,
    unknown_column,
)


def _column_list(text: str, parameter: str) -> list[tuple[str, int, Token | None]]:
    """``(name, position, word)`` for each item of a comma-separated column list.

    ``word`` is the bare word following the name (``orderBy``'s ASC/DESC), or
    ``None``. Every other bare word is a column name here: ``select`` and
    ``orderBy`` have no keywords of their own.
    """
    tokens = tokenize(text, parameter)
    items: list[tuple[str, int, Token | None]] = []
    i = 0
    while True:
        tok = tokens[i]
        if tok.kind not in ("ident", "qident"):
            raise WhereError(f"expected a column name, found {describe(tok)}", parameter=parameter, position=tok.pos)
        name = tok.value if tok.kind == "qident" else tok.text
        i += 1
        word = None
        if tokens[i].kind == "ident":
            word = tokens[i]
            i += 1
        items.append((name, tok.pos, word))
        if tokens[i].kind == "end":
            return items
        if tokens[i].kind != ",":
            raise WhereError(
                f"expected ',' or the end of {parameter}, found {describe(tokens[i])}",
                parameter=parameter,
                position=tokens[i].pos,
            )
        i += 1


def parse_select(text: str | None, schema: Mapping[str, ColumnType]) -> tuple[str, ...]:
    """The columns a ``select`` parameter names, in its order.

    ``geometry`` may be selected like a column and keeps its place. ``None``
    or a blank ``select`` means every schema column, in schema order, *without*
    ``geometry``: whether an unrestricted read includes the geometry (Maps
    Engine's does) is the caller's decision, made on seeing no ``select``.
    """
    check_schema(schema)
    if text is None or not text.strip():
        return tuple(schema)
    check_length(text, "select")
    if text.strip() == "*":
        raise WhereError("select=* is not supported; leave select out to get every column", parameter="select")
    names: list[str] = []
    for name, pos, word in _column_list(text, "select"):
        if word is not None:
            raise WhereError(
                f"expected ',' after column {name!r}, found {word.text!r}",
                parameter="select",
                position=word.pos,
            )
        if name != GEOMETRY and name not in schema:
            raise WhereError(unknown_column(name, schema), parameter="select", position=pos)
        if name in names:
            raise WhereError(f"column {name!r} is selected twice", parameter="select", position=pos)
        names.append(name)
    return tuple(names)


def parse_order_by(text: str | None, schema: Mapping[str, ColumnType]) -> tuple[OrderKey, ...]:
    """The sort keys of an ``orderBy`` parameter: ``col [ASC|DESC], ...`` (ASC by default).

    ``None`` or a blank ``orderBy`` means no sort keys. ``geometry`` cannot be
    sorted on, and a column may appear only once.
    """
    check_schema(schema)
    if text is None or not text.strip():
        return ()
    check_length(text, "orderBy")
    keys: list[OrderKey] = []
    for name, pos, word in _column_list(text, "orderBy"):
        if name == GEOMETRY:
            raise WhereError("cannot order by geometry", parameter="orderBy", position=pos)
        if name not in schema:
            raise WhereError(unknown_column(name, schema), parameter="orderBy", position=pos)
        direction = None if word is None else word.text.upper()
        if word is not None and direction not in ("ASC", "DESC"):
            raise WhereError(
                f"expected ASC, DESC or ',' after column {name!r}, found {word.text!r}",
                parameter="orderBy",
                position=word.pos,
            )
        if any(k.column == name for k in keys):
            raise WhereError(f"column {name!r} appears twice in orderBy", parameter="orderBy", position=pos)
        keys.append(OrderKey(name, descending=direction == "DESC"))
    return tuple(keys)
