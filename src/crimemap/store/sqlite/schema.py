"""The embedded store's SQL schema, and how an older file is brought up to date.

Crimes are clustered on ``(month, cell, id)`` in a ``WITHOUT ROWID`` table:
``cell`` is a grid cell numbered row by row (:mod:`crimemap.geo`), so "crimes of
month M within a mile of P" is a handful of primary-key range scans, with no
separate spatial index to keep up while loading (SQLite's R*Tree was measured
and lost on both load and query speed).

Work done once at load time instead of on every request (schema 2):

- ``json``: each crime's object of the police.uk answer, encoded when it is
  loaded (:func:`crimemap.policeuk_json.crime_json`), so a ``crimes-street``
  answer is the concatenation of ready-made objects; the month of its latest
  outcome is rewritten in place when a later outcomes file dates it;
- the exact one-mile test runs inside the SQL, as a dot product of unit vectors
  (:mod:`crimemap.geometry.areas`), and only on the rows of the cells the circle cuts:
  cells wholly inside it are read without a test (storing each crime's unit
  vector instead measured 0.25 ms faster on the densest mile, for 27 bytes a crime);
- ``lsoa``: a code into ``lsoas``, where each LSOA's code and name are kept once;
- a map point's name is kept once, in ``streets``: a crime's ``street_name`` is NULL
  unless it is spelt otherwise (:func:`street_name`);
- the persistent id is kept once, in the JSON (:func:`pid_text` reads it back), beside
  ``pid_key``, its first 63 bits, which is what the index holds;
- ``crimes_by_kind``: each (category, force) pair's crimes in clustered order, so a
  Maps Engine page whose ``where`` names one of each and no month or area reads its
  rows and no others (about 20 bytes a crime). A file made before it had this index
  gets it the first time it is opened for writing (every statement of the schema is
  ``IF NOT EXISTS``); until then such pages take the clustered walk, as they did.

Pages are 16 KiB: a crime's row is about 570 bytes, and on 4 KiB pages a
twelfth of every page was left over, too small for one more row.

A file of schema 1 (crimemap's first release) is upgraded in place, in one
transaction, the first time it is opened for writing (:func:`upgrade_from_1`);
opened read-only, it is refused with the command that upgrades it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import orjson

from crimemap import vocab
from crimemap.store.documents import DDL as DOCUMENTS_DDL
from crimemap.store.sqlite.load_connection import sorting_in_runs

SCHEMA_VERSION = 2

CRIME_COLUMNS_SQL = """
    month INTEGER NOT NULL,
    cell INTEGER NOT NULL,
    id INTEGER NOT NULL,
    force INTEGER NOT NULL,
    category INTEGER NOT NULL,
    lng REAL,
    lat REAL,
    street_id INTEGER,
    street_name TEXT,
    pid_key INTEGER,
    location_subtype TEXT NOT NULL,
    context TEXT NOT NULL,
    lsoa INTEGER NOT NULL,
    falls_within TEXT,
    outcome INTEGER,
    outcome_month INTEGER,
    json TEXT NOT NULL,
    PRIMARY KEY (month, cell, id)
"""

OUTCOME_COLUMNS_SQL = """
    month INTEGER NOT NULL,
    force INTEGER NOT NULL,
    cell INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    pid BLOB NOT NULL,
    pid_key INTEGER NOT NULL,
    outcome INTEGER NOT NULL,
    lng REAL,
    lat REAL,
    PRIMARY KEY (month, cell, force, seq)
"""

KIND_BASE = 64
assert len(vocab.FORCES) <= KIND_BASE


def kind_sql(alias: str = "") -> str:
    """SQL: a crime's (category, force) pair as one integer, what ``crimes_by_kind`` holds first."""
    p = f"{alias}." if alias else ""
    return f"{p}category * {KIND_BASE} + {p}force"


