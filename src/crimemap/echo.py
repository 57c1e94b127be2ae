"""Quoting what a client sent back to it in an error message, cut to a readable length.

An error names the value that was wrong, but a 1 MB ``poly`` must not come back
in a 1 MB error: :func:`echo` keeps the first :data:`MAX_ECHO` characters and
says how long the whole was.

>>> echo("2017-1")
"'2017-1'"
>>> echo("x" * 1000, limit=8)
"'xxxxxxxx'... (1,000 characters)"
"""

from __future__ import annotations

import re

MAX_ECHO = 100
"""The most characters of a client's text that an error message repeats (ids and names fit whole)."""

MAX_MESSAGE = 1_000
"""The longest error message any API answers with; longer ones are cut (:func:`bounded`)."""


def echo(text: str, limit: int = MAX_ECHO) -> str:
    """``repr(text)``, cut to ``limit`` characters with the full length said when it is longer."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def cut(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` unquoted, cut as :func:`echo` cuts it."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


def bounded(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` if it is at most ``limit`` characters, else its start and ``...``: a last safeguard."""
    return message if len(message) <= limit else message[: limit - 3] + "..."


_VALUE = re.compile(r"""(?<!\w)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|[^\s'"]+""")
"""A quoted value as ``repr`` writes it (an apostrophe inside a word opens none), or an unbroken run of text."""


def capped(message: str, limit: int = MAX_ECHO) -> str:
    """``message`` with every quoted value and unbroken run over ``limit`` characters cut as :func:`echo` cuts it.

    Every error envelope passes its message through here, so a value quoted without
    :func:`echo` (a parser's message, a path) is cut all the same; then :func:`bounded`.

    >>> capped("zoom must be a whole number, got '" + "9" * 300 + "'", limit=10)
    "zoom must be a whole number, got '9999999999'... (300 characters)"
    >>> capped("unknown parameter " + "p" * 300 + "; the parameters are ...", limit=10)
    'unknown parameter pppppppppp... (300 characters); the parameters are ...'
    """

    def cut_value(match: re.Match[str]) -> str:
        text = match[0]
        if match[1] is not None:
            inner = text[1:-1]
            return text if len(inner) <= limit else f"{text[0]}{inner[:limit]}{text[0]}... ({len(inner):,} characters)"
        if len(text.removesuffix("...")) <= limit:
            return text
        run = text.rstrip(";:,")
        return f"{run[:limit]}... ({len(run):,} characters){text[len(run) :]}"

    return bounded(_VALUE.sub(cut_value, message))
