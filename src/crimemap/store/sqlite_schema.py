"""The embedded store's SQL schema, and how to bring an older file up to date.

Crimes are clustered on ``(month, cell, id)`` in a ``WITHOUT ROWID`` table:
``cell`` is a grid cell numbered row by row (:mod:`crimemap.geo`), so "crimes of
month M within a mile of P" is a handful of primary-key range scans, with no
separate spatial index to keep up to date while loading. It was measured
against SQLite's R*Tree (about 25k inserts/s here, and a planner that drives a
join from the wrong index) and won on both load and query speed.
"""

from __future__ import annotations

import sqlite3

from crimemap import vocab

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS categories (code INTEGER PRIMARY KEY, slug TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS forces (code INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcome_kinds (code INTEGER PRIMARY KEY, slug TEXT NOT NULL, name TEXT NOT NULL UNIQUE);

-- month: months since year 0 (year * 12 + month - 1); cell: grid cell, -1 without location.
-- location_type is not stored: BTP crimes are exactly those of the btp force.
-- falls_within is NULL when it is the reporting force. Fewer columns per crime is
-- what makes loading fast.
CREATE TABLE IF NOT EXISTS crimes (
    month INTEGER NOT NULL,
    cell INTEGER NOT NULL,
    id INTEGER NOT NULL,
    force INTEGER NOT NULL,
    category INTEGER NOT NULL,
    lng REAL,
    lat REAL,
    street_id INTEGER,
    street_name TEXT NOT NULL,
    pid BLOB,
    pid_key INTEGER,
    location_subtype TEXT NOT NULL,
    context TEXT NOT NULL,
    lsoa_code TEXT NOT NULL,
    lsoa_name TEXT NOT NULL,
    falls_within TEXT,
    outcome INTEGER,
    outcome_month INTEGER,
    PRIMARY KEY (month, cell, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS crimes_by_id ON crimes (id);
-- pid_key: the persistent id's first 63 bits. An integer index is much cheaper to
-- keep up while loading than one on the 32-byte id itself.
CREATE INDEX IF NOT EXISTS crimes_by_pid ON crimes (pid_key) WHERE pid_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS outcomes (
    month INTEGER NOT NULL,
    force INTEGER NOT NULL,
    cell INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    pid BLOB NOT NULL,
    pid_key INTEGER NOT NULL,
    outcome INTEGER NOT NULL,
    lng REAL,
    lat REAL,
    street_id INTEGER,
    street_name TEXT NOT NULL,
    PRIMARY KEY (month, cell, force, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outcomes_by_pid ON outcomes (pid_key);

-- Map points. A crime without coordinates has no street.
CREATE TABLE IF NOT EXISTS streets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    lng REAL NOT NULL,
    lat REAL NOT NULL,
    cell INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS streets_by_cell ON streets (cell);

-- One row per (month, force, kind) loaded: what `info` and crimes-street-dates list.
CREATE TABLE IF NOT EXISTS loads (
    month INTEGER NOT NULL,
    force INTEGER NOT NULL,
    kind TEXT NOT NULL,
    rows INTEGER NOT NULL,
    loaded_at TEXT NOT NULL,
    PRIMARY KEY (month, force, kind)
);

-- Feature tables loaded from GeoJSON/CSV; each lives in its own ft_<n> table.
CREATE TABLE IF NOT EXISTS feature_tables (
    id TEXT PRIMARY KEY,
    physical TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    columns TEXT NOT NULL,
    feature_count INTEGER NOT NULL,
    bbox TEXT,
    created TEXT NOT NULL,
    modified TEXT NOT NULL
);
"""


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the schema in an empty file, or refuse a file written by a newer crimemap."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        from crimemap.store.base import StoreError

        raise StoreError(
            f"this store was written by a newer crimemap (schema {version}, this one knows {SCHEMA_VERSION});"
            " upgrade crimemap"
        )
    if version == SCHEMA_VERSION:
        return
    conn.executescript(SCHEMA)
    with conn:
        conn.executemany(
            "INSERT OR IGNORE INTO categories VALUES (?, ?, ?)",
            [(c.code, c.slug, c.name) for c in vocab.CATEGORIES],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO forces VALUES (?, ?, ?)", [(f.code, f.id, f.name) for f in vocab.FORCES]
        )
        conn.executemany(
            "INSERT OR IGNORE INTO outcome_kinds VALUES (?, ?, ?)",
            [(o.code, o.slug, o.name) for o in vocab.OUTCOMES],
        )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
