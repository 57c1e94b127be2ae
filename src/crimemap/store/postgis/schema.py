"""The PostGIS store's schema (version 3), and how to create it, upgrade an older one or refuse a newer one.

The tables mirror the embedded store's (:mod:`crimemap.store.sqlite.schema`):
months are integers (``year * 12 + month - 1``), forces, categories and outcomes
are the small codes of :mod:`crimemap.vocab`, a persistent id is 32 raw bytes
beside ``pid_key``, its first 63 bits (an integer index is cheaper to keep up
while loading than one on the bytes).

Work done once at load time instead of on every request (schema 2):

- ``json``: each crime's object of the police.uk answer, encoded when it is
  loaded (:func:`crimemap.policeuk_json.crime_json`), so that a ``crimes-street``
  answer is one ``string_agg`` of ready-made objects; the month of its latest
  outcome is rewritten in place when a later outcomes file dates it;
- ``cell``: the grid cell (:mod:`crimemap.geo`), ``-1`` without location. The
  index on ``(month, cell, id)`` is the spatial index: an area is a handful of
  cell ranges (:mod:`crimemap.geometry.areas`), answered in the embedded store's
  order, ``(cell, id)``. Loads write a month's crimes in that order, so the
  rows of a cell range lie together on disk too;
- ``x, y, z``: the point on the unit sphere, so the exact one-mile test is the
  same dot product, on the same stored numbers, as the embedded store's.

Schema 1 kept a ``geom`` point with a GiST index on ``(month, geom)`` on crimes
and outcomes instead; keeping that index up cost more than the rest of a load
together, and the cell ranges answer faster. Other PostGIS tools read the crimes
as points through the view ``crime_points``. Map points (``streets``) keep a
``geom`` point for them too, but are found through their cell like crimes (a
GiST index there cost a load more than all its other map-point work).

Schema 3 partitions ``crimes``, ``outcomes`` and ``stops`` by month (declarative
``PARTITION BY LIST (month)``, one partition a month, named ``crimes_2024_03``):
a load builds each month it writes as a table of its own and swaps it in
(:mod:`crimemap.store.postgis.partitions`), so that reloading a month costs the
same however many months are stored, and reads that name a month touch its
partition alone. A primary key of a partitioned table must hold the partition
key, so the crimes' and the stops' are ``(id, month)``; a load checks that an
id is not stored in another month itself (:func:`~crimemap.store.postgis.partitions.check_ids`).

A store of schema 1 or 2 is upgraded in place, in one transaction, the first time it
is opened (:mod:`crimemap.store.postgis.upgrade`). Everything is created in the
first schema of the connection's ``search_path`` (``public`` by default); the
table ``crimemap_schema`` records the version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from crimemap import geo, vocab
from crimemap.store.base import StoreError
from crimemap.store.documents import DDL as DOCUMENTS_DDL
from crimemap.store.documents import DOCUMENTS_TABLE

SCHEMA_VERSION = 3

CRIMES_DDL = """
CREATE TABLE {name} (
    id bigint NOT NULL,
    cell bigint NOT NULL,
    x double precision,
    y double precision,
    z double precision,
    lng double precision,
    lat double precision,
    street_id bigint,
    pid_key bigint,
    month integer NOT NULL,
    outcome integer,
    outcome_month integer,
    force smallint NOT NULL,
    category smallint NOT NULL,
    pid bytea,
    street_name text NOT NULL,
    location_subtype text NOT NULL,
    context text NOT NULL,
    lsoa_code text NOT NULL,
    lsoa_name text NOT NULL,
    falls_within text,
    json text NOT NULL
)"""
"""Fixed-width columns first (no padding between them); ``falls_within`` is NULL when it is the reporting force."""

OUTCOMES_DDL = """
CREATE TABLE {name} (
    cell bigint NOT NULL,
    pid_key bigint NOT NULL,
    lng double precision,
    lat double precision,
    month integer NOT NULL,
    seq integer NOT NULL,
    outcome integer NOT NULL,
    force smallint NOT NULL,
    pid bytea NOT NULL
)"""
"""``seq``: the row's place in its outcomes file, which orders an answer's outcomes within a cell, as in SQLite."""

PARTITIONED = ("crimes", "outcomes", "stops")
"""The tables partitioned by month (schema 3)."""
PARTITION_BY = " PARTITION BY LIST (month)"

INDEXES: dict[str, tuple[str, str]] = {
    "crimes_pkey": ("crimes", "ALTER TABLE {table} ADD CONSTRAINT {name} PRIMARY KEY (id, month)"),
    "crimes_by_cell": ("crimes", "CREATE INDEX {name} ON {table} (month, cell, id)"),
    "crimes_by_pid": ("crimes", "CREATE INDEX {name} ON {table} (pid_key) WHERE pid_key IS NOT NULL"),
    "outcomes_pkey": ("outcomes", "ALTER TABLE {table} ADD CONSTRAINT {name} PRIMARY KEY (month, cell, force, seq)"),
    "outcomes_by_pid": ("outcomes", "CREATE INDEX {name} ON {table} (pid_key)"),
    # A (category, force) pair's crimes in clustered order: a Maps Engine page whose `where` names one of
    # each and no month or area reads its rows and no others (as in the embedded store's crimes_by_kind).
    "crimes_by_kind": ("crimes", "CREATE INDEX {name} ON {table} (category, force, month, cell, id)"),
    "stops_pkey": ("stops", "ALTER TABLE {table} ADD CONSTRAINT {name} PRIMARY KEY (id, month)"),
    "stops_by_month_force": ("stops", "CREATE INDEX {name} ON {table} (month, force, id)"),
    "stops_by_month_geom": ("stops", "CREATE INDEX {name} ON {table} USING gist (month, geom)"),
    "stops_by_street": ("stops", "CREATE INDEX {name} ON {table} (street_id, month, id) WHERE street_id IS NOT NULL"),
    "stops_unnamed": ("stops", "CREATE INDEX {name} ON {table} (id) WHERE NOT named"),
}
"""Every index of the tables partitioned by month, by name: defined on the partitioned table, and built on each
month's table by the load that writes it, once its rows are in (see :mod:`crimemap.store.postgis.partitions`)."""

