"""Loads into the embedded store: one transaction each, with every crime's work done here, once.

A load's records are turned into rows in the process that parses the files
(:func:`prepare`): grid cell, unit vector, persistent-id key, and the crime's
police.uk JSON object (:func:`crimemap.policeuk_json.crime_json`). The writing
process only inserts them, in the clustered order, and at the end dates the
crimes whose outcomes arrived (rewriting the date inside their JSON) in two
set-based statements.

The rows cross as numpy and pyarrow columns and are inserted as they are: the
writer's connection is the ADBC SQLite driver's
for a large load (:mod:`~crimemap.store.sqlite.load_connection`), which binds a whole Arrow
table to an ``INSERT`` in C, where ``sqlite3`` needs a Python value per field (small loads keep
``sqlite3``, given the same tables).
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from crimemap import geo, vocab
from crimemap.errors import StoreError
from crimemap.months import parse_month
from crimemap.records import Feature
from crimemap.store.batches import NO_MONTH, NO_OUTCOME, CrimeBatch, OutcomeBatch, pid_bytes
from crimemap.store.catalogue import CRIMES_TABLE, STOPS_TABLE, TableInfo
from crimemap.store.documents import Documents
from crimemap.store.load_counts import LoadCounts
from crimemap.store.records import FORCE_IDS
from crimemap.store.sqlite import boundaries as shape_tables
from crimemap.store.sqlite import stats
from crimemap.store.sqlite import stops as stop_store
from crimemap.store.sqlite.load_connection import LoadConnection, sorting_in_runs
from crimemap.store.sqlite.schema import INDEXES, outcome_json, pid_text
from crimemap.store.stop_rows import prepare_stops
from crimemap.store.writer import StoreWriter

CRIME_COLUMNS = (
    "month, cell, id, force, category, lng, lat, street_id, street_name, pid_key,"
    " location_subtype, context, lsoa, falls_within, outcome, outcome_month, json"
)
CRIME_INSERT = f"INSERT INTO crimes ({CRIME_COLUMNS}) VALUES ({', '.join('?' * 17)})"
"""A prepared crime row (see :func:`prepare_crimes`)."""
OUTCOME_INSERT = "INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
STREET_INSERT = "INSERT OR IGNORE INTO streets VALUES (?, ?, ?, ?, ?)"

_DOCUMENTS = Documents("?")
_STREET_NAME_COLUMN = 7
_OUTCOME_COLUMN = 12
_JSON_COLUMN = 14
"""Where ``outcome`` and ``json`` are among :attr:`PreparedCrimes.columns`."""

DATE_MARK = '"},"persistent_id":'
"""What follows the ``YYYY-MM`` date of a crime's ``outcome_status`` in its JSON, and nothing else in it."""


def json_with_date(json: str, month_sql: str) -> str:
    """SQL for ``json`` with its outcome date replaced by the ``YYYY-MM`` text of ``month_sql``."""
    at = f"instr({json}, '{DATE_MARK}')"
    text = f"printf('%04d-%02d', ({month_sql}) / 12, ({month_sql}) % 12 + 1)"
    return f"substr({json}, 1, {at} - 8) || {text} || substr({json}, {at})"


# -- preparing rows (in the parsing process) ----------------------------------------------------------------


@dataclass
class PreparedCrimes:
    """A chunk of crimes as the writer inserts them: columns of values, and what goes beside them.

    ``lsoa`` holds indices into ``lsoas`` (the chunk's distinct code and name
    pairs), which the writer turns into the store's numbers. ``columns`` are in
    :data:`CRIME_INSERT`'s order from ``cell`` on, ``lsoa`` left out: numpy and
    pyarrow arrays, which cross from the parsing process to the writing one as
    whole buffers and are bound as they are (:func:`arrow`).
    """

    month: int
    columns: list[Any]
    lsoa: np.ndarray
    lsoas: pa.Table
    """The distinct (``lsoa_code``, ``lsoa_name``) pairs, in the order their codes are given."""
    streets: pa.Table
    """The chunk's map points, :data:`STREET_INSERT`'s columns (``id, name, lng, lat, cell``)."""
    street_names: pa.Array
    """Each crime's street name (its column in ``columns`` is left empty: the writer fills it in)."""
    street_index: np.ndarray
    """Each crime's place in ``streets`` (-1 without a location)."""
    unknown: dict[int, str]
    forces: dict[int, int]


