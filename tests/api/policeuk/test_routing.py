"""A police.uk area method is declared once and served on GET and POST alike, as the real API serves it.

``crimes-street``, ``outcomes-at-location`` and ``stops-street`` take their
parameters from the query string (GET) or a form-encoded body (POST, for areas
too long for a GET); a parameter missing from the body is read from the query
string. The answers are the same bytes, and the OpenAPI document describes the
same parameters for both.
"""

from __future__ import annotations

from typing import Any

import pytest

from api.policeuk.test_stops import stops_server  # noqa: F401 - the fixture: real crimes, outcomes and stops
from conftest import LiveServer

AREA_METHODS = {  # each with a month of the real files that holds its rows in the City
    "/api/crimes-street/all-crime": "2017-01",
    "/api/outcomes-at-location": "2017-01",
    "/api/stops-street": "2020-01",
}
CITY_POINT = {"lat": "51.5155", "lng": "-0.0922"}
CITY_POLY = {"poly": "51.520,-0.100:51.520,-0.080:51.508,-0.080:51.508,-0.100"}


@pytest.mark.parametrize("path", AREA_METHODS)
@pytest.mark.parametrize("area", [CITY_POINT, CITY_POLY], ids=["point", "poly"])
def test_an_area_method_answers_get_and_post_with_the_same_bytes(
    stops_server: LiveServer,  # noqa: F811
    path: str,
    area: dict[str, str],
) -> None:
    area = {**area, "date": AREA_METHODS[path]}
    by_get = stops_server.client.get(path, params=area)
    by_post = stops_server.client.post(path, data=area)
    assert by_get.status_code == by_post.status_code == 200, (by_get.text, by_post.text)
    assert by_get.json(), "the area holds something, so the comparison means something"
    assert by_post.content == by_get.content


@pytest.mark.parametrize("path", AREA_METHODS)
def test_a_post_reads_a_parameter_missing_from_its_body_from_the_query_string(
    stops_server: LiveServer,  # noqa: F811
    path: str,
) -> None:
    by_get = stops_server.client.get(path, params={**CITY_POINT, "date": AREA_METHODS[path]})
    assert by_get.json()
    in_body = {"lat": CITY_POINT["lat"], "date": AREA_METHODS[path]}
    mixed = stops_server.client.post(path, params={"lng": CITY_POINT["lng"]}, data=in_body)
    assert mixed.status_code == 200, mixed.text
    assert mixed.content == by_get.content


@pytest.mark.parametrize("path", ["/api/crimes-street/{category}", "/api/outcomes-at-location", "/api/stops-street"])
def test_the_document_describes_the_same_parameters_for_get_and_post(
    stops_server: LiveServer,  # noqa: F811
    path: str,
) -> None:
    document = stops_server.client.get("/openapi.json").json()
    get, post = document["paths"][path]["get"], document["paths"][path]["post"]
    in_query = {p["name"]: p["description"] for p in get["parameters"] if p["in"] == "query"}
    form = _schema(document, post["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"])
    in_body = {name: field["description"] for name, field in form["properties"].items()}
    assert in_query and in_body == in_query
    in_path = [[p for p in operation.get("parameters", []) if p["in"] == "path"] for operation in (get, post)]
    assert in_path[0] == in_path[1]
    assert post["summary"] == f"{get['summary']} (parameters in a form-encoded body)"
    assert post["responses"].keys() == get["responses"].keys()


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        found: dict[str, Any] = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return found
    return schema
