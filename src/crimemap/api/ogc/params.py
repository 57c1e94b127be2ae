"""The query parameters of ``/ogc/collections/{id}/items``, checked and turned into one :class:`ItemsRequest`.

Every parameter is parsed here against the collection's schema and refused
with a 400 naming it if it is not understood (an unknown parameter too, as
OGC API - Features Part 1 requires); nothing after this builds anything from
request text but query values.

- ``bbox``: ``west,south,east,north`` (six numbers with heights are accepted,
  heights ignored) in CRS84; ``west > east`` crosses the antimeridian.
  ``bbox-crs`` and ``filter-crs`` may only name CRS84.
- ``datetime``: an instant (``2017-01-15``, ``2017-01-15T10:00:00Z``) or an
  interval ``start/end`` with ``..`` (or nothing) for an open end, against the
  collection's date column (:func:`temporal_column`): a crime's ``month``
  matches when the month overlaps the instant or interval.
- ``limit``: 1..:data:`MAX_LIMIT` (larger values are served as the maximum, as
  the standard recommends), default :data:`DEFAULT_LIMIT`.
- ``properties``: the columns to return, comma-separated (none: all).
- ``sortby``: ``[+|-]column,...`` (``+`` ascending, the default; ``-`` descending).
- ``filter`` with ``filter-lang`` ``cql2-text`` (default) or ``cql2-json``
  (:mod:`crimemap.cql`).
- ``cursor``: the opaque position the ``next``/``prev`` links carry
  (:mod:`crimemap.api.ogc.pages`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from crimemap import numerals
from crimemap.api.ogc.errors import invalid
from crimemap.cql import FilterError, parse_filter
from crimemap.query import And, Compare, Or, OrderKey, Polygon, Predicate, Within
from crimemap.store.catalogue import CRIMES_TABLE, TableInfo

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84_NAMES = frozenset({CRS84, "https://www.opengis.net/def/crs/OGC/1.3/CRS84", "OGC:CRS84", "CRS84"})
FORMATS = ("json", "geojson")
"""``f`` values accepted: every answer of this API is JSON (features as GeoJSON)."""

ITEMS_PARAMETERS = frozenset(
    {"f", "bbox", "bbox-crs", "datetime", "limit", "properties", "sortby", "filter", "filter-lang", "filter-crs",
     "crs", "cursor", "key"}
)  # fmt: skip
FEATURE_PARAMETERS = frozenset({"f", "properties", "crs", "key"})
METADATA_PARAMETERS = frozenset({"f", "key"})
"""``key`` is the API key of a server that has them (see :mod:`crimemap.api.access`)."""

_INTEGER = re.compile(r"\+?[0-9]{1,12}")
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")


@dataclass(frozen=True)
class ItemsRequest:
    """A checked items request: what to read and show, and the cursor (unread) it continues from."""

    where: Predicate | None
    names: tuple[str, ...]
    """The properties to show, in order."""
    order_by: tuple[OrderKey, ...]
    limit: int
    cursor: str | None
    fingerprint: str
    """What a cursor must have been issued for: the query as parsed."""


def single(params: QueryParams, name: str) -> str | None:
    """A parameter's value; giving one twice is a 400 (no guessing which one was meant)."""
    values = params.getlist(name)
    if len(values) > 1:
        raise invalid(name, f"was given {len(values)} times; give it once")
    return values[0] if values else None


def check_known(params: QueryParams, known: frozenset[str]) -> None:
    """Every parameter is one this resource defines (400 naming the first that is not)."""
    for name in params:
        if name not in known:
            hint = " (follow the next/prev links to page)" if name in ("offset", "startindex", "page") else ""
            raise invalid(name, f"is not a parameter of this resource{hint}; it takes {', '.join(sorted(known))}")
        single(params, name)


def check_format(params: QueryParams) -> None:
    f = single(params, "f")
    if f is not None and f not in FORMATS:
        raise invalid("f", f"this API answers JSON only: f=json (or geojson for features), not {f!r}")


