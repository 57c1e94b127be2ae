"""Connections to PostgreSQL: a pool for reads, each under a time budget, and one connection per load.

Each process keeps a small pool of connections (:mod:`psycopg_pool`); every read
runs with a ``statement_timeout`` (``CRIMEMAP_STATEMENT_TIMEOUT``, as the embedded
store's time budget), so that no request can hold the database for long: a read
stopped by it fails with :class:`~crimemap.errors.ReadTimeout`, which the
APIs answer with their own 503. A load gets a connection of its own, without a
budget (see :meth:`crimemap.store.postgis.PostGISStore.writer`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors
from psycopg.adapt import Buffer, Loader
from psycopg.pq import Format
from psycopg_pool import ConnectionPool, PoolTimeout

from crimemap.errors import ReadTimeout, StoreError

STATEMENT_TIMEOUT_ENV = "CRIMEMAP_STATEMENT_TIMEOUT"
"""Seconds any one read may run before PostgreSQL cancels it (default 10), on both stores."""
POOL_SIZE_ENV = "CRIMEMAP_PG_POOL_SIZE"
"""Connections each process may open to PostgreSQL (default 10)."""
DEFAULT_STATEMENT_TIMEOUT_S = 10.0
DEFAULT_POOL_SIZE = 10
STREAM_CHUNK = 2000

Cursor = psycopg.Cursor[Any]


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

    def __init__(self, url: str, *, pool_size: int | None = None, statement_timeout_s: float | None = None) -> None:
        self.url = redact(url)
        self.conninfo = url
        self.statement_timeout_s = (
            statement_timeout_s
            if statement_timeout_s is not None
            else float(os.environ.get(STATEMENT_TIMEOUT_ENV) or DEFAULT_STATEMENT_TIMEOUT_S)
        )
        self.pool_size = max(1, pool_size or int(os.environ.get(POOL_SIZE_ENV) or DEFAULT_POOL_SIZE))
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None

    def open_pool(self) -> None:
        self._pool = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=self.pool_size,
            kwargs={"autocommit": True, "connect_timeout": 10},
            configure=self._configure,
            open=True,
            name="crimemap",
            timeout=30,
        )

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"SET statement_timeout = {int(self.statement_timeout_s * 1000)}")
        conn.execute("SET jit = off")  # compiling a plan costs more than any of these reads

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def connect(self) -> psycopg.Connection[Any]:
        """A connection of its own (autocommit; transactions are explicit), for a load or a schema change."""
        try:
            return psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as e:
            raise StoreError(f"cannot connect to {self.url}: {str(e).strip()}") from None

    @contextmanager
    def cursor(self, *, json: bool = False) -> Iterator[Cursor]:
        """A binary cursor on a pooled connection; with ``json``, text columns come back as bytes.

        Database errors become :class:`StoreError`, and a read stopped by the
        time budget :class:`ReadTimeout`.
        """
        assert self._pool is not None
        try:
            with self._pool.connection() as conn, conn.cursor(binary=True) as cur:
                if json:
                    cur.adapters.register_loader("text", TextAsBytes)
                yield cur
        except psycopg.errors.QueryCanceled:
            raise ReadTimeout(
                f"the query took longer than {self.statement_timeout_s:g} s and was stopped;"
                " ask for a smaller area or fewer rows"
            ) from None
        except PoolTimeout:
            raise StoreError("the database is busy: no connection came free in 30 s; try again") from None
        except psycopg.OperationalError as e:
            raise StoreError(f"database error at {self.url}: {str(e).strip()}") from None

    def all(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self.cursor() as cur:
            return cur.execute(sql, list(params)).fetchall()

    def one(self, sql: str, params: Iterable[Any] = ()) -> tuple[Any, ...] | None:
        with self.cursor() as cur:
            return cur.execute(sql, list(params)).fetchone()

    def stream(self, sql: str, params: Iterable[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows as the server sends them, in chunks: memory stays flat for any result size."""
        with self.cursor() as cur:
            yield from cur.stream(sql, list(params), size=STREAM_CHUNK)
