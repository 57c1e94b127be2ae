"""A polygon that crosses itself too often is refused with a 400 in its API's envelope, quickly (issue 19, item 1).

A ring that crosses itself is read as its valid parts, but GEOS's repair grows with the square of the
crossings and cannot be interrupted: a 10,000-point star POSTed to ``crimes-street`` grew the server by
150 MB/s until the kernel killed it; a 236-point star took 85 s, and every other polygon request of the
worker waited behind it. Every API that takes a polygon must now refuse such a ring within seconds,
and still answer one with a few crossings (a bow tie) as its parts. The HTTP tests run on both stores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import httpx
import pytest
import shapely

from api.policeuk.test_crimes import assert_error, poly_param
from conftest import LiveServer
from crimemap import rings
from crimemap.rings import RingError, check_ring

WITHIN = 5.0
"""Seconds a refusal must come within (the 236-point star took 85 s, the 10,000-point one never ended)."""


def star(points: int, step: int) -> list[tuple[float, float]]:
    """A closed star of ``(lng, lat)`` round the City of London: each edge skips ``step`` points."""
    angles = [2 * math.pi * i * step / points for i in range(points)]
    ring = [(-0.09 + 0.03 * math.cos(a), 51.515 + 0.02 * math.sin(a)) for a in angles]
    return [*ring, ring[0]]


STAR_10000 = star(10_000, 4_999)
"""The issue's star: every edge crosses almost every other (25 million crossings)."""
STAR_236 = star(236, 117)
"""The issue's GET-sized star (3,809 characters as police.uk text)."""
STAR_16 = star(16, 7)
"""96 crossings: repaired in milliseconds, so still answered."""
BOW_TIE = [(-0.10, 51.51), (-0.08, 51.52), (-0.08, 51.51), (-0.10, 51.52), (-0.10, 51.51)]


def _latlng(ring: list[tuple[float, float]]) -> str:
    """police.uk's ``poly``, without the closing point (police.uk closes the ring itself)."""
    return poly_param([(round(lat, 6), round(lng, 6)) for lng, lat in ring[:-1]])


def _wkt(ring: list[tuple[float, float]]) -> str:
    return "POLYGON((" + ", ".join(f"{lng:.6f} {lat:.6f}" for lng, lat in ring) + "))"


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


# -- the test itself -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ring", [STAR_10000, STAR_236, star(40, 19)], ids=len)
def test_a_star_that_crosses_itself_everywhere_is_refused_saying_where(ring: list[tuple[float, float]]) -> None:
    with pytest.raises(RingError, match=r"crosses itself \(at 51\.\d+,-0\.\d+\) more than 100 times"):
        check_ring(ring)


@pytest.mark.parametrize("ring", [BOW_TIE, STAR_16, star(10_000, 1), star(10_000, 3)[:4] + [star(10_000, 3)[0]]])
def test_rings_that_cross_themselves_a_little_or_not_at_all_are_accepted(ring: list[tuple[float, float]]) -> None:
    check_ring(ring)


def test_a_ring_traced_over_itself_crosses_nothing_and_is_accepted() -> None:
    """Edges that run along each other or meet at their ends are cheap to repair: only crossings count."""
    traced = star(180, 1)[:-1] * 30
    check_ring([*traced, traced[0]])


def test_the_bow_ties_repair_is_what_geos_makes_of_it() -> None:
    check_ring(BOW_TIE)
    assert shapely.make_valid(shapely.Polygon(BOW_TIE)).geom_type == "MultiPolygon"


def test_a_tangle_of_edges_is_refused_without_testing_every_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """The crossings are counted only up to a bounded number of pairs of edges: past it, the ring is refused."""
    monkeypatch.setattr(rings, "MAX_CROSSINGS", 10**9)
    with pytest.raises(RingError, match="too tangled to repair cheaply"):
        check_ring(STAR_10000)


# -- each API, on both stores ----------------------------------------------------------------------------


@pytest.mark.parametrize("ring", [STAR_10000, STAR_236], ids=len)
@pytest.mark.parametrize("path", ["/api/crimes-street/all-crime", "/api/outcomes-at-location", "/api/stops-street"])
def test_police_uk_polygon_that_crosses_itself_is_400_within_seconds(
    policeuk_server: LiveServer, ring: list[tuple[float, float]], path: str
) -> None:
    posted, took = _timed(lambda: policeuk_server.client.post(path, data={"poly": _latlng(ring), "date": "2016-06"}))
    assert_error(posted, 400, "poly: the polygon crosses itself", "more than 100 times")
    assert took < WITHIN


def test_a_refused_star_does_not_hold_up_the_next_polygon(policeuk_server: LiveServer) -> None:
    client = policeuk_server.client
    refused = client.post("/api/crimes-street/all-crime", data={"poly": _latlng(STAR_236), "date": "2016-06"})
    assert_error(refused, 400, "crosses itself")
    answered = client.post("/api/crimes-street/all-crime", data={"poly": _latlng(STAR_16), "date": "2016-06"})
    assert answered.status_code == 200, answered.text
    assert answered.json(), "the 16-point star, read as its parts, holds crimes of the City"
    bow_tie = client.post("/api/crimes-street/all-crime", data={"poly": _latlng(BOW_TIE), "date": "2016-06"})
    assert bow_tie.status_code == 200 and bow_tie.json()


def test_crime_counts_for_a_polygon_that_crosses_itself_are_400_within_seconds(policeuk_server: LiveServer) -> None:
    response, took = _timed(
        lambda: policeuk_server.client.get("/stats/crimes", params={"group": "month", "poly": _latlng(STAR_236)})
    )
    assert response.status_code == 400, response.text
    assert "poly: the polygon crosses itself" in response.json()["message"]
    assert took < WITHIN


def test_maps_engine_polygons_that_cross_themselves_are_400_invalid_within_seconds(
    policeuk_server: LiveServer,
) -> None:
    features = "/mapsengine/v1/tables/policeuk-crimes/features"
    wkt = _wkt(STAR_236)
    for params in (
        {"intersects": wkt},
        {"where": f"ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('{wkt}'))"},
    ):
        started = time.perf_counter()
        response = policeuk_server.client.get(features, params=params)
        took = time.perf_counter() - started
        assert response.status_code == 400, response.text
        error = response.json()["error"]["errors"][0]
        assert error["reason"] == "invalid" and "crosses itself" in error["message"], error
        assert took < WITHIN
    download = policeuk_server.client.get(
        "/download/policeuk-crimes.csv", params={"where": f"ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('{wkt}'))"}
    )
    assert download.status_code == 400 and "crosses itself" in download.text


def test_an_ogc_filter_polygon_that_crosses_itself_is_400_within_seconds(policeuk_server: LiveServer) -> None:
    response, took = _timed(
        lambda: policeuk_server.client.get(
            "/ogc/collections/policeuk-crimes/items",
            params={"filter": f"S_INTERSECTS(geometry, {_wkt(STAR_236)})", "filter-lang": "cql2-text"},
        )
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "InvalidParameterValue"
    assert "crosses itself" in response.json()["description"]
    assert took < WITHIN
