"""Loads into the embedded store: one transaction each, with every crime's work done here, once.

A load's records are turned into rows in the process that parses the files
(:func:`prepare`): grid cell, unit vector, persistent-id key, and the crime's
police.uk JSON object (:func:`crimemap.policeuk_json.crime_json`). The writing
process only inserts them, in the clustered order, and at the end dates the
crimes whose outcomes arrived (rewriting the date inside their JSON) in two
set-based statements.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import sqlite3
from collections.abc import Iterable
from typing import Any

import orjson

from crimemap import geo, vocab
from crimemap.months import parse_month
from crimemap.policeuk_json import crime_json
from crimemap.store.areas import unit_vector
from crimemap.store.base import CRIMES_TABLE, Crime, Feature, OutcomeRecord, StoreError, StoreWriter, TableInfo
from crimemap.store.records import FORCE_IDS, KNOWN_OUTCOMES
from crimemap.store.sqlite.crimes import pid_key
from crimemap.store.sqlite.schema import INDEXES, outcome_json

CRIME_INSERT = (
    "INSERT INTO crimes (month, cell, id, force, category, x, y, z, lng, lat, street_id, street_name, pid, pid_key,"
    " location_subtype, context, lsoa, falls_within, outcome, outcome_month, json)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " (SELECT code FROM lsoas WHERE lsoa_code = ? AND lsoa_name = ?), ?, ?, ?, ?)"
)
"""A prepared crime row (see :func:`prepare_crimes`): its LSOA's code and name become the LSOA's number."""
LSOA_INSERT = "INSERT OR IGNORE INTO lsoas (lsoa_code, lsoa_name) VALUES (?, ?)"
OUTCOME_INSERT = "INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
STREET_INSERT = "INSERT OR IGNORE INTO streets VALUES (?, ?, ?, ?, ?)"

_CRIME_OUTCOME_AT = 19
_CRIME_JSON_AT = 21
_LSOA_AT = 16

DATE_MARK = '"},"persistent_id":'
"""What follows the ``YYYY-MM`` date of a crime's ``outcome_status`` in its JSON, and nothing else in it."""


def json_with_date(json: str, month_sql: str) -> str:
    """SQL for ``json`` with its outcome date replaced by the ``YYYY-MM`` text of ``month_sql``."""
    at = f"instr({json}, '{DATE_MARK}')"
    text = f"printf('%04d-%02d', ({month_sql}) / 12, ({month_sql}) % 12 + 1)"
    return f"substr({json}, 1, {at} - 8) || {text} || substr({json}, {at})"


# -- preparing rows (in the parsing process) ----------------------------------------------------------------


def prepare(kind: str, records: list[Any]) -> Any:
    """Rows for ``replace_prepared`` (a picklable function of its arguments; see StoreWriter.prepare)."""
    return prepare_crimes(records) if kind == "street" else prepare_outcomes(records)


def _outcome_code(name: str, unknown: dict[str, int]) -> tuple[int, str]:
    """The stored code of an outcome name and the name crimemap shows for it.

    Names the vocabulary does not know get negative placeholder codes, which the
    writing process numbers (and whose shown name it may correct).
    """
    code = KNOWN_OUTCOMES.get(name.lower())
    if code is not None:
        return code, vocab.OUTCOME_BY_CODE[code].name
    return unknown.setdefault(name, -1 - len(unknown)), vocab.outcome_by_name(name).name


def prepare_crimes(crimes: list[Crime]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[int, str]]:
    """Crime records to rows of :data:`CRIME_INSERT`, sorted by the clustered key, and the map points."""
    if not crimes:
        return [], [], {}
    month = parse_month(crimes[0].month)
    force = vocab.FORCE_BY_ID[crimes[0].force]
    categories = {c.slug: c.code for c in vocab.CATEGORIES}
    unknown: dict[str, int] = {}
    rows = []
    streets: dict[int, tuple[Any, ...]] = {}
    month_of = functools.lru_cache(maxsize=None)(parse_month)
    for c in crimes:
        lng, lat = c.lng, c.lat
        if lng is None or lat is None:
            cell, x, y, z = geo.NO_CELL, None, None, None
        else:
            cell = geo.cell_of(lng, lat)
            x, y, z = unit_vector(lng, lat)
            sid = c.street_id
            if sid is not None and sid not in streets:
                streets[sid] = (sid, c.street_name, lng, lat, cell)
        outcome: int | None = None
        if c.outcome:
            outcome, shown = _outcome_code(c.outcome, unknown)
            c = c._replace(outcome=shown)
        pid = bytes.fromhex(c.persistent_id) if c.persistent_id else None
        rows.append(
            (
                month, cell, c.id, force.code, categories[c.category], x, y, z, lng, lat, c.street_id, c.street_name,
                pid, pid_key(pid) if pid else None, c.location_subtype, c.context, c.lsoa_code, c.lsoa_name,
                None if c.falls_within == force.name else c.falls_within, outcome,
                month_of(c.outcome_month) if c.outcome_month else None, crime_json(c).decode(),
            )
        )  # fmt: skip
    rows.sort(key=lambda r: (r[1], r[2]))
    return rows, list(streets.values()), {code: name for name, code in unknown.items()}


def prepare_outcomes(outcomes: list[OutcomeRecord]) -> tuple[list[tuple[Any, ...]], list[Any], dict[int, str]]:
    """Outcome records to rows of :data:`OUTCOME_INSERT` (``seq`` is filled in by the writer)."""
    unknown: dict[str, int] = {}
    rows = []
    month = parse_month(outcomes[0].month) if outcomes else 0
    force = vocab.FORCE_BY_ID[outcomes[0].force].code if outcomes else 0
    for o in outcomes:
        cell = geo.NO_CELL if o.lng is None or o.lat is None else geo.cell_of(o.lng, o.lat)
        code, _ = _outcome_code(o.outcome, unknown)
        pid = bytes.fromhex(o.persistent_id)
        rows.append((month, force, cell, 0, pid, pid_key(pid), code, o.lng, o.lat))
    return rows, [], {code: name for name, code in unknown.items()}


