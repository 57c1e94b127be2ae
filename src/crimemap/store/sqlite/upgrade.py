"""Bring a store file of schema 1 (crimemap's first release) up to schema 2, in place.

Run inside the transaction :func:`crimemap.store.sqlite.schema.ensure_schema`
opens, so a failure or a kill leaves the file as it was. Every crime is read
back through the first release's columns, as it would have been served, and
written with what schema 2 prepares at load time (its JSON,
its LSOA's number), so that every answer stays what it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from crimemap.policeuk_json import crime_json
from crimemap.store.records import crime_from_row
from crimemap.store.sqlite.load_connection import sorting_in_runs
from crimemap.store.sqlite.schema import CRIME_COLUMNS_SQL, INDEXES, OUTCOME_COLUMNS_SQL, outcome_json
from crimemap.store.sqlite.writer import CRIME_INSERT

_V1_CRIME = (
    "id, month, force, falls_within, lng, lat, street_id, street_name, lsoa_code, lsoa_name,"
    " category, pid, location_subtype, context, outcome, outcome_month, cell, pid_key"
)
_BATCH = 20_000


def upgrade_from_1(conn: sqlite3.Connection, progress: Callable[[int, int], None] | None = None) -> None:
    """Rewrite a schema-1 file's crimes, outcomes and outcome kinds as schema 2 keeps them."""
    conn.execute("ALTER TABLE outcome_kinds ADD COLUMN json TEXT NOT NULL DEFAULT ''")
    kinds = conn.execute("SELECT code, name FROM outcome_kinds").fetchall()
    conn.executemany("UPDATE outcome_kinds SET json = ? WHERE code = ?", [(outcome_json(n), c) for c, n in kinds])
    names = dict(kinds)
    conn.execute(
        "CREATE TABLE lsoas (code INTEGER PRIMARY KEY, lsoa_code TEXT NOT NULL, lsoa_name TEXT NOT NULL,"
        " UNIQUE (lsoa_code, lsoa_name))"
    )
    conn.execute(
        "INSERT INTO lsoas (lsoa_code, lsoa_name) SELECT DISTINCT lsoa_code, lsoa_name FROM crimes ORDER BY 1, 2"
    )
    conn.execute(f"CREATE TABLE crimes_v2 ({CRIME_COLUMNS_SQL}) WITHOUT ROWID")
    lsoas = {(c, n): code for code, c, n in conn.execute("SELECT code, lsoa_code, lsoa_name FROM lsoas")}
    total = conn.execute("SELECT count(*) FROM crimes").fetchone()[0]
    insert = CRIME_INSERT.replace("INSERT INTO crimes ", "INSERT INTO crimes_v2 ")
    done = 0
    cursor = conn.execute(f"SELECT {_V1_CRIME} FROM crimes ORDER BY month, cell, id")
    while batch := cursor.fetchmany(_BATCH):
        rows = []
        for row in batch:
            crime = crime_from_row(row[:16], names.get)
            lng, lat = row[4], row[5]
            (cid, month, force, falls, _, _, sid, sname, lcode, lname, cat, pid, lsub, ctx, out, om, cell, key) = row
            rows.append(
                (month, cell, cid, force, cat, lng, lat, sid, sname, key, lsub, ctx,
                 lsoas[(lcode, lname)], falls, out, om, crime_json(crime).decode())
            )  # fmt: skip
        conn.executemany(insert, rows)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    conn.execute("DROP TABLE crimes")
    conn.execute("ALTER TABLE crimes_v2 RENAME TO crimes")
    conn.execute(
        "UPDATE crimes SET street_name = NULL"
        " WHERE street_name = (SELECT name FROM streets WHERE streets.id = crimes.street_id)"
    )
    with sorting_in_runs(conn):
        conn.execute(INDEXES["crimes_by_id"])
        conn.execute(INDEXES["crimes_by_pid"])
    conn.execute(f"CREATE TABLE outcomes_v2 ({OUTCOME_COLUMNS_SQL}) WITHOUT ROWID")
    conn.execute(
        "INSERT INTO outcomes_v2 SELECT month, force, cell, seq, pid, pid_key, outcome, lng, lat FROM outcomes"
        " ORDER BY month, cell, force, seq"
    )
    conn.execute("DROP TABLE outcomes")
    conn.execute("ALTER TABLE outcomes_v2 RENAME TO outcomes")
    with sorting_in_runs(conn):
        conn.execute(INDEXES["outcomes_by_pid"])
