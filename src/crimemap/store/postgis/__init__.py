"""The PostgreSQL/PostGIS store: the same interface as the embedded one, for bigger deployments.

Several API processes (``crimemap serve --workers N``, or several machines behind
a load balancer) share one database. Each process keeps a small pool of
connections (:mod:`psycopg_pool`); every read runs with a ``statement_timeout``
so no request can hold the database for long.

A load is one transaction on its own connection (:meth:`PostGISStore.writer`):
rows arrive with binary ``COPY``; a replaced month and force is deleted and
re-inserted in that transaction, so readers keep reading the old rows until the
commit and then see the new ones, never a mix. Loads are serialised by an
advisory lock, as SQLite serialises its writers.

Example::

    with PostGISStore("postgresql://crimemap@localhost/crimemap") as store:
        store.months()
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from crimemap import vocab
from crimemap.months import format_month, parse_month
from crimemap.query import Circle, CrimeQuery, FeatureQuery
from crimemap.stats_query import StatsQuery
from crimemap.store.base import (
    CRIME_COLUMNS,
    CRIMES_TABLE,
    Column,
    Crime,
    Feature,
    MonthSummary,
    OutcomeEvent,
    OutcomeRecord,
    Store,
    StoreError,
    StoreWriter,
    Street,
    TableInfo,
)
from crimemap.store.compiler import Geometry, compile_predicate, keyset_condition, order_clause
from crimemap.store.postgis import boundaries as shape_tables
from crimemap.store.postgis import stats as stat_reads
from crimemap.store.postgis.dialect import POSTGIS, PgColumn, area_sql, text
from crimemap.store.postgis.schema import ensure_schema
from crimemap.store.records import (
    CRIME_FIELDS,
    FORCE_IDS,
    FORCE_NAMES,
    KNOWN_OUTCOMES,
    crime_from_row,
    encode_category_name,
    encode_category_slug,
    encode_force_name,
    encode_pid,
)

STATEMENT_TIMEOUT_ENV = "CRIMEMAP_STATEMENT_TIMEOUT"
"""Seconds any one read may run before PostgreSQL cancels it (default 10)."""
POOL_SIZE_ENV = "CRIMEMAP_PG_POOL_SIZE"
"""Connections each process may open to PostgreSQL (default 10)."""
DEFAULT_STATEMENT_TIMEOUT_S = 10.0
DEFAULT_POOL_SIZE = 10
STREAM_CHUNK = 2000

_CRIME_FIELDS = CRIME_FIELDS
_CRIME_SELECT = ", ".join(_CRIME_FIELDS)
_FORCE_IDS = FORCE_IDS
_FORCE_NAMES = FORCE_NAMES


def redact(url: str) -> str:
    """The URL without its password, for messages and ``crimemap info``."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


