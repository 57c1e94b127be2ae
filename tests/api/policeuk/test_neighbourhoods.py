"""The police.uk neighbourhood methods over HTTP, on both stores, field by field against real answers.

The store holds what a load and a harvest bring: NC04's boundary as data.police.uk
publishes it (written back into KML), the real neighbourhood list and NC04's real
details, and a team, events and priorities in the documented shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import LiveServer
from crimemap.store.base import Store
from neighbourhood_data import (
    INSIDE_NC04,
    LEICESTERSHIRE_FORCE,
    LEICESTERSHIRE_LIST,
    LEICESTERSHIRE_PEOPLE,
    NC04_BOUNDARY,
    NC04_DETAILS,
    NC04_EVENTS,
    NC04_PEOPLE,
    NC04_PRIORITIES,
    real,
    store_leicestershire,
)


@pytest.fixture
def server(store: Store, tmp_path: Path, live_server: Callable[..., LiveServer]) -> LiveServer:
    store_leicestershire(store, tmp_path)
    return live_server(store)


def _get(server: LiveServer, path: str, status: int = 200, kind: str = "application/json") -> Any:
    response = server.client.get(path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == kind
    return orjson.loads(response.content)


def _same(answer: Any, published: Any) -> None:
    """Equal values, keys in the same order, each value of the same JSON type."""
    assert answer == published
    if isinstance(published, dict):
        assert list(answer) == list(published)
        for key in published:
            _same(answer[key], published[key])
    elif isinstance(published, list):
        for a, p in zip(answer, published, strict=True):
            _same(a, p)
    else:
        assert type(answer) is type(published)


def test_the_neighbourhood_list_is_the_published_one(server: LiveServer) -> None:
    _same(_get(server, "/api/leicestershire/neighbourhoods"), real(LEICESTERSHIRE_LIST))


def test_a_neighbourhood_s_details_match_the_real_answer_field_by_field(server: LiveServer) -> None:
    answer = _get(server, "/api/leicestershire/NC04")
    _same(answer, real(NC04_DETAILS))
    assert list(answer) == ["id", "name", "url_force", "centre", "population", "contact_details", "links",
                            "locations", "description"]  # fmt: skip
    assert answer["centre"] == {"latitude": "52.6389", "longitude": "-1.13619"} and answer["population"] == "0"


def test_the_boundary_is_the_published_points_in_order_as_strings(server: LiveServer) -> None:
    answer = _get(server, "/api/leicestershire/NC04/boundary")
    _same(answer, real(NC04_BOUNDARY))
    assert len(answer) == 85 and answer[0] == answer[-1]


def test_the_team_events_and_priorities_are_served_as_harvested(server: LiveServer) -> None:
    _same(_get(server, "/api/leicestershire/NC04/people"), NC04_PEOPLE)
    _same(_get(server, "/api/leicestershire/NC04/events"), NC04_EVENTS)
    _same(_get(server, "/api/leicestershire/NC04/priorities"), NC04_PRIORITIES)


def test_a_neighbourhood_known_only_by_its_boundary_answers_with_the_published_fields(server: LiveServer) -> None:
    answer = _get(server, "/api/leicestershire/NC08")
    assert list(answer) == list(real(NC04_DETAILS))
    assert answer["id"] == "NC08" and answer["name"] == "Westcotes"  # named by the published list
    assert {k: type(v) for k, v in answer["centre"].items()} == {"latitude": str, "longitude": str}
    lat, lng = float(answer["centre"]["latitude"]), float(answer["centre"]["longitude"])
    assert 52.62 < lat < 52.63 and -1.17 < lng < -1.16 and answer["population"] == "0"
    for kind in ("people", "events", "priorities"):
        assert _get(server, f"/api/leicestershire/NC08/{kind}") == []
    assert len(_get(server, "/api/leicestershire/NC08/boundary")) == 5


def test_locate_neighbourhood_names_the_force_and_neighbourhood_holding_the_point(server: LiveServer) -> None:
    lat, lng = INSIDE_NC04
    answer = _get(server, f"/api/locate-neighbourhood?q={lat},{lng}")
    assert answer == {"force": "leicestershire", "neighbourhood": "NC04"} and list(answer) == ["force", "neighbourhood"]
    assert _get(server, "/api/locate-neighbourhood?q=52.625,-1.165")["neighbourhood"] == "NC08"
    corner = real(NC04_BOUNDARY)[10]  # on the edge counts as inside
    on_edge = _get(server, f"/api/locate-neighbourhood?q={corner['latitude']},{corner['longitude']}")
    assert on_edge["neighbourhood"] == "NC04"


def test_locate_neighbourhood_is_404_where_none_holds_the_point(server: LiveServer) -> None:
    error = _get(server, "/api/locate-neighbourhood?q=51.5,-0.1", 404)
    assert error["status"] == 404 and "no neighbourhood holds 51.5,-0.1" in error["message"]


@pytest.mark.parametrize("q", ["", "52.6", "52.6,-1.1,3", "north,west", "91,0", "52.6,nan", "LE1%205FQ"])
def test_locate_neighbourhood_is_400_for_a_q_that_is_not_a_point(server: LiveServer, q: str) -> None:
    error = _get(server, f"/api/locate-neighbourhood?q={q}", 400)
    assert error["status"] == 400 and "q" in error["hint"]
    assert _get(server, "/api/locate-neighbourhood", 400)["message"] == "q is required"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/atlantis/neighbourhoods", "unknown force 'atlantis'"),
        ("/api/atlantis/NC04", "unknown force 'atlantis'"),
        ("/api/atlantis/NC04/boundary", "unknown force 'atlantis'"),
        ("/api/leicestershire/NC99", "unknown neighbourhood 'NC99' of leicestershire"),
        ("/api/derbyshire/NC04/people", "unknown neighbourhood 'NC04' of derbyshire"),
        ("/api/leicestershire/NC99/priorities", "unknown neighbourhood 'NC99'"),
        ("/api/forces/atlantis/people", "unknown force 'atlantis'"),
    ],
)
def test_an_unknown_force_or_neighbourhood_is_the_police_uk_404(server: LiveServer, path: str, message: str) -> None:
    error = _get(server, path, 404)
    assert error["status"] == 404 and error["error"] == "Not Found" and message in error["message"]


def test_a_force_with_nothing_stored_has_no_neighbourhoods(server: LiveServer) -> None:
    assert _get(server, "/api/derbyshire/neighbourhoods") == []
    assert _get(server, "/api/derbyshire/people", 404)["status"] == 404


def test_a_force_s_details_and_senior_officers_are_served_as_harvested(server: LiveServer) -> None:
    _same(_get(server, "/api/forces/leicestershire"), LEICESTERSHIRE_FORCE)
    _same(_get(server, "/api/forces/leicestershire/people"), LEICESTERSHIRE_PEOPLE)
    bare = server.client.get("/api/forces/essex")
    assert bare.content == (
        b'{"id":"essex","name":"Essex Police","description":null,"url":null,"telephone":null,"engagement_methods":[]}'
    )
    assert _get(server, "/api/forces/essex/people") == []


def test_the_fixed_police_uk_paths_are_not_taken_for_neighbourhoods(server: LiveServer) -> None:
    assert _get(server, "/api/forces/leicestershire")["telephone"] == "101"
    assert _get(server, "/api/crime-categories?date=2024-01")[0]["url"] == "all-crime"
    assert _get(server, "/api/crimes-street/burglary?lat=52.63&lng=-1.13&date=2024-01") == []


def test_a_get_over_4094_characters_is_400_here_too(server: LiveServer) -> None:
    assert _get(server, f"/api/locate-neighbourhood?q=52.6349,-1.1330&pad={'x' * 4100}", 400)["status"] == 400


def test_the_neighbourhoods_table_is_served_by_ogc_and_downloads_too(server: LiveServer) -> None:
    items = _get(server, "/ogc/collections/policeuk-neighbourhoods/items", kind="application/geo+json")
    assert [(f["properties"]["neighbourhood"], f["properties"]["name"]) for f in items["features"]] == [
        ("NC04", "City Centre"),  # named by the published list
        ("NC08", "Westcotes"),
    ]
    assert {f["geometry"]["type"] for f in items["features"]} <= {"Polygon", "MultiPolygon"}
    download = orjson.loads(server.client.get("/download/policeuk-neighbourhoods.geojson").content)
    assert len(download["features"]) == 2