@dataclass
class PreparedOutcomes:
    """A chunk of outcome rows: :data:`OUTCOME_INSERT`'s columns but ``seq`` (the writer numbers them)."""

    month: int
    force: int
    cell: np.ndarray
    pid: pa.Array
    """The 32 bytes of each row's persistent id."""
    pid_key: np.ndarray
    outcome: np.ndarray
    lng: np.ndarray
    lat: np.ndarray
    unknown: dict[int, str]

    def __len__(self) -> int:
        return len(self.cell)


def plain(column: Any) -> list[Any]:
    """A prepared column as Python values (None where an array is null)."""
    return column.to_pylist() if isinstance(column, pa.Array) else column.tolist()


def arrow(column: Any) -> pa.Array:
    """A prepared column as an Arrow array, to bind (numpy's buffers are taken as they are)."""
    return column if isinstance(column, pa.Array) else pa.array(column)


def prepare(kind: str, records: Any) -> Any:
    """What ``replace_prepared`` inserts (a picklable function of its arguments; see StoreWriter.prepare).

    ``records`` is a :class:`~crimemap.store.batches.CrimeBatch` or
    :class:`~crimemap.store.batches.OutcomeBatch`, or a list of records.
    """
    if kind == "stops":
        return prepare_stops(records)
    if kind == "street":
        return prepare_crimes(records if isinstance(records, CrimeBatch) else CrimeBatch.from_records(records))
    return prepare_outcomes(records if isinstance(records, OutcomeBatch) else OutcomeBatch.from_records(records))


def _nullable(values: np.ndarray, present: np.ndarray) -> pa.Array:
    return pa.array(values, mask=~present)


def _blobs(raw: np.ndarray, present: np.ndarray) -> pa.Array:
    """Each row's 32 bytes, or null (built by pyarrow: no Python per row)."""
    n = len(present)
    validity = pa.array(present).buffers()[1] if not present.all() else None
    return pa.Array.from_buffers(pa.binary(32), n, [validity, pa.py_buffer(np.ascontiguousarray(raw).tobytes())])


def _distinct_pairs(first: pa.Array, second: pa.Array) -> tuple[np.ndarray, list[pa.Array]]:
    """Each row's index into the distinct pairs of two text columns, and those pairs (as two columns)."""
    a, b = first.dictionary_encode(), second.dictionary_encode()
    key = a.indices.to_numpy().astype(np.int64) * max(1, len(b.dictionary)) + b.indices.to_numpy()
    unique, at, inverse = np.unique(key, return_index=True, return_inverse=True)
    return inverse.reshape(len(key)), [first.take(pa.array(at)), second.take(pa.array(at))]


def prepare_crimes(b: CrimeBatch) -> PreparedCrimes:
    """A batch as columns of plain values, in the order it came (the loader sorts a month first)."""
    located = b.located
    has_pid = b.pid_key >= 0
    lsoa, pairs = _distinct_pairs(b.lsoa_code, b.lsoa_name)
    lsoas = pa.table({"lsoa_code": pairs[0], "lsoa_name": pairs[1]})
    street_index = np.full(len(b), -1, dtype=np.int64)
    where = np.flatnonzero(located)
    sids, first, inverse = np.unique(b.street_id[where], return_index=True, return_inverse=True)
    street_index[where] = inverse.reshape(len(where))
    at = where[first]
    streets = pa.table({
        "id": pa.array(sids, pa.int64()), "name": b.street_name.take(pa.array(at, pa.int64())),
        "lng": pa.array(b.lng[at], pa.float64()), "lat": pa.array(b.lat[at], pa.float64()),
        "cell": pa.array(b.cell[at], pa.int64()),
    })  # fmt: skip
    forces, counts = np.unique(b.force, return_counts=True)
    columns: list[Any] = [
        b.cell,
        b.id,
        b.force,
        b.category,
        b.lng,
        b.lat,
        _nullable(b.street_id, located),
        np.zeros(0),
        _nullable(b.pid_key, has_pid),
        b.location_subtype,
        b.context,
        b.falls_within,
        _nullable(b.outcome, b.outcome != NO_OUTCOME),
        _nullable(b.outcome_month, b.outcome_month != NO_MONTH),
        b.json,
    ]
    return PreparedCrimes(
        b.month,
        columns,
        lsoa,
        lsoas,
        streets,
        b.street_name,
        street_index,
        dict(b.unknown_outcomes),
        dict(zip(forces.tolist(), counts.tolist(), strict=True)),
    )


