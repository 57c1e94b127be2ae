"""Answers are compressed for clients that ask, in the encoding they prefer, and decompress to the same bytes."""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Callable

import brotli
import pytest
import zstandard

from conftest import LiveServer
from crimemap.api.app import Settings
from crimemap.api.compression import negotiate
from crimemap.store.base import Store

DENSE = "/api/crimes-street/all-crime?lat=51.5152&lng=-0.0938&date=2017-01"
DECODE = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
}


def _get(server: LiveServer, path: str, accept: str | None) -> http.client.HTTPResponse:
    """A raw request (httpx would decompress for us): the bytes as they crossed the wire."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", path, headers={"Accept-Encoding": accept} if accept else {})
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip, deflate, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0.2, gzip;q=0.8", "gzip"),
        ("*", "zstd"),
        ("identity", None),
        ("gzip;q=0", None),
        (None, None),
    ],
)
def test_the_encoding_is_the_clients_preferred_one_that_the_server_speaks(accept: str | None, chosen: str) -> None:
    assert negotiate(accept) == chosen


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_a_crimes_street_answer_decompresses_to_the_same_bytes(
    policeuk_store: Store, live_server: Callable[..., LiveServer], encoding: str
) -> None:
    server = live_server(policeuk_store, Settings(cache_mb=0))
    plain = _get(server, DENSE, None)
    packed = _get(server, DENSE, encoding)
    assert plain.getheader("Content-Encoding") is None and len(plain.body) > 10_000  # type: ignore[attr-defined]
    assert packed.getheader("Content-Encoding") == encoding
    assert "Accept-Encoding" in (packed.getheader("Vary") or "")
    assert DECODE[encoding](packed.body) == plain.body  # type: ignore[attr-defined]
    assert len(packed.body) < len(plain.body) / 4  # type: ignore[attr-defined]


def test_the_response_cache_keeps_each_encoding_compressed(
    policeuk_store: Store, live_server: Callable[..., LiveServer]
) -> None:
    server = live_server(policeuk_store, Settings(cache_mb=16))
    cache = server.server.config.app.state.cache  # type: ignore[attr-defined]
    first = _get(server, DENSE, "gzip")
    hits = cache.hits
    again = _get(server, DENSE, "gzip")
    assert cache.hits == hits + 1 and again.body == first.body  # type: ignore[attr-defined]
    assert any(body.encoding == "gzip" for body in cache._entries.values())
    assert gzip.decompress(again.body) == _get(server, DENSE, None).body  # type: ignore[attr-defined]


def test_pages_and_streamed_downloads_are_compressed_on_their_way_out(
    policeuk_store: Store, live_server: Callable[..., LiveServer]
) -> None:
    server = live_server(policeuk_store)
    for path in (
        "/mapsengine/v1/tables/policeuk-crimes/features?maxResults=1000",
        "/download/policeuk-crimes.csv?where=month%3D%272017-01%27",
        "/download/policeuk-crimes.geojson",
    ):
        plain = _get(server, path, None)
        packed = _get(server, path, "zstd")
        assert packed.getheader("Content-Encoding") == "zstd", path
        assert DECODE["zstd"](packed.body) == plain.body, path  # type: ignore[attr-defined]


def test_small_answers_are_sent_as_they_are(policeuk_store: Store, live_server: Callable[..., LiveServer]) -> None:
    server = live_server(policeuk_store)
    answer = _get(server, "/api/crime-last-updated", "gzip")
    assert answer.getheader("Content-Encoding") is None and answer.body.startswith(b"{")  # type: ignore[attr-defined]
