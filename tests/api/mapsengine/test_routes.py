"""The Maps Engine ``tables/{id}/features`` call over the real NYC Crime Map tables.

Every answer is checked against a computation in the test itself, from the
GeoJSON files as downloaded (shapely for the spatial functions).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely

from conftest import NYC, POLICEUK, STORE_KINDS, LiveServer, _open_empty
from crimemap.api.app import Settings
from crimemap.load.policeuk import load_policeuk
from crimemap.load.tables import load_table
from crimemap.query import CrimeQuery
from crimemap.store.base import Store

TOTALS_ID = "02378420399528461352-11853667273131550346"
BY_TYPE_ID = "02378420399528461352-17772055697785505571"
FILES = {t: NYC / "2015-05-08" / f"{t}.geojson" for t in (TOTALS_ID, BY_TYPE_ID)}
SELECT_ALL = "YR,MO,geometry,X,Y,TOT,CR"
"""What the NYC Crime Map and the scripts that paged its tables selected."""

MAP_QUERY = (
    "MO=10 AND YR=2013 AND ST_INTERSECTS(geometry,ST_GEOMFROMTEXT('POLYGON((-73.920 40.772,-73.941 40.772,"
    "-73.941 40.767,-73.920 40.767,-73.920 40.772))')) AND X<>0 AND Y<>0"
)
MAP_RING = [(-73.920, 40.772), (-73.941, 40.772), (-73.941, 40.767), (-73.920, 40.767), (-73.920, 40.772)]
MIDTOWN = "POLYGON((-74.00 40.75, -73.97 40.75, -73.97 40.77, -74.00 40.77, -74.00 40.75))"
BASE = "/mapsengine/v1/tables"

Raw = dict[str, Any]


@pytest.fixture(scope="module")
def raw() -> dict[str, list[Raw]]:
    """The features of each file, with their 1-based position as ``gx_id``."""
    tables = {}
    for table_id, path in FILES.items():
        features = json.loads(path.read_text())["features"]
        tables[table_id] = [{**f, "gx_id": i} for i, f in enumerate(features, start=1)]
    return tables


@pytest.fixture(scope="module", params=STORE_KINDS)
def nyc_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Both NYC tables, loaded once per store kind; tests only read them (or add other tables)."""
    store = _open_empty(request.param, tmp_path_factory.mktemp("nyc"))
    for path in FILES.values():
        load_table(store, path)
    yield store
    store.close()


@pytest.fixture(scope="module")
def server(nyc_store: Store) -> Iterator[LiveServer]:
    live = LiveServer(nyc_store, Settings(bearer_tokens=frozenset({"t0ken"})))
    yield live
    live.stop()


