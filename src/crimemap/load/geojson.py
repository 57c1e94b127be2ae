"""Read a GeoJSON FeatureCollection's features one at a time, in constant memory.

``json.load`` of a 4 GB export would need many times that in Python objects;
:func:`iter_feature_collection` holds a window of about a megabyte of text and
one feature at a time, so :mod:`crimemap.load.tables` can read a file twice
(once to infer the schema, once to load) whatever its size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crimemap.load.errors import LoadError

_READ_CHARS = 1 << 20

_WS = re.compile(r"[ \t\n\r]*")


class _JSONStream:
    """Reads JSON values one at a time from a text file, holding only a window of it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.open(encoding="utf-8-sig")
        self.buf = ""
        self.pos = 0
        self.offset = 0  # characters of the file before buf
        self.eof = False
        self.decoder = json.JSONDecoder(parse_constant=lambda _: None)

    def close(self) -> None:
        self.file.close()

    def _more(self) -> bool:
        if self.eof:
            return False
        chunk = self.file.read(max(_READ_CHARS, len(self.buf) - self.pos))
        if not chunk:
            self.eof = True
            return False
        self.offset += self.pos
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def fail(self, message: str) -> LoadError:
        return LoadError(f"{self.path}: {message} (at character {self.offset + self.pos + 1})")

    def peek(self) -> str:
        """The next non-blank character, or '' at the end of the file."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, chars: str, what: str) -> str:
        ch = self.peek()
        if not ch or ch not in chars:
            found = "the end of the file" if not ch else repr(ch)
            raise self.fail(f"expected {what}, found {found}")
        self.pos += 1
        return ch

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                # Only an error at the window's end (or in a string running past it) may be a cut.
                cut = e.pos >= len(self.buf) - 8 or e.msg.startswith("Unterminated string")
                if cut and self._more():
                    continue
                self.pos = e.pos
                raise self.fail(f"not valid JSON: {e.msg}") from None
            # A number that ends the window may go on in the next read.
            if end >= len(self.buf) and not self.eof and self._more():
                continue
            self.pos = end
            return value


def iter_feature_collection(path: Path) -> Iterator[Any]:
    """The members of a GeoJSON FeatureCollection's ``features`` array, one at a time.

    Top-level members may come in any order (``type`` after ``features``, as in
    the NYC Crime Map files); a file whose top-level ``type`` is not
    ``FeatureCollection`` raises :class:`LoadError` once it has been read.
    """
    stream = _JSONStream(path)
    try:
        stream.expect("{", "a GeoJSON FeatureCollection object")
        kind: Any = None
        seen_features = False
        if stream.peek() == "}":
            stream.pos += 1
        else:
            while True:
                key = stream.value()
                if not isinstance(key, str):
                    raise stream.fail("expected a member name")
                stream.expect(":", "':'")
                if key == "features":
                    seen_features = True
                    yield from _array_members(stream)
                else:
                    value = stream.value()
                    if key == "type":
                        kind = value
                if stream.expect(",}", "',' or '}'") == "}":
                    break
        if stream.peek():
            raise stream.fail("unexpected text after the FeatureCollection")
        if kind != "FeatureCollection" or not seen_features:
            raise LoadError(
                f"{path}: not a GeoJSON FeatureCollection (its type is {kind!r}"
                + ("" if seen_features else ", and it has no features array")
                + ")"
            )
    finally:
        stream.close()


def _array_members(stream: _JSONStream) -> Iterator[Any]:
    stream.expect("[", "'[' to open the features array")
    if stream.peek() == "]":
        stream.pos += 1
        return
    while True:
        yield stream.value()
        if stream.expect(",]", "',' or ']' in the features array") == "]":
            return
