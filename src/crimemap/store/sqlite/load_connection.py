"""The connection a load writes through: ``sqlite3``'s, or for a large load the ADBC driver's, in a process of its own.

``sqlite3``'s ``executemany`` binds one Python value at a time, while a load's
rows arrive from the parsing process as numpy and pyarrow columns: making them
Python values and binding those was a third of the writing process's time. The
ADBC SQLite driver (``adbc-driver-sqlite``) binds a whole Arrow table to a
statement in C. A load's transaction cannot span two connections, so a load
that goes through the driver runs every statement on the driver's connection.

**Why a process of its own.** The driver bundles its own copy of SQLite (3.53
here, Python's is 3.40). Two copies of SQLite in one process do not see each
other's POSIX locks (a process never conflicts with itself), so closing the
driver's connection took it for the file's last one while the store's
``sqlite3`` readers in the same process were still open: it checkpointed and
deleted the ``-wal`` and ``-shm`` files under them. Their next reads saw the
store as it was before the load, or "database disk image is malformed" (SQLite
names this in "How To Corrupt An SQLite Database File", section 2.2.1). In a
process that holds no ``sqlite3`` connection to the file, the driver is one
more connection like any other: readers elsewhere see the load only at its
commit, a ``kill -9`` of either process leaves the store as it was.

So :class:`DriverConnection` starts that process (:func:`_serve`), sends it
each statement, and Arrow tables as Arrow IPC streams; the process ends with
the connection, or when the loading process dies (the pipe closes, and
:func:`crimemap.lifeline.exit_with_parent`), its transaction uncommitted. It
costs the start of a Python process (about half a second), so only loads of
many rows use it; :class:`LocalConnection` is the ``sqlite3`` connection with
the same three methods. Errors come out as ``sqlite3``'s
(:class:`sqlite3.IntegrityError` for a broken constraint,
:class:`sqlite3.OperationalError` otherwise) with SQLite's own message, from
either.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from crimemap.lifeline import exit_with_parent

BUSY_TIMEOUT_MS = 60_000
"""How long a load waits for another writer's lock, as the ``sqlite3`` writer's ``timeout=60`` does."""


SORT_THREADS = 2
"""Threads SQLite may sort with (``PRAGMA threads``): a bulk load's index builds and counts at its end.

SQLite sorts on more than one thread only when its sort spills to temporary
files (``temp_store = FILE``: with temporary storage in memory it never starts a
worker) and a sort outgrows the page cache, so that it is cut into runs; see
:func:`sorting_in_runs`.
"""

SORT_CACHE_KIB = 16 * 1024
"""The page cache while a load builds its deferred indexes: it is also how much a sort holds before it starts
a run on another thread. Measured on the 6M-crime store, the four builds took 24 s with a 1 GiB cache (one
run, sorted on one thread), 11.5 s with 64 MiB and 9.1 s with 16 MiB."""

LOAD_PRAGMAS = ("temp_store = FILE", f"threads = {SORT_THREADS}")
"""What a load's connection sets beyond a store connection's own: sorts that can use a second core."""


class SqlConnection(Protocol):
    """What the writing code needs of a connection to run SQL: ``execute`` and ``executemany``."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...


class LoadConnection(SqlConnection, Protocol):
    """A load's connection: SQL, and whole Arrow tables in and out."""

    def arrow(self, sql: str, parameters: Iterable[Any] = (), /) -> pa.Table:
        """The rows of one statement as an Arrow table."""
        ...

    def sync(self) -> None:
        """Wait until the statements sent so far have run; raise the error of one that failed."""
        ...


