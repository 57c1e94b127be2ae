"""Read police.uk street and outcomes files column by column, fast: pyarrow's CSV reader and whole-column work.

The careful reader (:func:`crimemap.load.policeuk_reader.read_street`, row by row with
the ``csv`` module) checks every row and names the file and line of the first
bad one. Reading 6 million crimes that way costs most of a minute of Python, so
a file is first read here: parsed by pyarrow, checked column by column, and
turned into a :class:`~crimemap.store.batches.CrimeBatch` with each crime's
ids, cell, unit vector and police.uk JSON computed for whole columns, and once
per distinct map point or value where they repeat.

Anything this reader does not accept as it is (a bad row, an odd number, a
field count that is off) raises :class:`ReadCarefully`, and the loader reads
that file with the careful reader instead: its answer, or its error message,
is the loader's. The two readers give the same batches (tested on the real
files), so which one read a file never shows.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from crimemap import vocab
from crimemap.geometry.areas import unit_vector
from crimemap.load.policeuk_files import MAX_ROWS_PER_FILE, OUTCOMES_HEADER, STREET_HEADER, street_id
from crimemap.months import parse_month
from crimemap.policeuk_json import crime_json_column, location_json, status_json
from crimemap.store.batches import (
    NO_MONTH,
    NO_OUTCOME,
    CrimeBatch,
    OutcomeBatch,
    cells,
    check_of,
    key_of,
    outcome_code,
    pid_bytes,
)


class ReadCarefully(Exception):
    """This file needs the careful reader (see the module docstring)."""


@lru_cache(maxsize=256)
def _normalise(name: str) -> str:
    """A header name as snake_case (the same few names come in every file: each is worked out once)."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def read_table(stream: IO[bytes], header: tuple[str, ...]) -> pa.Table:
    """Every field of a police.uk CSV as text, under its police.uk column name.

    The file is read whole (the largest force's month is tens of megabytes);
    its header is checked here (police.uk's, or a snake_case copy of it).
    """
    data = stream.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    end = data.find(b"\n")
    first_line = (data if end < 0 else data[:end]).rstrip(b"\r")
    try:
        names = next(csv.reader([first_line.decode("utf-8")]))
    except (StopIteration, UnicodeDecodeError, csv.Error):
        raise ReadCarefully("header") from None
    if tuple(_normalise(n) for n in names) != tuple(_normalise(h) for h in header):
        raise ReadCarefully("header")
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(data),
            read_options=pa_csv.ReadOptions(column_names=list(header), skip_rows=1, block_size=1 << 23),
            convert_options=pa_csv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ReadCarefully(str(e)) from None
    return table.combine_chunks()


def _text(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).chunk(0) if table.column(name).num_chunks == 1 else table.column(name).combine_chunks()


_HEX64 = r"^[0-9a-fA-F]{64}$"