CRIME_POINTS_VIEW = """
CREATE OR REPLACE VIEW crime_points AS
SELECT id, month, force, category, street_id, street_name, lsoa_code, lsoa_name, outcome, outcome_month,
       ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geometry(Point, 4326) AS geom
FROM crimes WHERE cell >= 0
"""
"""The located crimes as PostGIS points, for QGIS, ``ogr2ogr`` and the like (crimemap itself reads ``crimes``)."""


def index_sql(name: str, table: str | None = None, suffix: str = "") -> str:
    """The statement that makes index ``name`` (named ``name + suffix``, on ``table``, by default its own)."""
    own, sql = INDEXES[name]
    return sql.format(name=name + suffix, table=table or own)


STREETS_DDL = """
CREATE TABLE streets (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    lng double precision NOT NULL,
    lat double precision NOT NULL,
    cell bigint NOT NULL,
    geom geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lng, lat), 4326)) STORED
)"""
"""Map points: crimes are snapped to these before publication."""
STREETS_INDEXES = "CREATE INDEX streets_by_cell ON streets (cell)"


def cell_sql(lng: str, lat: str) -> str:
    """SQL for the grid cell of a point (``-1`` without one): :func:`crimemap.store.batches.cells`, operation
    for operation in IEEE doubles, so that SQL and numpy put every point in the same cell."""
    row = f"floor(({lat} + 90.0::float8) / {geo.GRID_LAT!r}::float8)::bigint"
    col = f"floor(({lng} + 180.0::float8) / {geo.GRID_LNG!r}::float8)::bigint"
    return f"CASE WHEN {lng} IS NULL OR {lat} IS NULL THEN -1 ELSE {row} * {geo.ROW_SPAN} + {col} END"


def pid_key_sql(pid: str) -> str:
    """SQL for a persistent id's key (:func:`crimemap.store.batches.key_of`): its first 63 bits."""
    return f"(('x' || encode(substring({pid} from 1 for 8), 'hex'))::bit(64) >> 1)::bigint"


SCHEMA = f"""
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE categories (code smallint PRIMARY KEY, slug text NOT NULL, name text NOT NULL);
CREATE TABLE forces (code smallint PRIMARY KEY, id text NOT NULL UNIQUE, name text NOT NULL);
CREATE TABLE outcome_kinds (code integer PRIMARY KEY, slug text NOT NULL, name text NOT NULL UNIQUE);

{CRIMES_DDL.format(name="crimes")}{PARTITION_BY};
{OUTCOMES_DDL.format(name="outcomes")}{PARTITION_BY};
{";".join(index_sql(name) for name, (table, _) in INDEXES.items() if table != "stops")};
{CRIME_POINTS_VIEW};

{STREETS_DDL};
{STREETS_INDEXES};

-- One row per (month, force, kind) loaded: what `info` and crimes-street-dates list.
CREATE TABLE loads (
    month integer NOT NULL,
    force smallint NOT NULL,
    kind text NOT NULL,
    rows bigint NOT NULL,
    loaded_at text NOT NULL,
    PRIMARY KEY (month, force, kind)
);

-- Feature tables loaded from GeoJSON/CSV; each lives in its own ft_<n> table.
CREATE SEQUENCE feature_table_numbers;
CREATE TABLE feature_tables (
    id text PRIMARY KEY,
    physical text NOT NULL UNIQUE,
    name text NOT NULL,
    description text NOT NULL,
    columns text NOT NULL,
    feature_count bigint NOT NULL,
    bbox double precision[],
    created text NOT NULL,
    modified text NOT NULL
);
-- Physical tables replaced by a load, dropped once no reader can be using them.
CREATE TABLE retired_tables (physical text PRIMARY KEY);

CREATE TABLE crimemap_schema (version integer NOT NULL);
"""

