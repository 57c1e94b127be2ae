"""Whole tables of the PostGIS store as Arrow record batches, read by the ADBC PostgreSQL driver in C.

The plan is :func:`crimemap.store.columnar.plan_read`'s. The driver runs a
statement without parameters as ``COPY (...) TO STDOUT (FORMAT binary)`` and
decodes the stream into Arrow in C, so the plan's values are bound into its text
by psycopg (``ClientCursor.mogrify``, PostgreSQL's own quoting) rather than
sent as parameters. The driver cuts its batches by size; they are asked for
about as many rows as the embedded store's
(:data:`~crimemap.store.columnar.BATCH_ROWS`). The read runs without the
requests' time budget: an export of a whole table is one statement that runs as
long as the client reads.
"""

from __future__ import annotations

from collections.abc import Iterator

import adbc_driver_postgresql.dbapi as adbc
import psycopg

from crimemap.errors import StoreError, TableChanged
from crimemap.query import FeatureQuery
from crimemap.store import columnar
from crimemap.store.columnar import ArrowFeatures, ColumnarRead, Source, plan_read
from crimemap.store.postgis.connection import Database
from crimemap.store.postgis.dialect import CRIME_VALUES, POSTGIS

ROW_BYTES = 256
"""About what a crime's row weighs in the driver's batches: the driver cuts its batches by bytes, not rows."""


def plan(source: Source, query: FeatureQuery) -> ColumnarRead | None:
    """The columnar read of ``query``, or None where it does not apply."""
    read = plan_read(source, query, POSTGIS, CRIME_VALUES)
    return read if read is None or not read.lookups else None  # every value spelt in SQL here: no lookup tables


def features(db: Database, read: ColumnarRead) -> Iterator[ArrowFeatures]:
    """The features ``read`` reads, a batch at a time, from one snapshot."""
    sql = read.sql
    if read.params:
        with db.cursor() as cur:
            sql = psycopg.ClientCursor(cur.connection).mogrify(read.sql, read.params)
    with adbc.connect(db.conninfo) as conn, conn.cursor() as cur:
        hint = columnar.BATCH_ROWS * ROW_BYTES
        cur.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(hint)})
        try:
            cur.execute(sql)
            batches = cur.fetch_record_batch()
        except adbc.Error as e:
            if "does not exist" in str(e):
                raise TableChanged(f"the table was replaced while it was being read ({e}); ask again") from None
            raise StoreError(f"cannot read the store: {e}") from None
        for batch in batches:
            if batch.num_rows:
                yield read.decode(batch, ())
