"""Access to the Maps Engine API (API keys, bearer tokens), the table resources, and every error envelope."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import NYC, STORE_KINDS, LiveServer, _open_empty
from crimemap.api.app import Settings
from crimemap.load.tables import load_table
from crimemap.query import FeatureQuery
from crimemap.records import Feature, FeatureColumns
from crimemap.store.base import Store
from crimemap.store.geojson_sql import GeoJSONPage, Layout
from crimemap.store.sqlite import SQLiteStore

TABLE = "02378420399528461352-11853667273131550346"
FILE = NYC / "2015-05-08" / f"{TABLE}.geojson"
BASE = "/mapsengine/v1/tables"

LOGIN_REQUIRED = {
    "error": {
        "errors": [
            {
                "domain": "global",
                "reason": "required",
                "message": "Login Required",
                "locationType": "header",
                "location": "Authorization",
            }
        ],
        "code": 401,
        "message": "Login Required",
    }
}
"""The real API's answer to tables/{id} with only a key, as the NYC Crime Map post printed it."""


@pytest.fixture(scope="module", params=STORE_KINDS)
def nyc_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = _open_empty(request.param, tmp_path_factory.mktemp("nyc"))
    load_table(store, FILE)
    yield store
    store.close()


@pytest.fixture(scope="module")
def locked(nyc_store: Store) -> Iterator[LiveServer]:
    """A server that wants the key ``k1`` (or ``k2``) on feature calls, and bearer token ``secret``."""
    settings = Settings(api_keys=frozenset({"k1", "k2"}), bearer_tokens=frozenset({"secret"}))
    live = LiveServer(nyc_store, settings)
    yield live
    live.stop()


def envelope(response: Any) -> dict[str, Any]:
    body = response.json()
    assert list(body) == ["error"] and list(body["error"]) == ["errors", "code", "message"]
    assert body["error"]["code"] == response.status_code
    return dict(body["error"]["errors"][0])


# -- the table resource needs a bearer token ------------------------------------------------------------


def test_the_table_resource_without_a_token_is_the_real_401(locked: LiveServer) -> None:
    for params in ({}, {"key": "k1"}, {"key": "k1", "version": "published"}):
        response = locked.client.get(f"{BASE}/{TABLE}/", params=params)
        assert response.status_code == 401
        assert response.json() == LOGIN_REQUIRED
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert locked.client.get(f"{BASE}/{TABLE}").json() == LOGIN_REQUIRED
    assert locked.client.get(BASE).json() == LOGIN_REQUIRED


def test_a_wrong_bearer_token_is_invalid_credentials(locked: LiveServer) -> None:
    for header in ("Bearer nope", "Basic c2VjcmV0", "Bearer", "secret"):
        response = locked.client.get(f"{BASE}/{TABLE}", headers={"Authorization": header})
        assert response.status_code == 401
        error = envelope(response)
        assert (error["reason"], error["message"], error["location"]) == (
            "authError",
            "Invalid Credentials",
            "Authorization",
        )


def test_with_a_token_the_table_resource_describes_the_table(locked: LiveServer) -> None:
    response = locked.client.get(f"{BASE}/{TABLE}", headers={"Authorization": "Bearer secret"})
    assert response.status_code == 200
    table = response.json()
    assert table["id"] == TABLE and table["projectId"] == "02378420399528461352"
    assert table["schema"] == {
        "columns": [
            {"name": "geometry", "type": "points"},
            {"name": "MO", "type": "double"},
            {"name": "YR", "type": "double"},
            {"name": "TOT", "type": "double"},
            {"name": "Y", "type": "double"},
            {"name": "X", "type": "double"},
        ],
        "primaryGeometry": "geometry",
        "primaryKey": "gx_id",
    }
    west, south, east, north = table["bbox"]
    assert -77.6 < west < east < -73.6 and 40.1 < south < north < 41.0
    assert table["creationTime"].endswith("Z") and table["lastModifiedTime"].endswith("Z")


def test_the_table_list_holds_the_crimes_and_every_loaded_table(locked: LiveServer) -> None:
    response = locked.client.get(f"{BASE}/", headers={"Authorization": "Bearer secret"})
    assert response.status_code == 200
    tables = {t["id"]: t for t in response.json()["tables"]}
    assert set(tables) == {"policeuk-crimes", TABLE}
    assert {"name": "category", "type": "string"} in tables["policeuk-crimes"]["schema"]["columns"]


def test_an_unknown_table_is_404_even_with_a_token(locked: LiveServer) -> None:
    response = locked.client.get(f"{BASE}/nope", headers={"Authorization": "Bearer secret"})
    assert response.status_code == 404 and envelope(response)["reason"] == "notFound"


# -- API keys on the features calls -----------------------------------------------------------------------


def test_without_a_key_the_features_call_is_403(locked: LiveServer) -> None:
    response = locked.client.get(f"{BASE}/{TABLE}/features")
    assert response.status_code == 403
    error = envelope(response)
    assert (error["domain"], error["reason"]) == ("usageLimits", "dailyLimitExceededUnreg")