def get(server: LiveServer, table: str, **params: Any) -> Any:
    response = server.client.get(f"{BASE}/{table}/features", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def page_through(server: LiveServer, table: str, **params: Any) -> tuple[list[Raw], int]:
    """Every feature, following nextPageToken; and how many pages it took."""
    features, pages, token = [], 0, None
    while True:
        body = get(server, table, **params, **({"pageToken": token} if token else {}))
        features.extend(body["features"])
        pages += 1
        token = body.get("nextPageToken")
        if token is None:
            return features, pages
        assert pages < 1_000


def ids(features: list[Raw]) -> list[int]:
    return [int(f["properties"]["gx_id"]) for f in features]


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == response.status_code
    assert len(error["errors"]) == 1
    return dict(error["errors"][0])


# -- pages -------------------------------------------------------------------------------------------


def test_a_page_looks_like_the_real_apis_first_page(server: LiveServer, raw: dict[str, list[Raw]]) -> None:
    body = get(server, BY_TYPE_ID, select=SELECT_ALL, maxResults=1000, version="published", key="anything")
    assert list(body) == ["type", "features", "nextPageToken"]
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 1000
    sample = json.loads((NYC / "raw_samples" / "first_page_2016-01-31.body").read_text())["features"][0]
    first = body["features"][0]
    assert list(first) == list(sample) == ["type", "geometry", "properties"]
    assert list(first["properties"]) == list(sample["properties"]) == ["YR", "MO", "X", "Y", "TOT", "CR"]
    assert first["geometry"] == raw[BY_TYPE_ID][0]["geometry"] | {"type": "Point"}
    assert first["properties"] == raw[BY_TYPE_ID][0]["properties"]
    assert isinstance(first["properties"]["YR"], float)


@pytest.mark.parametrize("table", [TOTALS_ID, BY_TYPE_ID])
def test_paging_a_whole_table_by_token_returns_each_feature_once(
    server: LiveServer, raw: dict[str, list[Raw]], table: str
) -> None:
    columns = "gx_id,geometry," + ("YR,MO,X,Y,TOT,CR" if table == BY_TYPE_ID else "YR,MO,X,Y,TOT")
    features, pages = page_through(server, table, select=columns)
    assert pages == math.ceil(len(raw[table]) / 1000)
    assert ids(features) == [f["gx_id"] for f in raw[table]]
    for got, want in zip(features, raw[table], strict=True):
        assert got["geometry"]["coordinates"] == want["geometry"]["coordinates"]
        assert {k: v for k, v in got["properties"].items() if k != "gx_id"} == want["properties"]


def test_the_last_page_has_no_token(server: LiveServer) -> None:
    first = get(server, TOTALS_ID, maxResults=1000, where="MO = 1", select="MO")
    assert "nextPageToken" in first
    body = get(server, TOTALS_ID, where="MO = 1 AND TOT > 100", select="MO")
    assert "nextPageToken" not in body and 0 < len(body["features"]) < 1000


def test_limit_is_a_total_across_pages(server: LiveServer) -> None:
    features, pages = page_through(server, TOTALS_ID, limit=2_500, maxResults=1000, select="gx_id")
    assert pages == 3 and ids(features) == list(range(1, 2_501))
    features, pages = page_through(server, TOTALS_ID, limit=2_000, maxResults=1000, select="gx_id")
    assert pages == 2 and len(features) == 2_000


def test_max_results_sets_the_page_size(server: LiveServer) -> None:
    body = get(server, TOTALS_ID, maxResults=7, select="gx_id")
    assert ids(body["features"]) == list(range(1, 8))
    body = get(server, TOTALS_ID, maxResults=7, select="gx_id", pageToken=body["nextPageToken"])
    assert ids(body["features"]) == list(range(8, 15))


@pytest.mark.parametrize("order", ["TOT DESC", "CR, TOT DESC", "X ASC, Y DESC", "CR DESC"])
def test_paging_in_order_by_order_returns_each_feature_once_in_order(
    server: LiveServer, raw: dict[str, list[Raw]], order: str
) -> None:
    features, _ = page_through(server, BY_TYPE_ID, orderBy=order, select="gx_id,CR,TOT,X,Y", maxResults=777)
    keys = [part.split() for part in order.split(",")]

    def sort_key(f: Raw) -> tuple[Any, ...]:
        values: list[Any] = []
        for key in keys:
            value = f["properties"][key[0]]
            values.append(_Desc(value) if key[-1] == "DESC" else value)
        return (*values, f["gx_id"])

    assert ids(features) == [f["gx_id"] for f in sorted(raw[BY_TYPE_ID], key=sort_key)]


class _Desc:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return bool(self.value > other.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value


def test_paging_stays_correct_while_other_tables_load(
    server: LiveServer, nyc_store: Store, raw: dict[str, list[Raw]], tmp_path: Path
) -> None:
    seen: list[int] = []
    body = get(server, BY_TYPE_ID, select="gx_id", where="CR = 'ROBBERY'", maxResults=500)
    for round_ in range(100):
        seen.extend(ids(body["features"]))
        if "nextPageToken" not in body:
            break
        if round_ < 3:
            load_table(nyc_store, FILES[TOTALS_ID], table_id=f"loading-{round_}")
        body = get(
            server,
            BY_TYPE_ID,
            select="gx_id",
            where="CR = 'ROBBERY'",
            maxResults=500,
            pageToken=body["nextPageToken"],
        )
    assert seen == [f["gx_id"] for f in raw[BY_TYPE_ID] if f["properties"]["CR"] == "ROBBERY"]


def test_geometry_is_returned_only_when_selected(server: LiveServer) -> None:
    body = get(server, TOTALS_ID, select="TOT,MO", maxResults=3)
    assert [list(f) for f in body["features"]] == [["type", "properties"]] * 3
    assert list(body["features"][0]["properties"]) == ["TOT", "MO"]
    body = get(server, TOTALS_ID, maxResults=1)
    assert list(body["features"][0]) == ["type", "geometry", "properties"]
    assert list(body["features"][0]["properties"]) == ["MO", "YR", "TOT", "Y", "X"]


def test_include_schema_adds_the_tables_schema(server: LiveServer) -> None:
    body = get(server, BY_TYPE_ID, include="schema", maxResults=1)
    assert body["schema"]["primaryGeometry"] == "geometry"
    assert {"name": "CR", "type": "string"} in body["schema"]["columns"]
    assert {"name": "geometry", "type": "points"} in body["schema"]["columns"]


def test_one_feature_by_gx_id(server: LiveServer, raw: dict[str, list[Raw]]) -> None:
    response = server.client.get(f"{BASE}/{BY_TYPE_ID}/features/42", params={"select": "CR,geometry,gx_id"})
    assert response.status_code == 200
    want = raw[BY_TYPE_ID][41]
    assert response.json() == {
        "type": "Feature",
        "geometry": want["geometry"],
        "properties": {"CR": want["properties"]["CR"], "gx_id": "42"},
    }
    for missing in ("0", "999999", "abc", "1.5", "1 OR 1=1", "99999999999999999999999"):
        response = server.client.get(f"{BASE}/{BY_TYPE_ID}/features/{missing}")
        assert response.status_code == 404 and error_of(response)["reason"] == "notFound"


# -- where: the NYC map's own query, and every form, against the files ------------------------------------


def test_the_maps_own_query_works_as_sent(server: LiveServer, raw: dict[str, list[Raw]]) -> None:
    body = get(server, BY_TYPE_ID, where=MAP_QUERY, select=SELECT_ALL, maxResults=1000, version="published")
    assert body == {"type": "FeatureCollection", "features": []}  # the 2015 download holds no 2013 crimes
    same_in_2015 = MAP_QUERY.replace("MO=10", "MO=2").replace("YR=2013", "YR=2015")
    features, _ = page_through(server, BY_TYPE_ID, where=same_in_2015, select="gx_id,geometry,X,Y")
    area = shapely.Polygon(MAP_RING)
    expected = [
        f["gx_id"]
        for f in raw[BY_TYPE_ID]
        if f["properties"]["MO"] == 2
        and f["properties"]["YR"] == 2015
        and area.intersects(shapely.Point(f["geometry"]["coordinates"]))
        and f["properties"]["X"] != 0
        and f["properties"]["Y"] != 0
    ]
    assert len(expected) > 5 and ids(features) == expected


def _distance_m(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def _in(wkt: str) -> Callable[[Raw], bool]:
    area = shapely.from_wkt(wkt)
    return lambda f: bool(area.intersects(shapely.Point(f["geometry"]["coordinates"])))


def _near(lng: float, lat: float, metres: float) -> Callable[[Raw], bool]:
    return lambda f: _distance_m(f["geometry"]["coordinates"][0], f["geometry"]["coordinates"][1], lng, lat) < metres


def _p(f: Raw) -> dict[str, Any]:
    return dict(f["properties"])


WHERE_FORMS: list[tuple[str, Callable[[Raw], bool]]] = [
    ("MO = 2", lambda f: _p(f)["MO"] == 2),
    ("MO <> 2", lambda f: _p(f)["MO"] != 2),
    ("MO != 2", lambda f: _p(f)["MO"] != 2),
    ("TOT > 3", lambda f: _p(f)["TOT"] > 3),
    ("TOT >= 3", lambda f: _p(f)["TOT"] >= 3),
    ("TOT < 2", lambda f: _p(f)["TOT"] < 2),
    ("TOT <= 2.5", lambda f: _p(f)["TOT"] <= 2.5),
    ("3 < TOT", lambda f: _p(f)["TOT"] > 3),
    ("X > -1e3", lambda f: _p(f)["X"] > -1000),
    ("CR = 'ROBBERY'", lambda f: _p(f)["CR"] == "ROBBERY"),
    ("CR <> 'ROBBERY'", lambda f: _p(f)["CR"] != "ROBBERY"),
    ("CR < 'C'", lambda f: _p(f)["CR"] < "C"),
    ("CR >= 'GRAND'", lambda f: _p(f)["CR"] >= "GRAND"),
    ("CR CONTAINS 'larceny'", lambda f: "larceny" in _p(f)["CR"].lower()),
    ("CR CONTAINS 'OF MOTOR'", lambda f: "OF MOTOR" in _p(f)["CR"]),
    ("CR IN ('MURDER', 'RAPE')", lambda f: _p(f)["CR"] in ("MURDER", "RAPE")),
    ("MO IN (1, 3)", lambda f: _p(f)["MO"] in (1, 3)),
    ("CR NOT IN ('ROBBERY', 'BURGLARY')", lambda f: _p(f)["CR"] not in ("ROBBERY", "BURGLARY")),
    ("NOT CR = 'ROBBERY'", lambda f: _p(f)["CR"] != "ROBBERY"),
    ("NOT (MO = 1 OR MO = 2)", lambda f: _p(f)["MO"] == 3),
    ("MO = 1 OR MO = 2 AND TOT > 3", lambda f: _p(f)["MO"] == 1 or (_p(f)["MO"] == 2 and _p(f)["TOT"] > 3)),
    ("(MO = 1 OR MO = 2) AND TOT > 3", lambda f: _p(f)["MO"] in (1, 2) and _p(f)["TOT"] > 3),
    (
        "mo = 1 and tot > 3 or cr = 'MURDER'".replace("mo", "MO").replace("tot", "TOT").replace("cr", "CR"),
        lambda f: (_p(f)["MO"] == 1 and _p(f)["TOT"] > 3) or _p(f)["CR"] == "MURDER",
    ),  # fmt: skip
    ("CR IS NULL", lambda f: False),
    ("CR IS NOT NULL", lambda f: True),
    ("CR = 'O''BRIEN'", lambda f: False),
    ("X <> 0 AND Y <> 0", lambda f: _p(f)["X"] != 0 and _p(f)["Y"] != 0),
    ("ST_DISTANCE(geometry, ST_POINT(-73.985, 40.758)) < 500", _near(-73.985, 40.758, 500)),
    (
        "ST_DISTANCE(geometry,ST_POINT(-73.985,40.758)) < 2000 AND CR = 'ROBBERY'",
        lambda f: _near(-73.985, 40.758, 2000)(f) and _p(f)["CR"] == "ROBBERY",
    ),  # fmt: skip
    (
        "NOT ST_DISTANCE(geometry, ST_POINT(-73.985, 40.758)) < 20000",
        lambda f: not _near(-73.985, 40.758, 20000)(f),
    ),
    (f"ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('{MIDTOWN}'))", _in(MIDTOWN)),
    (
        f"st_intersects(geometry, st_geomfromtext('{MIDTOWN}')) AND MO = 3",
        lambda f: _in(MIDTOWN)(f) and _p(f)["MO"] == 3,
    ),
]


@pytest.mark.parametrize(("where", "matches"), WHERE_FORMS, ids=[w for w, _ in WHERE_FORMS])
def test_every_where_form_matches_a_computation_over_the_file(
    server: LiveServer, raw: dict[str, list[Raw]], where: str, matches: Callable[[Raw], bool]
) -> None:
    features, _ = page_through(server, BY_TYPE_ID, where=where, select="gx_id")
    assert ids(features) == [f["gx_id"] for f in raw[BY_TYPE_ID] if matches(f)]


@pytest.mark.parametrize(
    "intersects",
    [MIDTOWN, json.dumps(shapely.geometry.mapping(shapely.from_wkt(MIDTOWN)))],
)
def test_the_intersects_parameter_narrows_like_st_intersects(
    server: LiveServer, raw: dict[str, list[Raw]], intersects: str
) -> None:
    features, _ = page_through(server, BY_TYPE_ID, intersects=intersects, where="MO = 1", select="gx_id")
    inside = _in(MIDTOWN)
    assert ids(features) == [f["gx_id"] for f in raw[BY_TYPE_ID] if inside(f) and _p(f)["MO"] == 1]


def test_intersects_takes_a_circle(server: LiveServer, raw: dict[str, list[Raw]]) -> None:
    features, _ = page_through(server, BY_TYPE_ID, intersects="CIRCLE(-73.985 40.758, 750)", select="gx_id")
    near = _near(-73.985, 40.758, 750)
    assert ids(features) == [f["gx_id"] for f in raw[BY_TYPE_ID] if near(f)]


# -- what is refused -------------------------------------------------------------------------------------

BAD: list[tuple[str, str, str]] = [
    ("where", "MO =", "expected a value"),
    ("where", "MO = 'two'", "compare it with a number"),
    ("where", "CR = TRUE", "quoted string"),
    ("where", "NOPE = 1", "unknown column 'NOPE'"),
    ("where", "mo = 1", "did you mean 'MO'"),
    ("where", "MO = 1 AND", "expected a condition"),
    ("where", "(MO = 1", "expected ')'"),
    ("where", "MO = 1)", "unbalanced ')'"),
    ("where", "CR = 'ROBBERY", "unterminated string"),
    ("where", 'CR = "ROBBERY"', "unknown column 'ROBBERY'"),
    ("where", "MO == 1", "expected a value"),
    ("where", "1 = 1", "constant conditions"),
    ("where", "MO = TOT", "comparing two columns"),
    ("where", "CR LIKE 'R%'", "expected an operator"),
    ("where", "MO BETWEEN 1 AND 2", "expected an operator"),
    ("where", "LOWER(CR) = 'robbery'", "unknown function 'LOWER'"),
    ("where", "MO = 1; DROP TABLE crimes", "';' is not allowed"),
    ("where", "MO = 1 -- comment", "comments are not allowed"),
    ("where", "MO = 1 /* x */", "comments are not allowed"),
    ("where", "CR IN ()", "at least one value"),
    ("where", "CR IS 'x'", "expected NULL"),
    ("where", "TOT CONTAINS '1'", "CONTAINS needs a string column"),
    ("where", "geometry = 1", "geometry can only be used"),
    ("where", "ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('POINT(1 2)'))", "only POLYGON"),
    (
        "where",
        "ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('POLYGON((0 0, 1 1))'))",
        "at least 3 distinct points",
    ),
    ("where", "ST_DISTANCE(geometry, ST_POINT(-73.9, 40.7)) = 5", "can only be compared with"),
    ("where", "ST_DISTANCE(geometry, ST_POINT(-73.9, 40.7)) < 'far'", "number of metres"),
    ("where", "ST_DISTANCE(geometry, ST_POINT(-200, 40.7)) < 5", "outside -180..180"),
    ("where", "MO = 1 OR OR MO = 2", "expected a condition"),
    ("select", "YR,NOPE", "unknown column 'NOPE'"),
    ("select", "YR,YR", "selected twice"),
    ("select", "*", "select=* is not supported"),
    ("select", "YR;DROP TABLE x", "';' is not allowed"),
    ("orderBy", "NOPE", "unknown column 'NOPE'"),
    ("orderBy", "TOT SIDEWAYS", "expected ASC, DESC"),
    ("orderBy", "geometry", "cannot order by geometry"),
    ("orderBy", "gx_id", "unknown column 'gx_id'"),
    ("maxResults", "0", "Values must be within the range: [1, 1000]"),
    ("maxResults", "1001", "Values must be within the range: [1, 1000]"),
    ("maxResults", "ten", "Invalid value 'ten'"),
    ("maxResults", "-5", "Invalid value '-5'"),
    ("limit", "0", "Values must be within the range: [1, ...]"),
    ("limit", "1.5", "Invalid value '1.5'"),
    ("version", "latest", "version must be one of published, draft"),
    ("include", "everything", "include may list schema"),
    ("intersects", "POINT(1 2)", "not Point"),
    ("intersects", "POLYGON((0 0, 1 0, 1 1", "this is not a geometry"),
    ("intersects", "POLYGON((0 0, 300 0, 1 1, 0 0))", "longitude in -180..180"),
    ("intersects", "CIRCLE(1 2, -5)", "radius in metres >= 0"),
    ("pageToken", "bm90IGEgdG9rZW4", "not issued for this table and query"),
    ("pageToken", "!!!", "not one this server issued"),
]


@pytest.mark.parametrize(("parameter", "value", "message"), BAD, ids=[f"{p}={v}" for p, v, _ in BAD])
def test_malformed_parameters_are_400_naming_the_parameter(
    server: LiveServer, parameter: str, value: str, message: str
) -> None:
    response = server.client.get(f"{BASE}/{BY_TYPE_ID}/features", params={parameter: value})
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["domain"] == "global" and error["reason"] == "invalid"
    assert error["locationType"] == "parameter" and error["location"] == parameter
    assert message in error["message"]
    assert response.json()["error"]["message"] == error["message"]


def test_a_parameter_given_twice_is_400(server: LiveServer) -> None:
    response = server.client.get(f"{BASE}/{BY_TYPE_ID}/features?where=MO%3D1&where=MO%3D2")
    assert response.status_code == 400 and error_of(response)["location"] == "where"


def test_a_page_token_only_fits_its_own_table_and_query(server: LiveServer) -> None:
    token = get(server, BY_TYPE_ID, where="MO = 1", maxResults=10)["nextPageToken"]
    assert get(server, BY_TYPE_ID, where="MO = 1", maxResults=20, pageToken=token)["features"]
    for table, params in [
        (BY_TYPE_ID, {"where": "MO = 2"}),
        (BY_TYPE_ID, {"where": "MO = 1", "select": "MO"}),
        (BY_TYPE_ID, {"where": "MO = 1", "orderBy": "TOT"}),
        (BY_TYPE_ID, {"where": "MO = 1", "limit": "50"}),
        (TOTALS_ID, {"where": "MO = 1"}),
    ]:
        response = server.client.get(f"{BASE}/{table}/features", params={**params, "pageToken": token})
        assert response.status_code == 400 and error_of(response)["location"] == "pageToken"


def test_a_tampered_page_token_is_400(server: LiveServer) -> None:
    token = get(server, BY_TYPE_ID, maxResults=10)["nextPageToken"]
    for i in range(len(token)):
        flipped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        response = server.client.get(f"{BASE}/{BY_TYPE_ID}/features", params={"maxResults": 10, "pageToken": flipped})
        assert response.status_code == 400, (i, flipped)
        assert error_of(response)["location"] == "pageToken"


INJECTIONS = [
    "1; DROP TABLE feature_tables",
    "' OR '1'='1",
    "MO) OR (1=1",
    "MO = 1 UNION SELECT * FROM sqlite_master",
    "MO = 1 OR 1=1 --",
    '"; DELETE FROM feature_tables; --',
    "MO = (SELECT 1)",
    "MO = 1\x00 OR 1=1",
]


@pytest.mark.parametrize(
    "parameter",
    ["where", "select", "orderBy", "limit", "maxResults", "pageToken", "intersects", "include", "version"],
)
def test_sql_injection_through_any_parameter_is_400_and_changes_nothing(
    server: LiveServer, nyc_store: Store, parameter: str
) -> None:
    before = get(server, BY_TYPE_ID, maxResults=50)
    tables_before = [(t.id, t.feature_count) for t in nyc_store.tables()]
    for attack in INJECTIONS:
        response = server.client.get(f"{BASE}/{BY_TYPE_ID}/features", params={parameter: attack})
        assert response.status_code == 400, (attack, response.text)
        assert error_of(response)["location"] == parameter
    assert get(server, BY_TYPE_ID, maxResults=50) == before
    assert [(t.id, t.feature_count) for t in nyc_store.tables()] == tables_before


def test_sql_injection_through_the_path_is_404(server: LiveServer) -> None:
    for path in [
        f"{BASE}/{BY_TYPE_ID}' OR '1'='1/features",
        f"{BASE}/x;DROP TABLE feature_tables/features",
        f"{BASE}/{BY_TYPE_ID}/features/1 OR 1=1",
        f"{BASE}/{BY_TYPE_ID}/features/1;DELETE FROM x",
    ]:
        response = server.client.get(path)
        assert response.status_code == 404 and error_of(response)["reason"] == "notFound"
    assert get(server, BY_TYPE_ID, maxResults=1)["features"]


# -- other tables: typed values, and the police.uk crimes ---------------------------------------------------


def test_booleans_datetimes_and_missing_geometry_come_back_typed(
    store: Store, live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    path = tmp_path / "typed.geojson"
    features: list[dict[str, Any]] = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1.5, 2.5]},
         "properties": {"ok": True, "at": "2015-01-02T03:04:05Z", "n": 1}},
        {"type": "Feature", "geometry": None, "properties": {"ok": False, "at": None, "n": None}},
    ]  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    load_table(store, path)
    body = get(live_server(store), "typed", where="ok = TRUE OR n IS NULL")
    assert [f["geometry"] for f in body["features"]] == [features[0]["geometry"], None]
    assert [f["properties"] for f in body["features"]] == [
        features[0]["properties"],
        features[1]["properties"],
    ]
    assert get(live_server(store), "typed", where="at > '2015-01-01'", select="n")["features"] == [
        {"type": "Feature", "properties": {"n": 1}}
    ]


