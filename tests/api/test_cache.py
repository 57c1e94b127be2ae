"""Response caching: repeated queries are served from memory, and a load makes them fresh again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import POLICEUK, LiveServer
from crimemap.api.app import Settings
from crimemap.api.cache import Body, ResponseCache
from crimemap.load.policeuk import load_policeuk
from crimemap.store.base import Store

POINT = {"lat": "51.515", "lng": "-0.09", "date": "2016-01"}


def test_a_repeated_query_is_served_from_the_cache_until_a_load_changes_the_store(
    store: Store, live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    street = POLICEUK / "2016-01" / "2016-01-city-of-london-street.csv"
    load_policeuk(store, [street])
    server = live_server(store)
    cache: ResponseCache = server.server.config.app.state.cache
    first = server.client.get("/api/crimes-street/all-crime", params=POINT)
    again = server.client.get("/api/crimes-street/all-crime", params=POINT)
    assert first.status_code == again.status_code == 200
    assert first.content == again.content and len(first.json()) > 100
    assert cache.hits >= 1

    smaller = tmp_path / "2016-01" / street.name
    smaller.parent.mkdir()
    smaller.write_text("".join(street.read_text().splitlines(keepends=True)[:51]))
    load_policeuk(store, [smaller])
    after_load = server.client.get("/api/crimes-street/all-crime", params=POINT).json()
    assert 0 < len(after_load) <= 50


def test_with_the_cache_off_answers_are_the_same(store: Store, live_server: Callable[..., LiveServer]) -> None:
    load_policeuk(store, [POLICEUK / "2016-01"])
    cached = live_server(store).client.get("/api/crimes-street/all-crime", params=POINT)
    uncached = live_server(store, Settings(cache_mb=0)).client.get("/api/crimes-street/all-crime", params=POINT)
    assert cached.content == uncached.content


def test_the_cache_keeps_the_most_recently_used_bodies_within_its_size() -> None:
    cache = ResponseCache(max_bytes=4_000)
    for key in range(10):
        cache.get_or_render(key, lambda key=key: Body(bytes(900) + bytes([key])))
    assert cache.size <= 4_000
    assert cache.get_or_render(9, lambda: Body(b"rendered again")).data != b"rendered again"
    assert cache.get_or_render(0, lambda: Body(b"rendered again")).data == b"rendered again"
    assert ResponseCache(0).get_or_render("k", lambda: Body(b"x")).data == b"x"