class PostGISStore(Store):
    """The PostgreSQL/PostGIS store (see the module docstring)."""

    def __init__(self, url: str, *, pool_size: int | None = None, statement_timeout_s: float | None = None) -> None:
        self.url = redact(url)
        self._conninfo = url
        self.statement_timeout_s = (
            statement_timeout_s
            if statement_timeout_s is not None
            else float(os.environ.get(STATEMENT_TIMEOUT_ENV) or DEFAULT_STATEMENT_TIMEOUT_S)
        )
        size = pool_size or int(os.environ.get(POOL_SIZE_ENV) or DEFAULT_POOL_SIZE)
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                ensure_schema(conn)
                stat_reads.ensure_built(conn)
        except psycopg.OperationalError as e:
            raise StoreError(f"cannot connect to {self.url}: {str(e).strip()}") from None
        self._outcome_names: dict[int, str] = {}
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, size),
            kwargs={"autocommit": True, "connect_timeout": 10},
            configure=self._configure,
            open=True,
            name="crimemap",
            timeout=30,
        )
        self._refresh_outcome_names()

    # -- connections -------------------------------------------------------------------
    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        ms = int(self.statement_timeout_s * 1000)
        conn.execute(f"SET statement_timeout = {ms}")
        conn.execute("SET jit = off")

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        """A binary cursor on a pooled connection; database errors become :class:`StoreError`."""
        try:
            with self._pool.connection() as conn, conn.cursor(binary=True) as cur:
                yield cur
        except psycopg.errors.QueryCanceled:
            raise StoreError(
                f"the query took longer than {self.statement_timeout_s:g} s and was cancelled;"
                " ask for a smaller area or fewer rows"
            ) from None
        except PoolTimeout:
            raise StoreError("the database is busy: no connection came free in 30 s; try again") from None
        except psycopg.OperationalError as e:
            raise StoreError(f"database error at {self.url}: {str(e).strip()}") from None

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._cursor() as cur:
            return cur.execute(sql, list(params)).fetchall()

    def _one(self, sql: str, params: Iterable[Any] = ()) -> tuple[Any, ...] | None:
        with self._cursor() as cur:
            return cur.execute(sql, list(params)).fetchone()

    def _stream(self, sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
        """Rows as the server sends them, in chunks: memory stays flat for any result size."""
        with self._cursor() as cur:
            yield from cur.stream(sql, params, size=STREAM_CHUNK)

    def _refresh_outcome_names(self) -> None:
        self._outcome_names = {code: name for code, name in self._all("SELECT code, name FROM outcome_kinds")}

    def _outcome_name(self, code: int) -> str:
        name = self._outcome_names.get(code)
        if name is None:  # a code another process's load added
            self._refresh_outcome_names()
            name = self._outcome_names.get(code, "")
        return name

    @contextmanager
    def writer(self) -> Iterator[StoreWriter]:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as e:
            raise StoreError(f"cannot connect to {self.url}: {str(e).strip()}") from None
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('crimemap load ' || current_schema()))")
                w = _PostGISWriter(conn)
                yield w
                w.finish()
            _drop_retired(conn)
        finally:
            conn.close()
        self._refresh_outcome_names()

    # -- police.uk ---------------------------------------------------------------------
    def months(self) -> list[MonthSummary]:
        rows = self._all(
            "SELECT month, array_agg(force ORDER BY force), sum(rows)::bigint FROM loads"
            " WHERE kind = 'street' GROUP BY month ORDER BY month DESC"
        )
        return [MonthSummary(format_month(m), tuple(_FORCE_IDS[f] for f in forces), n) for m, forces, n in rows]

    def _crime(self, row: tuple[Any, ...]) -> Crime:
        return crime_from_row(row, self._outcome_name)

    def crimes(self, query: CrimeQuery) -> Iterator[Crime]:
        where, params = _crime_filters(query)
        if where is None:
            return
        sql = f"SELECT {_CRIME_SELECT} FROM crimes WHERE {' AND '.join(where)}"
        if query.limit is not None:
            sql += " LIMIT %s"
            params.append(query.limit)
        for row in self._stream(sql, params):
            yield self._crime(row)

    def street(self, street_id: int) -> Street | None:
        row = self._one("SELECT id, name, lng, lat FROM streets WHERE id = %s", (street_id,))
        return Street(*row) if row else None

    def nearest_street(self, lng: float, lat: float) -> Street | None:
        # Growing circles, as the embedded store searches: the nearest by great-circle
        # distance (then the smallest id), not by planar degrees as the <-> operator would.
        for radius in (200.0, 1_000.0, 5_000.0, 25_000.0):
            params: list[Any] = []
            inside = area_sql(Circle((lng, lat), radius), _GEOMETRY, params)
            row = self._one(
                f"SELECT id, name, lng, lat FROM streets WHERE {inside}"
                " ORDER BY cm_distance(lng, lat, %s, %s), id LIMIT 1",
                [*params, float(lng), float(lat)],
            )
            if row is not None:
                return Street(*row)
        return None

    def crime_by_persistent_id(self, persistent_id: str) -> Crime | None:
        pid = _pid_bytes(persistent_id)
        if pid is None:
            return None
        row = self._one(f"SELECT {_CRIME_SELECT} FROM crimes WHERE pid = %s ORDER BY month DESC, id LIMIT 1", (pid,))
        return self._crime(row) if row else None

    def outcome_history(self, persistent_id: str) -> list[OutcomeEvent]:
        pid = _pid_bytes(persistent_id)
        if pid is None:
            return []
        rows = self._all("SELECT DISTINCT outcome, month FROM outcomes WHERE pid = %s ORDER BY month, outcome", (pid,))
        return [OutcomeEvent(self._outcome_name(o), format_month(m)) for o, m in rows]

    def outcomes(self, query: CrimeQuery) -> Iterator[OutcomeEvent]:
        where, params = ["o.geom IS NOT NULL"], []
        if query.month is not None:
            where.append("o.month = %s::integer")
            params.append(parse_month(query.month))
        if query.street_id is not None:
            where.append("o.street_id = %s::bigint")
            params.append(query.street_id)
        if query.area is not None:
            where.append(area_sql(query.area, _GEOMETRY.qualified("o"), params))
        sql = (
            f"SELECT o.outcome, o.month, {', '.join('c.' + f for f in _CRIME_FIELDS)}"
            f" FROM outcomes o LEFT JOIN crimes c ON c.pid = o.pid WHERE {' AND '.join(where)}"
        )
        if query.limit is not None:
            sql += " LIMIT %s"
            params.append(query.limit)
        for row in self._stream(sql, params):
            crime = self._crime(row[2:]) if row[2] is not None else None
            yield OutcomeEvent(self._outcome_name(row[0]), format_month(row[1]), crime)

    def generation(self) -> str:
        row = self._one("SELECT value FROM meta WHERE key = 'generation'")
        return row[0] if row else "0"

    def last_updated(self) -> dt.datetime | None:
        row = self._one("SELECT value FROM meta WHERE key = 'last_updated'")
        return dt.datetime.fromisoformat(row[0]) if row else None

    def stats(self, query: StatsQuery) -> list[tuple[Any, ...]]:
        return stat_reads.stats(self._all, query, self._outcome_slug)

    def _outcome_slug(self, code: int) -> str | None:
        name = self._outcome_name(code)
        return vocab.outcome_by_name(name).slug if name else None

    # -- feature tables ------------------------------------------------------------------
    def tables(self) -> list[TableInfo]:
        rows = self._all(f"SELECT {_TABLE_FIELDS} FROM feature_tables ORDER BY id")
        return [self._crimes_table_info(), *(_table_info(r) for r in rows)]

    def _crimes_table_info(self) -> TableInfo:
        row = self._one(
            "SELECT coalesce(sum(rows), 0)::bigint, (SELECT value FROM meta WHERE key = 'last_updated')"
            " FROM loads WHERE kind = 'street'"
        )
        assert row is not None
        updated = dt.datetime.fromisoformat(row[1]) if row[1] else None
        return TableInfo(
            id=CRIMES_TABLE,
            name="police.uk street-level crimes",
            description="Every stored police.uk street-level crime, one feature per crime.",
            columns=CRIME_COLUMNS,
            feature_count=row[0],
            bbox=None,
            created=updated,
            modified=updated,
        )

    def table(self, table_id: str) -> TableInfo | None:
        found = self._table_sql(table_id)
        return found[3] if found else None

    def _table_sql(self, table_id: str) -> tuple[str, dict[str, PgColumn], str, TableInfo] | None:
        """(from-clause, logical columns, key column, info) of a table, or None if unknown."""
        if table_id == CRIMES_TABLE:
            return "crimes", _CRIME_PG_COLUMNS, "id", self._crimes_table_info()
        row = self._one(f"SELECT {_TABLE_FIELDS}, physical FROM feature_tables WHERE id = %s", (table_id,))
        if row is None:
            return None
        info = _table_info(row[:-1])
        columns = {c.name: _feature_column(i, c) for i, c in enumerate(info.columns)}
        return _quote_ident(row[-1]), columns, "gx_id", info

    def _select(
        self, table_id: str, columns: tuple[str, ...] | None
    ) -> tuple[str, str, dict[str, PgColumn], str, bool]:
        found = self._table_sql(table_id)
        if found is None:
            raise StoreError(f"no table {table_id!r}")
        source, pg_columns, key, info = found
        names = columns if columns is not None else tuple(c.name for c in info.columns)
        shape = shape_tables.select_shape(info.shapes)
        select = ", ".join([key, "lng", "lat", *(pg_columns[n].expr for n in names), *shape])
        return select, source, pg_columns, key, info.shapes

    def features(self, query: FeatureQuery) -> Iterator[Feature]:
        for attempt in (1, 2):
            select, source, columns, key, shapes = self._select(query.table, query.columns)
            params: list[Any] = []
            where = ["TRUE"]
            if query.where is not None:
                geometry = shape_tables.SHAPE_GEOMETRY if shapes else _GEOMETRY
                where.append(compile_predicate(query.where, columns, params, POSTGIS, geometry))
            if query.after is not None:
                where.append(keyset_condition(query.order_by, columns, key, query.after, params, POSTGIS))
            sql = (
                f"SELECT {select} FROM {source} WHERE {' AND '.join(where)}"
                f" {order_clause(query.order_by, columns, key, POSTGIS)}"
            )
            if query.limit is not None:
                sql += " LIMIT %s"
                params.append(query.limit)
            started = False
            try:
                for row in self._stream(sql, params):
                    started = True
                    yield shape_tables.feature(row, shapes)
                return
            except psycopg.errors.UndefinedTable:
                # The table was replaced between looking it up and reading it: look again.
                if started or attempt == 2:
                    raise StoreError(f"table {query.table!r} was replaced while being read; try again") from None

    def feature(self, table_id: str, gx_id: int, columns: tuple[str, ...] | None = None) -> Feature | None:
        if self.table(table_id) is None:
            return None
        select, source, _, key, shapes = self._select(table_id, columns)
        row = self._one(f"SELECT {select} FROM {source} WHERE {key} = %s", (gx_id,))
        return shape_tables.feature(row, shapes) if row else None


