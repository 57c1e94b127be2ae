"""Bring a PostGIS store of schema 1 (crimemap's first release) or 2 up to schema 3, in place.

Run inside the transaction :func:`crimemap.store.postgis.schema.ensure_schema`
opens, so that a failure or a kill leaves the store as it was. Every crime is read
back through the first release's columns, as it would have been served, and
written with what schema 2 prepares at load time (its cell, unit vector,
persistent-id key and police.uk JSON) by the loader's own code
(:class:`~crimemap.store.batches.CrimeBatch`, :func:`crimemap.store.postgis.writer.encode_crimes`),
so that every answer stays what it was. Outcomes and map points gain their cells
in SQL, by the same arithmetic. Schema 1 kept no order of outcome rows within a
file; they keep the order in which they were stored.

Schema 3 partitions ``crimes``, ``outcomes`` and ``stops`` by month
(:func:`upgrade_from_2`): each table is set aside, and each of its months is
copied, as it is, into a table of its own, indexed and attached as the
partitioned table's partition, as a load builds a month
(:mod:`crimemap.store.postgis.partitions`). A store of schema 1 is brought to
schema 2 first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg

from crimemap.records import Crime
from crimemap.store.batches import CrimeBatch
from crimemap.store.postgis import partitions as months
from crimemap.store.postgis.schema import (
    CRIME_POINTS_VIEW,
    CRIMES_DDL,
    INDEXES,
    OUTCOMES_DDL,
    PARTITION_BY,
    PARTITIONED,
    STOPS_DDL,
    STREETS_DDL,
    STREETS_INDEXES,
    cell_sql,
    index_sql,
    pid_key_sql,
)
from crimemap.store.postgis.tables import quote_ident
from crimemap.store.postgis.writer import OUTCOME_COLUMNS, PostGISWriter, analyze, prepare_crimes
from crimemap.store.records import CRIME_FIELDS, crime_from_row

CHUNK = 50_000
"""Crimes read, prepared and copied at a time."""

_V1_TABLES = ("crimes", "outcomes", "streets")

_DDL = {"crimes": CRIMES_DDL, "outcomes": OUTCOMES_DDL, "stops": STOPS_DDL}


def upgrade(conn: psycopg.Connection[Any], version: int) -> None:
    """Bring a store of schema ``version`` to the current one (in the transaction that ensure_schema opened)."""
    if version < 2:
        upgrade_from_1(conn)
    upgrade_from_2(conn)


def upgrade_from_2(conn: psycopg.Connection[Any]) -> None:
    """Partition the crimes, outcomes and stops of a schema-2 store by month, keeping every row as it is."""
    conn.execute("DROP VIEW IF EXISTS crime_points")
    for table in PARTITIONED:
        if _is_plain_table(conn, table):
            _partition(conn, table)
    conn.execute(CRIME_POINTS_VIEW)


def _is_plain_table(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (table,)).fetchone()
    return row is not None and row[0] == "r"


def _partition(conn: psycopg.Connection[Any], table: str) -> None:
    """Make ``table`` partitioned by month, each stored month a partition, its rows in clustered order."""
    _set_aside(conn, table, "_v2")
    conn.execute(_DDL[table].format(name=table) + PARTITION_BY)
    for name, (owner, _) in INDEXES.items():
        if owner == table:
            conn.execute(index_sql(name))
    columns = months.copied_columns(conn, table)
    stored = [m for (m,) in conn.execute(f"SELECT DISTINCT month FROM {table}_v2 ORDER BY month").fetchall()]
    for month in stored:
        stage = months.create_stage(conn, table, month)
        conn.execute(
            f"INSERT INTO {stage} ({columns}) SELECT {columns} FROM {table}_v2 WHERE month = %s"
            f" ORDER BY {months.CLUSTERED[table]}",
            (month,),
        )
        months.seal(conn, table, month, stage, analyze=False)
        months.swap_in(conn, table, month, stage)
    conn.execute(f"DROP TABLE {table}_v2")
    months.analyze_whole(conn, table)


def upgrade_from_1(conn: psycopg.Connection[Any]) -> None:
    """Rewrite a schema-1 store's crimes, outcomes and map points as schema 2 keeps them."""
    for table in _V1_TABLES:
        _set_aside(conn, table, "_v1")
    conn.execute(
        "DROP FUNCTION IF EXISTS cm_distance(double precision, double precision, double precision, double precision)"
    )
    conn.execute(CRIMES_DDL.format(name="crimes"))
    conn.execute(OUTCOMES_DDL.format(name="outcomes"))
    conn.execute(STREETS_DDL)
    conn.execute(
        f"INSERT INTO streets (id, name, lng, lat, cell) SELECT id, name, lng, lat, {cell_sql('lng', 'lat')}"
        " FROM streets_v1"
    )
    writer = PostGISWriter(conn)
    for batch in _crimes_of_v1(conn, writer.outcome_names):
        writer.copy_crimes([prepare_crimes(batch)], {}, "crimes")
    writer.store_new_outcomes()
    conn.execute(
        f"INSERT INTO outcomes ({OUTCOME_COLUMNS}) SELECT {cell_sql('lng', 'lat')}, {pid_key_sql('pid')}, lng, lat,"
        " month, (row_number() OVER (PARTITION BY month, force ORDER BY ctid) - 1)::integer, outcome, force, pid"
        " FROM outcomes_v1 ORDER BY month, 1, force, 6"
    )
    for table in _V1_TABLES:
        conn.execute(f"DROP TABLE {table}_v1")
    for name, (table, _) in INDEXES.items():
        if table != "stops":
            conn.execute(index_sql(name))
    conn.execute(STREETS_INDEXES)
    conn.execute(CRIME_POINTS_VIEW)
    analyze(conn)


def _set_aside(conn: psycopg.Connection[Any], table: str, suffix: str) -> None:
    """Rename an older schema's table and its indexes out of the way of the current schema's (``crimes_v1``)."""
    conn.execute(f"ALTER TABLE {table} RENAME TO {table}{suffix}")
    indexes = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s",
        (f"{table}{suffix}",),
    ).fetchall()
    for (index,) in indexes:
        conn.execute(f"ALTER INDEX {quote_ident(index)} RENAME TO {quote_ident(index + suffix)}")


def _crimes_of_v1(conn: psycopg.Connection[Any], outcome_names: dict[int, str]) -> Iterator[CrimeBatch]:
    """The schema-1 crimes as batches of one month each, in the order schema 2 clusters them."""
    select = ", ".join(CRIME_FIELDS)
    with conn.cursor(name="crimes_v1") as cur:
        cur.itersize = CHUNK
        cur.execute(f"SELECT {select} FROM crimes_v1 ORDER BY month, {cell_sql('lng', 'lat')}, id")
        records: list[Crime] = []
        month = None
        while rows := cur.fetchmany(CHUNK):
            for row in rows:
                crime = crime_from_row(row, outcome_names.get)
                if crime.month != month and records:
                    yield _sorted(records)
                    records = []
                month = crime.month
                records.append(crime)
                if len(records) >= CHUNK:
                    yield _sorted(records)
                    records = []
        if records:
            yield _sorted(records)


def _sorted(records: list[Crime]) -> CrimeBatch:
    batch = CrimeBatch.from_records(records)
    return batch.take(np.lexsort((batch.id, batch.cell)))
