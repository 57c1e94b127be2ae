"""Months as partitions: a month is built aside as a table of its own, then swapped in.

``crimes``, ``outcomes`` and ``stops`` are partitioned by month (schema 3, see
:mod:`crimemap.store.postgis.schema`), one partition a month, named
``crimes_2024_03``. A load that writes a month:

1. creates its **stage**, ``crimes_2024_03_next``: a plain table with the
   partitioned table's columns (``LIKE``, so a column added to the schema is
   carried along) and no index, and copies the month's new rows into it;
2. copies into it the rows of the month it does not replace (the forces it
   brings no file for), read from the stored partition (:func:`keep_rows`);
3. builds every index of :data:`~crimemap.store.postgis.schema.INDEXES` on it
   by sorting, once, and a ``CHECK (month = m)`` matching the partition bound, so
   that ``ATTACH`` finds the bound proven and reads no row (:func:`seal`);
4. at the end of the load, in its transaction, **swaps** it in: ``DETACH`` and
   ``DROP`` the stored partition, ``ATTACH`` the stage in its place
   (:func:`swap_in`).

Each step costs what the month holds, whatever the store holds besides, so a
month reload costs the same with 36 months stored as with 3. Readers keep
reading the stored month until the load commits: they never see a half-built
one. ``DETACH ... CONCURRENTLY`` would spare them a wait but cannot run inside a
transaction block, and a load is one transaction (all or nothing), so the plain
``DETACH`` is used: it takes an ``ACCESS EXCLUSIVE`` lock on the partitioned table
until the commit, and readers wait from the swap to the commit (the end of the
load: the dating of outcomes and the counts, see
:meth:`crimemap.store.postgis.writer.PostGISWriter.finish`).
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import psycopg.errors

from crimemap.errors import StoreError
from crimemap.months import format_month
from crimemap.store.postgis.schema import INDEXES, PARTITIONED, index_sql

Connection = psycopg.Connection[Any]

__all__ = [
    "PARTITIONED", "analyze_whole", "analyzes_whole", "create_stage", "keep_rows", "lock_for_swaps", "partitions",
    "seal", "swap_in",
]  # fmt: skip

CLUSTERED = {"crimes": "cell, id", "outcomes": "cell, force, seq", "stops": "cell, id"}
"""The order in which a month's rows are kept on disk: the order of the answers (see the writer)."""

ANALYZED = {
    "crimes": "month, cell, force, category, street_id, pid_key, outcome, outcome_month, lng, lat",
    "outcomes": "month, cell, force, pid_key, lng, lat",
    "stops": "month, cell, force, street_id, named, lng, lat, geom",
}
"""The columns queries filter on: statistics of the others (the JSON above all) cost an ANALYZE most of its time."""

IDS = {"crimes": "crimes", "stops": "stops"}
"""Tables whose ``id`` is an id of its own across months (a primary key holds the month too: see :func:`check_ids`)."""


def partition_name(table: str, month: int) -> str:
    """``crimes_2024_03`` for month ``2024-03`` (a month number, ``year * 12 + month - 1``)."""
    return f"{table}_{format_month(month).replace('-', '_')}"


def stage_name(table: str, month: int) -> str:
    return partition_name(table, month) + "_next"


def partitions(conn: Connection, table: str) -> dict[int, str]:
    """The partitions of ``table`` by month number (in the connection's first schema)."""
    rows = conn.execute(
        "SELECT c.relname, (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'IN \\((\\d+)\\)'))[1]::integer"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = to_regclass(%s)",
        (table,),
    ).fetchall()
    return {month: name for name, month in rows}


def copied_columns(conn: Connection, table: str) -> str:
    """``table``'s columns that rows are written to (not the generated ones), in its order, comma-separated."""
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0"
        " AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
        (table,),
    ).fetchall()
    return ", ".join(name for (name,) in rows)


def create_stage(conn: Connection, table: str, month: int) -> str:
    """A new, empty, unindexed table with ``table``'s columns, to build ``month`` in; its name."""
    stage = stage_name(table, month)
    conn.execute(f"DROP TABLE IF EXISTS {stage}")  # left by a load that failed outside a transaction
    conn.execute(f"CREATE TABLE {stage} (LIKE {table} INCLUDING DEFAULTS INCLUDING GENERATED)")
    return stage


def keep_rows(conn: Connection, table: str, month: int, stage: str, replaced: list[int]) -> None:
    """Copy the stored rows of ``month`` of every force but ``replaced`` into ``stage``, in clustered order."""
    stored = partitions(conn, table).get(month)
    if stored is None:
        return
    columns = copied_columns(conn, table)
    conn.execute(
        f"INSERT INTO {stage} ({columns}) SELECT {columns} FROM {stored}"
        f" WHERE force <> ALL(%s::smallint[]) ORDER BY {CLUSTERED[table]}",
        (replaced,),
    )


def seal(conn: Connection, table: str, month: int, stage: str, analyze: bool = True) -> None:
    """Build ``stage``'s indexes and the check matching its bound, and its statistics (unless the load analyzes
    the whole table after the swap, see :func:`analyze_whole`): ready to be attached."""
    suffix = stage[len(table) :]  # "_2024_03_next"
    for name, (owner, _) in INDEXES.items():
        if owner != table:
            continue
        try:
            conn.execute(index_sql(name, stage, suffix))
        except psycopg.errors.UniqueViolation as e:
            what = {"crimes": "a crime id", "stops": "a stop id"}.get(table, "an outcome row")
            raise StoreError(f"{format_month(month)}: {what} is stored twice ({e}); nothing was stored") from None
    if table in IDS:
        check_ids(conn, table, month, stage)
    conn.execute(f"ALTER TABLE {stage} ADD CONSTRAINT {stage}_month CHECK (month = {int(month)})")
    if analyze:
        conn.execute(f"ANALYZE {stage} ({ANALYZED[table]})")


