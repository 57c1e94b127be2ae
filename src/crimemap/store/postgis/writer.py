"""Loads into the PostGIS store: one transaction each, rows sent as binary ``COPY`` made in the parsing process.

:func:`prepare` runs in the process that parses the files (see
:meth:`crimemap.store.writer.StoreWriter.prepare`): it turns a
:class:`~crimemap.store.batches.CrimeBatch`, whose every crime already has its
cell, unit vector, persistent-id key and police.uk JSON, into the bytes of a
binary ``COPY`` (:mod:`crimemap.store.postgis.copy_binary`), column by column,
with no Python object per crime. The writing process passes them on.

A load is one transaction on a connection of its own, serialised with other
loads by an advisory lock; readers keep reading the committed rows until it
commits. Crimes, outcomes and stops are partitioned by month: each month a load
writes is built aside, as a table of its own, unindexed while its rows are
copied in; its indexes are built once at the end by sorting (about three times
cheaper than keeping them up row by row), and it takes the stored month's place
(:mod:`crimemap.store.postgis.partitions`). So a load costs what the months it
writes hold, however many are stored besides.

The end of the load dates each crime by the newest month of its
outcome history, rewriting the date inside its JSON, in set-based statements
that touch only the rows this load relates to (:meth:`PostGISWriter.date_outcomes`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import psycopg
import psycopg.errors
import pyarrow as pa

from crimemap import vocab
from crimemap.errors import StoreError
from crimemap.months import parse_month
from crimemap.records import Feature
from crimemap.store.batches import NO_MONTH, NO_OUTCOME, CrimeBatch, OutcomeBatch, pid_bytes
from crimemap.store.catalogue import CRIMES_TABLE, Column, TableInfo
from crimemap.store.documents import Documents
from crimemap.store.postgis import boundaries as shape_tables
from crimemap.store.postgis import partitions as months
from crimemap.store.postgis import stats
from crimemap.store.postgis import stops as stop_store
from crimemap.store.postgis.copy_binary import SIGNATURE, TRAILER, CopyRows
from crimemap.store.postgis.tables import COPY_TYPES, pg_type, quote_ident
from crimemap.store.records import FORCE_IDS, KNOWN_OUTCOMES
from crimemap.store.stop_rows import prepare_stops
from crimemap.store.writer import StoreWriter

CRIME_COLUMNS = (
    "id, cell, x, y, z, lng, lat, street_id, pid_key, month, outcome, outcome_month, force, category, pid,"
    " street_name, location_subtype, context, lsoa_code, lsoa_name, falls_within, json"
)
"""The columns of a crime's COPY row, fixed-width first (see :func:`encode_crimes`)."""
OUTCOME_COLUMNS = "cell, pid_key, lng, lat, month, seq, outcome, force, pid"
STREET_COLUMNS = "id, lng, lat, cell, name"

DATE_MARK = '"},"persistent_id":'
"""What follows the ``YYYY-MM`` date of a crime's ``outcome_status`` in its JSON, and nothing else in it
(:func:`crimemap.policeuk_json.crime_json`: ``outcome_status`` comes just before ``persistent_id``)."""

# -- preparing rows (in the parsing process) ----------------------------------------------------------------


@dataclass
class PreparedCrimes:
    """A chunk of crimes as the writer copies them: COPY rows, and the chunk's map points.

    ``batch`` is kept instead of ``rows`` when the chunk names outcomes new to
    the vocabulary: their codes are the store's to give (see
    :meth:`PostGISWriter.renumber`).
    """

    count: int
    forces: dict[int, int]
    rows: bytes
    streets: bytes
    batch: CrimeBatch | None = None


@dataclass
class PreparedOutcomes:
    """An outcomes file's rows as COPY rows (``seq`` counted from 0), or its batch (see :class:`PreparedCrimes`)."""

    month: int
    force: int
    count: int
    rows: bytes
    batch: OutcomeBatch | None = None


