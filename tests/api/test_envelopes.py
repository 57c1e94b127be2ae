"""Every error in its API's envelope: unknown routes, wrong methods, refused forms and bodies, bounded echoes.

The police.uk envelope is ``{"status", "error", "message", "hint"}``; under
``/mapsengine`` and ``/download`` errors come in Google's envelope.
"""

from __future__ import annotations

import http.client
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.policeuk.test_crimes import assert_error
from conftest import POLICEUK, LiveServer
from crimemap.api.app import create_app
from crimemap.api.envelopes import MAX_BODY_BYTES, MAX_FORM_FIELDS, MAX_HEADER_BYTES
from crimemap.load.policeuk import load_policeuk
from crimemap.settings import Settings
from crimemap.store.base import Store
from crimemap.store.catalogue import CRIMES_TABLE
from crimemap.store.sqlite import SQLiteStore
from serve_process import free_port, serving


def google_error(response: httpx.Response, status: int, reason: str, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == status and error["errors"][0]["reason"] == reason, error
    for word in words:
        assert word in error["message"], error


@pytest.mark.parametrize("path", ["/api/no-such-method", "/nothing-here", "/api", "/downloads/x.csv"])
def test_an_unknown_path_is_a_json_404(policeuk_server: LiveServer, path: str) -> None:
    assert_error(policeuk_server.client.get(path), 404, "no such method", path)


def test_a_wrong_method_is_a_json_405_saying_which_are_allowed(policeuk_server: LiveServer) -> None:
    response = policeuk_server.client.delete("/api/forces")
    assert_error(response, 405, "DELETE is not allowed on /api/forces", "GET")
    assert response.headers["allow"] == "GET"
    google_error(policeuk_server.client.post("/download/policeuk-crimes.csv"), 405, "httpMethodNotAllowed", "POST")


POST_TOO = ["/stats/crimes", "/stats/stops", "/api/crimes-street/all-crime", "/api/stops-street"]
POST_TOO += ["/api/outcomes-at-location"]


@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", POST_TOO)
def test_a_wrong_method_on_a_path_that_takes_post_too_allows_both(
    policeuk_server: LiveServer, path: str, method: str
) -> None:
    response = policeuk_server.client.request(method, path)
    assert_error(response, 405, f"{method} is not allowed on {path}; use GET, POST")
    assert response.headers["allow"] == "GET, POST"
    assert policeuk_server.client.post(path).status_code != 405  # what Allow says is true


@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "DELETE", "POST"])
@pytest.mark.parametrize("path", ["/mapsengine/v1/tables", f"/mapsengine/v1/tables/{CRIMES_TABLE}/features"])
def test_a_wrong_method_on_a_maps_engine_path_is_a_405_in_googles_envelope(
    policeuk_server: LiveServer, path: str, method: str
) -> None:
    response = policeuk_server.client.request(method, path)
    google_error(response, 405, "httpMethodNotAllowed", f"{method} is not allowed on {path}; use GET")
    assert response.headers["allow"] == "GET"
    google_error(policeuk_server.client.request(method, "/mapsengine/v1/nothing"), 404, "notFound")


@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "DELETE", "POST"])
@pytest.mark.parametrize("path", ["/ogc/", "/ogc/collections", f"/ogc/collections/{CRIMES_TABLE}/items"])
def test_a_wrong_method_on_an_ogc_path_is_a_405_in_the_ogc_envelope(
    policeuk_server: LiveServer, path: str, method: str
) -> None:
    response = policeuk_server.client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.json() == {"code": "MethodNotAllowed", "description": f"{method} is not allowed on {path}; use GET"}
    assert response.headers["allow"] == "GET"
    unknown = policeuk_server.client.request(method, "/ogc/nothing")
    assert unknown.status_code == 404 and unknown.json()["code"] == "NotFound"


def test_a_form_with_too_many_fields_is_a_json_400(policeuk_server: LiveServer) -> None:
    fields = {f"f{i}": "1" for i in range(MAX_FORM_FIELDS + 1)}
    response = policeuk_server.client.post("/api/crimes-street/all-crime", data=fields)
    assert_error(response, 400, "the request could not be read", "1000")


