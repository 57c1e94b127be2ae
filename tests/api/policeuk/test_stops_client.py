"""A client library on PyPI that wraps police.uk's stop-and-search methods works against crimemap.

``uk-police-api`` (module ``uk_police_api``) validates every answer into pydantic
models (``StopSearch``, ``AvailabilityDate``), and sends long polygons as a
form-encoded POST. It has no option for its server: its ``BASE_URL`` is a module
constant, so the test points it at crimemap before making the client; nothing
else changes. (``uk-police`` was also tried: it too hard-codes its server, and
it installs a top-level ``tests`` package into site-packages, so it is not used.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.policeuk.test_crimes import MILE_M, distance_m, inside
from api.policeuk.test_stops import CITY, MONTH, stops_server  # noqa: F401 - the fixture
from conftest import LiveServer
from stops_truth import rows_of

uk_police_api = pytest.importorskip("uk_police_api")


@pytest.fixture
def api(stops_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # noqa: F811
    from uk_police_api import _client

    monkeypatch.setattr(_client, "BASE_URL", f"{stops_server.url}/api/")
    client = uk_police_api.PoliceAPI(cache_ttl=None, max_retries=0)
    yield client
    client._http.close()


def _key(stop: Any) -> tuple[str, str, float | None, float | None, str | None]:
    loc = stop.location
    return (
        stop.datetime,
        stop.type,
        round(loc.latitude, 6) if loc else None,
        round(loc.longitude, 6) if loc else None,
        stop.outcome,
    )


def _row_key(r: Any) -> tuple[str, str, float | None, float | None, str | None]:
    f = r.fields
    return (
        f["Date"],
        f["Type"],
        round(r.lat, 6) if r.located else None,
        round(r.lng, 6) if r.located else None,
        f["Outcome"],
    )


def test_the_client_finds_the_stops_within_a_mile(api: Any) -> None:
    lat, lng = 51.515, -0.09
    stops = api.stop_search.street(lat=lat, lng=lng, date=MONTH)
    expected = [r for r in rows_of(MONTH) if r.located and distance_m(lat, lng, r.lat, r.lng) <= MILE_M]
    assert sorted(map(_key, stops)) == sorted(map(_row_key, expected)) and stops


def test_the_client_posts_a_long_polygon_and_gets_the_stops_inside(api: Any) -> None:
    import math

    ring = [(51.515 + 0.012 * math.sin(a / 40 * 2 * math.pi), -0.09 + 0.02 * math.cos(a / 40 * 2 * math.pi))
            for a in range(200)]  # fmt: skip
    stops = api.stop_search.street(poly=ring, date=MONTH)
    expected = [r for r in rows_of(MONTH) if r.located and inside(r.lat, r.lng, ring)]
    assert sorted(map(_key, stops)) == sorted(map(_row_key, expected)) and stops


def test_the_client_reads_stops_by_force_without_location_and_at_a_location(api: Any) -> None:
    by_force = api.stop_search.by_force(CITY, date=MONTH)
    assert sorted(map(_key, by_force)) == sorted(map(_row_key, rows_of(MONTH, CITY)))
    nowhere = api.stop_search.no_location("south-yorkshire", date=MONTH)
    assert len(nowhere) == len(rows_of(MONTH, "south-yorkshire")) and all(s.location is None for s in nowhere)
    placed = next(s for s in by_force if s.location and s.location.street and s.location.street.name)
    at = api.stop_search.at_location(placed.location.street.id, date=MONTH)
    assert placed.model_dump() in [s.model_dump() for s in at]
    assert all(s.location.street.id == placed.location.street.id for s in at)


def test_the_client_sees_which_forces_have_stops_each_month(api: Any) -> None:
    dates = {d.date: d.stop_and_search for d in api.availability.dates()}
    assert CITY in dates[MONTH] and "south-yorkshire" in dates["2019-12"]
    assert dates["2017-03"] == [CITY]


def test_the_clients_errors_are_its_own_not_found(api: Any) -> None:
    with pytest.raises(uk_police_api.PoliceAPINotFoundError):
        api.stop_search.by_force("nowhere", date=MONTH)