def prepare(kind: str, records: Any) -> Any:
    """What :meth:`PostGISWriter.replace_group` copies (a picklable function of its arguments).

    ``records`` is a :class:`~crimemap.store.batches.CrimeBatch` (kind
    ``street``) or :class:`~crimemap.store.batches.OutcomeBatch`, or a list of
    records; or a list of stops (``stops``, see :mod:`crimemap.store.stop_rows`).
    """
    if kind == "stops":
        return prepare_stops(records)
    if kind == "street":
        return prepare_crimes(records if isinstance(records, CrimeBatch) else CrimeBatch.from_records(records))
    o = records if isinstance(records, OutcomeBatch) else OutcomeBatch.from_records(records)
    if o.unknown_outcomes:
        return PreparedOutcomes(o.month, o.force, len(o), b"", o)
    return PreparedOutcomes(o.month, o.force, len(o), encode_outcomes(o))


def prepare_crimes(b: CrimeBatch) -> PreparedCrimes:
    forces, counts = np.unique(b.force, return_counts=True)
    per_force = dict(zip(forces.tolist(), counts.tolist(), strict=True))
    if b.unknown_outcomes:
        return PreparedCrimes(len(b), per_force, b"", encode_streets(b), b)
    return PreparedCrimes(len(b), per_force, encode_crimes(b), encode_streets(b))


def encode_crimes(b: CrimeBatch) -> bytes:
    """COPY rows of :data:`CRIME_COLUMNS` (the batch's outcome codes must all be the store's)."""
    n = len(b)
    has_pid, raw = pid_bytes(b.pid)
    rows = CopyRows(n)
    rows.fixed("int8", b.id)
    rows.fixed("int8", b.cell)
    for column in (b.x, b.y, b.z, b.lng, b.lat):
        rows.fixed("float8", column, b.located)
    rows.fixed("int8", b.street_id, b.located)
    rows.fixed("int8", b.pid_key, has_pid)
    rows.fixed("int4", np.full(n, b.month))
    rows.fixed("int4", b.outcome, b.outcome != NO_OUTCOME)
    rows.fixed("int4", b.outcome_month, b.outcome_month != NO_MONTH)
    rows.fixed("int2", b.force)
    rows.fixed("int2", b.category)
    rows.raw(raw, has_pid)
    for text in (b.street_name, b.location_subtype, b.context, b.lsoa_code, b.lsoa_name, b.falls_within, b.json):
        rows.text(text)
    return rows.encode()


def encode_streets(b: CrimeBatch) -> bytes:
    """COPY rows of :data:`STREET_COLUMNS`: the chunk's map points, each once."""
    where = np.flatnonzero(b.located)
    sids, first = np.unique(b.street_id[where], return_index=True)
    at = where[first]
    rows = CopyRows(len(at))
    rows.fixed("int8", sids)
    rows.fixed("float8", b.lng[at])
    rows.fixed("float8", b.lat[at])
    rows.fixed("int8", b.cell[at])
    rows.text(b.street_name.take(pa.array(at)))
    return rows.encode()


def encode_outcomes(o: OutcomeBatch, first_seq: int = 0) -> bytes:
    """COPY rows of :data:`OUTCOME_COLUMNS`; ``seq`` numbers the rows in file order from ``first_seq``."""
    n = len(o)
    has_pid, raw = pid_bytes(o.pid)
    rows = CopyRows(n)
    rows.fixed("int8", o.cell)
    rows.fixed("int8", o.pid_key)
    rows.fixed("float8", o.lng, o.located)
    rows.fixed("float8", o.lat, o.located)
    rows.fixed("int4", np.full(n, o.month))
    rows.fixed("int4", first_seq + np.arange(n))
    rows.fixed("int4", o.outcome)
    rows.fixed("int2", np.full(n, o.force))
    rows.raw(raw, has_pid)
    return rows.encode()


# -- writing (in the loading process) --------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def force_code(force: str) -> int:
    found = vocab.FORCE_BY_ID.get(force)
    if found is None:
        raise StoreError(f"unknown force {force!r}; known forces: {', '.join(FORCE_IDS)}")
    return found.code


