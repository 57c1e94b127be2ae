"""OGC API - Features under /ogc, over the real police.uk files and NYC Crime Map tables, on both stores.

Answers are checked against the store read directly, the police.uk API of the
same server, and the files themselves.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conftest import NYC, POLICEUK, STORE_KINDS, LiveServer, _open_empty
from crimemap.api.ogc.pages import HISTORY
from crimemap.load.policeuk import load_policeuk
from crimemap.load.tables import load_table
from crimemap.query import FeatureQuery, Like
from crimemap.store.base import Store
from crimemap.store.catalogue import CRIMES_TABLE

ITEMS = f"/ogc/collections/{CRIMES_TABLE}/items"
CITY = (-0.1, 51.51, -0.09, 51.52)
"""A box in the City of London, around St Paul's."""
BY_TYPE_ID = "02378420399528461352-17772055697785505571"

Json = dict[str, Any]


def get(server: LiveServer, path: str, **params: Any) -> Json:
    response = server.client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def error(server: LiveServer, path: str, status: int = 400, **params: Any) -> str:
    response = server.client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "description"}
    assert body["code"] == {400: "InvalidParameterValue", 404: "NotFound"}[status]
    return str(body["description"])


def link(body: Json, rel: str) -> str | None:
    found = [x["href"] for x in body["links"] if x["rel"] == rel]
    assert len(found) <= 1
    return found[0] if found else None


def follow(server: LiveServer, href: str) -> Json:
    response = server.client.get(href)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def page_all(server: LiveServer, path: str, **params: Any) -> list[list[Json]]:
    """Every page, following next links to the end."""
    body = get(server, path, **params)
    pages = [body["features"]]
    while (href := link(body, "next")) is not None:
        body = follow(server, href)
        pages.append(body["features"])
        assert len(pages) < 2_000
    return pages


def ids(features: list[Json]) -> list[int]:
    return [f["id"] for f in features]


def store_ids(store: Store, **query: Any) -> set[int]:
    return {f.gx_id for f in store.features(FeatureQuery(CRIMES_TABLE, columns=(), **query))}


def month_of(store: Store, month: str) -> set[int]:
    return {f.gx_id for f in store.features(FeatureQuery(CRIMES_TABLE, columns=("month",))) if f.properties[0] == month}


# -- the documents ---------------------------------------------------------------------------------------------


def test_the_landing_page_links_to_the_api_the_conformance_and_the_collections(policeuk_server: LiveServer) -> None:
    for path in ("/ogc", "/ogc/", "/ogc/?f=json"):
        body = policeuk_server.client.get(path).json()
        rels = {x["rel"]: x for x in body["links"]}
        assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
        assert rels["conformance"]["href"] == policeuk_server.url + "/ogc/conformance"
        assert rels["data"]["href"] == policeuk_server.url + "/ogc/collections"


def test_conformance_declares_core_geojson_openapi_filter_cql2_and_sorting(policeuk_server: LiveServer) -> None:
    classes = set(get(policeuk_server, "/ogc/conformance")["conformsTo"])
    spec = "http://www.opengis.net/spec/"
    assert {
        spec + "ogcapi-features-1/1.0/conf/core",
        spec + "ogcapi-features-1/1.0/conf/geojson",
        spec + "ogcapi-features-1/1.0/conf/oas30",
        spec + "ogcapi-features-3/1.0/conf/filter",
        spec + "ogcapi-features-3/1.0/conf/features-filter",
        spec + "cql2/1.0/conf/basic-cql2",
        spec + "cql2/1.0/conf/cql2-text",
        spec + "ogcapi-records-1/1.0/conf/sorting",
    } <= classes
    assert not {c for c in classes if "html" in c or "features-2" in c or "spatial-functions" in c}