@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, 3 * MAX_BODY_BYTES])
def test_a_body_over_one_mib_is_a_json_413(policeuk_server: LiveServer, size: int) -> None:
    response = policeuk_server.client.post("/api/crimes-street/all-crime", data={"poly": "5" * size})
    assert_error(response, 413, f"longer than {MAX_BODY_BYTES:,} bytes")
    chunked = policeuk_server.client.post(  # no Content-Length: counted as it arrives
        "/api/crimes-street/all-crime",
        content=iter([b"poly=", b"5" * size]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(chunked, 413, "longer than")
    google_error(policeuk_server.client.post("/mapsengine/v1/tables", content=b"x" * size), 413, "uploadTooLarge")


def test_a_body_within_the_limit_is_read_whole(policeuk_server: LiveServer) -> None:
    pad = "x" * (MAX_BODY_BYTES - 200)
    body = f"lat=51.5155&lng=-0.0922&date=2017-01&pad={pad}"
    posted = policeuk_server.client.post(
        "/api/crimes-street/all-crime",
        content=iter([body[:5000].encode(), body[5000:].encode()]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 200 and posted.json()


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/api/crimes-street/all-crime", {"poly": "x" * 900_000}),
        ("/api/crimes-street/all-crime", {"lat": "1" * 900_000, "lng": "0"}),
        ("/api/crimes-street/all-crime", {"lat": "51.5", "lng": "0", "date": "2" * 900_000}),
        ("/api/outcomes-at-location", {"location_id": "z" * 900_000}),
    ],
)
def test_errors_do_not_echo_unbounded_input(policeuk_server: LiveServer, path: str, form: dict[str, str]) -> None:
    response = policeuk_server.client.post(path, data=form)
    assert response.status_code == 400, response.text[:500]
    assert len(response.content) < 1_000
    assert "900,000 characters" in response.json()["message"]


def test_a_long_category_or_table_name_is_cut_in_the_404(policeuk_server: LiveServer) -> None:
    response = policeuk_server.client.get(f"/api/crimes-street/{'x' * 3000}?lat=51.5&lng=0")
    assert_error(response, 404, "unknown crime category", "3,000 characters")
    assert len(response.content) < 1_000
    table = policeuk_server.client.get(f"/mapsengine/v1/tables/{'t' * 3000}/features")
    google_error(table, 404, "notFound", "3,000 characters")
    assert len(table.content) < 1_000


def test_a_request_line_over_64_kib_is_a_json_400_from_crimemap_serve(tmp_path: object) -> None:
    store = f"{tmp_path}/s.sqlite"
    SQLiteStore(store).close()
    with serving(store) as url:
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)  # httpx refuses such URLs
        connection.request("GET", f"/api/forces?pad={'a' * 70_000}")
        raw = connection.getresponse()
        response = httpx.Response(raw.status, headers=raw.getheaders(), content=raw.read())
        connection.close()
        assert_error(response, 400, "could not be read as HTTP/1.1", "64 KiB")
        assert "POST" in response.json()["hint"]
        ok = httpx.get(f"{url}/api/forces?pad={'a' * 60_000}")  # parsed, then refused by the API itself
        assert_error(ok, 400, "longer than 4094 characters")


def _lose_the_crimes_table(store: Store) -> None:
    """An operator's mistake under a running server: its crimes table renamed behind its back."""
    if isinstance(store, SQLiteStore):
        with closing(sqlite3.connect(store.path)) as db:
            db.execute("ALTER TABLE crimes RENAME TO crimes_gone")
            db.commit()
        return
    import psycopg

    with psycopg.connect(store.url, autocommit=True) as db:
        db.execute("ALTER TABLE crimes RENAME TO crimes_gone")


def test_a_failure_inside_any_route_is_a_500_in_its_apis_envelope_never_plain_text(
    store: Store, live_server: Callable[..., LiveServer]
) -> None:
    load_policeuk(store, [POLICEUK / "2016-03"])
    server = live_server(store, Settings(cache_mb=0))
    _lose_the_crimes_table(store)
    client = server.client
    street = client.get("/api/crimes-street/all-crime", params={"lat": "51.5155", "lng": "-0.0922", "date": "2016-03"})
    assert_error(street, 500, "the server failed to answer; see its log")
    no_location = {"category": "all-crime", "force": "cumbria", "date": "2016-03"}
    assert_error(client.get("/api/crimes-no-location", params=no_location), 500, "see its log")
    ogc = client.get(f"/ogc/collections/{CRIMES_TABLE}/items")
    assert (ogc.status_code, ogc.json()["code"]) in ((500, "ServerError"), (503, "ServiceUnavailable")), ogc.text
    google_error(client.get(f"/mapsengine/v1/tables/{CRIMES_TABLE}/features"), 503, "backendError")


LONG = "7" * 3_000
"""A value of 3,000 characters: an error may quote 100 of them."""


@pytest.mark.parametrize(
    "url",
    [
        *(f"/stats/crimes?{name}={LONG}" for name in ("months", "group", "category", "force", "bbox", "zoom")),
        f"/stats/crimes?format={LONG}",
        f"/stats/crimes?{LONG}=1",
        f"/stats/stops?months=2016-01..{LONG}",
        f"/api/crimes-street/all-crime?lat=51.5&lng=0&date={LONG}",
        f"/api/crimes-street/{LONG}?lat=51.5&lng=0",
        f"/boundaries/forces.geojson?zoom={LONG}",
        f"/boundaries/{LONG}",
        f"/static/{LONG}",
        *(f"/ogc/collections/{CRIMES_TABLE}/items?{name}={LONG}" for name in ("f", "bbox-crs", "properties", "sortby")),
        f"/ogc/collections/{CRIMES_TABLE}/items?{LONG}=1",
        f"/ogc/collections/{CRIMES_TABLE}/items?filter=month={LONG}",
        f"/ogc/collections/{LONG}",
        f"/ogc/collections/{CRIMES_TABLE}/items/{LONG}",
        f"/ogc/{LONG}",
        *(f"/mapsengine/v1/tables/{CRIMES_TABLE}/features?{name}={LONG}" for name in ("where", "version")),
        f"/mapsengine/v1/tables/{CRIMES_TABLE}/features?where=month%3D%27{LONG}",
        f"/mapsengine/v1/{LONG}",
        f"/download/{LONG}",
    ],
)
def test_an_error_quotes_at_most_100_characters_of_a_value(policeuk_server: LiveServer, url: str) -> None:
    response = policeuk_server.client.get(url)
    assert 400 <= response.status_code < 500, response.text[:300]
    body = response.json()
    text = body.get("message") or body.get("description") or body["error"]["message"]
    assert "7" * 101 not in response.text, text
    assert "7" * 10 not in text or "..." in text, text  # a quote says it was cut


def _get_with_header(url: str, path: str, size: int) -> httpx.Response:
    """GET ``path`` with one header field of ``size`` bytes, by http.client (httpx holds such a header whole too)."""
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
    try:
        connection.putrequest("GET", path)
        connection.putheader("X-Padding", "a" * size)
        connection.endheaders()
        raw = connection.getresponse()
        return httpx.Response(raw.status, headers=raw.getheaders(), content=raw.read())
    finally:
        connection.close()


def test_header_fields_over_64_kib_are_a_431_in_each_apis_envelope(policeuk_server: LiveServer) -> None:
    url = policeuk_server.url
    assert _get_with_header(url, "/api/forces", MAX_HEADER_BYTES - 1_000).status_code == 200
    assert_error(_get_with_header(url, "/api/forces", MAX_HEADER_BYTES), 431, "longer than 65,536 bytes")
    google_error(_get_with_header(url, "/mapsengine/v1/tables", 100_000), 431, "requestHeaderTooLarge", "65,536")
    ogc = _get_with_header(url, "/ogc/collections", 100_000)
    assert (ogc.status_code, ogc.json()["code"]) == (431, "RequestHeaderFieldsTooLarge"), ogc.text


def _peak_memory_kib(port: int) -> int:
    """The peak resident memory of the ``crimemap serve`` process listening on ``port`` (Linux's VmHWM)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in args and str(port).encode() in args:
            status = (cmdline.parent / "status").read_text()
            return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    raise AssertionError(f"no crimemap serve on port {port}")


@pytest.mark.parametrize(("path", "size"), [("/api/forces", 50_000_000), ("/ogc/collections", 5_000_000)])
def test_a_huge_header_is_refused_by_crimemap_serve_without_reading_it_whole(
    tmp_path: Path, path: str, size: int
) -> None:
    """It used to be read whole (memory grew by twice its size) and answered 200, after 3.2 s for 50 MB."""
    store = tmp_path / "s.sqlite"
    SQLiteStore(store).close()
    with serving(store) as url:
        port = int(url.rsplit(":", 1)[1])
        before = _peak_memory_kib(port)
        response = _get_with_header(url, path, size)
        assert response.status_code == 431, response.text[:300]
        assert response.headers["connection"] == "close"
        assert "longer than 65,536 bytes" in response.text
        assert _peak_memory_kib(port) - before < 20_000  # KiB: a few reads, not the header
        assert httpx.get(f"{url}/api/forces", headers={"X-Padding": "a" * 1_000}).status_code == 200


def _get_slowly_with_header(port: int, size: int) -> tuple[int, bytes]:
    """GET /api/forces with one header field of ``size`` bytes, sent 4 KiB at a time as a slow link sends it."""
    head = f"GET /api/forces HTTP/1.1\r\nHost: x\r\nX-Padding: {'a' * size}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for start in range(0, len(head), 4096):
            sock.sendall(head[start : start + 4096])
            time.sleep(0.002)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer.partition(b"\r\n\r\n")[2]


def test_with_h11_header_fields_up_to_64_kib_are_read_and_more_are_a_431(tmp_path: Path) -> None:
    """h11 alone refused a head that arrived in pieces once 16 KiB of it were waiting (400)."""
    from crimemap.api.protocols import JSONErrorsH11Protocol

    store = SQLiteStore(tmp_path / "s.sqlite")
    port = free_port()
    config = uvicorn.Config(
        create_app(store), host="127.0.0.1", port=port, http=JSONErrorsH11Protocol, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        assert _get_slowly_with_header(port, 40_000)[0] == 200
        status, body = _get_slowly_with_header(port, 100_000)
        assert status == 431 and b"longer than 65,536 bytes" in body, body
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()
