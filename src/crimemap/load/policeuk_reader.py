"""The careful reader of police.uk street and outcomes files: row by row, every field checked.

A wrong header or a bad row raises :class:`~crimemap.load.errors.LoadError`
naming the file and line. The fast columnar reader (:mod:`crimemap.load.columns`)
hands a file to this one when it declines.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from crimemap import vocab
from crimemap.load.errors import LoadError
from crimemap.load.policeuk_files import MAX_ROWS_PER_FILE, OUTCOMES_HEADER, STREET_HEADER, Source, crime_id, street_id
from crimemap.records import Crime, OutcomeRecord


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


@contextmanager
def _rows(source: Source, header: tuple[str, ...]) -> Iterator[csv.reader]:  # type: ignore[valid-type]
    """A csv reader past the header, after checking it (snake_case re-headings are accepted)."""
    with source.open() as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        try:
            got = next(reader)
        except StopIteration:
            raise LoadError(f"{source.label}: line 1: empty file, expected a header") from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise LoadError(f"{source.label}: line 1: unreadable header ({e})") from None
        if tuple(_normalise(h) for h in got) != tuple(_normalise(h) for h in header):
            raise LoadError(
                f"{source.label}: line 1: wrong header for a {source.kind} file;"
                f" expected {','.join(header)}; got {','.join(got)}"
            )
        yield reader


def _coordinates(lng: str, lat: str, where: str) -> tuple[float | None, float | None]:
    if not lng and not lat:
        return None, None
    try:
        x, y = float(lng), float(lat)
    except ValueError:
        raise LoadError(f"{where}: longitude/latitude must be numbers, got {lng!r}, {lat!r}") from None
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        raise LoadError(f"{where}: coordinates out of range: {lng}, {lat}")
    return x, y


def _map_point(
    streets: dict[tuple[str, str, str], int], lng: str, lat: str, name: str, where: str
) -> tuple[float | None, float | None, int | None]:
    """A row's coordinates and street id; ``streets`` remembers the ids a file has already hashed."""
    x, y = _coordinates(lng, lat, where)
    if x is None:
        return None, None, None
    key = (lng, lat, name)
    sid = streets.get(key)
    if sid is None:
        sid = streets[key] = street_id(lng, lat, name)
    return x, y, sid


def read_street(source: Source, outcome_months: Mapping[str, str] | None = None) -> Iterator[Crime]:
    """The crimes of one street file, with their ids, checking every row.

    ``outcome_months`` (persistent id to the month of its latest outcome, from
    the outcomes files of the same load) dates each crime's latest outcome;
    the store completes it from outcomes loaded before.
    """
    dated = outcome_months or {}
    force = vocab.FORCE_BY_ID[source.force]
    location_type = "BTP" if force is vocab.BTP else "Force"
    categories = vocab.CATEGORY_BY_NAME
    base_id = crime_id(source.month, source.force, 0)
    streets: dict[tuple[str, str, str], int] = {}
    with _rows(source, STREET_HEADER) as reader:
        try:
            for row_no, row in enumerate(reader):
                where = f"{source.label}: line {reader.line_num}"
                if len(row) != 12:
                    if not row:
                        continue
                    raise LoadError(f"{where}: expected 12 fields, got {len(row)}")
                pid, month, reported, falls, lng, lat, loc, lcode, lname, ctype, outcome, context = row
                if month != source.month:
                    raise LoadError(f"{where}: month {month!r} in a file for {source.month}")
                category = categories.get(ctype.lower())
                if category is None:
                    raise LoadError(f"{where}: unknown crime type {ctype!r}")
                if pid and not _is_hex(pid):
                    raise LoadError(f"{where}: Crime ID must be 64 hexadecimal characters, got {pid!r}")
                x, y, sid = _map_point(streets, lng, lat, loc, where)
                if row_no >= MAX_ROWS_PER_FILE:
                    raise LoadError(f"{where}: more than {MAX_ROWS_PER_FILE} rows in one file")
                yield Crime(
                    base_id | row_no, month, source.force, falls or force.name, x, y, sid, loc, lcode, lname,
                    category.slug, pid.lower(), location_type, "", context, outcome or None, dated.get(pid.lower()),
                )  # fmt: skip
        except csv.Error as e:
            raise LoadError(f"{source.label}: line {reader.line_num}: {e}") from None
        except UnicodeDecodeError as e:
            raise LoadError(f"{source.label}: near line {reader.line_num}: not UTF-8 text ({e})") from None


def read_outcomes(source: Source) -> Iterator[OutcomeRecord]:
    """The outcome rows of one outcomes file, checking every row."""
    streets: dict[tuple[str, str, str], int] = {}
    with _rows(source, OUTCOMES_HEADER) as reader:
        try:
            for row in reader:
                where = f"{source.label}: line {reader.line_num}"
                if len(row) != 10:
                    if not row:
                        continue
                    raise LoadError(f"{where}: expected 10 fields, got {len(row)}")
                pid, month, _reported, _falls, lng, lat, loc, lcode, lname, outcome = row
                if not _is_hex(pid):
                    raise LoadError(f"{where}: Crime ID must be 64 hexadecimal characters, got {pid!r}")
                if month != source.month:
                    raise LoadError(f"{where}: month {month!r} in a file for {source.month}")
                if not outcome:
                    raise LoadError(f"{where}: empty Outcome type")
                x, y, sid = _map_point(streets, lng, lat, loc, where)
                yield OutcomeRecord(pid.lower(), month, source.force, outcome, x, y, sid, loc, lcode, lname)
        except csv.Error as e:
            raise LoadError(f"{source.label}: line {reader.line_num}: {e}") from None
        except UnicodeDecodeError as e:
            raise LoadError(f"{source.label}: near line {reader.line_num}: not UTF-8 text ({e})") from None


_HEX = re.compile(r"[0-9a-fA-F]{64}")


def _is_hex(text: str) -> bool:
    return _HEX.fullmatch(text) is not None