INDEXES = {
    "crimes_by_id": "CREATE UNIQUE INDEX IF NOT EXISTS crimes_by_id ON crimes (id)",
    # pid_key: the persistent id's first 63 bits. An integer index is much cheaper to
    # keep up while loading than one on the 32-byte id itself.
    "crimes_by_pid": "CREATE INDEX IF NOT EXISTS crimes_by_pid ON crimes (pid_key) WHERE pid_key IS NOT NULL",
    "outcomes_by_pid": "CREATE INDEX IF NOT EXISTS outcomes_by_pid ON outcomes (pid_key)",
    # A (category, force) pair's crimes in clustered order, for a `where` that names both and no month or
    # area (crimemap.store.sqlite.crime_table). One integer, not two columns: only a query that spells
    # this expression can use it, so the planner never trades the clustered walk for it elsewhere.
    "crimes_by_kind": f"CREATE INDEX IF NOT EXISTS crimes_by_kind ON crimes ({kind_sql()}, month, cell, id)",
}

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS categories (code INTEGER PRIMARY KEY, slug TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS forces (code INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
-- json: the outcome's {{"code", "name"}} object, as the outcomes methods show it.
CREATE TABLE IF NOT EXISTS outcome_kinds (
    code INTEGER PRIMARY KEY, slug TEXT NOT NULL, name TEXT NOT NULL UNIQUE, json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lsoas (
    code INTEGER PRIMARY KEY, lsoa_code TEXT NOT NULL, lsoa_name TEXT NOT NULL, UNIQUE (lsoa_code, lsoa_name)
);

-- month: months since year 0 (year * 12 + month - 1); cell: grid cell, -1 without location.
-- street_name is NULL when it is the name of the crime's map point in streets (nearly always).
-- location_type is not stored: BTP crimes are exactly those of the btp force.
-- falls_within is NULL when it is the reporting force.
CREATE TABLE IF NOT EXISTS crimes ({CRIME_COLUMNS_SQL}) WITHOUT ROWID;
{INDEXES["crimes_by_id"]};
{INDEXES["crimes_by_pid"]};
{INDEXES["crimes_by_kind"]};

CREATE TABLE IF NOT EXISTS outcomes ({OUTCOME_COLUMNS_SQL}) WITHOUT ROWID;
{INDEXES["outcomes_by_pid"]};

-- Stops and searches (crimemap.store.sqlite.stops), clustered as crimes are. cell -1: no location.
-- named: street_id is a stored map point's (else the point's own id, see crimemap.store.stop_rows).
-- json: the stop's object of the police.uk answers, made at load time.
CREATE TABLE IF NOT EXISTS stops (
    month INTEGER NOT NULL,
    cell INTEGER NOT NULL,
    id INTEGER NOT NULL,
    force INTEGER NOT NULL,
    x REAL,
    y REAL,
    z REAL,
    lng REAL,
    lat REAL,
    street_id INTEGER,
    named INTEGER NOT NULL,
    street_name TEXT,
    type TEXT,
    datetime TEXT NOT NULL,
    operation INTEGER,
    operation_name TEXT,
    gender TEXT,
    age_range TEXT,
    self_defined_ethnicity TEXT,
    officer_defined_ethnicity TEXT,
    legislation TEXT,
    object_of_search TEXT,
    outcome TEXT,
    outcome_id TEXT,
    outcome_linked INTEGER,
    removal INTEGER,
    json TEXT NOT NULL,
    PRIMARY KEY (month, cell, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS stops_by_id ON stops (id);
CREATE INDEX IF NOT EXISTS stops_by_force ON stops (month, force, id);
CREATE INDEX IF NOT EXISTS stops_by_street ON stops (street_id, month, id) WHERE street_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS stops_unnamed ON stops (cell) WHERE named = 0;

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

-- Crime counts kept up to date by every load (crimemap.store.stats_plan, crimemap.store.sqlite.stats).
-- outcome: -1 for none; row, col: grid row and column >> level.
CREATE TABLE IF NOT EXISTS stats_totals (
    month INTEGER NOT NULL, force INTEGER NOT NULL, category INTEGER NOT NULL, crimes INTEGER NOT NULL,
    PRIMARY KEY (month, force, category)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stats_outcomes (
    month INTEGER NOT NULL, force INTEGER NOT NULL, category INTEGER NOT NULL, outcome INTEGER NOT NULL,
    crimes INTEGER NOT NULL,
    PRIMARY KEY (month, force, category, outcome)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stats_cells (
    level INTEGER NOT NULL, month INTEGER NOT NULL, row INTEGER NOT NULL, col INTEGER NOT NULL,
    force INTEGER NOT NULL, category INTEGER NOT NULL, crimes INTEGER NOT NULL,
    PRIMARY KEY (level, month, row, col, force, category)
) WITHOUT ROWID;
-- Crimes per neighbourhood (force/id), kept for the boundaries whose fingerprint meta keeps
-- (crimemap.store.stats_neighbourhoods): group=neighbourhood.
CREATE TABLE IF NOT EXISTS stats_neighbourhoods (
    month INTEGER NOT NULL, force INTEGER NOT NULL, category INTEGER NOT NULL, neighbourhood TEXT NOT NULL,
    crimes INTEGER NOT NULL,
    PRIMARY KEY (month, neighbourhood, category, force)
) WITHOUT ROWID;

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
-- Physical feature tables whose features are shapes (polygons), not only points (crimemap.geometry.shapes).
CREATE TABLE IF NOT EXISTS feature_geometry (physical TEXT PRIMARY KEY, kind TEXT NOT NULL);

-- police.uk documents: neighbourhoods' and forces' JSON as published (crimemap.store.documents).
{DOCUMENTS_DDL};
"""


PAGE_SIZE = 16384


def pid_text(alias: str = "") -> str:
    """SQL: a crime's persistent id (64 hex digits, or ``''``), read from its JSON."""
    p = f"{alias}." if alias else ""
    return (
        f"CASE WHEN {p}pid_key IS NULL THEN '' ELSE"
        f' substr({p}json, instr({p}json, \',"persistent_id":"\') + 18, 64) END'
    )


def street_name(alias: str = "") -> str:
    """SQL: a crime's street name: its own, or else its map point's."""
    p = f"{alias}." if alias else ""
    return f"coalesce({p}street_name, (SELECT name FROM streets WHERE id = {p}street_id))"


class SchemaError(Exception):
    """The file's schema cannot be used as it is (newer, or older and opened read-only)."""


def outcome_json(name: str) -> str:
    """An outcome's ``{"code", "name"}`` object (:func:`crimemap.policeuk_json.outcome_category`)."""
    return orjson.dumps({"code": vocab.outcome_by_name(name).slug, "name": name}).decode()


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_readable(conn: sqlite3.Connection, path: str) -> None:
    """Refuse a file this code cannot read as it is, saying what to do."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"{path} was written by a newer crimemap (schema {version}; this one knows {SCHEMA_VERSION});"
            " upgrade crimemap"
        )
    if 0 < version < SCHEMA_VERSION:
        raise SchemaError(
            f"{path} was written by an older crimemap (schema {version}); upgrade it in place, once, with:"
            f" crimemap upgrade --store {path}"
        )


def ensure_schema(conn: sqlite3.Connection, upgrade: Callable[[sqlite3.Connection], None] | None = None) -> bool:
    """Create the schema in an empty file, upgrade an older one, refuse a newer one.

    Returns whether an older file was upgraded. ``upgrade`` is the function
    that rewrites a schema-1 file's crimes (the store passes its writer's).
    """
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        check_readable(conn, "this store")
    if version == SCHEMA_VERSION:
        with sorting_in_runs(conn):  # an index added since: built as a bulk load builds its own
            conn.executescript(SCHEMA)  # tables added since the file was made (every statement is IF NOT EXISTS)
        return False
    if version == 0:
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.executescript(SCHEMA)
        with conn:
            seed_vocabulary(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return False
    if upgrade is None:
        check_readable(conn, "this store")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if schema_version(conn) == 1:  # not upgraded meanwhile by another process
            assert upgrade is not None
            upgrade(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.executescript(SCHEMA)
    return True


def seed_vocabulary(conn: sqlite3.Connection) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO categories VALUES (?, ?, ?)", [(c.code, c.slug, c.name) for c in vocab.CATEGORIES]
    )
    conn.executemany("INSERT OR IGNORE INTO forces VALUES (?, ?, ?)", [(f.code, f.id, f.name) for f in vocab.FORCES])
    conn.executemany(
        "INSERT OR IGNORE INTO outcome_kinds VALUES (?, ?, ?, ?)",
        [(o.code, o.slug, o.name, outcome_json(o.name)) for o in vocab.OUTCOMES],
    )