_GEOMETRY = Geometry(geom="geom")
"""Every PostGIS table keeps ``lng``, ``lat`` and a ``geom`` point with a GiST index."""


def _pid_bytes(persistent_id: str) -> bytes | None:
    try:
        pid = bytes.fromhex(persistent_id)
    except ValueError:
        return None
    return pid if len(pid) == 32 else None


def _crime_filters(query: CrimeQuery) -> tuple[list[str] | None, list[Any]]:
    """The WHERE terms of a crimes query, or ``None`` when nothing can match."""
    where, params = [], []
    if query.month is not None:
        where.append("month = %s::integer")
        params.append(parse_month(query.month))
    if query.category is not None:
        cat = vocab.CATEGORY_BY_SLUG.get(query.category)
        if cat is None:
            return None, []
        where.append("category = %s")
        params.append(cat.code)
    if query.force is not None:
        force = vocab.FORCE_BY_ID.get(query.force)
        if force is None:
            return None, []
        where.append("force = %s")
        params.append(force.code)
    if query.street_id is not None:
        where.append("street_id = %s::bigint")
        params.append(query.street_id)
    if not query.located:
        where.append("geom IS NULL")
    else:
        where.append("geom IS NOT NULL")
        if query.area is not None:
            where.append(area_sql(query.area, _GEOMETRY, params))
    return where, params


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- feature tables --------------------------------------------------------------------