STOPS_DDL = """
CREATE TABLE {name} (
    id bigint NOT NULL,
    month integer NOT NULL,
    cell bigint NOT NULL,
    force smallint NOT NULL,
    lng double precision,
    lat double precision,
    street_id bigint,
    named boolean NOT NULL,
    street_name text,
    type text,
    datetime text NOT NULL,
    operation boolean,
    operation_name text,
    gender text,
    age_range text,
    self_defined_ethnicity text,
    officer_defined_ethnicity text,
    legislation text,
    object_of_search text,
    outcome text,
    outcome_id text,
    outcome_linked boolean,
    removal boolean,
    json text NOT NULL,
    geom geometry(Point, 4326) GENERATED ALWAYS AS (CASE WHEN lng IS NULL OR lat IS NULL THEN NULL
        ELSE ST_SetSRID(ST_MakePoint(lng, lat), 4326) END) STORED
)"""
STOPS_SCHEMA = (
    STOPS_DDL.format(name="stops") + PARTITION_BY + ";\n"
    + ";\n".join(index_sql(name) for name, (table, _) in INDEXES.items() if table == "stops")
)  # fmt: skip
"""Stops and searches (:mod:`crimemap.store.postgis.stops`); the columns hold what the embedded store's do."""

STATS_SCHEMA = """
CREATE TABLE IF NOT EXISTS stats_totals (
    month integer NOT NULL, force smallint NOT NULL, category smallint NOT NULL, crimes bigint NOT NULL,
    PRIMARY KEY (month, force, category)
);
CREATE TABLE IF NOT EXISTS stats_outcomes (
    month integer NOT NULL, force smallint NOT NULL, category smallint NOT NULL, outcome integer NOT NULL,
    crimes bigint NOT NULL,
    PRIMARY KEY (month, force, category, outcome)
);
CREATE TABLE IF NOT EXISTS stats_cells (
    level smallint NOT NULL, month integer NOT NULL, row integer NOT NULL, col integer NOT NULL,
    force smallint NOT NULL, category smallint NOT NULL, crimes bigint NOT NULL,
    PRIMARY KEY (level, month, row, col, force, category)
);
CREATE TABLE IF NOT EXISTS stats_neighbourhoods (
    month integer NOT NULL, force smallint NOT NULL, category smallint NOT NULL, neighbourhood text NOT NULL,
    crimes bigint NOT NULL,
    PRIMARY KEY (month, neighbourhood, category, force)
);
"""
"""Crime counts kept up to date by every load (:mod:`crimemap.store.stats_plan`, its PostGIS reads)."""

FEATURE_GEOMETRY_SCHEMA = "CREATE TABLE IF NOT EXISTS feature_geometry (physical text PRIMARY KEY, kind text NOT NULL)"
"""Feature tables whose geometries are not all points: where their shapes are kept."""

ADDED_TABLES = {
    "stops": STOPS_SCHEMA,
    "stats_totals": STATS_SCHEMA,
    "stats_outcomes": STATS_SCHEMA,
    "stats_cells": STATS_SCHEMA,
    "stats_neighbourhoods": STATS_SCHEMA,
    "feature_geometry": FEATURE_GEOMETRY_SCHEMA,
    DOCUMENTS_TABLE: DOCUMENTS_DDL,
}
"""Tables added since schema 1, created when a store lacks them."""


Connection = psycopg.Connection[Any]


def _require_extensions(conn: Connection) -> None:
    for ext in ("postgis", "btree_gist"):  # btree_gist: the stops' GiST index on (month, geom)
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (ext,)).fetchone():
            continue
        try:
            with conn.transaction():
                conn.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
        except psycopg.Error as e:
            raise StoreError(
                f"the database needs the {ext} extension and this user cannot create it"
                f" ({e.diag.message_primary}); ask its owner to run: CREATE EXTENSION {ext};"
                + (" (Debian: apt-get install postgresql-NN-postgis-3)" if ext == "postgis" else "")
            ) from None