def test_a_wrong_key_is_400_key_invalid(locked: LiveServer) -> None:
    for key in ("k3", "K1", "k1 ", "' OR '1'='1"):
        for path in (f"{BASE}/{TABLE}/features", f"{BASE}/{TABLE}/features/1"):
            response = locked.client.get(path, params={"key": key})
            assert response.status_code == 400
            assert response.json() == {
                "error": {
                    "errors": [{"domain": "usageLimits", "reason": "keyInvalid", "message": "Bad Request"}],
                    "code": 400,
                    "message": "Bad Request",
                }
            }


def test_a_configured_key_or_a_bearer_token_opens_the_features(locked: LiveServer) -> None:
    for key in ("k1", "k2"):
        response = locked.client.get(f"{BASE}/{TABLE}/features", params={"key": key, "maxResults": 1})
        assert response.status_code == 200 and len(response.json()["features"]) == 1
    response = locked.client.get(
        f"{BASE}/{TABLE}/features/1", headers={"Authorization": "Bearer secret"}, params={"select": "MO"}
    )
    assert response.status_code == 200 and response.json()["properties"] == {"MO": 2.0}


def test_without_configured_keys_any_key_is_accepted(nyc_store: Store, live_server: Callable[..., LiveServer]) -> None:
    open_server = live_server(nyc_store)
    for params in ({}, {"key": "whatever"}):
        response = open_server.client.get(f"{BASE}/{TABLE}/features", params={**params, "maxResults": 1})
        assert response.status_code == 200
    assert open_server.client.get(f"{BASE}/{TABLE}").json() == LOGIN_REQUIRED


# -- every error is in the envelope ------------------------------------------------------------------------


def test_every_error_under_mapsengine_uses_the_envelope(locked: LiveServer) -> None:
    key = {"key": "k1"}
    cases: list[tuple[str, str, dict[str, str], int, str]] = [
        ("GET", f"{BASE}/{TABLE}/features", {**key, "where": "MO ="}, 400, "invalid"),
        ("GET", f"{BASE}/nope/features", key, 404, "notFound"),
        ("GET", f"{BASE}/nope/features/1", key, 404, "notFound"),
        ("GET", f"{BASE}/{TABLE}/features/0", key, 404, "notFound"),
        ("GET", "/mapsengine/v1/layers", key, 404, "notFound"),
        ("GET", "/mapsengine", key, 404, "notFound"),
        ("GET", "/mapsengine/v2/tables", key, 404, "notFound"),
        ("POST", f"{BASE}/{TABLE}/features/batchInsert", key, 405, "httpMethodNotAllowed"),  # the path of a feature
        ("DELETE", f"{BASE}/{TABLE}", key, 405, "httpMethodNotAllowed"),
        ("GET", f"{BASE}/{TABLE}/features", {}, 403, "dailyLimitExceededUnreg"),
        ("GET", f"{BASE}/{TABLE}", key, 401, "required"),
    ]
    for method, path, params, status, reason in cases:
        response = locked.client.request(method, path, params=params)
        assert response.status_code == status, (method, path, response.text)
        assert response.headers["content-type"] == "application/json"
        assert envelope(response)["reason"] == reason


class _FailingStore(SQLiteStore):
    """A store whose feature reads fail as a busy or broken database would."""

    def features(self, query: FeatureQuery) -> Iterator[Feature]:
        raise sqlite3.OperationalError("database is locked")

    def feature_columns(self, query: FeatureQuery) -> FeatureColumns:
        raise sqlite3.OperationalError("database is locked")

    def feature_geojson(self, query: FeatureQuery, layout: Layout) -> GeoJSONPage | None:
        raise sqlite3.OperationalError("database is locked")


def test_a_store_failure_is_the_real_503_backend_error(
    tmp_path: Path, live_server: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    store = _FailingStore(tmp_path / "failing.sqlite")
    load_table(store, FILE)
    response = live_server(store).client.get(f"{BASE}/{TABLE}/features")
    assert response.status_code == 503
    sample = NYC / "raw_samples" / "error_503_backendError_2016-01-24.body"
    assert response.json() == json.loads(sample.read_text())
    assert "database is locked" in caplog.text
    store.close()


def test_any_web_page_may_read_the_api(locked: LiveServer) -> None:
    """The NYC Crime Map called the API from its own site: answers allow any origin, errors too."""
    headers = {"Origin": "http://maps.nyc.gov", "Referer": "http://maps.nyc.gov/crime/"}
    ok = locked.client.get(f"{BASE}/{TABLE}/features", params={"key": "k1", "maxResults": 1}, headers=headers)
    refused = locked.client.get(f"{BASE}/{TABLE}/features", headers=headers)
    assert ok.headers["access-control-allow-origin"] == refused.headers["access-control-allow-origin"] == "*"


def test_the_api_is_described_at_docs(locked: LiveServer) -> None:
    paths = locked.client.get("/openapi.json").json()["paths"]
    for path in (
        BASE,
        BASE + "/{table_id}",
        BASE + "/{table_id}/features",
        BASE + "/{table_id}/features/{feature_id}",
    ):
        assert "get" in paths[path]
    assert "/download/{file_name}" in paths
    assert not any(p.startswith("/mapsengine/{") or p.endswith("/") for p in paths)
