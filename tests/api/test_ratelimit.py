"""Rate limiting like data.police.uk: a token bucket per client, 429 with Retry-After beyond it."""

from __future__ import annotations

import time
from typing import Any

from api.policeuk.test_crimes import assert_error
from conftest import LiveServer
from crimemap.api.app import Settings
from crimemap.api.ratelimit import TokenBuckets
from crimemap.store.base import Store


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=15, burst=30, clock=lambda: now[0])
    assert all(buckets.take("a") == 0.0 for _ in range(30))
    wait = buckets.take("a")
    assert abs(wait - 1 / 15) < 1e-9
    assert buckets.take("b") == 0.0  # every client has its own bucket
    now[0] += 1.0  # a second later, 15 more
    assert all(buckets.take("a") == 0.0 for _ in range(15))
    assert buckets.take("a") > 0


def test_rate_limit_answers_429_with_retry_after(policeuk_store: Store, live_server: Any) -> None:
    server: LiveServer = live_server(policeuk_store, Settings(rate_limit=True, rate_per_second=0.5, rate_burst=3))
    url = "/api/crimes-street/all-crime?lat=51.5155&lng=-0.0922&date=2017-01"
    assert [server.client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    refused = server.client.get(url)
    assert_error(refused, 429, "too many requests")
    assert refused.headers["retry-after"] == "2"  # one token every 2 s
    assert server.client.get("/health").status_code == 200  # only the police.uk API is limited


def test_rate_limit_lets_requests_through_again_after_retry_after(policeuk_store: Store, live_server: Any) -> None:
    server: LiveServer = live_server(policeuk_store, Settings(rate_limit=True, rate_per_second=2, rate_burst=2))
    codes: list[int] = []
    while 429 not in codes and len(codes) < 20:  # a slow request may see a token come back before the third
        codes.append(server.client.get("/api/forces").status_code)
    assert codes[-1] == 429 and set(codes[:-1]) == {200} and len(codes) >= 3
    time.sleep(1 / 2 + 0.05)  # one token back
    assert server.client.get("/api/forces").status_code == 200


def test_rate_limiting_is_off_by_default(policeuk_server: LiveServer) -> None:
    assert all(policeuk_server.client.get("/api/forces").status_code == 200 for _ in range(60))
