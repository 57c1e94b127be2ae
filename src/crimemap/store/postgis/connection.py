"""Connections to PostgreSQL: a pool for reads, each under a time budget, and one connection per load.

Each process keeps a small pool of connections (:mod:`psycopg_pool`); every read
runs with a ``statement_timeout`` (``CRIMEMAP_STATEMENT_TIMEOUT``, as the embedded
store's time budget), so that no request can hold the database for long: a read
stopped by it fails with :class:`~crimemap.errors.ReadTimeout`, which the
APIs answer with their own 503. A load gets a connection of its own, without a
budget (see :meth:`crimemap.store.postgis.PostGISStore.writer`).

Through a transaction pooler (PgBouncer in ``pool_mode = transaction``,
``CRIMEMAP_PG_POOLER=transaction``) consecutive statements of one client
connection may run on different server connections, so nothing may outlive a
transaction: psycopg's automatic prepared statements are off (a statement
prepared on one server connection is missing on the next, or clashes with
another client's ``_pg3_0``), and each read runs in a transaction of its own
whose budget is ``SET LOCAL``, where a direct connection sets it once per session.

On a hot standby a read may be cancelled by the replay of the primary's changes
(a replay conflict, SQLSTATE 40001); it is tried once more, then fails with
:class:`~crimemap.errors.ReplicaConflict`, a 503 as a stopped read is.

A URL may name several servers (``postgresql://h1:5432,h2:5432/crimes?target_session_attrs=read-write``,
or ``prefer-standby``/``any`` for readers): libpq tries them in turn for each new
connection, which is how a process finds the new primary after a failover. The
pooled connections to a server that died are broken, and a read on one fails:
the pool is then drained (every idle connection it holds is replaced by a fresh
one, made to whichever server answers now) and the read tried once more, on a
fresh connection; if that fails too, or no connection can be had in
:data:`CONNECTION_WAIT_S` (in the read's time budget once a connection was
found dead), it is :class:`~crimemap.errors.DatabaseUnavailable`, a 503 as a
stopped read is, never a hang.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import psycopg
import psycopg.errors
from psycopg.adapt import Buffer, Loader
from psycopg.pq import Format
from psycopg_pool import ConnectionPool, PoolTimeout

from crimemap.errors import DatabaseUnavailable, ReadTimeout, ReplicaConflict, StoreError

STATEMENT_TIMEOUT_ENV = "CRIMEMAP_STATEMENT_TIMEOUT"
"""Seconds any one read may run before PostgreSQL cancels it (default 10), on both stores."""
POOL_SIZE_ENV = "CRIMEMAP_PG_POOL_SIZE"
"""Connections each process may open to PostgreSQL (default 10)."""
POOLER_ENV = "CRIMEMAP_PG_POOLER"
"""``transaction`` when the URL goes through a transaction pooler (PgBouncer's transaction mode); empty: direct."""
POOLER_MODES = ("", "session", "transaction", "statement")
DEFAULT_STATEMENT_TIMEOUT_S = 10.0
DEFAULT_POOL_SIZE = 10
STREAM_CHUNK = 2000
CONNECTION_WAIT_S = 30.0
"""Seconds a read waits for a pooled connection: one to come free, or one to be made after a server died."""

Cursor = psycopg.Cursor[Any]
P = ParamSpec("P")
R = TypeVar("R")


def is_replay_conflict(error: BaseException) -> bool:
    """Whether ``error`` is a hot standby cancelling a read that held up the replay of the primary's WAL."""
    return isinstance(error, psycopg.errors.SerializationFailure) and "conflict with recovery" in str(error)


def _replica_conflict() -> ReplicaConflict:
    return ReplicaConflict(
        "the read was cancelled twice by the replica replaying the primary's changes (a replay conflict); try again"
    )


class ConnectionLost(DatabaseUnavailable):
    """A read's pooled connection turned out dead (its server stopped, crashed or was failed over).

    :func:`retry_once` tries the read again; anywhere else it is the 503 it inherits.
    """


def _unavailable(url: str, why: str, kind: type[DatabaseUnavailable] = DatabaseUnavailable) -> DatabaseUnavailable:
    return kind(f"the database at {url} cannot be reached ({why.strip()}); try again in a moment")


def retry_once(read: Callable[P, R]) -> Callable[P, R]:
    """``read`` tried once more when a replay conflict cancels it or its pooled connection turns out dead.

    Before the second try :meth:`Database.cursor` has drained the pool of a dead
    connection. Cancelled twice: :class:`ReplicaConflict`; a dead connection twice (or
    none to be had): :class:`DatabaseUnavailable`; both are 503s.
    Only for reads that hand back a whole answer: one that streams rows is retried by
    :meth:`Database.stream`, before its first row.
    """

    @functools.wraps(read)
    def retried(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return read(*args, **kwargs)
        except psycopg.errors.SerializationFailure as e:
            if not is_replay_conflict(e):
                raise StoreError(f"database error: {str(e).strip()}") from None
        except ConnectionLost:
            pass  # the pool was drained: the read runs again on a fresh connection
        try:
            return read(*args, **kwargs)
        except psycopg.errors.SerializationFailure as e:
            if not is_replay_conflict(e):
                raise StoreError(f"database error: {str(e).strip()}") from None
            raise _replica_conflict() from None
        except ConnectionLost as e:
            raise DatabaseUnavailable(str(e)) from None

    return retried


retry_replay_conflict = retry_once
"""The name the reads were written against, from when a replay conflict was the only reason to try again."""


def redact(url: str) -> str:
    """The URL without its password, for messages and ``crimemap info``."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


class TextAsBytes(Loader):
    """Loads ``text`` as the bytes PostgreSQL sent: a ready-made JSON body is never decoded and encoded again."""

    format = Format.BINARY

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


class Database:
    """The pooled read connections of one store, and the way to open a load's connection."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int | None = None,
        statement_timeout_s: float | None = None,
        pooler: str | None = None,
    ) -> None:
        self.url = redact(url)
        self.conninfo = url
        self.pooler = (pooler if pooler is not None else os.environ.get(POOLER_ENV) or "").strip().lower()
        if self.pooler not in POOLER_MODES:
            raise StoreError(f"{POOLER_ENV} must be one of {', '.join(m for m in POOLER_MODES if m)} or empty")
        self.pooled = self.pooler in ("transaction", "statement")
        """Whether a server connection may change between transactions: no session state, no prepared statements."""
        if self.pooled and "options=" in url:
            raise StoreError(
                f"{self.url}: PgBouncer refuses the options= startup parameter (search_path and such);"
                " give the store a database of its own, or ALTER ROLE ... SET search_path"
            )
        self.statement_timeout_s = (
            statement_timeout_s
            if statement_timeout_s is not None
            else float(os.environ.get(STATEMENT_TIMEOUT_ENV) or DEFAULT_STATEMENT_TIMEOUT_S)
        )
        self.pool_size = max(1, pool_size or int(os.environ.get(POOL_SIZE_ENV) or DEFAULT_POOL_SIZE))
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._drain_lock = threading.Lock()
        self._drained_at = 0.0
        self._lost = False
        """Whether a connection was found dead and no read has succeeded since: reads then wait for a new
        connection no longer than their time budget, so that a server that stays away is a prompt 503."""

    def open_pool(self) -> None:
        self._pool = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=self.pool_size,
            kwargs=self._connect_kwargs(),
            configure=None if self.pooled else self._configure,
            open=True,
            name="crimemap",
            timeout=CONNECTION_WAIT_S,
        )

    def _connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 10}
        if self.pooled:
            kwargs["prepare_threshold"] = None
        return kwargs

    def _read_settings(self, scope: str) -> str:
        """The read's budget, and how its plans are made.

        ``jit`` off: compiling a plan costs more than any of these reads.
        ``plan_cache_mode = force_generic_plan``: psycopg prepares a statement
        a connection has run five times, and PostgreSQL then kept planning it
        anew for each call's values (its choice for these statements): planning
        a rendered page of GeoJSON, 37 parameters, took longer than running it
        (a page of 11 crimes: 0.65 ms a call, 0.31 ms planned once). The reads'
        plans do not hinge on the values (a month's partition is pruned as the
        statement starts either way); measured on every read the benchmarks
        time, 0.51x to 1.05x the time (``benchmarks/bench_stores.py``).
        """
        timeout = int(self.statement_timeout_s * 1000)
        return (
            f"SET {scope}statement_timeout = {timeout}; SET {scope}jit = off;"
            f" SET {scope}plan_cache_mode = force_generic_plan"
        )

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(self._read_settings(""))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def connect(self) -> psycopg.Connection[Any]:
        """A connection of its own (autocommit; transactions are explicit), for a load or a schema change."""
        try:
            return psycopg.connect(self.conninfo, **self._connect_kwargs())
        except psycopg.OperationalError as e:
            raise StoreError(f"cannot connect to {self.url}: {str(e).strip()}") from None

    def _drain(self, since: float) -> None:
        """Replace the pool's idle connections, unless that was done after ``since`` (by another read)."""
        assert self._pool is not None
        with self._drain_lock:
            self._lost = True
            if self._drained_at >= since:
                return
            self._drained_at = time.monotonic()
        self._pool.drain()

    @contextmanager
    def cursor(self, *, json: bool = False) -> Iterator[Cursor]:
        """A binary cursor on a pooled connection; with ``json``, text columns come back as bytes.

        Database errors become :class:`StoreError`, and a read stopped by the
        time budget :class:`ReadTimeout`. A replay conflict passes through, for
        :func:`retry_once` to try the read again, and so does a connection found
        dead, as :class:`ConnectionLost`, once the pool is drained. Through a transaction
        pooler the read is a transaction of its own, its budget set for it alone.
        """
        assert self._pool is not None
        taken = time.monotonic()
        used: psycopg.Connection[Any] | None = None
        wait = min(self.statement_timeout_s, CONNECTION_WAIT_S) if self._lost else CONNECTION_WAIT_S
        try:
            with self._pool.connection(timeout=wait) as conn, conn.transaction() if self.pooled else _nothing():
                used = conn
                self._lost = False
                if self.pooled:
                    conn.execute(self._read_settings("LOCAL "))
                with conn.cursor(binary=True) as cur:
                    if json:
                        cur.adapters.register_loader("text", TextAsBytes)
                    yield cur
        except psycopg.errors.SerializationFailure as e:
            if is_replay_conflict(e):
                raise
            raise StoreError(f"database error at {self.url}: {str(e).strip()}") from None
        except psycopg.errors.QueryCanceled:
            raise ReadTimeout(
                f"the query took longer than {self.statement_timeout_s:g} s and was stopped;"
                " ask for a smaller area or fewer rows"
            ) from None
        except PoolTimeout:
            raise _unavailable(self.url, f"no connection came free or could be made in {wait:g} s") from None
        except psycopg.OperationalError as e:
            if used is not None and used.broken:
                self._drain(since=taken)
                raise _unavailable(self.url, str(e), ConnectionLost) from None
            raise StoreError(f"database error at {self.url}: {str(e).strip()}") from None

    @retry_once
    def all(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self.cursor() as cur:
            return cur.execute(sql, list(params)).fetchall()

    @retry_once
    def one(self, sql: str, params: Iterable[Any] = ()) -> tuple[Any, ...] | None:
        with self.cursor() as cur:
            return cur.execute(sql, list(params)).fetchone()

    def stream(self, sql: str, params: Iterable[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows as the server sends them, in chunks: memory stays flat for any result size.

        A replay conflict or a dead connection before the first row is tried once
        more; after it, the rows already sent cannot be taken back, and it is a
        :class:`ReplicaConflict` or :class:`DatabaseUnavailable`.
        """
        params = list(params)
        for attempt in (1, 2):
            sent = False
            try:
                with self.cursor() as cur:
                    for row in cur.stream(sql, params, size=STREAM_CHUNK):
                        sent = True
                        yield row
                return
            except psycopg.errors.SerializationFailure:  # only a replay conflict gets past cursor()
                if sent or attempt == 2:
                    raise _replica_conflict() from None
            except ConnectionLost as e:
                if sent or attempt == 2:
                    raise DatabaseUnavailable(str(e)) from None


@contextmanager
def _nothing() -> Iterator[None]:
    yield