def test_the_api_document_is_openapi_3_with_the_items_parameters(policeuk_server: LiveServer) -> None:
    response = policeuk_server.client.get("/ogc/api")
    assert response.headers["content-type"] == "application/vnd.oai.openapi+json;version=3.0"
    doc = response.json()
    assert doc["openapi"].startswith("3.0") and doc["servers"] == [{"url": policeuk_server.url + "/ogc"}]
    params = {p["name"]: p for p in doc["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]}
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 10}
    assert {"bbox", "datetime", "filter", "filter-lang", "sortby", "properties", "cursor"} <= set(params)


@pytest.mark.parametrize("name", ["f", "bbox-crs", "filter-crs"])
def test_an_enumerated_parameter_takes_the_documented_values_and_an_empty_one_is_400(
    policeuk_server: LiveServer, name: str
) -> None:
    doc = get(policeuk_server, "/ogc/api")
    items = doc["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
    documented = next(p for p in items if p["name"] == name)["schema"]["enum"]
    assert "" not in documented
    for value in documented:
        get(policeuk_server, ITEMS, **{name: value})
    assert error(policeuk_server, ITEMS, **{name: ""}).startswith(f"{name}: ")
    if name == "f":
        assert error(policeuk_server, "/ogc/collections", f="").startswith("f: ")


def test_the_api_document_says_the_force_boundaries_are_polygons(policeuk_server: LiveServer) -> None:
    description = get(policeuk_server, "/ogc/api")["info"]["description"]
    assert "point features" not in description and "boundaries as polygons" in description


def test_each_table_is_a_collection_with_its_extent(policeuk_server: LiveServer, policeuk_store: Store) -> None:
    body = get(policeuk_server, "/ogc/collections")
    crimes = next(c for c in body["collections"] if c["id"] == CRIMES_TABLE)
    assert crimes == get(policeuk_server, f"/ogc/collections/{CRIMES_TABLE}")
    assert crimes["itemType"] == "feature" and crimes["title"]
    assert crimes["extent"]["temporal"]["interval"] == [["2016-01-01T00:00:00Z", "2020-01-31T23:59:59Z"]]
    located = [f for f in policeuk_store.features(FeatureQuery(CRIMES_TABLE, columns=())) if f.lng is not None]
    lngs, lats = [f.lng for f in located], [f.lat for f in located]
    assert crimes["extent"]["spatial"]["bbox"] == [[min(lngs), min(lats), max(lngs), max(lats)]]
    rels = {x["rel"] for x in crimes["links"]}
    assert {"self", "items", "http://www.opengis.net/def/rel/ogc/1.0/queryables"} <= rels


def test_queryables_are_a_json_schema_of_the_columns(policeuk_server: LiveServer) -> None:
    path = f"/ogc/collections/{CRIMES_TABLE}/queryables"
    as_schema = policeuk_server.client.get(path, headers={"accept": "application/schema+json"})
    assert as_schema.headers["content-type"] == "application/schema+json"
    schema = as_schema.json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["month"] == {"title": "month", "type": "string", "x-ogc-role": "primary-instant"}
    assert schema["properties"]["id"]["type"] == "integer"
    assert schema["properties"]["geometry"]["format"] == "geometry-point"
    as_json = policeuk_server.client.get(path, headers={"accept": "application/geo+json, application/json"})
    assert as_json.headers["content-type"] == "application/json" and as_json.json() == schema


# -- items ---------------------------------------------------------------------------------------------------


def test_items_bbox_returns_the_same_crimes_as_the_police_uk_api(policeuk_server: LiveServer) -> None:
    west, south, east, north = CITY
    poly = f"{south},{west}:{south},{east}:{north},{east}:{north},{west}"
    for month in ("2016-01", "2017-06"):
        police = policeuk_server.client.get("/api/crimes-street/all-crime", params={"poly": poly, "date": month})
        expected = {c["id"] for c in police.json()}
        assert len(expected) > 50
        body = get(policeuk_server, ITEMS, bbox=",".join(map(str, CITY)), datetime=month, limit=10_000)
        assert {f["id"] for f in body["features"]} == expected
        assert body["numberReturned"] == body["numberMatched"] == len(expected)
        for f in body["features"]:
            lng, lat = f["geometry"]["coordinates"]
            assert west <= lng <= east and south <= lat <= north
            assert f["properties"]["month"] == month and f["type"] == "Feature"


def test_an_item_carries_the_columns_of_the_bulk_file(policeuk_server: LiveServer, policeuk_store: Store) -> None:
    body = get(policeuk_server, ITEMS, filter="crime_id <> '' AND month = '2017-03' AND street_id IS NOT NULL", limit=1)
    feature = body["features"][0]
    stored = policeuk_store.feature(CRIMES_TABLE, feature["id"])
    assert stored is not None
    assert feature["geometry"] == {"type": "Point", "coordinates": [stored.lng, stored.lat]}
    assert list(feature["properties"].values()) == list(stored.properties)
    one = get(policeuk_server, f"{ITEMS}/{feature['id']}")
    assert {k: v for k, v in one.items() if k != "links"} == feature
    assert link(one, "collection") == policeuk_server.url + f"/ogc/collections/{CRIMES_TABLE}"


@pytest.mark.parametrize(
    ("when", "months"),
    [
        ("2016-03-15", ["2016-03"]),
        ("2016-03-15T10:00:00Z", ["2016-03"]),
        ("2016-02-10/2016-04-01", ["2016-02", "2016-03", "2016-04"]),
        ("../2016-02-01", ["2016-01", "2016-02"]),
        ("2017-05-20T00:00:00+01:00/..", ["2017-05", "2017-06", "2018-01", "2020-01"]),
        ("2017-06/", ["2017-06", "2018-01", "2020-01"]),
    ],
)
def test_datetime_selects_the_crimes_of_the_months_it_overlaps(
    policeuk_server: LiveServer, policeuk_store: Store, when: str, months: list[str]
) -> None:
    got = {f["properties"]["month"] for page in page_all(policeuk_server, ITEMS, datetime=when, limit=10_000,
                                                             properties="month") for f in page}  # fmt: skip
    assert sorted(got) == months


@pytest.mark.parametrize(
    "when", ["9999-12", "9999-12-31", "9999-12-31T23:30:00-01:00", "0001-01-01T00:00:00+01:00", "0001-01", "9999-12/.."]
)
def test_datetime_at_the_ends_of_the_calendar_is_an_empty_page(policeuk_server: LiveServer, when: str) -> None:
    body = get(policeuk_server, ITEMS, datetime=when)
    assert body["features"] == [] and body["numberReturned"] == 0


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00/9999-12-31", "0001-01/9999-12", "../9999-12-31T23:59:59Z"])
def test_datetime_over_the_whole_calendar_selects_every_crime(policeuk_server: LiveServer, when: str) -> None:
    everything = get(policeuk_server, ITEMS, limit=1_000, properties="month")["features"]
    assert get(policeuk_server, ITEMS, datetime=when, limit=1_000, properties="month")["features"] == everything


def test_limit_defaults_to_ten_and_is_served_as_at_most_ten_thousand(policeuk_server: LiveServer) -> None:
    assert len(get(policeuk_server, ITEMS)["features"]) == 10
    assert len(get(policeuk_server, ITEMS, limit=50_000)["features"]) == 10_000


def test_properties_choose_and_order_the_columns(policeuk_server: LiveServer) -> None:
    body = get(policeuk_server, ITEMS, properties="location,month", limit=3)
    assert [list(f["properties"]) for f in body["features"]] == [["location", "month"]] * 3
    assert get(policeuk_server, ITEMS, properties="", limit=1)["features"][0]["properties"] == {}


def test_sortby_orders_by_columns_and_pages_in_that_order(policeuk_server: LiveServer, policeuk_store: Store) -> None:
    params = {"sortby": "-month,+location", "properties": "month,location", "bbox": ",".join(map(str, CITY))}
    pages = page_all(policeuk_server, ITEMS, limit=300, **params)
    features = [f for page in pages for f in page]
    keys = [(f["properties"]["month"], f["properties"]["location"]) for f in features]
    assert len(pages) > 3
    assert [k[0] for k in keys] == sorted((k[0] for k in keys), reverse=True)
    for a, b in zip(keys, keys[1:], strict=False):
        assert a[0] > b[0] or a[1] <= b[1]
    assert len(set(ids(features))) == len(features)


def test_filter_selects_what_the_store_selects_for_the_same_predicate(
    policeuk_server: LiveServer, policeuk_store: Store
) -> None:
    text = "location LIKE 'On or near %Street' AND category IN ('burglary', 'theft-from-the-person')"
    pages = page_all(policeuk_server, ITEMS, filter=text, limit=1_000)
    got = [i for page in pages for i in ids(page)]
    expected = {
        f.gx_id
        for f in policeuk_store.features(
            FeatureQuery(CRIMES_TABLE, Like("location", "On or near %Street"), ("category",))
        )  # fmt: skip
        if f.properties[0] in ("burglary", "theft-from-the-person")
    }
    assert len(got) == len(set(got)) and set(got) == expected and len(expected) > 100


def test_cql2_json_filters_work_too(policeuk_server: LiveServer) -> None:
    cql_json = json.dumps({"op": "=", "args": [{"property": "crime_type"}, "Robbery"]})
    body = get(policeuk_server, ITEMS, filter=cql_json, **{"filter-lang": "cql2-json"}, limit=10_000)
    text = get(policeuk_server, ITEMS, filter="crime_type = 'Robbery'", limit=10_000)
    assert ids(body["features"]) == ids(text["features"]) and body["numberReturned"] > 20


# -- paging ------------------------------------------------------------------------------------------------------


def test_next_links_page_a_month_returning_each_crime_once_and_prev_links_go_back(
    policeuk_server: LiveServer, policeuk_store: Store
) -> None:
    forward = [get(policeuk_server, ITEMS, datetime="2018-01", limit=1_000)]
    while (href := link(forward[-1], "next")) is not None:
        forward.append(follow(policeuk_server, href))
    got = [i for body in forward for i in ids(body["features"])]
    assert len(got) == len(set(got)) and set(got) == month_of(policeuk_store, "2018-01")
    assert len(forward) > 5 and link(forward[0], "prev") is None
    assert forward[-1]["numberMatched"] == len(got)
    back = forward[-1]
    for expected in reversed(forward[:-1]):
        href = link(back, "prev")
        assert href is not None
        back = follow(policeuk_server, href)
        assert ids(back["features"]) == ids(expected["features"])
    assert link(back, "prev") is None


def test_prev_links_reach_back_past_the_cursors_memory(policeuk_server: LiveServer) -> None:
    forward = [get(policeuk_server, ITEMS, datetime="2016-03", limit=100, properties="")]
    while (href := link(forward[-1], "next")) is not None and len(forward) < HISTORY + 8:
        forward.append(follow(policeuk_server, href))
    assert len(forward) == HISTORY + 8
    back = forward[-1]
    for expected in reversed(forward[:-1]):
        back = follow(policeuk_server, link(back, "prev") or "")
        assert ids(back["features"]) == ids(expected["features"])


def test_number_matched_is_given_when_it_costs_nothing(policeuk_server: LiveServer, policeuk_store: Store) -> None:
    info = policeuk_store.table(CRIMES_TABLE)
    assert info is not None
    assert get(policeuk_server, ITEMS)["numberMatched"] == info.feature_count
    assert "numberMatched" not in get(policeuk_server, ITEMS, datetime="2018-01")


def test_a_cursor_is_tamper_evident_and_tied_to_its_query(policeuk_server: LiveServer) -> None:
    body = get(policeuk_server, ITEMS, datetime="2018-01", limit=100)
    href = link(body, "next")
    assert href is not None
    cursor = parse_qs(urlsplit(href).query)["cursor"][0]
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[5] ^= 1
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert "cursor" in error(policeuk_server, ITEMS, datetime="2018-01", limit=100, cursor=forged)
    assert "cursor" in error(policeuk_server, ITEMS, datetime="2018-02", limit=100, cursor=cursor)
    assert "cursor" in error(policeuk_server, ITEMS, datetime="2018-01", limit=99, cursor=cursor)
    assert "cursor" in error(policeuk_server, ITEMS, cursor="not-a-cursor")


def test_paging_while_the_month_is_reloaded_never_repeats_or_skips(
    make_store: Callable[[], Store], live_server: Callable[..., LiveServer]
) -> None:
    store = make_store()
    files = sorted((POLICEUK / "2017-01").glob("*city-of-london*")) + sorted((POLICEUK / "2017-02").glob("*city*"))
    load_policeuk(store, files)
    server = live_server(store)
    expected = store_ids(store)
    body = get(server, ITEMS, limit=150)
    seen = ids(body["features"])
    reloads = 0
    while (href := link(body, "next")) is not None:
        load_policeuk(store, files[:2])  # the same month again, as a newer archive would
        reloads += 1
        body = follow(server, href)
        seen += ids(body["features"])
    assert reloads >= 5
    assert len(seen) == len(set(seen)) and set(seen) == expected


# -- errors --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "0,60,1,50"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/27700"}, "bbox-crs"),
        ({"datetime": "yesterday"}, "datetime"),
        ({"datetime": "2017-02-01/2017-01-01"}, "datetime"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"properties": "month,nope"}, "properties"),
        ({"sortby": "-nope"}, "sortby"),
        ({"sortby": "month,-month"}, "sortby"),
        ({"filter": "nope = 1"}, "filter"),
        ({"filter": "month = "}, "filter"),
        ({"filter": "month = '2017-01'", "filter-lang": "ecql"}, "filter-lang"),
        ({"filter-crs": "EPSG:27700"}, "filter-crs"),
        ({"f": "html"}, "f"),
        ({"offset": "10"}, "offset"),
        ({"resultType": "hits"}, "resultType"),
    ],
)
def test_a_bad_parameter_is_400_with_an_ogc_exception_naming_it(
    policeuk_server: LiveServer, params: dict[str, str], named: str
) -> None:
    assert error(policeuk_server, ITEMS, **params).startswith(f"{named}:")


