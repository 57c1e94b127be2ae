"""One access model for every route (see :mod:`crimemap.api.access`), tested route by route.

Every route the app serves must appear in :data:`REQUESTS` with its kind, so a
new route cannot slip past the model unclassified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from conftest import LiveServer
from crimemap.api.app import Settings, create_app
from crimemap.query import CrimeQuery
from crimemap.store.base import Store

PID = "3f1ee8c67d4c274a330b6e925570fa676f2896ddd7fddb482a0def66d349b478"
POINT = {"lat": "51.5155", "lng": "-0.0922", "date": "2017-01"}


@dataclass(frozen=True)
class Sample:
    """One request to a route, and which kind of data it returns."""

    kind: str  # rows | policeuk | policeuk-missing (404 once let in) | names | health | open | nothing
    method: str
    path: str
    route: str
    form: tuple[tuple[str, str], ...] = ()


def samples(gx_id: int, street_id: int = 1) -> list[Sample]:
    street = "/api/crimes-street/all-crime?lat=51.5155&lng=-0.0922&date=2017-01"
    features = "/mapsengine/v1/tables/policeuk-crimes/features"
    form = tuple(POINT.items())
    return [
        Sample("health", "GET", "/health", "/health"),
        Sample("policeuk", "GET", street, "/api/crimes-street/{category}"),
        Sample("policeuk", "POST", "/api/crimes-street/all-crime", "/api/crimes-street/{category}", form),
        Sample(
            "policeuk", "GET", "/api/crimes-at-location?lat=51.5155&lng=-0.0922&date=2017-01", "/api/crimes-at-location"
        ),
        Sample(
            "policeuk", "GET", "/api/crimes-no-location?force=city-of-london&date=2017-01", "/api/crimes-no-location"
        ),
        Sample("policeuk", "GET", "/api/crime-categories?date=2017-01", "/api/crime-categories"),
        Sample("policeuk", "GET", "/api/crimes-street-dates", "/api/crimes-street-dates"),
        Sample("policeuk", "GET", "/api/crime-last-updated", "/api/crime-last-updated"),
        Sample("policeuk", "GET", f"/api/outcomes-for-crime/{PID}", "/api/outcomes-for-crime/{persistent_id}"),
        Sample(
            "policeuk",
            "GET",
            "/api/outcomes-at-location?lat=51.5155&lng=-0.0922&date=2017-01",
            "/api/outcomes-at-location",
        ),
        Sample("policeuk", "POST", "/api/outcomes-at-location", "/api/outcomes-at-location", form),
        Sample("policeuk", "GET", "/api/stops-street?lat=51.5155&lng=-0.0922&date=2017-01", "/api/stops-street"),
        Sample("policeuk", "POST", "/api/stops-street", "/api/stops-street", form),
        Sample(
            "policeuk", "GET", f"/api/stops-at-location?location_id={street_id}&date=2017-01", "/api/stops-at-location"
        ),
        Sample("policeuk", "GET", "/api/stops-no-location?force=city-of-london&date=2017-01", "/api/stops-no-location"),
        Sample("policeuk", "GET", "/api/stops-force?force=city-of-london&date=2017-01", "/api/stops-force"),
        Sample("policeuk", "GET", "/api/forces", "/api/forces"),
        Sample("policeuk", "GET", "/api/forces/city-of-london", "/api/forces/{force_id}"),
        Sample("policeuk", "GET", "/api/forces/city-of-london/people", "/api/forces/{force_id}/people"),
        Sample("policeuk", "GET", "/api/city-of-london/neighbourhoods", "/api/{force}/neighbourhoods"),
        Sample("policeuk-missing", "GET", "/api/locate-neighbourhood?q=51.5155,-0.0922", "/api/locate-neighbourhood"),
        Sample("policeuk-missing", "GET", "/api/city-of-london/E01", "/api/{force}/{neighbourhood}"),
        *(
            Sample("policeuk-missing", "GET", f"/api/city-of-london/E01/{kind}", "/api/{force}/{neighbourhood}/" + kind)
            for kind in ("boundary", "people", "events", "priorities")
        ),
        Sample("rows", "GET", f"{features}?maxResults=1", "/mapsengine/v1/tables/{table_id}/features"),
        Sample("rows", "GET", f"{features}/?maxResults=1", "/mapsengine/v1/tables/{table_id}/features/"),
        Sample("rows", "GET", f"{features}/{gx_id}", "/mapsengine/v1/tables/{table_id}/features/{feature_id}"),
        Sample("rows", "GET", f"{features}/{gx_id}/", "/mapsengine/v1/tables/{table_id}/features/{feature_id}/"),
        Sample("rows", "GET", "/download/policeuk-crimes.csv?where=month%3D%272016-01%27", "/download/{file_name}"),
        Sample("names", "GET", "/mapsengine/v1/tables", "/mapsengine/v1/tables"),
        Sample("names", "GET", "/mapsengine/v1/tables/", "/mapsengine/v1/tables/"),
        Sample("names", "GET", "/mapsengine/v1/tables/policeuk-crimes", "/mapsengine/v1/tables/{table_id}"),
        Sample("names", "GET", "/mapsengine/v1/tables/policeuk-crimes/", "/mapsengine/v1/tables/{table_id}/"),
        Sample("nothing", "GET", "/mapsengine", "/mapsengine"),
        Sample("nothing", "GET", "/mapsengine/v2/whatever", "/mapsengine/{path:path}"),
        Sample("policeuk", "GET", "/stats/crimes?group=month", "/stats/crimes"),
        Sample("policeuk", "POST", "/stats/crimes", "/stats/crimes", (("group", "force"),)),
        Sample("policeuk", "GET", "/stats/stops?group=month", "/stats/stops"),
        Sample("policeuk", "POST", "/stats/stops", "/stats/stops", (("group", "force"),)),
        Sample("policeuk", "GET", "/boundaries/forces.geojson", "/boundaries/forces.geojson"),
        Sample("nothing", "GET", "/basemap.pmtiles", "/basemap.pmtiles"),  # none configured; no data either way
        Sample("open", "GET", "/", "/"),
        Sample("open", "GET", "/static/app.js", "/static/{path:path}"),
        Sample("open", "GET", "/docs", "/docs"),
        Sample("open", "GET", "/docs/oauth2-redirect", "/docs/oauth2-redirect"),
        Sample("open", "GET", "/openapi.json", "/openapi.json"),
        Sample("open", "GET", "/ogc", "/ogc"),
        Sample("open", "GET", "/ogc/", "/ogc/"),
        Sample("open", "GET", "/ogc/conformance", "/ogc/conformance"),
        Sample("open", "GET", "/ogc/api", "/ogc/api"),
        Sample("ogc", "GET", "/ogc/collections", "/ogc/collections"),
        Sample("ogc", "GET", "/ogc/collections/policeuk-crimes", "/ogc/collections/{collection_id}"),
        Sample(
            "ogc", "GET", "/ogc/collections/policeuk-crimes/queryables", "/ogc/collections/{collection_id}/queryables"
        ),
        Sample("ogc", "GET", "/ogc/collections/policeuk-crimes/schema", "/ogc/collections/{collection_id}/schema"),
        Sample(
            "ogc", "GET", "/ogc/collections/policeuk-crimes/schema.xsd", "/ogc/collections/{collection_id}/schema.xsd"
        ),
        Sample(
            "ogc", "GET", "/ogc/collections/policeuk-crimes/items?limit=1", "/ogc/collections/{collection_id}/items"
        ),
        Sample(
            "ogc",
            "GET",
            f"/ogc/collections/policeuk-crimes/items/{gx_id}",
            "/ogc/collections/{collection_id}/items/{feature_id}",
        ),
        Sample("nothing", "GET", "/ogc/nothing-here", "/ogc/{path:path}"),
    ]


def served_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the app routes, including those of included routers.

    FastAPI before 0.16x copies an included router's routes into ``app.routes``;
    later versions keep the router and list its routes as "effective candidates".
    """
    found: set[tuple[str, str]] = set()

    def visit(routes: Any) -> None:
        for route in routes:
            inner = getattr(route, "effective_candidates", None)
            if callable(inner):
                visit(inner())
                continue
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD":
                    found.add((method, route.path))

    visit(app.routes)
    return found