_TABLE_FIELDS = (
    f"id, name, description, columns, feature_count, bbox, created, modified, {shape_tables.SHAPES_FLAG_SQL}"
)
_PG_TYPES = {
    "integer": "bigint",
    "double": "double precision",
    "string": "text",
    "boolean": "boolean",
    "datetime": "text",
}
_COPY_TYPES = {"integer": "int8", "double": "float8", "string": "text", "boolean": "bool", "datetime": "text"}


def _table_info(row: tuple[Any, ...]) -> TableInfo:
    tid, name, desc, cols, count, bbox, created, modified, shapes = row
    return TableInfo(
        id=tid,
        name=name,
        description=desc,
        columns=tuple(Column(n, t) for n, t in orjson.loads(cols)),
        feature_count=count,
        bbox=tuple(bbox) if bbox else None,
        created=dt.datetime.fromisoformat(created),
        modified=dt.datetime.fromisoformat(modified),
        shapes=bool(shapes),
    )


def _as_bool(value: Any) -> Any:
    return bool(value) if isinstance(value, int | float) else value


def _feature_column(i: int, col: Column) -> PgColumn:
    if col.type in ("string", "datetime"):
        return PgColumn(text(f"c{i}"))
    if col.type == "boolean":
        return PgColumn(f"c{i}", value=_as_bool)
    return PgColumn(f"c{i}")