def test_the_police_uk_crimes_are_a_table_too(policeuk_server: LiveServer, policeuk_store: Store) -> None:
    where = "month = '2017-01' AND reported_by = 'City of London Police'"
    features, _ = page_through(policeuk_server, "policeuk-crimes", where=where, select="gx_id,category,month")
    stored = [
        c.id
        for located in (True, False)
        for c in policeuk_store.crimes(CrimeQuery(month="2017-01", force="city-of-london", located=located))
    ]
    assert sorted(ids(features)) == sorted(stored) and len(stored) > 100
    assert {f["properties"]["month"] for f in features} == {"2017-01"}
    counts = Counter(f["properties"]["category"] for f in features)
    burglaries, _ = page_through(policeuk_server, "policeuk-crimes", where=where + " AND category = 'burglary'")
    assert len(burglaries) == counts["burglary"] > 0


def test_a_page_token_whose_last_crime_was_reloaded_away_is_a_clear_400(
    store: Store, live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    street = POLICEUK / "2016-01" / "2016-01-city-of-london-street.csv"
    load_policeuk(store, [street])
    client = live_server(store).client
    first = client.get("/mapsengine/v1/tables/policeuk-crimes/features", params={"maxResults": 5, "select": "id"})
    token = first.json()["nextPageToken"]
    shorter = tmp_path / "2016-01" / street.name
    shorter.parent.mkdir()
    shorter.write_text("".join(street.read_text().splitlines(keepends=True)[:2]))
    load_policeuk(store, [shorter])  # the month now holds one crime: the page's last one is gone
    again = client.get(
        "/mapsengine/v1/tables/policeuk-crimes/features", params={"maxResults": 5, "select": "id", "pageToken": token}
    )
    body = again.json()  # both stores page crimes in clustered order, found through the last crime
    assert again.status_code == 400
    assert body["error"]["errors"][0]["location"] == "pageToken"
    assert "start again" in body["error"]["message"]
