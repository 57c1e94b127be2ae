"""Whole tables of the embedded store as Arrow record batches, read by the ADBC SQLite driver in C.

The plan is :func:`crimemap.store.columnar.plan_read`'s; this module has the
driver open the store's file read-only, binds the values and hands the batches
on. The driver runs in a process of its own (:mod:`crimemap.store.sqlite.driver_process`),
which holds no other connection to the file: the driver bundles its own copy of
SQLite, and two copies in one process release each other's locks. Two things are SQLite's own:

- A ``where`` that needs the store's Python functions (``cm_in_polygon``,
  ``cm_lower``, ``cm_number``, ``cm_intersects``) cannot run on the driver's
  connection: :func:`features` answers None and the export reads as before.
- The driver guesses each column's type from the values of its first batch, and
  a column of NULLs there would be taken for integers. The statement's first row
  is therefore one made up of a value of each column's type, dropped again.
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_sqlite.dbapi as adbc

from crimemap.query import FeatureQuery
from crimemap.store import columnar
from crimemap.store.columnar import ArrowFeatures, ColumnarRead, Names, Source, StoredType, plan_read
from crimemap.store.sqlite.dialect import CRIME_VALUES, SQLITE
from crimemap.store.sqlite.driver_process import driver_read

_TYPED_NULLS: dict[StoredType, str] = {"integer": "0", "double": "0.5", "string": "''", "blob": "X''"}
_PYTHON_FUNCTIONS = ("cm_in_polygon(", "cm_lower(", "cm_number(", "cm_intersects(")


def plan(source: Source, query: FeatureQuery) -> ColumnarRead | None:
    """The columnar read of ``query``, or None where the driver's connection cannot run it."""
    read = plan_read(source, query, SQLITE, CRIME_VALUES)
    if read is None or any(f in read.sql for f in _PYTHON_FUNCTIONS):
        return None
    if any(f in read.sql for f in _MATH_FUNCTIONS) and not _driver_has_math():
        return None
    return read


_MATH_FUNCTIONS = ("sin(", "cos(", "radians(")


@functools.cache
def _driver_has_math() -> bool:
    """Whether the driver's SQLite was built with its math functions (a circle's test uses them)."""
    try:
        with adbc.connect(":memory:") as conn, conn.cursor() as cur:
            cur.execute("SELECT sin(0.5), cos(0.5), radians(1.0)")
            cur.fetchall()
    except adbc.Error:
        return False
    return True


def features(path: Path, read: ColumnarRead) -> Iterator[ArrowFeatures]:
    """The features ``read`` reads from the store at ``path``, a batch at a time, from one snapshot.

    The lookup tables and the rows are read in one transaction of the driver's
    (autocommit off), so they come from the same snapshot.
    """
    first = ", ".join(_TYPED_NULLS[t] for t in read.types)
    sql = f"SELECT {first} UNION ALL SELECT * FROM ({read.sql})"
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    lookups, batches = driver_read(uri, list(read.lookups), sql, list(read.params or ()), columnar.BATCH_ROWS)
    names = [Names.of(table) for table in lookups]
    skip = 1
    for batch in batches:
        if skip:
            batch, skip = batch.slice(1), 0
        if batch.num_rows:
            yield read.decode(batch, names)
