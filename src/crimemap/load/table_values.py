"""A table's values: which kind each is, the column type its kinds make, and conversion to that type.

The rules are the decisions of :mod:`crimemap.load.tables`: a GeoJSON table
keeps the JSON types it was given, a CSV table's types are inferred from its
text.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crimemap.query import Scalar
from crimemap.store.catalogue import ColumnType

INT64 = 2**63 - 1


@dataclass
class ColumnStats:
    """Which kinds of value a column holds (kinds as :func:`value_kind` names them)."""

    kinds: set[str] = field(default_factory=set)

    def column_type(self) -> ColumnType:
        kinds = self.kinds - {"null"}
        if not kinds:
            return "string"
        if kinds <= {"int", "numstr_int"}:
            return "integer"
        if kinds <= {"int", "float", "numstr_int", "numstr_float"}:
            return "double"
        if kinds == {"bool"}:
            return "boolean"
        if kinds == {"datetime"}:
            return "datetime"
        return "string"


class IdCheck:
    """Whether a sequence of values are distinct integers that fit the store, in constant-ish memory.

    Values are kept in a compact ``array('q')`` (8 bytes each) only to check
    distinctness at the end, and only while they are not already increasing.
    """

    def __init__(self) -> None:
        self.usable = True
        self.seen = False
        self.increasing = True
        self.last: int | None = None
        self.values = array("q")

    def add(self, value: Any) -> None:
        if value is not None:
            self.seen = True
        if not self.usable:
            return
        if isinstance(value, str) and INT_TEXT.fullmatch(value):
            value = int(value)
        if type(value) is not int or not -INT64 <= value <= INT64:
            self.usable = False
            self.values = array("q")
            return
        if self.last is not None and value <= self.last:
            self.increasing = False
        self.last = value
        self.values.append(value)

    def distinct(self) -> bool:
        if not self.usable or self.last is None:
            return False
        if self.increasing:
            return True
        ids = np.frombuffer(self.values, dtype=np.int64)
        return bool(np.unique(ids).size == ids.size)


INT_TEXT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_FLOAT_TEXT = re.compile(r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATETIME_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)


def text_kind(text: str, csv_booleans: bool) -> str:
    stripped = text.strip()
    if not stripped:
        return "null"
    if INT_TEXT.fullmatch(stripped):
        return "numstr_int" if abs(int(stripped)) <= INT64 else "numstr_float"
    if _FLOAT_TEXT.fullmatch(stripped):
        return "numstr_float"
    if _DATETIME_TEXT.fullmatch(stripped) and _parse_datetime(stripped) is not None:
        return "datetime"
    if csv_booleans and stripped.lower() in ("true", "false"):
        return "bool"
    return "string"


def value_kind(value: Any) -> str:
    """A JSON value's kind: null, bool, int, float, datetime, string or nested.

    Strings are never numbers here (a GeoJSON table keeps its JSON types), and
    ``datetime`` only when crimemap would write the value back unchanged.
    """
    t = type(value)
    if value is None:
        return "null"
    if t is bool:
        return "bool"
    if t is int:
        return "int" if abs(value) <= INT64 else "float"
    if t is float:
        return "float" if math.isfinite(value) else "null"
    if t is str:
        return "datetime" if _is_stored_as_given(value) else "string"
    return "nested"


def _is_stored_as_given(text: str) -> bool:
    """Whether ``text`` is an ISO 8601 date or time that a ``datetime`` column stores and serves unchanged."""
    if not _DATETIME_TEXT.fullmatch(text):
        return False
    try:
        return _to_datetime(text) == text
    except ValueError:
        return False


def _parse_datetime(text: str) -> dt.datetime | dt.date | None:
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _to_datetime(value: Any) -> str | None:
    """ISO 8601 text that sorts as time does: ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+hh:mm]``."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    parsed = _parse_datetime(text)
    if parsed is None:
        raise ValueError(f"not an ISO 8601 date or time: {text!r}")
    if not isinstance(parsed, dt.datetime):
        return parsed.isoformat()
    out = parsed.isoformat()
    return out[:-6] + "Z" if out.endswith("+00:00") else out


def _to_integer(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return int(value.strip()) if isinstance(value, str) else int(value)


def _to_double(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = float(value.strip()) if isinstance(value, str) else float(value)
    return number if math.isfinite(number) else None


def _to_boolean(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return None if not text else text == "true"


def _to_string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


CONVERTERS: dict[ColumnType, Callable[[Any], Scalar]] = {
    "integer": _to_integer,
    "double": _to_double,
    "boolean": _to_boolean,
    "datetime": _to_datetime,
    "string": _to_string,
}