def test_a_parameter_given_twice_is_400(policeuk_server: LiveServer) -> None:
    response = policeuk_server.client.get(ITEMS + "?limit=1&limit=2")
    assert response.status_code == 400 and response.json()["description"].startswith("limit:")


def test_unknown_collections_features_and_paths_are_404(policeuk_server: LiveServer) -> None:
    assert "nope" in error(policeuk_server, "/ogc/collections/nope", 404)
    assert "nope" in error(policeuk_server, "/ogc/collections/nope/items", 404)
    assert "12" in error(policeuk_server, f"{ITEMS}/12", 404)
    assert "abc" in error(policeuk_server, f"{ITEMS}/abc", 404)
    error(policeuk_server, "/ogc/tiles", 404)


# -- other tables ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=STORE_KINDS)
def nyc_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    store = _open_empty(request.param, tmp_path_factory.mktemp("nyc-ogc"))
    load_table(store, NYC / "2015-05-08" / f"{BY_TYPE_ID}.geojson")
    server = LiveServer(store)
    yield server
    server.stop()
    store.close()


def test_a_loaded_table_is_a_collection_with_its_bbox(nyc_server: LiveServer) -> None:
    raw = json.loads((NYC / "2015-05-08" / f"{BY_TYPE_ID}.geojson").read_text())["features"]
    located = [f["geometry"]["coordinates"] for f in raw if f.get("geometry")]
    collection = get(nyc_server, f"/ogc/collections/{BY_TYPE_ID}")
    bbox = collection["extent"]["spatial"]["bbox"][0]
    assert bbox == [min(c[0] for c in located), min(c[1] for c in located),
                    max(c[0] for c in located), max(c[1] for c in located)]  # fmt: skip
    assert "temporal" not in collection["extent"]