def coordinates(lng_text: pa.Array, lat_text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(located, lng, lat)``: both empty is no location; anything else must be two numbers in range."""
    lng_empty = pc.equal(lng_text, "").to_numpy(zero_copy_only=False)
    lat_empty = pc.equal(lat_text, "").to_numpy(zero_copy_only=False)
    if (lng_empty != lat_empty).any():
        raise ReadCarefully("half a coordinate")
    located = ~lng_empty
    lng = np.full(len(lng_text), np.nan)
    lat = np.full(len(lat_text), np.nan)
    if located.any():
        mask = pa.array(located)
        try:
            lng[located] = pc.cast(lng_text.filter(mask), pa.float64()).to_numpy()
            lat[located] = pc.cast(lat_text.filter(mask), pa.float64()).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ReadCarefully("coordinates") from None
        inside = (lng[located] >= -180) & (lng[located] <= 180) & (lat[located] >= -90) & (lat[located] <= 90)
        if not inside.all():
            raise ReadCarefully("coordinates out of range")
    return located, lng, lat


_KEY_SEPARATOR = "\x1f"
"""Joins a map point's longitude, latitude and name texts into one key: the numbers never contain it."""

_NO_POINT = (0, "null", math.nan, math.nan, math.nan)
"""What a row without a location gets: no street id, a null ``location``, no unit vector."""


class MapPoints:
    """Map points met so far in this load, by the text of their coordinates and name.

    police.uk snaps crimes to a fixed set of anonymised points, so the same
    points come back in every month's files: each one's street id (a hash),
    ``location`` JSON and unit vector are computed once per load. A file's
    points are looked up by one joined text key per distinct point, so a point
    met before costs one dictionary lookup.
    """

    def __init__(self) -> None:
        self.known: dict[str, tuple[int, str, float, float, float]] = {}

    def _new(self, key: str, lng: float, lat: float) -> tuple[int, str, float, float, float]:
        lng_text, lat_text, name = key.split(_KEY_SEPARATOR, 2)
        sid = street_id(lng_text, lat_text, name)
        found = self.known[key] = (sid, location_json(lng, lat, sid, name), *unit_vector(lng, lat))
        return found

    def column(
        self,
        located: np.ndarray,
        lng: np.ndarray,
        lat: np.ndarray,
        lng_text: pa.Array,
        lat_text: pa.Array,
        names: pa.Array,
    ) -> tuple[np.ndarray, pa.Array, np.ndarray, np.ndarray, np.ndarray]:
        """Street ids, ``location`` JSON and unit vectors of a column of points (each distinct one looked up once)."""
        n = len(located)
        if not n:
            return np.zeros(0, np.int64), pa.array([], pa.string()), np.zeros(0), np.zeros(0), np.zeros(0)
        encoded = pc.binary_join_element_wise(lng_text, lat_text, names, _KEY_SEPARATOR).dictionary_encode()
        keys = encoded.dictionary.to_pylist()
        inverse = encoded.indices.to_numpy().astype(np.int64)
        first = np.unique(inverse, return_index=True)[1].tolist()
        known, new = self.known, self._new
        found = [
            (known.get(key) or new(key, float(lng[i]), float(lat[i]))) if located[i] else _NO_POINT
            for key, i in zip(keys, first, strict=True)
        ]
        sids, locs, x, y, z = zip(*found, strict=True)
        street_ids = np.array(sids, dtype=np.int64)[inverse]
        location = pa.array(locs, pa.string()).take(pa.array(inverse))
        return street_ids, location, np.array(x)[inverse], np.array(y)[inverse], np.array(z)[inverse]


@dataclass
class OutcomeDates:
    """The newest month of each persistent id's outcomes in the files of this load (read before its street files).

    Kept as two sorted 64-bit keys of the 256-bit id (the first 63 bits, the
    next 64): a crime is dated only when both match. Outcomes stored by earlier
    loads are dated by the store, comparing whole ids.
    """

    keys: list[np.ndarray]
    checks: list[np.ndarray]
    months: list[np.ndarray]
    _sorted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def empty(cls) -> OutcomeDates:
        return cls([], [], [])

    def add(self, batch: OutcomeBatch, check: np.ndarray) -> None:
        """Note the outcomes of one file (``check``: their ids' second keys, see :func:`check_of`)."""
        self.keys.append(batch.pid_key)
        self.checks.append(check)
        self.months.append(np.full(len(batch), batch.month, dtype=np.int32))
        self._sorted = None

    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._sorted is None:
            keys = np.concatenate(self.keys) if self.keys else np.zeros(0, np.int64)
            checks = np.concatenate(self.checks) if self.checks else np.zeros(0, np.int64)
            months = np.concatenate(self.months) if self.months else np.zeros(0, np.int32)
            order = np.lexsort((-months, checks, keys))  # per id, the newest month first
            keys, checks, months = keys[order], checks[order], months[order]
            first = np.ones(len(keys), dtype=bool)
            first[1:] = (keys[1:] != keys[:-1]) | (checks[1:] != checks[:-1])
            self._sorted = (keys[first], checks[first], months[first])
        return self._sorted

    def newest(self, keys: np.ndarray, checks: np.ndarray) -> np.ndarray:
        """For each id (by its two keys), the newest outcome month seen, or ``NO_MONTH``."""
        skeys, schecks, smonths = self._table()
        out = np.full(len(keys), NO_MONTH, dtype=np.int32)
        if not len(skeys):
            return out
        at = np.searchsorted(skeys, keys)
        at = np.minimum(at, len(skeys) - 1)
        # Several ids may share a first key: walk forward while it matches.
        for _ in range(8):
            hit = (skeys[at] == keys) & (schecks[at] == checks) & (out == NO_MONTH)
            out[hit] = smonths[at[hit]]
            step = (skeys[at] == keys) & (schecks[at] != checks) & (at + 1 < len(skeys))
            if not step.any():
                break
            at = np.where(step, at + 1, at)
        return out


def read_street_columns(
    stream: IO[bytes], month: str, force: str, first_id: int, dates: OutcomeDates, points: MapPoints
) -> CrimeBatch:
    """A street file as a batch, or :class:`ReadCarefully` (see the module docstring)."""
    table = read_table(stream, STREET_HEADER)
    n = table.num_rows
    if n > MAX_ROWS_PER_FILE:
        raise ReadCarefully("too many rows")
    if n and not pc.all(pc.equal(_text(table, "Month"), month)).as_py():
        raise ReadCarefully("month")
    types = _text(table, "Crime type").dictionary_encode()
    codes = []
    for name in types.dictionary.to_pylist():
        cat = vocab.CATEGORY_BY_NAME.get(name.lower())
        if cat is None:
            raise ReadCarefully("crime type")
        codes.append(cat.code)
    category = np.array(codes, dtype=np.int16)[types.indices.to_numpy()] if n else np.zeros(0, np.int16)
    pid_text = _text(table, "Crime ID")
    has_pid = pc.not_equal(pid_text, "")
    if n and not pc.all(pc.or_(pc.invert(has_pid), pc.match_substring_regex(pid_text, _HEX64))).as_py():
        raise ReadCarefully("crime id")
    pids = pc.utf8_lower(pid_text)
    lng_text, lat_text = _text(table, "Longitude"), _text(table, "Latitude")
    located, lng, lat = coordinates(lng_text, lat_text)
    names = _text(table, "Location")
    street_ids, location, x, y, z = points.column(located, lng, lat, lng_text, lat_text, names)
    f = vocab.FORCE_BY_ID[force]
    m = parse_month(month)
    has_id, id_bytes = pid_bytes(pids)
    pid_key = key_of(has_id, id_bytes)
    outcome_month = dates.newest(pid_key, check_of(id_bytes))
    outcome_month = np.where(pid_key >= 0, outcome_month, NO_MONTH)
    # Outcomes: a code and shown name per distinct name, then a status object per (outcome, date).
    last = _text(table, "Last outcome category").dictionary_encode()
    unknown: dict[str, int] = {}
    out_codes, shown = [NO_OUTCOME], [""]
    for name in last.dictionary.to_pylist():
        if name:
            code, name_shown = outcome_code(name, unknown)
        else:
            code, name_shown = NO_OUTCOME, ""
        out_codes.append(code)
        shown.append(name_shown)
    out_index = last.indices.to_numpy().astype(np.int64) + 1 if n else np.zeros(0, np.int64)
    outcome = np.array(out_codes, dtype=np.int32)[out_index]
    date = np.where(outcome_month != NO_MONTH, outcome_month, m)
    status_key = out_index * 100_000 + date
    keys, first, inverse = np.unique(status_key, return_index=True, return_inverse=True)
    statuses = [
        status_json(shown[out_index[i]], f"{date[i] // 12:04d}-{date[i] % 12 + 1:02d}")
        if outcome[i] != NO_OUTCOME
        else "null"
        for i in first.tolist()
    ]
    status = pa.array(statuses, pa.string()).take(pa.array(inverse.reshape(n)))
    ids = first_id + np.arange(n, dtype=np.int64)
    falls = _text(table, "Falls within")
    falls = pc.if_else(pc.or_(pc.equal(falls, f.name), pc.equal(falls, "")), pa.scalar(None, pa.string()), falls)
    empty = pa.array([""] * n, pa.string())
    btp = np.full(n, f is vocab.BTP)
    return CrimeBatch(
        month=m,
        id=ids,
        force=np.full(n, f.code, dtype=np.int16),
        category=category,
        located=located,
        lng=lng,
        lat=lat,
        cell=cells(lng, lat, located),
        x=x,
        y=y,
        z=z,
        street_id=street_ids,
        street_name=names,
        pid=pids,
        pid_key=pid_key,
        lsoa_code=_text(table, "LSOA code"),
        lsoa_name=_text(table, "LSOA name"),
        falls_within=falls,
        location_subtype=empty,
        context=_text(table, "Context"),
        outcome=outcome,
        outcome_month=outcome_month,
        json=crime_json_column(month, ids, category, btp, location, _text(table, "Context"), status, pids, empty),
        unknown_outcomes={code: name for name, code in unknown.items()},
    )


def read_outcome_columns(
    stream: IO[bytes], month: str, force: str, points: MapPoints
) -> tuple[OutcomeBatch, np.ndarray]:
    """An outcomes file as a batch and its ids' second keys (for :class:`OutcomeDates`), or :class:`ReadCarefully`."""
    table = read_table(stream, OUTCOMES_HEADER)
    n = table.num_rows
    if n and not pc.all(pc.equal(_text(table, "Month"), month)).as_py():
        raise ReadCarefully("month")
    pid_text = _text(table, "Crime ID")
    if n and not pc.all(pc.match_substring_regex(pid_text, _HEX64)).as_py():
        raise ReadCarefully("crime id")
    kinds = _text(table, "Outcome type").dictionary_encode()
    unknown: dict[str, int] = {}
    codes = []
    for name in kinds.dictionary.to_pylist():
        if not name:
            raise ReadCarefully("empty outcome")
        codes.append(outcome_code(name, unknown)[0])
    outcome = np.array(codes, dtype=np.int32)[kinds.indices.to_numpy()] if n else np.zeros(0, np.int32)
    lng_text, lat_text, names = _text(table, "Longitude"), _text(table, "Latitude"), _text(table, "Location")
    located, lng, lat = coordinates(lng_text, lat_text)
    street_ids = points.column(located, lng, lat, lng_text, lat_text, names)[0]
    pids = pc.utf8_lower(pid_text)
    has_id, id_bytes = pid_bytes(pids)
    batch = OutcomeBatch(
        month=parse_month(month),
        force=vocab.FORCE_BY_ID[force].code,
        pid=pids,
        pid_key=key_of(has_id, id_bytes),
        outcome=outcome,
        located=located,
        lng=lng,
        lat=lat,
        cell=cells(lng, lat, located),
        street_id=street_ids,
        street_name=names,
        unknown_outcomes={code: name for name, code in unknown.items()},
    )
    return batch, check_of(id_bytes)