def test_every_route_is_classified(policeuk_store: Store) -> None:
    app = create_app(policeuk_store)
    served = served_routes(app)
    assert ("GET", "/api/crimes-street/{category}") in served and ("GET", "/ogc/collections") in served
    for catch_all in ("/mapsengine", "/mapsengine/{path:path}", "/ogc/{path:path}"):
        served -= {(m, catch_all) for m in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS")}
    classified = {(s.method, s.route) for s in samples(1)}
    assert served - classified == set()


@pytest.fixture(scope="module")
def gx_id(policeuk_store: Store) -> int:
    return next(iter(policeuk_store.crimes(CrimeQuery(month="2017-01", limit=1)))).id


@pytest.fixture(scope="module")
def street_id(policeuk_store: Store) -> int:
    street = next(iter(policeuk_store.crimes(CrimeQuery(month="2017-01", limit=1)))).street_id
    assert street is not None
    return street


CONFIGS: dict[str, Settings] = {
    "open": Settings(),
    "keys": Settings(api_keys=frozenset({"k1"}), bearer_tokens=frozenset({"tok"})),
    "keys, public police.uk": Settings(api_keys=frozenset({"k1"}), public_policeuk=True),
    "tokens only": Settings(bearer_tokens=frozenset({"tok"})),
}
CREDENTIALS: dict[str, tuple[dict[str, str], dict[str, str]]] = {  # (query, headers)
    "none": ({}, {}),
    "key": ({"key": "k1"}, {}),
    "bearer": ({}, {"Authorization": "Bearer tok"}),
    "wrong key": ({"key": "nope"}, {}),
}

VALID: dict[str, set[str]] = {"open": set(), "keys": {"key", "bearer"}, "keys, public police.uk": {"key"}}
VALID["tokens only"] = {"bearer"}
"""The credentials each configuration accepts."""

OGC: dict[tuple[str, str], int] = {
    (config, credential): 200
    if config == "open" or credential in VALID[config]
    else 401
    if credential == "none"
    else 403
    for config in CONFIGS
    for credential in CREDENTIALS
}
"""OGC API collections and items: any accepted credential once one is configured (401 without, 403 another)."""

# The expected status of each kind of route, per server configuration and credential sent.
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("open", "none"): {"rows": 200, "policeuk": 200, "names": 401},
    ("open", "key"): {"rows": 200, "policeuk": 200, "names": 401},
    ("open", "bearer"): {"rows": 200, "policeuk": 200, "names": 401},  # no token configured: none is valid
    ("open", "wrong key"): {"rows": 200, "policeuk": 200, "names": 401},
    ("keys", "none"): {"rows": 403, "policeuk": 401, "names": 401},
    ("keys", "key"): {"rows": 200, "policeuk": 200, "names": 401},
    ("keys", "bearer"): {"rows": 200, "policeuk": 200, "names": 200},
    ("keys", "wrong key"): {"rows": 400, "policeuk": 403, "names": 401},
    ("keys, public police.uk", "none"): {"rows": 403, "policeuk": 200, "names": 401},
    ("keys, public police.uk", "key"): {"rows": 200, "policeuk": 200, "names": 401},
    ("keys, public police.uk", "bearer"): {"rows": 403, "policeuk": 200, "names": 401},
    ("keys, public police.uk", "wrong key"): {"rows": 400, "policeuk": 200, "names": 401},
    ("tokens only", "none"): {"rows": 200, "policeuk": 200, "names": 401},
    ("tokens only", "key"): {"rows": 200, "policeuk": 200, "names": 401},
    ("tokens only", "bearer"): {"rows": 200, "policeuk": 200, "names": 200},
    ("tokens only", "wrong key"): {"rows": 200, "policeuk": 200, "names": 401},
}


