"""A polygon's preparation runs under the request's time budget, and stops when its client hangs up (issue 19, item 1).

Testing, repairing and classifying a polygon is Python and GEOS work that no statement timeout sees. The
comb of :mod:`test_world_areas` has an edge in every cell round London; with the cap on box tests lifted,
classifying its cells takes tens of seconds: the preparation made slow. Each request's preparation must
then be stopped at the time budget (``CRIMEMAP_STATEMENT_TIMEOUT``) with the API's 503, and when the client
hangs up, at once: police.uk polygons are answered one at a time per worker, so a prompt answer to the
next polygon proves the hung-up work stopped. Real servers on loopback, over ``http.client``, on both stores.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator

import pytest

from api.policeuk.test_crimes import poly_param
from conftest import POLICEUK, LiveServer
from crimemap.geometry import areas
from crimemap.load.policeuk import load_policeuk
from crimemap.query import Polygon
from crimemap.store.base import Store
from test_world_areas import comb

BUDGET_S = 2
WITHIN = 20.0
"""Seconds a stopped preparation must answer within (it takes minutes when it is not stopped)."""

CITY = "51.52,-0.11:51.52,-0.07:51.50,-0.07:51.50,-0.11"


def _latlng(area: Polygon) -> str:
    return poly_param([(lat, lng) for lng, lat in area.ring[:-1]])


def _wkt(area: Polygon) -> str:
    return "POLYGON((" + ", ".join(f"{lng:.6f} {lat:.6f}" for lng, lat in area.ring) + "))"


@pytest.fixture
def slow_polygons(monkeypatch: pytest.MonkeyPatch) -> None:
    """Classifying a polygon's cells is no longer capped: the comb takes minutes unless it is stopped."""
    monkeypatch.setattr(areas, "MAX_BOXES", 10**9)


def _city_server(
    make_store: Callable[[], Store], live_server: Callable[..., LiveServer], budget_s: float
) -> LiveServer:
    """A server over the City of London's crimes, whose store was opened with a time budget of ``budget_s``."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CRIMEMAP_STATEMENT_TIMEOUT", str(budget_s))
        store = make_store()
    load_policeuk(store, sorted(POLICEUK.glob("2016-06/*-city-of-london-*.csv")))
    return live_server(store)


@pytest.fixture
def budget_server(
    make_store: Callable[[], Store], live_server: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    server = _city_server(make_store, live_server, BUDGET_S)
    monkeypatch.setenv("CRIMEMAP_STATEMENT_TIMEOUT", str(BUDGET_S))
    yield server


def _request(server: LiveServer, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        body = urllib.parse.urlencode(form) if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _timed(call: Callable[[], tuple[int, dict]]) -> tuple[int, dict, float]:
    started = time.monotonic()
    status, body = call()
    return status, body, time.monotonic() - started


@pytest.mark.usefixtures("slow_polygons")
def test_a_polygon_whose_preparation_passes_the_budget_is_503_in_each_apis_envelope(
    budget_server: LiveServer,
) -> None:
    area = comb(100)
    form = {"poly": _latlng(area), "date": "2016-06"}
    status, body, took = _timed(lambda: _request(budget_server, "POST", "/api/crimes-street/all-crime", form))
    assert (status, body["status"]) == (503, 503), body
    assert f"took longer than {BUDGET_S:g} s" in body["message"] and took < WITHIN

    query = urllib.parse.urlencode({"intersects": _wkt(area)})
    status, body, took = _timed(
        lambda: _request(budget_server, "GET", f"/mapsengine/v1/tables/policeuk-crimes/features?{query}")
    )
    assert status == 503 and body["error"]["errors"][0]["reason"] == "backendError", body
    assert took < WITHIN

    query = urllib.parse.urlencode({"filter": f"S_INTERSECTS(geometry, {_wkt(area)})"})
    status, body, took = _timed(
        lambda: _request(budget_server, "GET", f"/ogc/collections/policeuk-crimes/items?{query}")
    )
    assert status == 503 and body["code"] == "ServiceUnavailable", body
    assert took < WITHIN

    status, body = _request(budget_server, "POST", "/api/crimes-street/all-crime", {"poly": CITY, "date": "2016-06"})
    assert status == 200 and body, "a polygon that is cheap to prepare is answered as before"


@pytest.mark.usefixtures("slow_polygons")
def test_a_client_that_hangs_up_stops_its_polygons_work(
    make_store: Callable[[], Store], live_server: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _city_server(make_store, live_server, 600)
    monkeypatch.setenv("CRIMEMAP_STATEMENT_TIMEOUT", "600")
    hung_up = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    form = urllib.parse.urlencode({"poly": _latlng(comb(400)), "date": "2016-06"})
    hung_up.request(
        "POST", "/api/crimes-street/all-crime", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    time.sleep(1.0)  # the comb is being classified, holding the worker's polygons
    hung_up.close()

    status, body, took = _timed(
        lambda: _request(server, "POST", "/api/crimes-street/all-crime", {"poly": CITY, "date": "2016-06"})
    )
    assert status == 200 and body, body
    assert took < WITHIN, "the next polygon waited for the work of a client that had gone"
