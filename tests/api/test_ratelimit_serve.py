"""The rate limit as ``crimemap serve`` applies it: one limit for all workers, and no trust in forged headers."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from crimemap.store.sqlite import SQLiteStore
from serve_process import serving

SLOW = {"CRIMEMAP_RATE_PER_SECOND": "0.1", "CRIMEMAP_RATE_BURST": "5"}
"""A burst of 5, then one request every 10 s: nothing refills while a test runs."""


@pytest.fixture
def store_file(tmp_path: Path) -> str:
    path = str(tmp_path / "s.sqlite")
    SQLiteStore(path).close()
    return path


def _fresh_connection_get(url: str, headers: dict[str, str] | None = None) -> int:
    with httpx.Client(timeout=30) as client:  # a new connection each time: the kernel picks the worker
        return client.get(url, headers={"Connection": "close", **(headers or {})}).status_code


def test_the_workers_of_one_server_share_one_limit(store_file: str) -> None:
    with serving(store_file, "--workers", "2", "--rate-limit", env=SLOW) as url:
        time.sleep(1.0)  # the second worker is accepting too
        with ThreadPoolExecutor(8) as pool:
            codes = Counter(pool.map(lambda _: _fresh_connection_get(f"{url}/api/forces"), range(48)))
    assert codes == {200: 5, 429: 43}, codes


def test_x_forwarded_for_is_not_trusted_by_default(store_file: str) -> None:
    with serving(store_file, "--rate-limit", env=SLOW) as url:
        codes = [_fresh_connection_get(f"{url}/api/forces", {"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(30)]
    assert codes == [200] * 5 + [429] * 25


def test_a_trusted_proxy_names_its_clients(store_file: str) -> None:
    with serving(store_file, "--rate-limit", "--trust-proxy", "127.0.0.1", env=SLOW) as url:
        forwarded = [
            _fresh_connection_get(f"{url}/api/forces", {"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(30)
        ]
        one_client = [
            _fresh_connection_get(f"{url}/api/forces", {"X-Forwarded-For": "198.51.100.200"}) for _ in range(7)
        ]
    assert forwarded == [200] * 30  # thirty clients behind the proxy, one request each
    assert one_client == [200] * 5 + [429] * 2