@pytest.fixture(scope="module")
def servers(policeuk_store: Store) -> Iterator[Callable[[str], LiveServer]]:
    started: dict[str, LiveServer] = {}

    def server(config: str) -> LiveServer:
        if config not in started:
            started[config] = LiveServer(policeuk_store, CONFIGS[config])
        return started[config]

    yield server
    for live in started.values():
        live.stop()


def _send(client: httpx.Client, sample: Sample, query: dict[str, str], headers: dict[str, str]) -> httpx.Response:
    url = httpx.URL(sample.path)
    url = url.copy_merge_params(query) if query else url
    if sample.method == "POST":
        return client.post(url, data=dict(sample.form), headers=headers)
    return client.get(url, headers=headers)


def _full_health(body: dict[str, Any]) -> bool:
    return "months" in body and "tables" in body


@pytest.mark.parametrize("credential", list(CREDENTIALS))
@pytest.mark.parametrize("config", list(CONFIGS))
def test_every_route_answers_as_the_access_model_says(
    servers: Callable[[str], LiveServer], gx_id: int, street_id: int, config: str, credential: str
) -> None:
    client = servers(config).client
    query, headers = CREDENTIALS[credential]
    expected = EXPECTED[(config, credential)]
    wrong: list[str] = []
    for sample in samples(gx_id, street_id):
        response = _send(client, sample, query, headers)
        if sample.kind == "health":
            locked = config != "open" and credential not in VALID[config]
            body = response.json()
            if response.status_code != 200 or _full_health(body) == locked or body.get("status") != "ok":
                wrong.append(f"{sample.path}: {response.status_code} {body}")
            continue
        if sample.kind == "ogc":
            want = OGC[(config, credential)]
        elif sample.kind == "policeuk-missing":  # no neighbourhoods are stored
            want = 404 if expected["policeuk"] == 200 else expected["policeuk"]
        else:
            want = {"open": 200, "nothing": 404}.get(sample.kind) or expected[sample.kind]
        if response.status_code != want:
            wrong.append(f"{sample.method} {sample.path}: {response.status_code}, expected {want}")
        elif want != 200 and not response.headers["content-type"].startswith("application/json"):
            wrong.append(f"{sample.method} {sample.path}: not JSON")
    assert wrong == []


def test_a_refused_police_uk_request_says_how_to_send_a_key(servers: Callable[[str], LiveServer]) -> None:
    response = servers("keys").client.get("/api/forces")
    body = response.json()
    assert (response.status_code, body["status"]) == (401, 401)
    assert "key=YOUR_KEY" in body["hint"] and "Bearer" in body["hint"]
    assert servers("keys").client.get("/api/forces", params={"key": "nope"}).json()["status"] == 403


def test_the_unknown_table_404_points_at_a_listing_that_answers(servers: Callable[[str], LiveServer]) -> None:
    for config, extra in (("open", {}), ("keys", {"key": "k1"})):
        client = servers(config).client
        response = client.get("/mapsengine/v1/tables/nope/features", params=extra)
        message = response.json()["error"]["message"]
        assert response.status_code == 404 and "GET /health lists the tables" in message
        listing = client.get("/health", params=extra).json()
        assert [t["id"] for t in listing["tables"]] == ["policeuk-crimes"]
