"""Read police.uk stop-and-search files: ``YYYY-MM/YYYY-MM-<force>-stop-and-search.csv``.

The third file of every monthly archive, beside street and outcomes. Each row
becomes a :class:`~crimemap.records.Stop`, checked as it is read: a wrong
header, an unknown ``Type``, a ``Date`` that is not ISO 8601, a yes/no column
that is neither ``True`` nor ``False``, or coordinates that are not numbers in
range raise :class:`~crimemap.load.errors.LoadError` naming the file and the
line, and the load stores nothing.

What the files leave out is kept as it is: an empty ``Outcome``, empty yes/no
columns (``None``), rows without coordinates. The file's month is the month of
its stops even when a ``Date`` falls in the month before (the files write UTC:
a stop at 00:30 BST on the 1st is 23:30 on the last day of the month before).

A stop's ``id`` packs its month, its force and its row, as a crime's does
(:func:`~crimemap.load.policeuk_files.crime_id`), so loading a file again gives the
same ids. The street a stop is shown at is decided by the store
(:mod:`crimemap.store.stop_rows`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator

from crimemap.load.errors import LoadError
from crimemap.load.policeuk_files import MAX_ROWS_PER_FILE, Source, crime_id
from crimemap.records import Stop
from crimemap.vocab_stops import STOP_TYPES

STOPS_HEADER = (
    "Type", "Date", "Part of a policing operation", "Policing operation", "Latitude", "Longitude", "Gender",
    "Age range", "Self-defined ethnicity", "Officer-defined ethnicity", "Legislation", "Object of search",
    "Outcome", "Outcome linked to object of search", "Removal of more than just outer clothing",
)  # fmt: skip
"""The header of a stop-and-search file, exactly as police.uk writes it."""

_YES_NO: dict[str, bool | None] = {"": None, "True": True, "False": False, "true": True, "false": False}
_TYPES = frozenset(STOP_TYPES)


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


_WANTED = tuple(_normalise(h) for h in STOPS_HEADER)


def _yes_no(text: str, column: str, where: str) -> bool | None:
    try:
        return _YES_NO[text]
    except KeyError:
        raise LoadError(f"{where}: {column} must be True, False or empty, got {text!r}") from None


def _coordinates(lat: str, lng: str, where: str) -> tuple[float | None, float | None]:
    if not lat and not lng:
        return None, None
    try:
        y, x = float(lat), float(lng)
    except ValueError:
        raise LoadError(f"{where}: latitude/longitude must be numbers, got {lat!r}, {lng!r}") from None
    if not (-90 <= y <= 90 and -180 <= x <= 180):
        raise LoadError(f"{where}: coordinates out of range: {lat}, {lng}")
    return x, y


def _checked_date(text: str, where: str) -> str:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        raise LoadError(f"{where}: Date must be an ISO 8601 date and time, got {text!r}") from None
    return text


def read_stops(source: Source) -> Iterator[Stop]:
    """The stops of one stop-and-search file, with their ids, checking every row."""
    base_id = crime_id(source.month, source.force, 0)
    month, force = source.month, source.force
    with source.open() as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        try:
            header = next(reader, None)
            if header is None:
                raise LoadError(f"{source.label}: line 1: empty file, expected a header")
            if tuple(_normalise(h) for h in header) != _WANTED:
                raise LoadError(
                    f"{source.label}: line 1: wrong header for a stop-and-search file;"
                    f" expected {','.join(STOPS_HEADER)}; got {','.join(header)}"
                )
            dates: dict[str, str] = {}  # a file repeats many date-times: each is checked once
            for row_no, row in enumerate(reader):
                where = f"{source.label}: line {reader.line_num}"
                if len(row) != 15:
                    if not row:
                        continue
                    raise LoadError(f"{where}: expected 15 fields, got {len(row)}")
                (kind, date, operation, operation_name, lat, lng, gender, age, self_defined, officer_defined,
                 legislation, target, outcome, linked, removal) = row  # fmt: skip
                if kind and kind not in _TYPES:
                    raise LoadError(f"{where}: unknown Type {kind!r}; expected one of {', '.join(STOP_TYPES)}")
                checked = dates.get(date)
                if checked is None:
                    checked = dates[date] = _checked_date(date, where)
                x, y = _coordinates(lat, lng, where)
                if row_no >= MAX_ROWS_PER_FILE:
                    raise LoadError(f"{where}: more than {MAX_ROWS_PER_FILE} rows in one file")
                yield Stop(
                    base_id | row_no, month, force, kind, checked,
                    _yes_no(operation, "Part of a policing operation", where), operation_name,
                    x, y, None, "", gender, age, self_defined, officer_defined, legislation, target, outcome,
                    _yes_no(linked, "Outcome linked to object of search", where),
                    _yes_no(removal, "Removal of more than just outer clothing", where),
                )  # fmt: skip
        except csv.Error as e:
            raise LoadError(f"{source.label}: line {reader.line_num}: {e}") from None
        except UnicodeDecodeError as e:
            raise LoadError(f"{source.label}: near line {reader.line_num}: not UTF-8 text ({e})") from None