# -- the crimes table as a feature table (as sqlite.py's _CRIME_SQL_COLUMNS) -------------------


def _month_text(expr: str) -> str:
    return text(f"lpad(({expr} / 12)::text, 4, '0') || '-' || lpad((mod({expr}, 12) + 1)::text, 2, '0')")


def _literal_array(values: Iterable[str]) -> str:
    """A SQL array literal of our own vocabulary (never user text), indexed by code + 1."""
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


_FORCE_NAME_SQL = f"({_literal_array(_FORCE_NAMES)})[crimes.force + 1]"
_CRIME_PG_COLUMNS: dict[str, PgColumn] = {
    "id": PgColumn("id"),
    "crime_id": PgColumn(text("coalesce(encode(pid, 'hex'), '')"), "pid", encode_pid),
    "month": PgColumn(_month_text("month"), "month", parse_month, order_preserving=True),
    "reported_by": PgColumn(text(_FORCE_NAME_SQL), "force", encode_force_name),
    "falls_within": PgColumn(text(f"coalesce(falls_within, {_FORCE_NAME_SQL})")),
    "longitude": PgColumn("lng"),
    "latitude": PgColumn("lat"),
    "location": PgColumn(text("street_name")),
    "lsoa_code": PgColumn(text("lsoa_code")),
    "lsoa_name": PgColumn(text("lsoa_name")),
    "crime_type": PgColumn(
        text(f"({_literal_array(c.name for c in vocab.CATEGORIES)})[crimes.category + 1]"),
        "category",
        encode_category_name,
    ),
    "category": PgColumn(
        text(f"({_literal_array(c.slug for c in vocab.CATEGORIES)})[crimes.category + 1]"),
        "category",
        encode_category_slug,
    ),
    "last_outcome_category": PgColumn(text("(SELECT name FROM outcome_kinds WHERE code = crimes.outcome)")),
    "outcome_month": PgColumn(
        f"CASE WHEN outcome_month IS NULL THEN NULL ELSE {_month_text('outcome_month')} END",
        "outcome_month",
        parse_month,
        order_preserving=True,
    ),
    "context": PgColumn(text("context")),
    "location_type": PgColumn(text(f"CASE force WHEN {vocab.BTP.code} THEN 'BTP' ELSE 'Force' END")),
    "location_subtype": PgColumn(text("location_subtype")),
    "street_id": PgColumn("street_id"),
}


# -- writing -----------------------------------------------------------------------------
#
# A load sends rows as PostgreSQL's text COPY format, made by ``prepare`` in the
# process that parses the files (see StoreWriter.prepare): the writing process only
# passes bytes on, and the server derives each row's point from lng/lat.