# -- writing (in the loading process) --------------------------------------------------------------------


class SQLiteWriter(StoreWriter):
    """The writes of one load, on one connection in one transaction (see :meth:`SQLiteStore.writer`)."""

    _BULK_DEFERRED_INDEXES = ("crimes_by_pid", "outcomes_by_pid", "crimes_by_id")
    """Secondary indexes a bulk load builds once at the end, by sorting, instead of row by row.

    The persistent-id keys arrive in random order, the costliest to keep up; ids
    arrive in order, but even appending costs more than one sort at the end.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.outcome_codes: dict[str, int] = {
            name.lower(): code for code, name in conn.execute("SELECT code, name FROM outcome_kinds")
        }
        self.outcome_names: dict[int, str] = {code: name for name, code in self.outcome_codes.items()}
        self.loaded: dict[str, list[tuple[int, int]]] = {"street": [], "outcomes": []}
        self.deferred_indexes: list[str] = []

    prepare = staticmethod(prepare)

    def expect(self, rows: int) -> None:
        stored = self.conn.execute("SELECT coalesce(sum(rows), 0) FROM loads").fetchone()[0]
        if rows < max(stored, 200_000) or self.deferred_indexes:
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

    def _number_unknown(self, rows: list[tuple[Any, ...]], unknown: dict[int, str], column: int, kind: str) -> None:
        """Give outcome names new to the store their codes (rare: a new name in an archive)."""
        codes = {placeholder: self._outcome_code(name) for placeholder, name in unknown.items()}
        for i, row in enumerate(rows):
            placeholder = row[column]
            if placeholder is None or placeholder >= 0:
                continue
            code = codes[placeholder]
            row = row[:column] + (code,) + row[column + 1 :]
            if kind == "street":
                # The JSON shows the name the store knows this outcome by (an earlier spelling).
                guessed = vocab.outcome_by_name(unknown[placeholder]).name
                shown = self.outcome_names[code]
                if shown != guessed:
                    old = b'"outcome_status":{"category":' + orjson.dumps(guessed)
                    new = b'"outcome_status":{"category":' + orjson.dumps(shown)
                    fixed = row[_CRIME_JSON_AT].encode().replace(old, new, 1).decode()
                    row = row[:_CRIME_JSON_AT] + (fixed,) + row[_CRIME_JSON_AT + 1 :]
            rows[i] = row

    def _record_load(self, month: int, force: int, kind: str, rows: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO loads VALUES (?, ?, ?, ?, ?)",
            (month, force, kind, rows, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
        )

    def replace_prepared(self, kind: str, month: str, force: str, batches: Iterable[Any]) -> int:
        m, f = parse_month(month), force_code(force)
        conn = self.conn
        table = "crimes" if kind == "street" else "outcomes"
        conn.execute(f"DELETE FROM {table} WHERE month = ? AND force = ?", (m, f))
        count = 0
        for rows, streets, unknown in batches:
            if unknown:
                self._number_unknown(rows, unknown, _CRIME_OUTCOME_AT if kind == "street" else 6, kind)
            if kind == "street":
                conn.executemany(LSOA_INSERT, {(r[_LSOA_AT], r[_LSOA_AT + 1]) for r in rows})
                try:
                    conn.executemany(CRIME_INSERT, rows)
                except sqlite3.IntegrityError as e:
                    raise StoreError(f"{month} {force}: a crime id is already stored for another crime ({e})") from None
            else:
                conn.executemany(OUTCOME_INSERT, [(r[0], r[1], r[2], count + i, *r[4:]) for i, r in enumerate(rows)])
            conn.executemany(STREET_INSERT, streets)
            count += len(rows)
        self._record_load(m, f, kind, count)
        self.loaded[kind].append((m, f))
        return count

    def replace_table(self, info: TableInfo, features: Iterable[Feature]) -> int:
        if info.id == CRIMES_TABLE:
            raise StoreError(f"{CRIMES_TABLE!r} is the police.uk crimes table; load police.uk files instead")
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
            + ")"
        )
        insert = f"INSERT INTO {physical} VALUES ({','.join('?' * (4 + len(info.columns)))})"
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
            batch.append((feat.gx_id, feat.lng, feat.lat, cell, *props))
            count += 1
            if len(batch) >= 10_000:
                conn.executemany(insert, batch)
                batch.clear()
        conn.executemany(insert, batch)
        conn.execute(f"CREATE INDEX {physical}_cell ON {physical} (cell)")
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

    def finish(self) -> None:
        """Rebuild deferred indexes, complete the outcome dates, stamp the load."""
        conn = self.conn
        for sql in self.deferred_indexes:
            try:
                conn.execute(sql)
            except sqlite3.IntegrityError as e:
                raise StoreError(f"two crimes of this load share an id ({e}); nothing was stored") from None
        self.deferred_indexes.clear()
        self._date_outcomes()
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
        if self.loaded["outcomes"]:
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
                " WHERE crimes.pid_key = n.pid_key AND crimes.pid = n.pid AND crimes.outcome_month IS NOT n.month"
            )
            conn.execute("DROP TABLE temp.newest_outcomes")
        # Keep a date given with the crime (a harvested one) when no outcome rows are stored for it.
        newest = (
            "coalesce((SELECT max(o.month) FROM outcomes o WHERE o.pid_key = crimes.pid_key AND o.pid = crimes.pid),"
            " outcome_month)"
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