class Rows:
    """The rows of one statement, all fetched (a load's reads are small lookups)."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)


def _python_rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    return zip(*(column.to_pylist() for column in table.columns), strict=True)


@contextmanager
def sorting_in_runs(conn: SqlConnection) -> Iterator[None]:
    """Within the block, sort as runs on :data:`SORT_THREADS` threads, with a small page cache.

    For the index builds at the end of a bulk load. Shrinking the cache writes the
    transaction's dirty pages to the WAL now rather than at the commit, which writes
    them anyway; the cache is restored afterwards.
    """
    (cache,) = conn.execute("PRAGMA cache_size").fetchone()
    conn.execute(f"PRAGMA cache_size = {-SORT_CACHE_KIB}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size = {int(cache)}")


class LocalConnection:
    """A ``sqlite3`` connection with :class:`LoadConnection`'s methods (Arrow tables bound as Python values)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Iterable[Any] = (), /) -> sqlite3.Cursor:
        return self.conn.execute(sql, tuple(parameters))

    def executemany(self, sql: str, parameters: pa.Table | Iterable[tuple[Any, ...]], /) -> None:
        rows = _python_rows(parameters) if isinstance(parameters, pa.Table) else parameters
        self.conn.executemany(sql, rows)

    def sync(self) -> None:
        """Nothing to wait for: ``sqlite3`` runs each statement before it returns."""

    def arrow(self, sql: str, parameters: Iterable[Any] = (), /) -> pa.Table:
        cursor = self.conn.execute(sql, tuple(parameters))
        names = [d[0] for d in cursor.description]
        columns = list(zip(*cursor.fetchall(), strict=True)) or [() for _ in names]
        return pa.table({name: pa.array(list(values)) for name, values in zip(names, columns, strict=True)})


# -- the driver's connection, in its own process -----------------------------------------------------------


def _to_ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    return sink.getvalue()


def _from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


def _arrow_params(rows: Iterable[tuple[Any, ...]]) -> pa.Table | None:
    """Python rows as an Arrow table of their columns (None if there are none)."""
    rows = list(rows)
    if not rows:
        return None
    return pa.table({str(i): pa.array(list(c)) for i, c in enumerate(zip(*rows, strict=True))})


class DriverConnection:
    """The ADBC driver's connection to a store, held by a process of its own (see the module docstring)."""

    def __init__(self, path: Path, cache_kib: int) -> None:
        ctx = mp.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self._pending = False
        self._process = ctx.Process(target=_serve, args=(str(path), cache_kib, child, os.getpid()), daemon=True)
        self._process.start()
        child.close()
        self._call("ready", "", None)

    def _call(
        self, op: str, sql: str, params: tuple[Any, ...] | None, table: pa.Table | None = None, wait: bool = True
    ) -> Any:
        """Send one statement; wait for its answer, or (``wait=False``) let it run while this process goes on."""
        if sql == "ROLLBACK":
            # The load failed already: an error still to come, or a writing process already gone, is moot
            # (closing the driver's connection, or its process ending, rolls the transaction back).
            for step in (self.sync, lambda: self._call_now(op, sql, params)):
                try:
                    step()
                except sqlite3.Error:
                    self._pending = False
            return None
        self.sync()
        self._send(op, sql, params, table)
        self._pending = True
        return self.sync() if wait else None

    def _call_now(self, op: str, sql: str, params: tuple[Any, ...] | None) -> Any:
        self._send(op, sql, params, None)
        self._pending = True
        return self.sync()

    def _send(self, op: str, sql: str, params: tuple[Any, ...] | None, table: pa.Table | None) -> None:
        try:
            self._pipe.send((op, sql, params, table is not None))
            if table is not None:
                self._pipe.send_bytes(_to_ipc(table))
        except OSError as e:
            raise sqlite3.OperationalError(f"the store's writing process ended ({e!r})") from None

    def sync(self) -> Any:
        """Wait for the statement sent last, if its answer is still to come; raise its error."""
        if not self._pending:
            return None
        self._pending = False
        try:
            status, value = self._pipe.recv()
            if status == "table":
                return _from_ipc(self._pipe.recv_bytes())
        except (EOFError, OSError) as e:
            raise sqlite3.OperationalError(f"the store's writing process ended ({e!r})") from None
        if status == "integrity":
            raise sqlite3.IntegrityError(value)
        if status == "error":
            raise sqlite3.OperationalError(value)
        return value

    def execute(self, sql: str, parameters: Iterable[Any] = (), /) -> Rows:
        """Run one statement (parameters bound as ``?``) and fetch its rows."""
        return Rows(self._call("execute", sql, tuple(parameters)))

    def arrow(self, sql: str, parameters: Iterable[Any] = (), /) -> pa.Table:
        return self._call("arrow", sql, tuple(parameters))

    def executemany(self, sql: str, parameters: pa.Table | Iterable[tuple[Any, ...]], /) -> None:
        """Run ``sql`` once per row: an Arrow table's columns are bound in C; Python rows are made one first.

        It runs while this process goes on (preparing the next chunk): its error, if any, is raised by the
        next call, or by :meth:`sync`.
        """
        table = parameters if isinstance(parameters, pa.Table) else _arrow_params(parameters)
        if table is not None and table.num_rows:
            self._call("executemany", sql, None, table, wait=False)

    def close(self) -> None:
        try:
            self._pending = False  # an error still to come is the load's, raised already or moot
            self._call("close", "", None)
        except sqlite3.Error:
            pass
        self._pipe.close()
        self._process.join(timeout=60)
        if self._process.is_alive():
            self._process.kill()