def items_request(params: QueryParams, table: TableInfo) -> ItemsRequest:
    """Check every parameter of an items request (see the module docstring)."""
    check_known(params, ITEMS_PARAMETERS)
    check_format(params)
    _check_crs(params, "bbox-crs")
    _check_crs(params, "filter-crs")
    _check_crs(params, "crs")
    parts: list[Predicate] = []
    area = bbox(single(params, "bbox"))
    if area is not None:
        parts.append(area)
    when = single(params, "datetime")
    if when not in (None, ""):
        parts.extend(datetime_predicates(when, table))
    text = single(params, "filter")
    if text is not None and text.strip():
        lang = single(params, "filter-lang") or "cql2-text"
        try:
            parts.append(parse_filter(text, table.schema, lang))
        except FilterError as e:
            raise invalid(e.parameter, e.message) from None
    where = None if not parts else parts[0] if len(parts) == 1 else And(tuple(parts))
    names = properties(single(params, "properties"), table)
    order_by = sortby(single(params, "sortby"), table)
    size = limit(single(params, "limit"))
    fingerprint = repr((where, names, order_by, size))
    return ItemsRequest(where, names, order_by, size, single(params, "cursor") or None, fingerprint)


def _check_crs(params: QueryParams, name: str) -> None:
    value = single(params, name)
    if value is not None and value.strip("<> ") not in CRS84_NAMES:
        raise invalid(name, f"only {CRS84} (longitude, latitude in WGS 84) is supported, not {value!r}")


def limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    if not _INTEGER.fullmatch(text) or int(text) < 1:
        raise invalid("limit", f"must be a whole number from 1 to {MAX_LIMIT:,}, not {text[:40]!r}")
    return min(int(text), MAX_LIMIT)


def bbox(text: str | None) -> Predicate | None:
    """``Within`` the box (two boxes across the antimeridian), or None without ``bbox``."""
    if text is None or not text.strip():
        return None
    usage = "takes four numbers west,south,east,north in CRS84 longitude/latitude (six with heights)"
    try:
        numbers = [numerals.decimal(v) for v in text.split(",")]
    except ValueError:
        raise invalid("bbox", f"{usage}, not {text[:80]!r}") from None
    if len(numbers) not in (4, 6) or not all(math.isfinite(v) for v in numbers):
        raise invalid("bbox", f"{usage}, not {text[:80]!r}")
    west, south, east, north = numbers if len(numbers) == 4 else (*numbers[0:2], *numbers[3:5])
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise invalid("bbox", "longitudes must be in -180..180 and latitudes in -90..90, with south <= north")
    if west <= east:
        return Within(_box(west, south, east, north))
    return Or((Within(_box(west, south, 180.0, north)), Within(_box(-180.0, south, east, north))))


def _box(west: float, south: float, east: float, north: float) -> Polygon:
    return Polygon(((west, south), (east, south), (east, north), (west, north), (west, south)))


def temporal_column(table: TableInfo) -> str | None:
    """The column ``datetime`` filters on: a crime's ``month``, else a table's first datetime column."""
    if table.id == CRIMES_TABLE:
        return "month"
    return next((c.name for c in table.columns if c.type == "datetime"), None)


def datetime_predicates(text: str, table: TableInfo) -> list[Predicate]:
    """The conditions of a ``datetime`` instant or interval on the table's date column."""
    column = temporal_column(table)
    if column is None:
        raise invalid("datetime", f"collection {table.id!r} has no date or time column to filter on")
    if "/" in text:
        start_text, _, end_text = text.partition("/")
    else:
        start_text = end_text = text
    start, end = _span(start_text, "start"), _span(end_text, "end")
    if start is not None and end is not None and start.first > end.last:
        raise invalid("datetime", f"the interval ends before it starts: {text!r}")
    parts: list[Predicate] = []
    if table.id == CRIMES_TABLE:  # month text YYYY-MM, compared on the stored month
        first = _month_text(start.first) if start is not None else None
        last = _month_text(end.last) if end is not None else None
        if first is not None and first == last:  # one month: equality keeps the (month, ...) indexes usable
            return [Compare(column, "=", first)]
        if first is not None:
            parts.append(Compare(column, ">=", first))
        if last is not None:
            parts.append(Compare(column, "<=", last))
        return parts
    # Datetime columns hold ISO 8601 text (dates, or times in UTC as Z) that sorts as time does.
    if start is not None:
        parts.append(Compare(column, ">=", start.first.date().isoformat() if start.days else _utc_text(start.first)))
    if end is not None and end.last < dt.datetime.max:  # nothing stored is after the last instant there is
        if end.days:
            parts.append(Compare(column, "<", (end.last + dt.timedelta(microseconds=1)).date().isoformat()))
        else:
            parts.append(Compare(column, "<=", _utc_text(end.last)))
    return parts


