"""One HTTP client for every harvest: paced, and patient with servers that push back.

Remote APIs limit their clients and fail now and then; a harvest of thousands
of requests meets both. :class:`HarvestClient` wraps an ``httpx.Client`` and

- **paces** requests on the client side (:class:`RateLimiter`, default
  :data:`DEFAULT_RATE` a second: police.uk's published limit), so a polite
  harvest rarely sees a 429 at all;
- **honours 429**: waits the ``Retry-After`` the server gave (seconds or an
  HTTP date; exponential backoff without one) and asks again; every later
  request waits too;
- **retries** connection errors and retryable statuses (5xx by default; each
  API says which, since police.uk's 503 means "too many crimes", not "try
  again") with exponential backoff and jitter, up to ``max_attempts``;
- returns any other answer, error or not, for the harvester to interpret.

>>> client = HarvestClient("http://127.0.0.1:8000/api", rate=15)  # doctest: +SKIP
>>> client.request("GET", "/forces").json()[0]["id"]  # doctest: +SKIP
'avon-and-somerset'
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from crimemap import __version__

DEFAULT_RATE = 15.0
"""Requests a second: police.uk's published limit (15 a second, bursts of 30)."""

USER_AGENT = f"crimemap-harvest/{__version__} (+https://github.com/crimemap/crimemap)"

RETRY_STATUSES = frozenset({500, 502, 503, 504})


class HarvestError(Exception):
    """A harvest could not go on; the message says why and what to do."""


@dataclass
class RetryPolicy:
    """How hard to try: attempts per request and the waits between them (seconds)."""

    max_attempts: int = 6
    """Tries of one request on connection errors and retryable statuses (429s aside)."""
    backoff: float = 0.5
    """The first wait; each later one doubles, up to ``max_backoff``."""
    max_backoff: float = 60.0
    max_throttled: int = 30
    """429s in a row on one request before giving up."""
    max_retry_after: float = 900.0
    """A ``Retry-After`` longer than this is not waited for: the harvest stops (resume it later)."""
    jitter: float = 0.2
    """Each backoff is scaled by a random factor in ``1 ± jitter``."""

    def delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1, 2, ...)."""
        base = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else base


@dataclass
class HttpStats:
    """What a client did, for the harvest's summary."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    waited: float = 0.0


class RateLimiter:
    """At most ``rate`` requests a second, evenly spaced; ``pause`` holds every request back.

    >>> now = [0.0]
    >>> limiter = RateLimiter(2.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    >>> [limiter.wait() for _ in range(3)]
    [0.0, 0.5, 0.5]
    """

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"the rate must be more than 0 requests a second, got {rate}")
        self.interval = 1.0 / rate if rate else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next = -float("inf")

    def wait(self) -> float:
        """Sleep until the next request may go; returns the seconds slept."""
        now = self.clock()
        wait = max(0.0, self._next - now)
        if wait > 0:
            self.sleep(wait)
        self._next = max(now, self._next) + self.interval
        return wait

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` from now (a server's ``Retry-After``)."""
        self._next = max(self._next, self.clock() + seconds)


def retry_after(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    """A response's ``Retry-After`` in seconds (delta-seconds or an HTTP date), or None.

    >>> retry_after(httpx.Response(429, headers={"Retry-After": "2"}))
    2.0
    """
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


RetryRule = Callable[[httpx.Response], bool]


def retry_statuses(statuses: frozenset[int]) -> RetryRule:
    """A rule retrying responses whose status is one of ``statuses``."""
    return lambda response: response.status_code in statuses


DEFAULT_RETRY = retry_statuses(RETRY_STATUSES)
"""Retry any 5xx answer of the four that mean "not now"."""


class HarvestClient:
    """A paced, retrying ``httpx.Client`` for one remote API (see the module docstring).

    ``event_hooks`` and ``transport`` are passed to httpx: tests count requests
    with a hook and stand in for servers with a transport.
    """

    def __init__(
        self,
        base_url: str,
        *,
        rate: float | None = DEFAULT_RATE,
        policy: RetryPolicy | None = None,
        retry: RetryRule = DEFAULT_RETRY,
        timeout: float = 60.0,
        headers: Mapping[str, str] | None = None,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self.retry = retry
        self.sleep = sleep
        self.limiter = RateLimiter(rate, clock=clock, sleep=sleep)
        self.stats = HttpStats()
        self.client = httpx.Client(
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            event_hooks=dict(event_hooks or {}),
            transport=transport,
            follow_redirects=True,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HarvestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        retry: RetryRule | None = None,
    ) -> httpx.Response:
        """Send one request, waiting and retrying as the module docstring says.

        Returns the final response, whatever its status (after retries ran
        out, the last retryable one); raises :class:`HarvestError` when the
        server cannot be reached or keeps asking to wait.
        """
        rule = retry or self.retry
        url = self.url(path)
        failures = throttled = 0
        while True:
            self.stats.waited += self.limiter.wait()
            self.stats.requests += 1
            try:
                response = self.client.request(method, url, params=params, data=data)
            except httpx.TransportError as e:
                failures += 1
                if failures >= self.policy.max_attempts:
                    raise HarvestError(
                        f"cannot reach {url}: {type(e).__name__}: {e} (tried {failures} times)"
                    ) from None
                self._backoff(failures)
                continue
            if response.status_code == 429:
                throttled += 1
                self.stats.throttled += 1
                wait = retry_after(response)
                if wait is None:
                    wait = self.policy.delay(throttled)
                if throttled > self.policy.max_throttled or wait > self.policy.max_retry_after:
                    raise HarvestError(
                        f"{url}: the server keeps answering 429 Too Many Requests"
                        f" (asks to wait {wait:.0f} s); run the same command later to continue,"
                        " or lower --rate"
                    )
                self.limiter.pause(wait)
                continue
            if rule(response) and failures + 1 < self.policy.max_attempts:
                failures += 1
                self._backoff(failures)
                continue
            return response

    def _backoff(self, failures: int) -> None:
        delay = self.policy.delay(failures)
        self.stats.retries += 1
        self.stats.waited += delay
        self.sleep(delay)


__all__ = [
    "DEFAULT_RATE",
    "HarvestClient",
    "HarvestError",
    "HttpStats",
    "RateLimiter",
    "RetryPolicy",
    "retry_after",
    "retry_statuses",
]