_CRIME_COPY = (
    "COPY crimes (id, month, force, category, lng, lat, street_id, street_name, pid, location_subtype,"
    " context, lsoa_code, lsoa_name, falls_within, outcome, outcome_month) FROM STDIN"
)
_OUTCOME_COPY = "COPY outcomes (month, force, pid, outcome, lng, lat, street_id, street_name) FROM STDIN"
_STREET_COPY = "COPY new_streets (id, name, lng, lat) FROM STDIN"
_KNOWN_OUTCOMES = KNOWN_OUTCOMES
_NULL = "\\N"
_BYTEA = "\\\\x"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class _UnknownOutcome(Exception):
    """An outcome name the vocabulary does not know: the writing process numbers it."""


def _known_outcome(name: str) -> int:
    code = _KNOWN_OUTCOMES.get(name.lower())
    if code is None:
        raise _UnknownOutcome(name)
    return code


def _special(text: str) -> bool:
    return "\\" in text or "\t" in text or "\n" in text or "\r" in text


def _esc(value: str) -> str:
    """``value`` as a field of the text COPY format."""
    return value.translate(_ESCAPES) if _special(value) else value


@dataclass
class _Batch:
    """One prepared batch: COPY text of the rows and of their map points, or the records themselves."""

    rows: bytes = b""
    streets: bytes = b""
    count: int = 0
    records: list[Any] | None = None


def _crime_copy(crimes: list[Crime], outcome_code: Callable[[str], int]) -> _Batch:
    if not crimes:
        return _Batch()
    m = parse_month(crimes[0].month)
    force = vocab.FORCE_BY_ID[crimes[0].force]
    f, force_name = force.code, force.name
    categories = {c.slug: c.code for c in vocab.CATEGORIES}
    lines = []
    streets: dict[int, str] = {}
    for c in crimes:
        name, sub, ctx, lcode, lname = c.street_name, c.location_subtype, c.context, c.lsoa_code, c.lsoa_name
        falls = "" if c.falls_within == force_name else c.falls_within
        if _special(name + sub + ctx + lcode + lname + falls):
            name, sub, ctx, lcode, lname, falls = (_esc(v) for v in (name, sub, ctx, lcode, lname, falls))
        if not falls:
            falls = _NULL
        if c.lng is None or c.lat is None:
            point = f"{_NULL}\t{_NULL}\t{_NULL}"
        else:
            sid = c.street_id
            point = f"{c.lng!r}\t{c.lat!r}\t{_NULL if sid is None else sid}"
            if sid is not None and sid not in streets:
                streets[sid] = f"{sid}\t{name}\t{c.lng!r}\t{c.lat!r}\n"
        pid = _BYTEA + c.persistent_id if c.persistent_id else _NULL
        outcome = outcome_code(c.outcome) if c.outcome else _NULL
        dated = parse_month(c.outcome_month) if c.outcome_month else _NULL
        lines.append(
            f"{c.id}\t{m}\t{f}\t{categories[c.category]}\t{point}\t{name}\t{pid}\t{sub}\t{ctx}"
            f"\t{lcode}\t{lname}\t{falls}\t{outcome}\t{dated}\n"
        )
    return _Batch("".join(lines).encode(), "".join(streets.values()).encode(), len(lines))


def _outcome_copy(outcomes: list[OutcomeRecord], outcome_code: Callable[[str], int]) -> _Batch:
    """COPY text of outcomes; their map points are the crimes' (street files name them)."""
    lines = []
    codes = {f.id: f.code for f in vocab.FORCES}
    for o in outcomes:
        sid = o.street_id
        if o.lng is None or o.lat is None:
            point = f"{_NULL}\t{_NULL}\t{_NULL}"
        else:
            point = f"{o.lng!r}\t{o.lat!r}\t{_NULL if sid is None else sid}"
        lines.append(
            f"{parse_month(o.month)}\t{codes[o.force]}\t{_BYTEA}{o.persistent_id}\t{outcome_code(o.outcome)}"
            f"\t{point}\t{_esc(o.street_name)}\n"
        )
    return _Batch("".join(lines).encode(), b"", len(lines))