@dataclass(frozen=True)
class _Span:
    """The time an instant of ``datetime`` stands for: one moment, or whole days (a date, a month)."""

    first: dt.datetime
    last: dt.datetime
    days: bool


def _span(text: str, which: str) -> _Span | None:
    """The span of one end of ``datetime``; None for an open end (``..`` or empty)."""
    text = text.strip()
    if text in ("", ".."):
        return None
    usage = (
        "takes an RFC 3339 instant (2017-01-15 or 2017-01-15T10:00:00Z) or an interval start/end"
        f" with '..' for an open end; the {which} {text[:40]!r} is neither"
    )
    try:
        if _MONTH.fullmatch(text):  # a month, as police.uk names them: the whole month
            first = dt.datetime.strptime(text + "-01", "%Y-%m-%d")
            return _Span(first, _last_before(first, days=32, to_first_of_month=True), True)
        if len(text) == 10:
            day = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
            return _Span(day, _last_before(day, days=1), True)
        moment = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise invalid("datetime", usage) from None
    if moment.tzinfo is not None:
        moment = _in_utc(moment)
    return _Span(moment, moment, False)


def _last_before(first: dt.datetime, days: int, to_first_of_month: bool = False) -> dt.datetime:
    """The last instant of the days (or month) from ``first``; the last instant there is in December 9999."""
    try:
        following = first + dt.timedelta(days=days)
    except OverflowError:
        return dt.datetime.max
    return (following.replace(day=1) if to_first_of_month else following) - dt.timedelta(microseconds=1)


def _in_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC, naive; an offset that takes it out of years 1..9999 gives the first or last instant."""
    try:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:
        return dt.datetime.min if moment.year == dt.MINYEAR else dt.datetime.max


def _month_text(moment: dt.datetime) -> str:
    """``YYYY-MM`` with the year in four digits (``strftime`` writes year 1 as ``1``)."""
    return f"{moment.year:04d}-{moment.month:02d}"


def _utc_text(moment: dt.datetime) -> str:
    return moment.isoformat() + "Z"


def properties(text: str | None, table: TableInfo) -> tuple[str, ...]:
    """The properties to return, in the order asked (all columns without ``properties``)."""
    if text is None:
        return tuple(c.name for c in table.columns)
    names: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if name not in table.schema:
            raise invalid("properties", f"{name!r} is not a property of {table.id!r}; see its queryables")
        if name not in names:
            names.append(name)
    return tuple(names)


def sortby(text: str | None, table: TableInfo) -> tuple[OrderKey, ...]:
    """``[+|-]name,...`` as order keys (a ``+`` sent unencoded arrives as a space, which is the same)."""
    if text is None or not text.strip():
        return ()
    keys: list[OrderKey] = []
    for raw in text.split(","):
        item = raw.strip()
        descending = item.startswith("-")
        name = item[1:].strip() if item[:1] in "+-" and item else item
        if not name:
            raise invalid("sortby", f"takes [+|-]property,... such as -month,+id, not {text[:80]!r}")
        if name not in table.schema:
            raise invalid("sortby", f"{name!r} is not a property of {table.id!r}; see its queryables")
        if any(k.column == name for k in keys):
            raise invalid("sortby", f"{name!r} is given twice")
        keys.append(OrderKey(name, descending))
    return tuple(keys)
