"""Two client libraries on PyPI use crimemap's neighbourhood and force methods unchanged but for the base URL.

``police-api-client`` (``police_api``) takes the base URL as an option;
``uk-police-api`` (``uk_police_api``) has it as a module constant, which the test
points at crimemap (as :mod:`api.policeuk.test_stops_client` does). One limit of
``uk-police-api`` that is not crimemap's: it reads a neighbourhood's ``links`` as
``dict[str, str]``, so it refuses NC04's real details, whose link has
``"description": null`` as data.police.uk sends it; it reads NC08's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import police_api
import pytest
import shapely

from conftest import LiveServer
from crimemap.geometry.shapes import polygonal
from crimemap.load.generate.archive import generate
from crimemap.load.policeuk import load_policeuk
from crimemap.query import CrimeQuery
from crimemap.store.base import Store
from neighbourhood_data import (
    INSIDE_NC04,
    LEICESTERSHIRE_LIST,
    NC04_BOUNDARY,
    NC04_DETAILS,
    NC04_EVENTS,
    NC04_PEOPLE,
    real,
    store_leicestershire,
)

uk_police_api = pytest.importorskip("uk_police_api")


@pytest.fixture
def server(store: Store, tmp_path: Path, live_server: Callable[..., LiveServer]) -> LiveServer:
    store_leicestershire(store, tmp_path)
    return live_server(store)


@pytest.fixture
def api(server: LiveServer) -> Any:
    return police_api.PoliceAPI(base_url=f"{server.url}/api/", timeout=30)


@pytest.fixture
def uk_api(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from uk_police_api import _client

    monkeypatch.setattr(_client, "BASE_URL", f"{server.url}/api/")
    client = uk_police_api.PoliceAPI(cache_ttl=None, max_retries=0)
    yield client
    client._http.close()


def test_police_api_client_locates_a_neighbourhood_and_reads_it(api: Any) -> None:
    nbhd = api.locate_neighbourhood(*INSIDE_NC04)
    published = real(NC04_DETAILS)
    assert nbhd.id == "NC04" and nbhd.force.id == "leicestershire"
    assert nbhd.name == published["name"] and nbhd.url_force == published["url_force"]
    assert nbhd.population == 0 and nbhd.centre == published["centre"] and nbhd.description == published["description"]
    assert nbhd.boundary == [(float(p["latitude"]), float(p["longitude"])) for p in real(NC04_BOUNDARY)]
    assert [(o.name, o.rank) for o in nbhd.officers] == [(p["name"], p["rank"]) for p in NC04_PEOPLE]
    assert [e.title for e in nbhd.events] == [e["title"] for e in NC04_EVENTS]
    assert nbhd.events[0].start_date.isoformat() == NC04_EVENTS[0]["start_date"]
    assert nbhd.priorities[0].issue_date.isoformat() == "2024-01-10T00:00:00"
    assert api.locate_neighbourhood(51.5, -0.1) is None  # its way of saying 404


def test_police_api_client_lists_a_force_s_neighbourhoods_and_reads_the_force(api: Any) -> None:
    names = sorted(n["name"] for n in real(LEICESTERSHIRE_LIST))
    assert [n.name for n in api.get_neighbourhoods("leicestershire")] == names
    force = api.get_force("leicestershire")
    assert force.telephone == "101" and force.url == "http://www.leics.police.uk/"
    assert [o.rank for o in force.senior_officers] == ["Chief Constable"]
    with pytest.raises(police_api.APIError):
        _ = api.get_neighbourhood("leicestershire", "NC99").name


def test_uk_police_api_reads_neighbourhoods_and_forces(uk_api: Any) -> None:
    located = uk_api.neighbourhoods.locate(*INSIDE_NC04)
    assert (located.force, located.neighbourhood) == ("leicestershire", "NC04")
    listed = uk_api.neighbourhoods.list("leicestershire")
    assert [(n.id, n.name) for n in listed] == [(n["id"], n["name"]) for n in real(LEICESTERSHIRE_LIST)]
    boundary = uk_api.neighbourhoods.boundary("leicestershire", "NC04")
    assert [(c.latitude, c.longitude) for c in boundary][:2] == [
        (float(p["latitude"]), float(p["longitude"])) for p in real(NC04_BOUNDARY)[:2]
    ]
    assert [p.name for p in uk_api.neighbourhoods.people("leicestershire", "NC04")] == ["Jane Smith", "Ravi Patel"]
    assert uk_api.neighbourhoods.events("leicestershire", "NC04")[0].address == "Clock Tower, Leicester"
    assert uk_api.neighbourhoods.priorities("leicestershire", "NC04")[0].issue.startswith("<p>Anti-social")
    westcotes = uk_api.neighbourhoods.get("leicestershire", "NC08")
    assert westcotes.name == "Westcotes" and westcotes.centre is not None
    force = uk_api.forces.get("leicestershire")
    assert force.telephone == "101" and force.engagement_methods[0].title == "twitter"
    assert uk_api.forces.people("leicestershire")[0].name == "Rob Nixon"
    with pytest.raises(uk_police_api.PoliceAPINotFoundError):
        uk_api.neighbourhoods.locate(51.5, -0.1)


def test_police_api_client_reads_a_neighbourhood_s_crimes_by_its_boundary(
    store: Store, tmp_path: Path, live_server: Callable[..., LiveServer]
) -> None:
    """The issue's app: locate the user's neighbourhood, then ask for the crimes inside its boundary."""
    generate(tmp_path / "archive", months=["2024-06"], crimes_per_month=100_000)  # Leicester is one of its towns
    load_policeuk(store, [tmp_path / "archive"])
    store_leicestershire(store, tmp_path)
    api = police_api.PoliceAPI(base_url=f"{live_server(store).url}/api/", timeout=30)
    nbhd = api.locate_neighbourhood(*INSIDE_NC04)
    area = polygonal(shapely.Polygon([(lng, lat) for lat, lng in nbhd.boundary]))
    inside = sorted(c.id for c in store.crimes(CrimeQuery(month="2024-06")) if area.covers(shapely.Point(c.lng, c.lat)))
    assert len(inside) > 10 and sorted(c.id for c in nbhd.crimes) == inside