def check_ids(conn: Connection, table: str, month: int, stage: str) -> None:
    """Refuse an id of ``stage`` stored in another month: the primary key ``(id, month)`` cannot tell.

    Only the months whose ids span a range that meets the stage's are probed
    (each range is read at the ends of its primary key's index): police.uk ids
    grow with time, so a month's ids meet few other months', and the check costs
    about the same however many months are stored.
    """
    row = conn.execute(f"SELECT min(id), max(id) FROM {stage}").fetchone()
    if row is None or row[0] is None:
        return
    low, high = row
    for other, name in partitions(conn, table).items():
        if other == month:
            continue
        span = conn.execute(f"SELECT min(id), max(id) FROM {name}").fetchone()
        if span is None or span[0] is None or span[1] < low or span[0] > high:
            continue
        clash = conn.execute(f"SELECT s.id FROM {stage} s JOIN {name} o ON o.id = s.id LIMIT 1").fetchone()
        if clash is not None:
            what = "crime" if table == "crimes" else "stop"
            raise StoreError(
                f"{format_month(month)}: {what} id {clash[0]} is already stored for another {what}"
                f" (of {format_month(other)}); nothing was stored"
            )


LOCK_ORDER = ("outcomes", "crimes", "stops")
"""The order a load locks the partitioned tables in before it swaps months in: the order readers lock them
(an outcomes read joins each outcome to its crimes: outcomes first)."""


LOCK_ATTEMPT_MS = 100
"""How long one attempt at the swaps' lock may wait: the reads that arrive meanwhile wait behind it."""

LOCK_PAUSE_S = (0.05, 1.0)
"""The pause between two attempts, doubled each time from the first figure up to the second."""


def lock_for_swaps(conn: Connection, tables: set[str]) -> None:
    """Lock ``tables`` for the swaps at once, in :data:`LOCK_ORDER`, once no read of them is in flight.

    Taken one ``DETACH`` at a time, crimes first, the locks met a read of
    outcomes that held ``outcomes`` and waited for ``crimes``: a deadlock (seen
    in a test). Readers that arrive from here wait for the commit.

    A lock that is waited for makes every later reader of the table wait behind
    it (PostgreSQL queues them in order), so a download streaming from one open
    transaction for minutes held up every API read for as long, each stopped by
    its time budget (a 503, tested). So each attempt waits at most
    :data:`LOCK_ATTEMPT_MS` (``lock_timeout``, inside a savepoint), and between
    attempts the load steps back (:data:`LOCK_PAUSE_S`) and lets the reads through.
    """
    ordered = [t for t in LOCK_ORDER if t in tables]
    if not ordered:
        return
    (before,) = conn.execute("SELECT current_setting('lock_timeout')").fetchone() or ("0",)
    pause = LOCK_PAUSE_S[0]
    while True:
        conn.execute("SAVEPOINT swap_lock")
        conn.execute(f"SET LOCAL lock_timeout = {LOCK_ATTEMPT_MS}")
        try:
            conn.execute(f"LOCK TABLE {', '.join(ordered)} IN ACCESS EXCLUSIVE MODE")
        except psycopg.errors.LockNotAvailable:
            conn.execute("ROLLBACK TO SAVEPOINT swap_lock")  # the setting goes back with it
            time.sleep(pause)
            pause = min(pause * 2, LOCK_PAUSE_S[1])
            continue
        conn.execute("RELEASE SAVEPOINT swap_lock")
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (before,))
        return


def swap_in(conn: Connection, table: str, month: int, stage: str) -> None:
    """``stage`` becomes ``table``'s partition of ``month``, in place of the stored one (which is dropped).

    The check :func:`seal` made proves the bound, so ``ATTACH`` reads no row;
    it is dropped once attached (the partition's bound says as much).
    """
    name = partition_name(table, month)
    if month in partitions(conn, table):
        conn.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
        conn.execute(f"DROP TABLE {name}")
    conn.execute(f"ALTER TABLE {table} ATTACH PARTITION {stage} FOR VALUES IN ({int(month)})")
    conn.execute(f"ALTER TABLE {stage} DROP CONSTRAINT {stage}_month")
    conn.execute(f"ALTER TABLE {stage} RENAME TO {name}")
    suffix = stage[len(table) :]
    for index, (owner, _) in INDEXES.items():
        if owner == table:
            conn.execute(f"ALTER INDEX {index}{suffix} RENAME TO {index}{suffix.removesuffix('_next')}")


def analyzes_whole(conn: Connection, table: str, months: set[int]) -> bool:
    """Whether a load writing ``months`` of ``table`` analyzes the whole table after its swaps: when it writes
    at least half of the months stored then (a first load, a rebuild).

    ``ANALYZE`` of a partitioned table samples every partition for the table's
    own statistics (for plans that read every month) and analyzes each
    partition again: its cost grows with the months stored, so a load pays it
    only in proportion to what it wrote, and then its months need no ``ANALYZE``
    of their own.
    """
    stored = set(partitions(conn, table)) | months
    return len(months) * 2 >= len(stored)


def analyze_whole(conn: Connection, table: str) -> None:
    conn.execute(f"ANALYZE {table} ({ANALYZED[table]})")
