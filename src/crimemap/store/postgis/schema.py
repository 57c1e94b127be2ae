"""The PostGIS store's schema, and how to create it or refuse a newer one.

The tables mirror the embedded store's (:mod:`crimemap.store.sqlite.schema`):
months are integers (``year * 12 + month - 1``), forces, categories and outcomes
are the small codes of :mod:`crimemap.vocab`, a persistent id is 32 raw bytes.
Instead of SQLite's grid cell, every located row has a ``geom`` point (SRID 4326)
generated from ``lng``/``lat``, so other PostGIS tools (QGIS, ``ogr2ogr``) read
the tables as they are.

Crimes carry one GiST index on ``(month, geom)`` (``btree_gist`` puts the month
in the tree): "month M within a mile of P" descends only into month M's part of
the tree. A GiST on ``geom`` alone had to visit every month's crimes at P.

Everything is created in the first schema of the connection's ``search_path``
(``public`` by default); a ``crimemap_schema`` table records the version.
"""

from __future__ import annotations

import psycopg

from crimemap import vocab
from crimemap.store.base import StoreError
from crimemap.store.postgis.dialect import DISTANCE_FUNCTION

SCHEMA_VERSION = 1

_POINT = (
    "geom geometry(Point, 4326) GENERATED ALWAYS AS (CASE WHEN lng IS NULL OR lat IS NULL THEN NULL"
    " ELSE ST_SetSRID(ST_MakePoint(lng, lat), 4326) END) STORED"
)
"""A located row's point, derived from ``lng``/``lat`` by the server (loads send no geometry)."""

SCHEMA = f"""
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE categories (code smallint PRIMARY KEY, slug text NOT NULL, name text NOT NULL);
CREATE TABLE forces (code smallint PRIMARY KEY, id text NOT NULL UNIQUE, name text NOT NULL);
CREATE TABLE outcome_kinds (code integer PRIMARY KEY, slug text NOT NULL, name text NOT NULL UNIQUE);

CREATE TABLE crimes (
    id bigint PRIMARY KEY,
    month integer NOT NULL,
    force smallint NOT NULL,
    category smallint NOT NULL,
    lng double precision,
    lat double precision,
    street_id bigint,
    street_name text NOT NULL,
    pid bytea,
    location_subtype text NOT NULL,
    context text NOT NULL,
    lsoa_code text NOT NULL,
    lsoa_name text NOT NULL,
    falls_within text,
    outcome integer,
    outcome_month integer,
    {_POINT}
);
CREATE INDEX crimes_by_month_force ON crimes (month, force);
CREATE INDEX crimes_by_month_geom ON crimes USING gist (month, geom);
CREATE INDEX crimes_by_pid ON crimes (pid) WHERE pid IS NOT NULL;
CREATE INDEX crimes_by_street ON crimes (street_id, month) WHERE street_id IS NOT NULL;

CREATE TABLE outcomes (
    month integer NOT NULL,
    force smallint NOT NULL,
    pid bytea NOT NULL,
    outcome integer NOT NULL,
    lng double precision,
    lat double precision,
    street_id bigint,
    street_name text NOT NULL,
    {_POINT}
);
CREATE INDEX outcomes_by_month_force ON outcomes (month, force);
CREATE INDEX outcomes_by_pid ON outcomes (pid, month);
CREATE INDEX outcomes_by_month_geom ON outcomes USING gist (month, geom);
CREATE INDEX outcomes_by_street ON outcomes (street_id, month) WHERE street_id IS NOT NULL;

CREATE TABLE streets (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    lng double precision NOT NULL,
    lat double precision NOT NULL,
    {_POINT}
);
CREATE INDEX streets_by_geom ON streets USING gist (geom);

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

{DISTANCE_FUNCTION};

CREATE TABLE crimemap_schema (version integer NOT NULL);
"""


ADDITIONS = """
-- Crime counts kept up to date by every load (crimemap.store.stats_plan, crimemap.store.postgis.stats).
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
-- Feature tables whose geometries are not all points: where their shapes are kept.
CREATE TABLE IF NOT EXISTS feature_geometry (physical text PRIMARY KEY, kind text NOT NULL);
"""
"""Tables added since schema 1, created in any store that lacks them (every statement is IF NOT EXISTS)."""

ADDED_TABLES = ("stats_totals", "stats_outcomes", "stats_cells", "feature_geometry")


def ensure_additions(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Create the tables of :data:`ADDITIONS` that are missing, once, however many processes open the store."""
    missing = conn.execute(
        "SELECT count(*) FROM unnest(%s::text[]) AS t(name) WHERE to_regclass(t.name) IS NULL", (list(ADDED_TABLES),)
    ).fetchone()
    if not missing or not missing[0]:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('crimemap schema ' || current_schema()))")
        conn.execute(ADDITIONS)


def _require_extensions(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    for ext in ("postgis", "btree_gist"):
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


def ensure_schema(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Create the schema in an empty database, or refuse one written by a newer crimemap.

    ``conn`` is in autocommit mode. Several processes may open a new store at once
    (``crimemap serve --workers N``): an advisory lock lets one create it.
    """
    _ensure_base(conn)
    ensure_additions(conn)


def _ensure_base(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    found = conn.execute("SELECT to_regclass('crimemap_schema') IS NOT NULL").fetchone()
    if found and found[0] and _version(conn) == SCHEMA_VERSION:
        return
    _require_extensions(conn)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('crimemap schema ' || current_schema()))")
        found = conn.execute("SELECT to_regclass('crimemap_schema') IS NOT NULL").fetchone()
        if found and found[0]:
            version = _version(conn)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"this store was written by a newer crimemap (schema {version}, this one knows"
                    f" {SCHEMA_VERSION}); upgrade crimemap"
                )
            return
        conn.execute(SCHEMA)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO categories VALUES (%s, %s, %s)",
                [(c.code, c.slug, c.name) for c in vocab.CATEGORIES],
            )
            cur.executemany("INSERT INTO forces VALUES (%s, %s, %s)", [(f.code, f.id, f.name) for f in vocab.FORCES])
            cur.executemany(
                "INSERT INTO outcome_kinds VALUES (%s, %s, %s)",
                [(o.code, o.slug, o.name) for o in vocab.OUTCOMES],
            )
        conn.execute("INSERT INTO crimemap_schema VALUES (%s)", (SCHEMA_VERSION,))


def _version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT max(version) FROM crimemap_schema").fetchone()
    return int(str(row[0])) if row and row[0] is not None else 0
