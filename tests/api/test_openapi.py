"""The OpenAPI document tells the truth: schemathesis calls every operation and checks every answer against it.

Requests are generated from ``/openapi.json`` and sent to a real server over
the real police.uk data; each response's status code must be documented, its
content type and body must match the documented ones, and none may be a 5xx.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import LiveServer

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_every_answer_matches_the_openapi_document(policeuk_server: LiveServer) -> None:
    api = schemathesis.openapi.from_url(f"{policeuk_server.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 15
    calls: Counter[int] = Counter()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def answers_as_documented(case: Any) -> None:
            calls[case.call_and_validate(checks=CHECKS).status_code] += 1

        answers_as_documented()
    assert calls[200] and calls[400] and sum(calls.values()) > 10 * len(operations), calls


def test_the_document_lists_the_parameters_and_errors_the_api_has(policeuk_server: LiveServer) -> None:
    document = policeuk_server.client.get("/openapi.json").json()
    features = document["paths"]["/mapsengine/v1/tables/{table_id}/features"]["get"]
    names = {p["name"] for p in features["parameters"]}
    assert names >= {"where", "select", "orderBy", "limit", "maxResults", "pageToken", "intersects", "include"}
    assert names >= {"version", "key"}
    download = document["paths"]["/download/{file_name}"]["get"]
    assert {p["name"] for p in download["parameters"]} >= {"where", "select"}
    assert {t.split(";")[0] for t in download["responses"]["200"]["content"]} == {
        "application/geo+json",
        "text/csv",
        "application/geopackage+sqlite3",
        "application/vnd.apache.parquet",
        "application/flatgeobuf",
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "422" not in codes, (method, path)
            assert path == "/health" or codes & {"400", "401", "404"}, (method, path)
            ok = operation["responses"]["200"].get("content", {}).get("application/json", {}).get("schema")
            assert ok != {"type": "string"}, (method, path)  # a real shape, not "a string"


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def test_a_parameter_a_method_needs_is_required_in_the_document_and_its_absence_is_400(
    policeuk_server: LiveServer,
) -> None:
    document = policeuk_server.client.get("/openapi.json").json()
    required = {
        (path, p["name"])
        for path, method, op in _operations(document)
        for p in op.get("parameters", [])
        if p["in"] == "query" and p.get("required")
    }
    assert required >= {
        ("/api/crimes-no-location", "force"),
        ("/api/stops-no-location", "force"),
        ("/api/stops-force", "force"),
        ("/api/stops-at-location", "location_id"),
    }
    for path, _ in required:
        response = policeuk_server.client.get(path)
        assert response.status_code == 400 and "is required" in response.json()["message"], (path, response.text)


def test_the_document_says_which_parameters_go_together(policeuk_server: LiveServer) -> None:
    document = policeuk_server.client.get("/openapi.json").json()

    def described(path: str, name: str) -> str:
        parameters = document["paths"][path]["get"]["parameters"]
        return str(next(p for p in parameters if p["name"] == name)["description"])

    for path in ("/api/crimes-street/{category}", "/api/stops-street", "/api/outcomes-at-location"):
        assert "given with `lng`" in described(path, "lat") and "given with `lat`" in described(path, "lng")
        assert "Instead of `lat` and `lng`" in described(path, "poly")
        assert "`lat` and `lng` together" in document["paths"][path]["get"]["description"], path
    assert "Instead of `lat` and `lng`" in described("/api/crimes-at-location", "location_id")
    for path in ("/stats/crimes", "/stats/stops"):
        assert "Not with `poly`" in described(path, "bbox") and "Not with `bbox`" in described(path, "poly")
        assert described(path, "zoom").startswith("Required with group=cell")
    # and what they say is what the API does
    both = {"lat": "51.5", "lng": "-0.09", "poly": "51.5,-0.1:51.6,-0.1:51.6,0"}
    assert policeuk_server.client.get("/api/crimes-street/all-crime", params=both).status_code == 400
    assert policeuk_server.client.get("/api/crimes-street/all-crime", params={"lat": "51.5"}).status_code == 400
    assert policeuk_server.client.get("/stats/crimes", params={"group": "cell"}).status_code == 400
    boxed = {"bbox": "-0.2,51.4,0.1,51.6", "poly": both["poly"]}
    assert policeuk_server.client.get("/stats/crimes", params=boxed).status_code == 400


def test_the_document_links_to_the_ogc_document(policeuk_server: LiveServer) -> None:
    document = policeuk_server.client.get("/openapi.json").json()
    assert document["externalDocs"]["url"] == "/ogc/api"
    assert "[/ogc/api](/ogc/api)" in document["info"]["description"]
    ogc = policeuk_server.client.get(document["externalDocs"]["url"])
    assert ogc.status_code == 200 and ogc.json()["openapi"].startswith("3.0")