class _PostGISWriter(StoreWriter):
    """One load's transaction (see :meth:`finish` for what happens at the end)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.outcome_codes: dict[str, int] = {
            name.lower(): code for code, name in conn.execute("SELECT code, name FROM outcome_kinds")
        }
        conn.execute("SET LOCAL client_encoding = 'UTF8'")
        conn.execute("SET LOCAL jit = off")
        conn.execute(
            "CREATE TEMP TABLE new_streets (n bigserial, id bigint, name text, lng float8, lat float8) ON COMMIT DROP"
        )
        self.new_outcomes: list[tuple[int, str, str]] = []
        self.loaded: dict[str, set[tuple[int, int]]] = {"street": set(), "outcomes": set()}

    @staticmethod
    def prepare(kind: str, records: Any) -> Any:
        """COPY text of a batch (runs in the parsing process); the records if one has a new outcome name."""
        from crimemap.store.batches import CrimeBatch, OutcomeBatch

        if isinstance(records, CrimeBatch | OutcomeBatch):
            records = list(records.records())
        try:
            return (_crime_copy if kind == "street" else _outcome_copy)(records, _known_outcome)
        except _UnknownOutcome:
            return _Batch(records=records)

    def _outcome_code(self, name: str) -> int:
        code = self.outcome_codes.get(name.lower())
        if code is None:
            code = _KNOWN_OUTCOMES.get(name.lower())
        if code is None:
            # Numbered now, stored after the COPY in progress (see _store_new_outcomes).
            outcome = vocab.outcome_by_name(name)
            code = 1000 + sum(1 for c in self.outcome_codes.values() if c >= 1000)
            self.new_outcomes.append((code, outcome.slug, outcome.name))
            self.outcome_codes[name.lower()] = code
        return code

    def _store_new_outcomes(self) -> None:
        if self.new_outcomes:
            with self.conn.cursor() as cur:
                cur.executemany("INSERT INTO outcome_kinds VALUES (%s, %s, %s)", self.new_outcomes)
            self.new_outcomes.clear()

    def _record_load(self, month: int, force: int, kind: str, rows: int) -> None:
        self.conn.execute(
            "INSERT INTO loads VALUES (%s, %s, %s, %s, %s) ON CONFLICT (month, force, kind)"
            " DO UPDATE SET rows = excluded.rows, loaded_at = excluded.loaded_at",
            (month, force, kind, rows, _now()),
        )

    def replace_prepared(self, kind: str, month: str, force: str, batches: Iterable[Any]) -> int:
        m, f = parse_month(month), _force_code(force)
        conn = self.conn
        street = kind == "street"
        conn.execute(f"DELETE FROM {'crimes' if street else 'outcomes'} WHERE month = %s AND force = %s", (m, f))
        count = 0
        streets: list[bytes] = []
        make = _crime_copy if street else _outcome_copy
        try:
            with conn.cursor().copy(_CRIME_COPY if street else _OUTCOME_COPY) as copy:
                for batch in batches:
                    if batch.records is not None:
                        batch = make(batch.records, self._outcome_code)
                    copy.write(batch.rows)
                    streets.append(batch.streets)
                    count += batch.count
        except psycopg.errors.UniqueViolation as e:
            raise StoreError(f"{month} {force}: a crime id is already stored for another crime ({e})") from None
        except psycopg.DataError as e:
            raise StoreError(f"{month} {force} {kind}: PostgreSQL refused a row: {e}") from None
        self._store_new_outcomes()
        with conn.cursor().copy(_STREET_COPY) as copy:
            for chunk in streets:
                copy.write(chunk)
        self.loaded[kind].add((m, f))
        self._record_load(m, f, kind, count)
        return count

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
        cols = "".join(f", c{i} {_PG_TYPES[c.type]}" for i, c in enumerate(info.columns))
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
                copy.set_types(
                    ["int8", "float8", "float8", *(_COPY_TYPES[c.type] for c in info.columns), *shape_types]
                )
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

    def finish(self) -> None:
        """Store the new map points, date crimes by their outcomes, refresh statistics, stamp the load."""
        conn = self.conn
        if self.loaded["street"] or self.loaded["outcomes"]:
            # Map points new to the store, first occurrence first (as the embedded store keeps them).
            conn.execute(
                "INSERT INTO streets (id, name, lng, lat) SELECT DISTINCT ON (id) id, name, lng, lat"
                " FROM new_streets ORDER BY id, n ON CONFLICT (id) DO NOTHING"
            )
            self._date_outcomes()
            stat_reads.refresh(conn, self.loaded["street"])
            for table in ("crimes", "outcomes", "streets"):
                conn.execute(f"ANALYZE {table}")  # fresh statistics for the planner, in the same commit
        conn.execute(
            "INSERT INTO meta VALUES ('generation', '1')"
            " ON CONFLICT (key) DO UPDATE SET value = (meta.value::bigint + 1)::text"
        )
        conn.execute(
            "INSERT INTO meta VALUES ('last_updated', %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_now(),),
        )

    def _date_outcomes(self) -> None:
        """A crime's ``outcome_month`` is the newest month of its outcome history.

        As in the embedded store: the loader dates crimes from the outcomes files of the
        same load; here only the rows related to this load are completed from the stored
        outcomes: the crimes whose outcomes arrived now and, when outcomes were stored
        before, this load's crimes. A date given with a crime stays when no outcome is stored.
        """
        conn = self.conn
        newest = "coalesce((SELECT max(o.month) FROM outcomes o WHERE o.pid = crimes.pid), crimes.outcome_month)"

        def sets(kind: str) -> tuple[str, list[int]]:
            pairs = sorted(self.loaded[kind])
            return ", ".join(["(%s::integer, %s::smallint)"] * len(pairs)), [v for p in pairs for v in p]

        if self.loaded["outcomes"]:
            values, params = sets("outcomes")
            conn.execute(
                f"UPDATE crimes SET outcome_month = {newest} WHERE pid IN (SELECT pid FROM outcomes"
                f" WHERE (month, force) IN (VALUES {values})) AND outcome_month IS DISTINCT FROM {newest}",
                params,
            )
        if self.loaded["street"]:
            values, params = sets("outcomes") if self.loaded["outcomes"] else ("(-1, -1)", [])
            before = conn.execute(
                f"SELECT 1 FROM loads WHERE kind = 'outcomes' AND (month, force) NOT IN (VALUES {values}) LIMIT 1",
                params,
            ).fetchone()
            if before:
                values, params = sets("street")
                conn.execute(
                    f"UPDATE crimes SET outcome_month = {newest} WHERE (month, force) IN (VALUES {values})"
                    f" AND pid IS NOT NULL AND outcome_month IS DISTINCT FROM {newest}",
                    params,
                )


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


def _drop_retired(conn: psycopg.Connection[Any]) -> None:
    """Drop tables that a committed load replaced; one still being read waits for the next load."""
    for (physical,) in conn.execute("SELECT physical FROM retired_tables").fetchall():
        try:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '2s'")
                conn.execute(f"DROP TABLE IF EXISTS {_quote_ident(physical)}")
                conn.execute("DELETE FROM retired_tables WHERE physical = %s", (physical,))
        except psycopg.errors.LockNotAvailable:
            pass


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _force_code(force: str) -> int:
    found = vocab.FORCE_BY_ID.get(force)
    if found is None:
        raise StoreError(f"unknown force {force!r}; known forces: {', '.join(_FORCE_IDS)}")
    return found.code
