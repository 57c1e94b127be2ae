"""Connections to the embedded store's file, each read under a time budget.

Every thread reads through its own connection (sqlite3 connections are not
shared between threads); a load writes through one more, in one transaction.
WAL mode lets readers keep reading a consistent snapshot while a load writes.

Every statement a reader runs has a time budget, as PostgreSQL's
``statement_timeout`` gives the PostGIS store: a progress handler interrupts a
statement that runs past it, and the read fails with :class:`ReadTimeout`,
which the APIs answer with their own 503 (the way Datasette bounds its
queries with ``sqlite_timelimit``). The same handler stops the statement of a
request whose client has hung up (:mod:`crimemap.deadline`).
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import shapely

from crimemap import deadline
from crimemap.errors import ClientGone, ReadTimeout
from crimemap.geometry import areas, shapes
from crimemap.query import NUMBER_TEXT
from crimemap.store.base import StoreError
from crimemap.store.sqlite.load_connection import LOAD_PRAGMAS, LoadConnection, LocalConnection, driver_connection

TIME_BUDGET_ENV = "CRIMEMAP_STATEMENT_TIMEOUT"
"""Seconds one read may run before it is interrupted (default 10), on both stores."""
DEFAULT_TIME_BUDGET_S = 10.0

READ_CACHE_KIB = 32 * 1024
WRITE_CACHE_KIB = 256 * 1024
DRIVER_CACHE_KIB = 1024 * 1024
"""Page cache of a large load's driver process (100,000 rows or more), used as the load needs it: the index
builds and counts at its end sort in it. Measured on 3 months of ``archive-12x500000-s1`` (2,229,489 rows,
``bench_load_writer.py``, alternating, 3 runs each): 5.24 to 5.31 CPU µs a row in the driver's process
against 5.49 to 5.71 with the 256 MiB of :data:`WRITE_CACHE_KIB`."""
_PROGRESS_STEPS = 20_000
"""SQLite virtual-machine steps between two looks at the clock (about a tenth of a millisecond)."""


def time_budget_s() -> float:
    return float(os.environ.get(TIME_BUDGET_ENV) or DEFAULT_TIME_BUDGET_S)


class Reader:
    """A read connection whose statements are interrupted after the time budget."""

    def __init__(self, conn: sqlite3.Connection, budget_s: float) -> None:
        self.conn = conn
        self.budget_s = budget_s
        self.deadline = math.inf
        self.request: deadline.Deadline | None = None
        conn.set_progress_handler(self._over_budget, _PROGRESS_STEPS)

    def _over_budget(self) -> int:
        request = self.request
        return 1 if time.monotonic() > self.deadline or (request is not None and request.gone.is_set()) else 0

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Run one statement; its budget starts now and covers reading its rows, as long as its client stays."""
        self.deadline = time.monotonic() + self.budget_s
        self.request = deadline.current()
        try:
            return self.conn.execute(sql, tuple(params))
        except sqlite3.OperationalError as e:
            raise self._translated(e) from None

    def one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = self.execute(sql, params).fetchone()
        return row

    def rows(self, sql: str, params: Iterable[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of one statement, streamed; an interruption midway raises :class:`ReadTimeout`."""
        cursor = self.execute(sql, params)
        try:
            while batch := cursor.fetchmany(512):
                yield from batch
        except sqlite3.OperationalError as e:
            raise self._translated(e) from None

    @contextmanager
    def snapshot(self) -> Iterator[Reader]:
        """Read the store as of one moment: every statement inside sees the same committed state.

        An answer made of several statements (a mile's cell ranges, a count's
        kept sums and its edge cells, a page and its names) is otherwise read in
        autocommit, each statement on its own: a load committing between two of
        them gave half the old month and half the new. In WAL mode a read
        transaction costs no lock a writer waits for; it ends when the answer is read.
        """
        if self.conn.in_transaction:  # already inside one
            yield self
            return
        self.conn.execute("BEGIN")
        try:
            yield self
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def _translated(self, e: sqlite3.OperationalError) -> StoreError:
        if "interrupted" not in str(e):
            return StoreError(f"store error: {e}")
        if self.request is not None and self.request.gone.is_set():
            return ClientGone("the client hung up; its read was stopped")
        return ReadTimeout(
            f"the query took longer than {self.budget_s:g} s and was stopped; ask for a smaller area or fewer rows"
        )


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A configured connection (autocommit; transactions are explicit)."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=60, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA temp_store = MEMORY")
    # Readers (one per server thread, or an export) keep a small page cache and no
    # memory map, so a whole-table export stays within a flat ~100 MB; the OS page
    # cache still holds the file. A load writes with a large cache (see writer()).
    conn.execute(f"PRAGMA cache_size = {-READ_CACHE_KIB}")
    conn.execute("PRAGMA mmap_size = 0")
    register_functions(conn)
    return conn


def connect_for_writing(path: Path) -> sqlite3.Connection:
    """A connection for a load or an upgrade: a large page cache, and sorts that can use a second core
    (:data:`~crimemap.store.sqlite.load_connection.LOAD_PRAGMAS`)."""
    conn = connect(path, readonly=False)
    for pragma in (f"cache_size = {-WRITE_CACHE_KIB}", *LOAD_PRAGMAS):
        conn.execute(f"PRAGMA {pragma}")
    return conn


class Connections:
    """This store's connections: one reader per thread, and writers on demand."""

    def __init__(self, path: Path, *, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def reader(self) -> Reader:
        """This thread's reader."""
        reader: Reader | None = getattr(self._local, "reader", None)
        if reader is None:
            conn = connect(self.path, readonly=self.readonly)
            reader = Reader(conn, time_budget_s())  # read per connection, so a process can change it
            self._local.reader = reader
            with self._lock:
                self._opened.append(conn)
        return reader

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A connection for one load, with a large page cache; closed afterwards."""
        conn = connect_for_writing(self.path)
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def loading(self, *, through_driver: bool) -> Iterator[LoadConnection]:
        """A connection for one load (:mod:`~crimemap.store.sqlite.load_connection`): ``sqlite3``'s, or the
        ADBC driver's in a process of its own."""
        if through_driver:
            with driver_connection(self.path, DRIVER_CACHE_KIB) as conn:
                yield conn
        else:
            with self.writing() as local:
                yield LocalConnection(local)

    def close(self) -> None:
        with self._lock:
            for conn in self._opened:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:
                    pass
            self._opened.clear()
        self._local = threading.local()


# -- functions the SQL calls ------------------------------------------------------------------


def _in_polygon(lng: float | None, lat: float | None, key: str) -> int | None:
    if lng is None or lat is None:
        return None
    return int(shapely.intersects_xy(areas.prepared_polygon(key), lng, lat))


def _lower(text: Any) -> Any:
    return text.lower() if isinstance(text, str) else text


_NUMBER = re.compile(NUMBER_TEXT)


def _number(text: Any) -> float | None:
    """The number a text is (:data:`~crimemap.query.NUMBER_TEXT`), else NULL."""
    return float(text) if isinstance(text, str) and _NUMBER.fullmatch(text) else None


def _json_number(value: Any) -> str | None:
    """A number as orjson writes it, for the doubles SQLite's ``printf`` cannot write exactly (NULL: not a number)."""
    return orjson.dumps(value).decode() if isinstance(value, int | float) else None


def register_functions(conn: sqlite3.Connection) -> None:
    """The functions crimemap's SQL calls beyond SQLite's own.

    ``cm_in_polygon`` tests a point against a polygon (by its key); ``cm_intersects``
    two WKB geometries (:mod:`crimemap.geometry.shapes`); ``cm_json_number`` writes a
    number as orjson does (:mod:`crimemap.store.geojson_sql`); ``cm_lower``
    lower-cases all of Unicode, as Python does (SQLite's ``lower`` knows ASCII
    only). The math functions (``sin``, ``cos``, ``radians``) are SQLite's own
    where it was built with them, else the same C library's through Python, so
    the circle test gives the same answer either way.
    """
    conn.create_function("cm_in_polygon", 3, _in_polygon, deterministic=True)
    conn.create_function("cm_lower", 1, _lower, deterministic=True)
    conn.create_function("cm_number", 1, _number, deterministic=True)
    conn.create_function("cm_json_number", 1, _json_number, deterministic=True)
    conn.create_function("cm_intersects", 2, shapes.intersects, deterministic=True)
    try:
        conn.execute("SELECT sin(0.5), cos(0.5), radians(1.0)").fetchone()
    except sqlite3.OperationalError:
        conn.create_function("sin", 1, _maybe(math.sin), deterministic=True)
        conn.create_function("cos", 1, _maybe(math.cos), deterministic=True)
        conn.create_function("radians", 1, _maybe(math.radians), deterministic=True)


def _maybe(fn: Any) -> Any:
    return lambda v: None if v is None else fn(v)