def _month_text(month_sql: str) -> str:
    """SQL for the ``YYYY-MM`` text of a month number, as :func:`crimemap.months.format_month` writes it."""
    return f"lpad((({month_sql}) / 12)::text, 4, '0') || '-' || lpad((mod({month_sql}, 12) + 1)::text, 2, '0')"


def redated_json(table: str, month_sql: str) -> str:
    """SQL for a crime's JSON showing ``month_sql`` (else its own month) as its outcome's date."""
    at = f"position('{DATE_MARK}' in {table}.json)"
    month = _month_text(f"coalesce({month_sql}, {table}.month)")
    return (
        f"CASE WHEN {table}.outcome IS NULL THEN {table}.json"
        f" ELSE overlay({table}.json placing {month} from {at} - 7 for 7) END"
    )


_DOCUMENTS = Documents("%s")


class PostGISWriter(StoreWriter):
    """The writes of one load, on one connection in one transaction (see the module docstring)."""

    groups_months = True
    """Street files come a month at a time, every force together, sorted by cell: rows of a cell lie together."""

    prepare = staticmethod(prepare)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        rows = conn.execute("SELECT code, name FROM outcome_kinds").fetchall()
        self.outcome_codes: dict[str, int] = {name.lower(): code for code, name in rows}
        self.outcome_names: dict[int, str] = {code: name for code, name in rows}
        self.new_outcomes: list[tuple[int, str, str]] = []
        self.loaded: dict[str, set[tuple[int, int]]] = {"street": set(), "outcomes": set()}
        self.dated: set[tuple[int, int]] = set()
        """Street sets of this load whose crimes came dated by every outcome of this load (see replace_group)."""
        self.stages: dict[tuple[str, int], str] = {}
        """The table each month this load writes is built in, by (partitioned table, month): see _stage."""
        self.replaced: dict[tuple[str, int], set[int]] = {}
        """The forces whose rows of a (partitioned table, month) this load replaces."""
        conn.execute("SET LOCAL jit = off")
        conn.execute("SET LOCAL work_mem = '64MB'")  # the dating joins hash a load's persistent ids in memory
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")  # each month's indexes are built by sorting
        conn.execute(
            "CREATE TEMP TABLE new_streets (n bigserial, id bigint, lng float8, lat float8, cell bigint, name text)"
            " ON COMMIT DROP"
        )

    # -- the months being built ----------------------------------------------------------------------
    def _stage(self, table: str, month: int, forces: list[int]) -> str:
        """The table ``month`` of ``table`` is built in, with no rows of ``forces`` (replaced now) left in it."""
        key = (table, month)
        stage = self.stages.get(key)
        if stage is None:
            stage = self.stages[key] = months.create_stage(self.conn, table, month)
        replaced = self.replaced.setdefault(key, set())
        again = [f for f in forces if f in replaced]
        if again:  # a second file of a force in one load: the later one wins
            self.conn.execute(f"DELETE FROM {stage} WHERE force = ANY(%s::smallint[])", (again,))
        replaced.update(forces)
        return stage

    # -- outcome names new to the vocabulary ------------------------------------------------------------
    def _outcome_code(self, name: str) -> int:
        code = self.outcome_codes.get(name.lower())
        if code is None:
            code = KNOWN_OUTCOMES.get(name.lower())
        if code is None:
            # Numbered now, stored after the COPY in progress (see store_new_outcomes).
            outcome = vocab.outcome_by_name(name)
            code = 1000 + sum(1 for c in self.outcome_codes.values() if c >= 1000)
            self.new_outcomes.append((code, outcome.slug, outcome.name))
            self.outcome_names[code] = outcome.name
        self.outcome_codes[name.lower()] = code
        return code

    def store_new_outcomes(self) -> None:
        if self.new_outcomes:
            with self.conn.cursor() as cur:
                cur.executemany("INSERT INTO outcome_kinds VALUES (%s, %s, %s)", self.new_outcomes)
            self.new_outcomes.clear()

    def renumber(self, b: CrimeBatch) -> CrimeBatch:
        """A batch whose placeholder outcome codes are the store's, its JSON naming them as the store does.

        The JSON shows the name the store knows the outcome by, which may be an
        earlier spelling of it. Rare (a name new to the vocabulary), so done row by row.
        """
        codes = {placeholder: self._outcome_code(name) for placeholder, name in b.unknown_outcomes.items()}
        outcome = b.outcome.copy()
        jsons = b.json.to_pylist()
        for i in np.flatnonzero(b.outcome < NO_OUTCOME).tolist():
            placeholder = int(b.outcome[i])
            code = outcome[i] = codes[placeholder]
            guessed = vocab.outcome_by_name(b.unknown_outcomes[placeholder]).name
            shown = self.outcome_names[code]
            if shown != guessed:
                old = '"outcome_status":{"category":' + orjson.dumps(guessed).decode()
                new = '"outcome_status":{"category":' + orjson.dumps(shown).decode()
                jsons[i] = jsons[i].replace(old, new, 1)
        b.outcome, b.json, b.unknown_outcomes = outcome, pa.array(jsons, pa.string()), {}
        return b

    # -- police.uk ----------------------------------------------------------------------------------
    def _record_load(self, month: int, force: int, kind: str, rows: int) -> None:
        self.conn.execute(
            "INSERT INTO loads VALUES (%s, %s, %s, %s, %s) ON CONFLICT (month, force, kind)"
            " DO UPDATE SET rows = excluded.rows, loaded_at = excluded.loaded_at",
            (month, force, kind, rows, _now()),
        )

    def replace_prepared(self, kind: str, month: str, force: str, batches: Iterable[Any]) -> int:
        """Replace one force's ``kind`` of ``month``; its crimes' outcome dates are completed at the end."""
        return self._replace(kind, month, (force,), batches, dated=False).get(force, 0)

    def replace_group(self, kind: str, month: str, forces: tuple[str, ...], batches: Iterable[Any]) -> dict[str, int]:
        """Replace ``kind`` of ``month`` for each of ``forces`` by the prepared chunks; rows stored per force.

        The loader's way in (:mod:`crimemap.load.pipeline`): it reads a load's
        outcomes files before its street files, and dates each crime by the
        newest of them, so that the end of the load need not date these crimes
        again by this load's outcomes (see :meth:`date_outcomes`).
        """
        return self._replace(kind, month, forces, batches, dated=True)

    def _replace(
        self, kind: str, month: str, forces: tuple[str, ...], batches: Iterable[Any], dated: bool
    ) -> dict[str, int]:
        m = parse_month(month)
        codes = [force_code(f) for f in forces]
        if kind == "stops":
            stage = self._stage("stops", m, codes)
            return {
                f: stop_store.replace_stops(self.conn, month, c, batches, self._record_load, stage)
                for f, c in zip(forces, codes, strict=True)
            }
        stage = self._stage("crimes" if kind == "street" else "outcomes", m, codes)
        counts = dict.fromkeys(codes, 0)
        try:
            if kind == "street":
                self.copy_crimes(batches, counts, stage)
            else:
                self._copy_outcomes(batches, counts, stage)
        except psycopg.errors.UniqueViolation as e:
            raise StoreError(f"{month}: a crime id is already stored for another crime ({e})") from None
        except psycopg.DataError as e:
            raise StoreError(f"{month} {kind}: PostgreSQL refused a row: {e}") from None
        self.store_new_outcomes()
        for code, n in counts.items():
            self._record_load(m, code, kind, n)
            self.loaded[kind].add((m, code))
            if kind == "street" and dated:
                self.dated.add((m, code))
            elif kind == "street":
                self.dated.discard((m, code))
        if kind == "outcomes":
            self.dated.clear()  # crimes read before these outcomes were not dated by them
        return {FORCE_IDS[code]: n for code, n in counts.items()}

    def copy_crimes(self, batches: Iterable[PreparedCrimes], counts: dict[int, int], table: str) -> None:
        """Copy crimes into ``table`` (a month's stage), and their map points new to the store into ``streets``."""
        streets: list[bytes] = []
        with self.conn.cursor().copy(f"COPY {table} ({CRIME_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(SIGNATURE)
            for chunk in batches:
                copy.write(encode_crimes(self.renumber(chunk.batch)) if chunk.batch is not None else chunk.rows)
                streets.append(chunk.streets)
                for code, n in chunk.forces.items():
                    counts[code] = counts.get(code, 0) + n
            copy.write(TRAILER)
        with self.conn.cursor().copy(f"COPY new_streets ({STREET_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(SIGNATURE)
            for rows in streets:
                copy.write(rows)
            copy.write(TRAILER)
        # Map points new to the store, first occurrence first (as the embedded store keeps them). Stored now,
        # while the parsing process reads on, rather than at the end, when it has nothing left to do.
        self.conn.execute(
            "INSERT INTO streets (id, name, lng, lat, cell) SELECT DISTINCT ON (id) id, name, lng, lat, cell"
            " FROM new_streets ORDER BY id, n ON CONFLICT (id) DO NOTHING"
        )
        self.conn.execute("TRUNCATE new_streets")

    def _copy_outcomes(self, batches: Iterable[PreparedOutcomes], counts: dict[int, int], table: str) -> None:
        for chunk in batches:
            first = counts.get(chunk.force, 0)
            if chunk.batch is not None or first:
                o = chunk.batch
                if o is None:  # a second chunk of one file: numbered after the first (never made by the loader)
                    raise StoreError("an outcomes file must come as one batch")
                if o.unknown_outcomes:
                    codes = {p: self._outcome_code(name) for p, name in o.unknown_outcomes.items()}
                    o.outcome = np.array([codes.get(c, c) for c in o.outcome.tolist()], dtype=np.int32)
                    o.unknown_outcomes = {}
                rows = encode_outcomes(o, first)
            else:
                rows = chunk.rows
            with self.conn.cursor().copy(f"COPY {table} ({OUTCOME_COLUMNS}) FROM STDIN (FORMAT BINARY)") as c:
                c.write(SIGNATURE + rows + TRAILER)
            counts[chunk.force] = first + chunk.count

    # -- feature tables ---------------------------------------------------------------------------------
    def replace_table(self, info: TableInfo, features: Iterable[Feature]) -> int:
        if info.id == CRIMES_TABLE:
            raise StoreError(f"{CRIMES_TABLE!r} is the police.uk crimes table; load police.uk files instead")
        conn = self.conn
        old = conn.execute(
            "SELECT physical, created FROM feature_tables WHERE id = %s FOR UPDATE", (info.id,)
        ).fetchone()
        now = _now()
        number = conn.execute("SELECT nextval('feature_table_numbers')").fetchone()
        physical = f"ft_{number[0] if number else 0}"
        cols = "".join(f", c{i} {pg_type(c)}" for i, c in enumerate(info.columns))
        conn.execute(
            f"CREATE TABLE {physical} (gx_id bigint NOT NULL, lng double precision, lat double precision"
            f"{cols}, geom geometry(Point, 4326) GENERATED ALWAYS AS (CASE WHEN lng IS NULL OR lat IS NULL"
            f" THEN NULL ELSE ST_SetSRID(ST_MakePoint(lng, lat), 4326) END) STORED{shape_tables.columns_sql(info)})"
        )
        shape_names, shape_types = shape_tables.copy_columns(info)
        names = ", ".join(["gx_id", "lng", "lat", *(f"c{i}" for i in range(len(info.columns))), *shape_names])
        convert = [_copy_value(c) for c in info.columns]
        count = 0
        try:
            with conn.cursor().copy(f"COPY {physical} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "float8", "float8", *(COPY_TYPES[c.type] for c in info.columns), *shape_types])
                for feat in features:
                    props = [conv(v) for conv, v in zip(convert, feat.properties, strict=True)]
                    copy.write_row((feat.gx_id, feat.lng, feat.lat, *props, *shape_tables.copy_values(info, feat)))
                    count += 1
        except (ValueError, TypeError, psycopg.DataError) as e:
            raise StoreError(f"table {info.id!r}: feature {count + 1} does not fit the schema ({e})") from None
        conn.execute(f"ALTER TABLE {physical} ADD PRIMARY KEY (gx_id)")
        conn.execute(f"CREATE INDEX {physical}_geom ON {physical} USING gist (geom)")
        bounds = conn.execute(f"SELECT min(lng), min(lat), max(lng), max(lat) FROM {physical}").fetchone()
        bbox = list(bounds) if bounds and bounds[0] is not None else None
        bbox = shape_tables.finish_table(conn, info, physical, old[0] if old is not None else None) or bbox
        if old is not None:
            conn.execute("INSERT INTO retired_tables VALUES (%s) ON CONFLICT DO NOTHING", (old[0],))
        conn.execute(
            "INSERT INTO feature_tables VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET physical = excluded.physical, name = excluded.name,"
            " description = excluded.description,"
            " columns = excluded.columns, feature_count = excluded.feature_count, bbox = excluded.bbox,"
            " modified = excluded.modified",
            (
                info.id, physical, info.name, info.description,
                orjson.dumps([[c.name, c.type] for c in info.columns]).decode(),
                count, bbox, old[1] if old is not None else now, now,
            ),
        )  # fmt: skip
        return count

    # -- police.uk documents (crimemap.store.documents) ---------------------------------------------
    def put_documents(self, documents: Iterable[tuple[str, str, str, bytes]]) -> int:
        rows = _DOCUMENTS.rows(documents)
        with self.conn.cursor() as cur:
            cur.executemany(_DOCUMENTS.upsert, rows)
        return len(rows)

    def delete_documents(self, force: str, kind: str) -> None:
        self.conn.execute(_DOCUMENTS.delete_kind_of_force, (force, kind))

    # -- the end of the load ------------------------------------------------------------------------------
    def finish(self) -> None:
        """Complete the months this load built and swap them in, then date outcomes, count, and stamp the load.

        Readers wait from the first swap to the commit (see
        :mod:`crimemap.store.postgis.partitions`), so everything that can be done
        on the months aside is done before it.
        """
        conn = self.conn
        whole = {
            table for table in months.PARTITIONED
            if (written := {m for t, m in self.stages if t == table}) and months.analyzes_whole(conn, table, written)
        }  # fmt: skip
        for (table, month), stage in sorted(self.stages.items()):
            months.keep_rows(conn, table, month, stage, sorted(self.replaced[(table, month)]))
            months.seal(conn, table, month, stage, analyze=table not in whole)
        if self.loaded["street"]:
            conn.execute("ANALYZE streets (cell)")
        months.lock_for_swaps(conn, {table for table, _ in self.stages})
        for (table, month), stage in sorted(self.stages.items()):
            months.swap_in(conn, table, month, stage)
        for table in sorted(whole):
            months.analyze_whole(conn, table)
        if self.loaded["street"] or self.loaded["outcomes"]:
            self.date_outcomes()
            if self.loaded["street"]:
                stop_store.name_stops(conn)  # map points this load brought name the stops stored at them
                stats.refresh(conn, self.loaded["street"])  # the counts of the sets it replaced
        stats.refresh_neighbourhoods(conn, self.loaded["street"])
        conn.execute(
            "INSERT INTO meta VALUES ('generation', '1')"
            " ON CONFLICT (key) DO UPDATE SET value = (meta.value::bigint + 1)::text"
        )
        conn.execute(
            "INSERT INTO meta VALUES ('last_updated', %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_now(),),
        )

    def _pairs(self, kind: str) -> tuple[list[int], list[int]]:
        pairs = sorted(self.dated if kind == "dated" else self.loaded[kind])
        return [m for m, _ in pairs], [f for _, f in pairs]

    def date_outcomes(self) -> None:
        """A crime's ``outcome_month`` is the newest month of its outcome history; its JSON shows it.

        As in the embedded store: only rows related to this load are touched,
        never the whole store: the crimes whose outcomes arrived now, and, when
        outcomes were stored before, this load's crimes. The parsing process
        already dated the crimes the loader brought by the outcomes of the same
        load (see :meth:`replace_group`), so those are left out of the first
        statement: a first load, the largest, runs none.
        """
        conn, crimes = self.conn, "crimes"
        this_load = "(month, force) IN (SELECT * FROM unnest(%s::integer[], %s::smallint[]))"
        in_months = "month = ANY(%s::integer[])"

        def newest_for(keys: str) -> str:
            """Set each crime whose persistent id is among ``keys`` to its newest outcome month, where that differs."""
            return (
                f"UPDATE {crimes} SET outcome_month = n.month, json = {redated_json(crimes, 'n.month')}"
                " FROM (SELECT o.pid_key, o.pid, max(o.month) AS month FROM outcomes o"
                f" WHERE o.pid_key IN ({keys}) GROUP BY o.pid_key, o.pid) AS n"
                f" WHERE {crimes}.pid_key = n.pid_key AND {crimes}.pid = n.pid"
                f" AND {crimes}.outcome_month IS DISTINCT FROM n.month"
            )

        undated = conn.execute(
            f"SELECT 1 FROM loads WHERE kind = 'street' AND rows > 0 AND NOT {this_load} LIMIT 1", self._pairs("dated")
        ).fetchone()
        if self.loaded["outcomes"] and undated:
            outcomes = self._pairs("outcomes")
            conn.execute(
                newest_for(f"SELECT pid_key FROM outcomes WHERE {in_months} AND {this_load}")
                + f" AND NOT ({crimes}.month, {crimes}.force) IN (SELECT * FROM unnest(%s::integer[], %s::smallint[]))",
                [_months(outcomes), *outcomes, *self._pairs("dated")],
            )
        if not self.loaded["street"]:
            return
        outcomes_before = conn.execute(
            f"SELECT 1 FROM loads WHERE kind = 'outcomes' AND NOT {this_load} LIMIT 1", self._pairs("outcomes")
        ).fetchone()
        if outcomes_before:
            # Keep a date given with the crime (a harvested one) when no outcome of it is stored.
            street = self._pairs("street")
            keys = f"SELECT pid_key FROM {crimes} WHERE {in_months} AND {this_load} AND pid_key IS NOT NULL"
            conn.execute(
                newest_for(keys) + f" AND {crimes}.{in_months} AND ({crimes}.month, {crimes}.force) IN"
                " (SELECT * FROM unnest(%s::integer[], %s::smallint[]))",
                [_months(street), *street, _months(street), *street],
            )


def _months(pairs: tuple[list[int], list[int]]) -> list[int]:
    """The months of (month, force) pairs: a term ``month = ANY(...)`` of them lets PostgreSQL read only their
    partitions (a ``(month, force) IN (...)`` term alone reads every month's rows to test them)."""
    return sorted(set(pairs[0]))


def analyze(conn: psycopg.Connection[Any], crimes: str = "crimes", outcomes: str = "outcomes") -> None:
    """Fresh statistics for the planner, in the load's own transaction, so the first query after it plans well."""
    for table, name in (("crimes", crimes), ("outcomes", outcomes)):
        conn.execute(f"ANALYZE {name} ({months.ANALYZED[table]})")
    conn.execute("ANALYZE streets (cell)")


def _copy_value(col: Column) -> Any:
    """A converter of one property to its COPY type; refuses what SQL would not store."""
    if col.type == "integer":

        def integer(v: Any) -> Any:
            if v is None or isinstance(v, int):
                return int(v) if v is not None else None
            if isinstance(v, float) and v.is_integer():
                return int(v)
            raise ValueError(f"column {col.name!r} is integer, got {v!r}")

        return integer
    if col.type == "double":
        return lambda v: None if v is None else float(v)
    if col.type == "boolean":
        return lambda v: None if v is None else bool(v)
    return lambda v: None if v is None else str(v)


def drop_retired(conn: psycopg.Connection[Any]) -> None:
    """Drop tables that a committed load replaced; one still being read waits for the next load."""
    for (physical,) in conn.execute("SELECT physical FROM retired_tables").fetchall():
        try:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '2s'")
                conn.execute(f"DROP TABLE IF EXISTS {quote_ident(physical)}")
                conn.execute("DELETE FROM retired_tables WHERE physical = %s", (physical,))
        except psycopg.errors.LockNotAvailable:
            pass