def _serve(path: str, cache_kib: int, pipe: Any, parent_pid: int) -> None:
    """The writing process: run the statements the loading process sends, on the driver's connection."""
    exit_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the loading process's to handle (it rolls back)
    import adbc_driver_manager
    import adbc_driver_sqlite.dbapi as adbc

    conn = adbc.connect(path, autocommit=True)
    cur = conn.cursor()
    pragmas = (
        f"busy_timeout = {BUSY_TIMEOUT_MS}", "journal_mode = WAL", "synchronous = NORMAL",
        f"cache_size = {-cache_kib}", "mmap_size = 0", *LOAD_PRAGMAS,
    )  # fmt: skip
    for pragma in pragmas:
        cur.execute(f"PRAGMA {pragma}")
        cur.fetchall()
    try:
        while True:
            try:
                op, sql, params, has_table = pipe.recv()
                table = _from_ipc(pipe.recv_bytes()) if has_table else None
            except EOFError:  # the loading process is gone: end, uncommitted
                return
            try:
                if op == "close":
                    pipe.send(("ok", None))
                    return
                if op == "ready":
                    pipe.send(("ok", None))
                elif op == "executemany":
                    cur.executemany(sql, table)
                    pipe.send(("ok", None))
                elif op == "arrow":
                    cur.execute(sql, params or None)
                    result = cur.fetch_arrow_table()
                    pipe.send(("table", None))
                    pipe.send_bytes(_to_ipc(result))
                else:
                    cur.execute(sql, params or None)
                    pipe.send(("ok", cur.fetchall() if cur.description else []))
            except adbc_driver_manager.Error as e:
                message = sqlite_message(str(e))
                pipe.send(("integrity" if "constraint failed" in message else "error", message))
            except Exception as e:  # noqa: BLE001 - sent back as the statement's error; the process goes on
                pipe.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        cur.close()
        conn.close()  # an open transaction is rolled back


_DRIVER_WORDS = re.compile(r"^(?:[A-Z_]+: )?(?:\[SQLite\] )?(?:(?:failed|Failed) to [a-z ]+: )?")


def sqlite_message(driver_message: str) -> str:
    """SQLite's own message in one of the driver's, as ``sqlite3`` gives it.

    >>> sqlite_message("INTEGRITY: failed to execute query: UNIQUE constraint failed: t.a")
    'UNIQUE constraint failed: t.a'
    >>> sqlite_message("INVALID_ARGUMENT: [SQLite] Failed to prepare query: no such table: x\\nquery: SELECT 1")
    'no such table: x'
    """
    return _DRIVER_WORDS.sub("", driver_message.partition("\nquery: ")[0], count=1)


@contextmanager
def driver_connection(path: Path, cache_kib: int) -> Iterator[DriverConnection]:
    """A :class:`DriverConnection` to the store at ``path``; its process ended afterwards."""
    conn = DriverConnection(path, cache_kib)
    try:
        yield conn
    finally:
        conn.close()