def test_the_nyc_crime_maps_own_query_as_cql2(nyc_server: LiveServer) -> None:
    """The Maps Engine where clause the NYC Crime Map sent (for 2015: the download has no 2013), and its CQL2 twin."""
    where = (
        "MO=2 AND YR=2015 AND ST_INTERSECTS(geometry,ST_GEOMFROMTEXT('POLYGON((-73.920 40.772,-73.941 40.772,"
        "-73.941 40.767,-73.920 40.767,-73.920 40.772))')) AND X<>0 AND Y<>0"
    )
    cql = "MO=2 AND YR=2015 AND S_INTERSECTS(geometry, BBOX(-73.941, 40.767, -73.920, 40.772)) AND X<>0 AND Y<>0"
    maps = nyc_server.client.get(f"/mapsengine/v1/tables/{BY_TYPE_ID}/features", params={"where": where}).json()
    ogc = get(nyc_server, f"/ogc/collections/{BY_TYPE_ID}/items", filter=cql, limit=1000)
    assert len(ogc["features"]) == len(maps["features"]) > 0
    assert [f["properties"] for f in ogc["features"]] == [f["properties"] for f in maps["features"]]
    assert [f["geometry"] for f in ogc["features"]] == [f["geometry"] for f in maps["features"]]


def test_datetime_on_a_table_without_dates_is_400(nyc_server: LiveServer) -> None:
    assert "no date or time column" in error(nyc_server, f"/ogc/collections/{BY_TYPE_ID}/items", datetime="2013")


def test_errors_are_readable_from_any_page(nyc_server: LiveServer) -> None:
    response = httpx.get(nyc_server.url + "/ogc/collections/nope")
    assert response.headers["access-control-allow-origin"] == "*"
