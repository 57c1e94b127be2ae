"""The syntax the Maps Engine ``where``, ``select`` and ``orderBy`` parameters share: tokens, column names, errors.

:func:`tokenize` cuts a clause into tokens (numbers, strings, words, quoted
column names, operators), and :class:`WhereError` names the parameter, the
problem and the character where it happened. The ``where`` parser is
:mod:`crimemap.where`, the column lists of ``select`` and ``orderBy``
:mod:`crimemap.where_columns`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

ColumnType: TypeAlias = Literal["integer", "double", "string", "boolean", "datetime"]

GEOMETRY = "geometry"
"""The name of a feature's geometry in ``where``, ``select`` and ``orderBy``."""

MAX_CLAUSE_CHARS = 16 * 1024
"""Longest ``where``/``select``/``orderBy`` text accepted, in characters."""

COLUMN_TYPES = frozenset({"integer", "double", "string", "boolean", "datetime"})
KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "CONTAINS", "TRUE", "FALSE"})


class WhereError(ValueError):
    """A malformed or unsupported clause.

    ``parameter`` names the request parameter (``'where'``, ``'select'`` or
    ``'orderBy'``); ``position`` is the 0-based offset of the offending
    character, or ``None`` when the problem is the clause as a whole. The
    message says what is wrong and, when known, where ("at character N",
    counting from 1), so it can be shown to the API's caller as it is.
    """

    parameter: str
    position: int | None

    def __init__(self, message: str, *, parameter: str = "where", position: int | None = None) -> None:
        if position is not None:
            message = f"{message} (at character {position + 1})"
        super().__init__(message)
        self.parameter = parameter
        self.position = position
        self.message = message


# ---- tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is num, str, ident, qident, op, one of ``(),+-``, or end."""

    kind: str
    text: str
    pos: int
    value: str = ""  # the unquoted text of a str or qident token


TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<num>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<op><>|<=|>=|!=|=|<|>)
    | (?P<punct>[(),+-])
    | (?P<ident>[^\W\d]\w*)
    """,
    re.VERBOSE,
)
WORD_TAIL = re.compile(r"[\w.]*")
QUOTES = {"'": "string", '"': "quoted column name", "`": "quoted column name"}


def read_quoted(text: str, start: int, parameter: str) -> tuple[str, int]:
    """The unquoted content of the quoted token at ``start`` and the offset after it."""
    quote = text[start]
    parts: list[str] = []
    i = start + 1
    while True:
        j = text.find(quote, i)
        if j < 0:
            raise WhereError(f"unterminated {QUOTES[quote]}", parameter=parameter, position=start)
        if text.startswith(quote * 2, j):
            parts.append(text[i : j + 1])
            i = j + 2
            continue
        parts.append(text[i:j])
        return "".join(parts), j + 1


def tokenize(text: str, parameter: str) -> list[Token]:
    """Split ``text`` into tokens, refusing comments, ``;`` and any stray character."""
    tokens: list[Token] = []
    pos, n = 0, len(text)
    while pos < n:
        ch = text[pos]
        if ch in QUOTES:
            value, end = read_quoted(text, pos, parameter)
            tokens.append(Token("str" if ch == "'" else "qident", text[pos:end], pos, value))
            pos = end
            continue
        if text.startswith("--", pos) or text.startswith("/*", pos):
            raise WhereError("comments are not allowed", parameter=parameter, position=pos)
        if ch == ";":
            raise WhereError(
                "';' is not allowed: a clause is one condition, not a statement",
                parameter=parameter,
                position=pos,
            )
        m = TOKEN.match(text, pos)
        if m is None:
            raise WhereError(f"unexpected character {ch!r}", parameter=parameter, position=pos)
        kind, end = m.lastgroup or "", m.end()
        if kind == "num" and end < n and (text[end].isalnum() or text[end] in "._"):
            tail = WORD_TAIL.match(text, end)
            bad = text[pos:end] + (tail.group() if tail else "")
            raise WhereError(f"malformed number {bad!r}", parameter=parameter, position=pos)
        if kind == "punct":
            kind = m.group()
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = end
    tokens.append(Token("end", "", n))
    return tokens


def describe(tok: Token) -> str:
    if tok.kind == "end":
        return "the end of the clause"
    text = tok.text if len(tok.text) <= 40 else tok.text[:37] + "..."
    return f"the string {text}" if tok.kind == "str" else repr(text)


def check_length(text: str, parameter: str) -> None:
    if len(text) > MAX_CLAUSE_CHARS:
        raise WhereError(
            f"{parameter} is {len(text)} characters long; the limit is {MAX_CLAUSE_CHARS}",
            parameter=parameter,
        )


def check_schema(schema: Mapping[str, ColumnType]) -> None:
    for name, ctype in schema.items():
        if ctype not in COLUMN_TYPES:  # a server bug, not the caller's: not a WhereError
            raise ValueError(f"column {name!r} has unknown type {ctype!r}")


def unknown_column(name: str, schema: Mapping[str, ColumnType], quoted_with: str = "") -> str:
    message = f"unknown column {name!r}"
    near = [c for c in schema if c.lower() == name.lower()]
    if near:
        message += f" (did you mean {near[0]!r}? column names are case-sensitive)"
    elif quoted_with == '"':
        message += " (double quotes name a column; write strings in single quotes)"
    return message