def prepare_outcomes(b: OutcomeBatch) -> PreparedOutcomes:
    """Outcome rows of :data:`OUTCOME_INSERT`, column by column (``seq`` is filled in by the writer)."""
    has_pid, raw = pid_bytes(b.pid)
    return PreparedOutcomes(
        b.month, b.force, b.cell, _blobs(raw, has_pid), b.pid_key, b.outcome, b.lng, b.lat, dict(b.unknown_outcomes)
    )


# -- writing (in the loading process) --------------------------------------------------------------------


BULK_MIN_ROWS = 200_000
"""A load of at least this many rows, and of as many as the store holds, builds its secondary indexes at the end
(:attr:`SQLiteWriter._BULK_DEFERRED_INDEXES`)."""


class SQLiteWriter(StoreWriter):
    """The writes of one load, on one connection in one transaction (see :meth:`SQLiteStore.writer`)."""

    _BULK_DEFERRED_INDEXES = ("crimes_by_pid", "outcomes_by_pid", "crimes_by_id", "crimes_by_kind")
    """Secondary indexes a bulk load builds once at the end, by sorting, instead of row by row.

    The persistent-id keys arrive in random order, the costliest to keep up; ids
    arrive in order, but even appending costs more than one sort at the end.
    """

    def __init__(self, conn: LoadConnection) -> None:
        self.conn = conn
        self.outcome_codes: dict[str, int] = {
            name.lower(): code for code, name in conn.execute("SELECT code, name FROM outcome_kinds")
        }
        self.outcome_names: dict[int, str] = {code: name for name, code in self.outcome_codes.items()}
        self.loaded: dict[str, list[tuple[int, int]]] = {"street": [], "outcomes": [], "dated": []}
        self.deferred_indexes: list[str] = []
        self.written = LoadCounts()

    prepare = staticmethod(prepare)

    def expect(self, rows: int) -> None:
        stored = self.conn.execute("SELECT coalesce(sum(rows), 0) FROM loads").fetchone()[0]
        if rows < max(stored, BULK_MIN_ROWS) or self.deferred_indexes:
            return
        for name in self._BULK_DEFERRED_INDEXES:
            self.deferred_indexes.append(INDEXES[name])
            self.conn.execute(f"DROP INDEX IF EXISTS {name}")

    def _outcome_code(self, name: str) -> int:
        code = self.outcome_codes.get(name.lower())
        if code is None:
            outcome = vocab.outcome_by_name(name)
            code = 1000 + sum(1 for c in self.outcome_codes.values() if c >= 1000)
            self.conn.execute(
                "INSERT INTO outcome_kinds VALUES (?, ?, ?, ?)",
                (code, outcome.slug, outcome.name, outcome_json(outcome.name)),
            )
            self.outcome_codes[name.lower()] = code
            self.outcome_names[code] = outcome.name
        return code

    def _number_unknown_crimes(self, chunk: PreparedCrimes) -> None:
        """Give outcome names new to the store their codes (rare: a new name in an archive).

        The JSON shows the name the store knows the outcome by, which may be an
        earlier spelling of it.
        """
        outcomes, jsons = chunk.columns[_OUTCOME_COLUMN], chunk.columns[_JSON_COLUMN]
        codes = {placeholder: self._outcome_code(name) for placeholder, name in chunk.unknown.items()}
        for i, placeholder in enumerate(outcomes):
            if placeholder is None or placeholder >= 0:
                continue
            code = outcomes[i] = codes[placeholder]
            guessed = vocab.outcome_by_name(chunk.unknown[placeholder]).name
            shown = self.outcome_names[code]
            if shown != guessed:
                old = '"outcome_status":{"category":' + orjson.dumps(guessed).decode()
                new = '"outcome_status":{"category":' + orjson.dumps(shown).decode()
                jsons[i] = jsons[i].replace(old, new, 1)

    def _lsoa_codes(self, chunk: PreparedCrimes) -> np.ndarray:
        """The store's numbers of a chunk's LSOAs, row by row.

        Pairs new to the store are numbered in the chunk's order, as inserting them
        one by one did: the staging table keeps that order in ``i``.
        """
        conn = self.conn
        n = chunk.lsoas.num_rows
        if not n:
            return np.zeros(0, dtype=np.int64)
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS load_lsoas (i INTEGER PRIMARY KEY, lsoa_code, lsoa_name)")
        conn.execute("DELETE FROM temp.load_lsoas")
        conn.executemany(
            "INSERT INTO temp.load_lsoas VALUES (?, ?, ?)", chunk.lsoas.add_column(0, "i", pa.array(np.arange(n)))
        )
        conn.execute(
            "INSERT OR IGNORE INTO lsoas (lsoa_code, lsoa_name) SELECT lsoa_code, lsoa_name FROM temp.load_lsoas"
            " ORDER BY i"
        )
        codes = conn.arrow(
            "SELECT l.code FROM temp.load_lsoas t JOIN lsoas l ON l.lsoa_code = t.lsoa_code"
            " AND l.lsoa_name = t.lsoa_name ORDER BY t.i"
        ).column(0)
        assert len(codes) == n
        return codes.to_numpy()[chunk.lsoa]

    def _record_load(self, month: int, force: int, kind: str, rows: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO loads VALUES (?, ?, ?, ?, ?)",
            (month, force, kind, rows, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
        )

    groups_months = True
    """Street files come a month at a time, every force together, sorted: inserts append to full pages."""

    def replace_prepared(self, kind: str, month: str, force: str, batches: Iterable[Any]) -> int:
        """Replace one force's ``kind`` of ``month``; its crimes' outcome dates are completed at the end."""
        return self._replace(kind, month, (force,), batches, dated=False).get(force, 0)

    def replace_group(self, kind: str, month: str, forces: tuple[str, ...], batches: Iterable[Any]) -> dict[str, int]:
        """Replace ``kind`` of ``month`` for each of ``forces`` by the prepared chunks; rows stored per force.

        The loader's way in (:mod:`crimemap.load.pipeline`): it reads a load's
        outcomes files before its street files and dates each crime by the
        newest of them, so the end of the load need not date these crimes by
        this load's outcomes again (see :meth:`_date_outcomes`).
        """
        return self._replace(kind, month, forces, batches, dated=True)

    def _replace(
        self, kind: str, month: str, forces: tuple[str, ...], batches: Iterable[Any], dated: bool
    ) -> dict[str, int]:
        if kind == "stops":  # one file at a time: crimemap.store.sqlite.stops
            (force,) = forces
            return {force: stop_store.replace_stops(self.conn, month, force_code(force), batches, self._record_load)}
        m = parse_month(month)
        codes = {force_code(f): f for f in forces}
        conn = self.conn
        table = "crimes" if kind == "street" else "outcomes"
        # Rows are only ever stored with their load's record: where there is none, there is nothing to delete
        # (outcomes have no index on their force: each delete read the whole month stored so far).
        stored = {f for (f,) in conn.execute("SELECT force FROM loads WHERE month = ? AND kind = ?", (m, kind))}
        for code in codes:
            if code in stored:
                conn.execute(f"DELETE FROM {table} WHERE month = ? AND force = ?", (m, code))
        if kind == "street":
            self.written.replacing(m, codes)
        counts = dict.fromkeys(codes, 0)
        try:
            for chunk in batches:
                if kind == "street":
                    self._insert_crimes(chunk)
                    for code, n in chunk.forces.items():
                        counts[code] = counts.get(code, 0) + n
                else:
                    self._insert_outcomes(chunk, counts)
            conn.sync()  # a chunk's insert runs on while the next is made: its error shows by here
        except sqlite3.IntegrityError as e:
            if kind != "street":
                raise
            raise StoreError(f"{month}: a crime id is already stored for another crime ({e})") from None
        for code, n in counts.items():
            self._record_load(m, code, kind, n)
            self.loaded[kind].append((m, code))
            if dated and kind == "street":
                self.loaded["dated"].append((m, code))
        return {FORCE_IDS[code]: n for code, n in counts.items()}

    def _insert_crimes(self, chunk: PreparedCrimes) -> None:
        if chunk.unknown:
            types = [arrow(c).type for c in chunk.columns]
            types[_OUTCOME_COLUMN] = pa.int64()
            chunk.columns = [plain(c) for c in chunk.columns]
            self._number_unknown_crimes(chunk)
            chunk.columns = [pa.array(c, t) for c, t in zip(chunk.columns, types, strict=True)]
        n = len(chunk.lsoa)
        lsoa = self._lsoa_codes(chunk)
        self.conn.executemany(STREET_INSERT, chunk.streets)
        cols = [arrow(c) for c in chunk.columns]
        cols[_STREET_NAME_COLUMN] = self._own_street_names(chunk)
        month_column = pa.array(np.full(n, chunk.month, dtype=np.int64))
        table = pa.Table.from_arrays(
            [month_column, *cols[:11], pa.array(lsoa), *cols[11:]], names=[c.strip() for c in CRIME_COLUMNS.split(",")]
        )
        self.conn.executemany(CRIME_INSERT, table)
        self.written.add(table["month"], table["force"], table["category"], table["outcome"], table["cell"])

    def _own_street_names(self, chunk: PreparedCrimes) -> pa.Array:
        """Each crime's street name where it is not its map point's stored name (else null)."""
        if not chunk.streets.num_rows:
            return chunk.street_names
        ids = orjson.dumps(chunk.streets.column("id").to_numpy(), option=orjson.OPT_SERIALIZE_NUMPY).decode()
        names = self.conn.arrow(
            "SELECT s.name FROM json_each(?) j JOIN streets s ON s.id = j.value ORDER BY j.key", (ids,)
        ).column(0)
        assert len(names) == chunk.streets.num_rows
        index = pa.array(chunk.street_index, mask=chunk.street_index < 0)
        same = pc.fill_null(pc.equal(names.take(index), chunk.street_names), False)
        return pc.if_else(same, pa.scalar(None, pa.string()), chunk.street_names)

    def _insert_outcomes(self, chunk: PreparedOutcomes, counts: dict[int, int]) -> None:
        outcome: Any = chunk.outcome
        if chunk.unknown:
            codes = {placeholder: self._outcome_code(name) for placeholder, name in chunk.unknown.items()}
            outcome = [codes.get(o, o) for o in outcome.tolist()]
        seq, n = counts.get(chunk.force, 0), len(chunk)
        table = pa.Table.from_arrays(
            [
                pa.array(np.full(n, chunk.month, dtype=np.int64)), pa.array(np.full(n, chunk.force, dtype=np.int64)),
                pa.array(chunk.cell), pa.array(np.arange(seq, seq + n, dtype=np.int64)),
                chunk.pid.cast(pa.binary()), pa.array(chunk.pid_key), pa.array(outcome, pa.int64()),
                pa.array(chunk.lng), pa.array(chunk.lat),
            ],
            names=["month", "force", "cell", "seq", "pid", "pid_key", "outcome", "lng", "lat"],
        )  # fmt: skip
        self.conn.executemany(OUTCOME_INSERT, table)
        counts[chunk.force] = seq + n

    def replace_table(self, info: TableInfo, features: Iterable[Feature]) -> int:
        if info.id in (CRIMES_TABLE, STOPS_TABLE):
            raise StoreError(f"{info.id!r} is a police.uk table; load police.uk files instead")
        conn = self.conn
        old = conn.execute("SELECT physical, created FROM feature_tables WHERE id = ?", (info.id,)).fetchone()
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if old is not None:
            conn.execute(f"DROP TABLE {old[0]}")
            conn.execute("DELETE FROM feature_tables WHERE id = ?", (info.id,))
        n = conn.execute("SELECT coalesce(max(CAST(substr(physical, 4) AS INTEGER)), 0) + 1 FROM feature_tables")
        physical = f"ft_{n.fetchone()[0]}"
        types = {"integer": "INTEGER", "double": "REAL", "string": "TEXT", "boolean": "INTEGER", "datetime": "TEXT"}
        cols = ", ".join(f"c{i} {types[c.type]}" for i, c in enumerate(info.columns))
        conn.execute(
            f"CREATE TABLE {physical} (gx_id INTEGER PRIMARY KEY, lng REAL, lat REAL, cell INTEGER"
            + (", " + cols if cols else "")
            + shape_tables.columns_sql(info)
            + ")"
        )
        shaped = shape_tables.SHAPE_COLUMNS if info.shapes else 0
        insert = f"INSERT INTO {physical} VALUES ({','.join('?' * (4 + len(info.columns) + shaped))})"
        count = 0
        bbox = [math.inf, math.inf, -math.inf, -math.inf]
        batch: list[tuple[Any, ...]] = []
        for feat in features:
            if feat.lng is not None and feat.lat is not None:
                cell = geo.cell_of(feat.lng, feat.lat)
                bbox = [min(bbox[0], feat.lng), min(bbox[1], feat.lat), max(bbox[2], feat.lng), max(bbox[3], feat.lat)]
            else:
                cell = None
            props = tuple(int(v) if isinstance(v, bool) else v for v in feat.properties)
            if shaped:
                shape = shape_tables.shape_values(feat)
                props = (*props, *shape)
                if shape[0] is not None:
                    w, s, e, n = shape[1:]
                    bbox = [min(bbox[0], w), min(bbox[1], s), max(bbox[2], e), max(bbox[3], n)]
            batch.append((feat.gx_id, feat.lng, feat.lat, cell, *props))
            count += 1
            if len(batch) >= 10_000:
                conn.executemany(insert, batch)
                batch.clear()
        conn.executemany(insert, batch)
        conn.execute(f"CREATE INDEX {physical}_cell ON {physical} (cell)")
        shape_tables.record(conn, info, physical, old[0] if old is not None else None)
        conn.execute(
            "INSERT INTO feature_tables VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                info.id,
                physical,
                info.name,
                info.description,
                orjson.dumps([[c.name, c.type] for c in info.columns]).decode(),
                count,
                orjson.dumps(bbox).decode() if count and math.isfinite(bbox[0]) else None,
                old[1] if old is not None else now,
                now,
            ),
        )
        return count

    def put_documents(self, documents: Iterable[tuple[str, str, str, bytes]]) -> int:
        rows = _DOCUMENTS.rows(documents)
        self.conn.executemany(_DOCUMENTS.upsert, rows)
        return len(rows)

    def delete_documents(self, force: str, kind: str) -> None:
        self.conn.execute(_DOCUMENTS.delete_kind_of_force, (force, kind))

    def finish(self) -> None:
        """Rebuild deferred indexes, complete the outcome dates, name stops, refresh the counts, stamp the load."""
        conn = self.conn
        if self.deferred_indexes:
            with sorting_in_runs(conn):
                for sql in self.deferred_indexes:
                    try:
                        conn.execute(sql)
                    except sqlite3.IntegrityError as e:
                        raise StoreError(f"two crimes of this load share an id ({e}); nothing was stored") from None
        self.deferred_indexes.clear()
        self._date_outcomes()
        if self.loaded["street"]:
            stop_store.name_stops(conn)  # map points this load brought name the stops stored at them
        stats.refresh(conn, self.loaded["street"], self.written)
        stats.refresh_neighbourhoods(conn, self.loaded["street"])
        conn.execute(
            "INSERT INTO meta VALUES ('generation', '1')"
            " ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )
        conn.execute(
            "INSERT OR REPLACE INTO meta VALUES ('last_updated', ?)",
            (dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),),
        )

    def _date_outcomes(self) -> None:
        """A crime's ``outcome_month`` is the newest month of its outcome history; its JSON shows it.

        Only rows related to this load are touched, never the whole store: the
        crimes whose outcomes arrived now, and, when outcomes were stored before,
        this load's crimes. The parsing process already dated the crimes whose
        outcomes came in the same load, so those rows are left as they are.
        """
        conn = self.conn
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS loaded_sets (kind TEXT, month INTEGER, force INTEGER)")
        conn.execute("DELETE FROM temp.loaded_sets")
        conn.executemany(
            "INSERT INTO temp.loaded_sets VALUES (?, ?, ?)",
            [(kind, m, f) for kind, sets in self.loaded.items() for m, f in sets],
        )
        this_load = "(month, force) IN (SELECT month, force FROM temp.loaded_sets WHERE kind = ?)"
        undated = conn.execute(
            f"SELECT 1 FROM loads WHERE kind = 'street' AND rows > 0 AND NOT {this_load} LIMIT 1", ("dated",)
        ).fetchone()
        if self.loaded["outcomes"] and undated:
            # Crimes the parsing process did not date (stored before, or brought as records) need this.
            # Set-based: the newest month of every persistent id this load's outcomes name,
            # over all stored outcomes, then one join that rewrites only the crimes it changes.
            conn.execute("DROP TABLE IF EXISTS temp.newest_outcomes")
            conn.execute(
                "CREATE TEMP TABLE newest_outcomes AS SELECT pid_key, pid, max(month) AS month FROM outcomes"
                f" WHERE pid_key IN (SELECT pid_key FROM outcomes WHERE {this_load}) GROUP BY pid_key, pid",
                ("outcomes",),
            )
            conn.execute(
                f"UPDATE crimes SET outcome_month = n.month, json = {_redated('n.month')}"
                " FROM temp.newest_outcomes AS n"
                f" WHERE crimes.pid_key = n.pid_key AND {pid_text('crimes')} = lower(hex(n.pid))"
                " AND crimes.outcome_month IS NOT n.month"
            )
            conn.execute("DROP TABLE temp.newest_outcomes")
        # Keep a date given with the crime (a harvested one) when no outcome rows are stored for it.
        newest = (
            "coalesce((SELECT max(o.month) FROM outcomes o WHERE o.pid_key = crimes.pid_key"
            f" AND lower(hex(o.pid)) = {pid_text('crimes')}), outcome_month)"
        )
        outcomes_before = conn.execute(
            f"SELECT 1 FROM loads WHERE kind = 'outcomes' AND NOT {this_load} LIMIT 1", ("outcomes",)
        ).fetchone()
        if self.loaded["street"] and outcomes_before:
            conn.execute(
                f"UPDATE crimes SET outcome_month = {newest}, json = {_redated(newest)}"
                f" WHERE {this_load} AND pid_key IS NOT NULL AND outcome_month IS NOT {newest}",
                ("street",),
            )


def _redated(outcome_month: str) -> str:
    """SQL for a crime's JSON showing ``outcome_month`` (else its own month) as its outcome's date."""
    month = f"coalesce({outcome_month}, crimes.month)"
    return f"CASE WHEN crimes.outcome IS NULL THEN crimes.json ELSE {json_with_date('crimes.json', month)} END"


def force_code(force: str) -> int:
    found = vocab.FORCE_BY_ID.get(force)
    if found is None:
        raise StoreError(f"unknown force {force!r}; known forces: {', '.join(FORCE_IDS)}")
    return found.code
