"""Rate limiting as data.police.uk does it: a token bucket per client.

police.uk allows each client 15 requests a second on average, in bursts of up
to 30, and answers anything beyond with ``429 Too Many Requests``. crimemap
does the same when ``Settings.rate_limit`` is on (``crimemap serve
--rate-limit``); it is off by default, since a server on loopback usually has
one trusted client. The rate and burst come from ``Settings.rate_per_second``
and ``Settings.rate_burst``.

A client is its IP address as the socket sees it: ``X-Forwarded-For`` is not
trusted unless ``crimemap serve --trust-proxy ADDRESS`` names the proxy that
sets it. Each client's bucket holds up to ``burst`` tokens and refills at
``rate`` tokens a second; a request takes one token, and a request that finds
none is answered 429 with ``Retry-After`` (whole seconds until a token is back)
and a JSON body, without reaching the route.

The worker processes of one ``crimemap serve --workers N`` share their buckets
(:class:`SharedTokenBuckets`, a small SQLite file the command creates and
names in ``Settings.rate_state``), so a client gets ``burst`` and ``rate``
from the server as a whole, not from each worker.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from crimemap.api.policeuk.errors import error_response

if TYPE_CHECKING:
    from fastapi import FastAPI

    from crimemap.settings import Settings

_PRUNE_ABOVE = 10_000
"""Forget idle clients (full buckets) once this many are tracked, so memory stays bounded."""


class Buckets(Protocol):
    rate: float
    burst: float

    def take(self, key: str) -> float: ...


class TokenBuckets:
    """One token bucket per client key, in this process's memory.

    >>> buckets = TokenBuckets(rate=1.0, burst=2, clock=lambda: 0.0)
    >>> [buckets.take("a") for _ in range(3)]
    [0.0, 0.0, 1.0]
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got rate={rate} burst={burst}")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0.0 if granted, else the seconds until one is available."""
        now = self.clock()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._remember(key, tokens - 1.0, now)
            return 0.0
        self._remember(key, tokens, now)
        return (1.0 - tokens) / self.rate

    def _remember(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > _PRUNE_ABOVE:
            full_after = self.burst / self.rate
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}


class SharedTokenBuckets:
    """Token buckets in a SQLite file, shared by every process that opens it (the workers of one server).

    A take is one short write transaction (``BEGIN IMMEDIATE``), a few tens of
    microseconds; the file lives in memory-backed ``/dev/shm`` where there is one.

    >>> import tempfile
    >>> shared = SharedTokenBuckets(tempfile.mkdtemp() + "/buckets", rate=1.0, burst=2, clock=lambda: 0.0)
    >>> [shared.take("a") for _ in range(3)]
    [0.0, 0.0, 1.0]
    """

    def __init__(self, path: str | Path, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got rate={rate} burst={burst}")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._takes = 0
        self._conn = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = OFF")
        self._conn.execute("CREATE TABLE IF NOT EXISTS buckets (key TEXT PRIMARY KEY, tokens REAL, at REAL)")

    def take(self, key: str) -> float:
        """As :meth:`TokenBuckets.take`, atomically across processes."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = self.clock()
            row = conn.execute("SELECT tokens, at FROM buckets WHERE key = ?", (key,)).fetchone()
            tokens, at = row if row is not None else (self.burst, now)
            tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
            conn.execute(
                "INSERT OR REPLACE INTO buckets VALUES (?, ?, ?)", (key, tokens - 1.0 if wait == 0.0 else tokens, now)
            )
            self._takes += 1
            if self._takes % _PRUNE_ABOVE == 0:  # forget idle clients: their buckets are full again
                conn.execute("DELETE FROM buckets WHERE ? - at >= ?", (now, self.burst / self.rate))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return wait


class RateLimitMiddleware:
    """ASGI middleware applying :class:`TokenBuckets` to requests whose path starts with ``prefixes``."""

    def __init__(
        self,
        app: ASGIApp,
        rate_per_second: float,
        burst: int,
        prefixes: tuple[str, ...] = ("/api/",),
        shared_state: str | None = None,
    ) -> None:
        self.app = app
        self.buckets: Buckets = (
            SharedTokenBuckets(shared_state, rate_per_second, burst)
            if shared_state
            else TokenBuckets(rate_per_second, burst)
        )
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            client = scope.get("client")
            wait = self.buckets.take(client[0] if client else "")
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                response = error_response(
                    429,
                    f"too many requests: at most {self.buckets.rate:g} a second, in bursts of up to"
                    f" {self.buckets.burst:g}",
                    f"retry after {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI, settings: Settings, prefixes: tuple[str, ...] = ("/api/",)) -> None:
    """Limit requests under ``prefixes`` when ``settings.rate_limit`` is on; do nothing otherwise."""
    if settings.rate_limit:
        app.add_middleware(
            RateLimitMiddleware,
            rate_per_second=settings.rate_per_second,
            burst=settings.rate_burst,
            prefixes=prefixes,
            shared_state=settings.rate_state,
        )