def ensure_schema(conn: Connection, upgrade: Callable[[Connection, int], None]) -> bool:
    """Create the schema in an empty database, upgrade an older one, refuse a newer one.

    ``conn`` is in autocommit mode. Several processes may open a store at once
    (``crimemap serve --workers N``): an advisory lock lets one create or upgrade
    it while the others wait, then find it done. ``upgrade(conn, version)`` rewrites a store
    of an older schema inside the transaction this opens. Tables added since a store was made
    are added to it (:data:`ADDED_TABLES`, :data:`ADDED_INDEXES`). Returns whether it upgraded.
    """
    upgraded = _create_or_upgrade(conn, upgrade)
    _add_new_tables(conn)
    _add_new_indexes(conn)
    return upgraded


ADDED_INDEXES = ("crimes_by_kind",)
"""Indexes of :data:`INDEXES` added since schema 2 was first released: a store made before gets them."""


def _add_new_indexes(conn: Connection) -> None:
    for name in ADDED_INDEXES:
        if _table_exists(conn, name):
            continue
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('crimemap schema ' || current_schema()))")
            if not _table_exists(conn, name):  # not made meanwhile by another process
                conn.execute(index_sql(name))


def is_read_only(conn: Connection) -> bool:
    """Whether ``conn`` cannot write: a hot standby (in recovery), or a session read-only by default."""
    row = conn.execute("SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::boolean").fetchone()
    return bool(row and row[0])


def outdated(conn: Connection) -> str | None:
    """What opening the store writably would change, in words (None: nothing); writes nothing.

    A store too new for this crimemap is refused here as :func:`ensure_schema` refuses it.
    """
    if not _table_exists(conn, "crimemap_schema"):
        return "has no crimemap tables yet"
    version = _version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"this store was written by a newer crimemap (schema {version}, this one knows"
            f" {SCHEMA_VERSION}); upgrade crimemap"
        )
    if version < SCHEMA_VERSION:
        return f"is of schema {version} and needs an upgrade to schema {SCHEMA_VERSION}"
    missing = [table for table in ADDED_TABLES if not _table_exists(conn, table)]
    if missing:
        return f"lacks the tables added since it was made ({', '.join(missing)})"
    missing = [index for index in ADDED_INDEXES if not _table_exists(conn, index)]
    if missing:
        return f"lacks the indexes added since it was made ({', '.join(missing)})"
    return None


def _add_new_tables(conn: Connection) -> None:
    for table, ddl in ADDED_TABLES.items():
        if _table_exists(conn, table):
            continue
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('crimemap schema ' || current_schema()))")
            if not _made_meanwhile(conn, table):
                conn.execute(ddl)


def _create_or_upgrade(conn: Connection, upgrade: Callable[[Connection, int], None]) -> bool:
    if _table_exists(conn, "crimemap_schema") and _version(conn) == SCHEMA_VERSION:
        return False
    _require_extensions(conn)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('crimemap schema ' || current_schema()))")
        if not _table_exists(conn, "crimemap_schema"):
            conn.execute(SCHEMA)
            seed_vocabulary(conn)
            conn.execute("INSERT INTO crimemap_schema VALUES (%s)", (SCHEMA_VERSION,))
            return False
        version = _version(conn)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"this store was written by a newer crimemap (schema {version}, this one knows"
                f" {SCHEMA_VERSION}); upgrade crimemap"
            )
        if version == SCHEMA_VERSION:  # upgraded meanwhile by another process
            return False
        upgrade(conn, version)
        conn.execute("UPDATE crimemap_schema SET version = %s", (SCHEMA_VERSION,))
        return True


def seed_vocabulary(conn: Connection) -> None:
    """The categories, forces and outcomes every store starts with (codes from :mod:`crimemap.vocab`)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO categories VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [(c.code, c.slug, c.name) for c in vocab.CATEGORIES],
        )
        cur.executemany(
            "INSERT INTO forces VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [(f.code, f.id, f.name) for f in vocab.FORCES],
        )
        cur.executemany(
            "INSERT INTO outcome_kinds VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [(o.code, o.slug, o.name) for o in vocab.OUTCOMES],
        )


def _made_meanwhile(conn: Connection, name: str) -> bool:
    """Whether another process made table ``name`` while this one waited for the lock (read from the catalog
    afresh: ``to_regclass`` may answer from a cache that a lock taken since has not refreshed)."""
    found = conn.execute(
        "SELECT 1 FROM pg_class WHERE relname = %s AND relnamespace = current_schema()::regnamespace", (name,)
    ).fetchone()
    return found is not None


def _table_exists(conn: Connection, name: str) -> bool:
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(found and found[0])


def _version(conn: Connection) -> int:
    row = conn.execute("SELECT max(version) FROM crimemap_schema").fetchone()
    return int(str(row[0])) if row and row[0] is not None else 0
