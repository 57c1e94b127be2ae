"""crimes-street, the police.uk API's main method: points, polygons, GET and POST, and its limits.

Expected answers are computed here, independently of crimemap: the real CSV
files are read with the csv module, distances on the sphere by the chord
formula, polygon membership by ray casting. The other police.uk test modules
import these helpers.
"""

from __future__ import annotations

import csv
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
import pytest

from conftest import POLICEUK, LiveServer
from crimemap import vocab
from crimemap.records import Crime
from crimemap.store.base import Store

# ---- the truth, computed without crimemap -----------------------------------------------------------

EARTH_RADIUS_M = 6_371_008.8
"""The sphere distances are measured on (IUGG mean radius), as police.uk's mile is."""
MILE_M = 1_609.344


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance by the chord between the two points' unit vectors."""

    def unit(lat: float, lng: float) -> tuple[float, float, float]:
        phi, lam = math.radians(lat), math.radians(lng)
        return math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)

    chord = math.dist(unit(lat1, lng1), unit(lat2, lng2))
    return 2 * EARTH_RADIUS_M * math.asin(chord / 2)


def destination(lat: float, lng: float, bearing_deg: float, metres: float) -> tuple[float, float]:
    """The point ``metres`` from (lat, lng) along an initial bearing, on the same sphere."""
    p1, l1, b = math.radians(lat), math.radians(lng), math.radians(bearing_deg)
    d = metres / EARTH_RADIUS_M
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), math.degrees(l2)


def inside(lat: float, lng: float, ring: list[tuple[float, float]]) -> bool:
    """Even-odd ray casting over a ring of (lat, lng) points (closed or not)."""
    result = False
    for (la1, ln1), (la2, ln2) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (la1 > lat) != (la2 > lat) and lng < ln1 + (lat - la1) * (ln2 - ln1) / (la2 - la1):
            result = not result
    return result


def poly_param(ring: list[tuple[float, float]]) -> str:
    return ":".join(f"{lat},{lng}" for lat, lng in ring)


@dataclass(frozen=True)
class Row:
    """One row of a street or outcomes CSV, as published."""

    pid: str
    month: str
    force_file: str
    lng: str
    lat: str
    location: str
    category: str  # slug (street files)
    outcome: str  # last outcome (street files) or outcome type (outcomes files)

    @property
    def located(self) -> bool:
        return bool(self.lat)

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What identifies the row in an API answer (the API's crime id is crimemap's own)."""
        return (self.pid, self.category, f"{float(self.lat):.6f}", f"{float(self.lng):.6f}", self.location)


def _read(kind: str) -> list[Row]:
    rows = []
    for path in sorted(POLICEUK.glob(f"*/*-{kind}.csv")):
        force = path.stem[8 : -len(kind) - 1]
        with path.open(newline="", encoding="utf-8-sig") as f:
            for raw in csv.DictReader(f):
                r = {k.strip().lower().replace(" ", "_"): v for k, v in raw.items()}
                name = r.get("crime_type", "")
                rows.append(
                    Row(
                        r["crime_id"],
                        r["month"],
                        force,
                        r["longitude"],
                        r["latitude"],
                        r["location"],
                        vocab.CATEGORY_BY_NAME[name.lower()].slug if name else "",
                        r.get("last_outcome_category") or r.get("outcome_type") or "",
                    )
                )
    return rows


@cache
def street_rows() -> tuple[Row, ...]:
    return tuple(_read("street"))


@cache
def outcome_rows() -> tuple[Row, ...]:
    return tuple(_read("outcomes"))


def month_rows(month: str) -> list[Row]:
    return [r for r in street_rows() if r.month == month and r.located]


def keys(rows: Iterable[Row]) -> Counter[tuple[str, str, str, str, str]]:
    return Counter(r.key for r in rows)


def api_keys(body: list[dict[str, Any]]) -> Counter[tuple[str, str, str, str, str]]:
    return Counter(
        (
            c["persistent_id"],
            c["category"],
            c["location"]["latitude"],
            c["location"]["longitude"],
            c["location"]["street"]["name"],
        )
        for c in body
    )


def within_mile(rows: Iterable[Row], lat: float, lng: float) -> list[Row]:
    return [r for r in rows if distance_m(lat, lng, float(r.lat), float(r.lng)) <= MILE_M]


def in_polygon(rows: Iterable[Row], ring: list[tuple[float, float]]) -> list[Row]:
    return [r for r in rows if inside(float(r.lat), float(r.lng), ring)]


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    """A police.uk status with a JSON body whose message says what was wrong."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    for word in words:
        assert word in body["message"], body


# ---- synthetic crimes written through the StoreWriter ------------------------------------------------


def synthetic_crime(i: int, lat: float, lng: float, month: str = "2024-01", force: str = "metropolitan") -> Crime:
    lat, lng = round(lat, 6), round(lng, 6)
    return Crime(
        id=i,
        month=month,
        force=force,
        falls_within=vocab.FORCE_BY_ID[force].name,
        lng=lng,
        lat=lat,
        street_id=i,
        street_name=f"On or near Test Street {i}",
        lsoa_code="",
        lsoa_name="",
        category="burglary",
        persistent_id=f"{i:064x}",
        location_type="Force",
        location_subtype="",
        context="",
        outcome=None,
        outcome_month=None,
    )


def write(store: Store, month: str, force: str, crimes: list[Crime]) -> None:
    with store.writer() as w:
        w.replace_crimes(month, force, crimes)


CENTRE = (51.5, -0.12)  # (lat, lng) of the synthetic crimes


# ---- point queries ------------------------------------------------------------------------------------

CITY_EDGE = (51.5105, -0.1050)  # west of the City of London: its mile takes in part of the City
MONTH = "2017-01"


def test_point_query_returns_crimes_within_one_mile(policeuk_server: LiveServer) -> None:
    lat, lng = CITY_EDGE
    r = policeuk_server.client.get(f"/api/crimes-street/all-crime?lat={lat}&lng={lng}&date={MONTH}")
    assert r.status_code == 200
    expected = within_mile(month_rows(MONTH), lat, lng)
    assert 0 < len(expected) < len(month_rows(MONTH))  # some of the City is in, some out
    assert api_keys(r.json()) == keys(expected)


def test_point_query_boundary_is_one_mile_to_the_metre(make_store: Callable[[], Store], live_server: Any) -> None:
    store = make_store()
    crimes, distance = [], {}
    for i, (metres, bearing) in enumerate((m, b) for m in (1_000, 1_609, 1_610, 1_700) for b in range(0, 360, 30)):
        lat, lng = destination(*CENTRE, bearing + 7, metres)
        crimes.append(synthetic_crime(i + 1, lat, lng))
        distance[i + 1] = distance_m(*CENTRE, round(lat, 6), round(lng, 6))
    write(store, "2024-01", "metropolitan", crimes)
    server = live_server(store)
    body = server.client.get(f"/api/crimes-street/all-crime?lat={CENTRE[0]}&lng={CENTRE[1]}").json()
    found = {c["id"] for c in body}
    assert found == {i for i, d in distance.items() if d <= MILE_M}
    assert all(1_608.9 < distance[i] < 1_609.1 for i in range(13, 25))  # the 1,609 m ring is in ...
    assert found.isdisjoint(range(25, 37))  # ... and the 1,610 m ring out
    assert len(found) == 24


def test_point_query_defaults_to_the_latest_month(policeuk_server: LiveServer) -> None:
    lat, lng = 51.5155, -0.0922
    body = policeuk_server.client.get(f"/api/crimes-street/all-crime?lat={lat}&lng={lng}").json()
    assert body and {c["month"] for c in body} == {"2020-01"}
    assert api_keys(body) == keys(within_mile(month_rows("2020-01"), lat, lng))


def test_category_selects_one_category(policeuk_server: LiveServer) -> None:
    lat, lng = CITY_EDGE
    body = policeuk_server.client.get(f"/api/crimes-street/burglary?lat={lat}&lng={lng}&date={MONTH}").json()
    expected = [r for r in within_mile(month_rows(MONTH), lat, lng) if r.category == "burglary"]
    assert expected and api_keys(body) == keys(expected)


def test_a_month_with_no_data_is_an_empty_list(policeuk_server: LiveServer) -> None:
    r = policeuk_server.client.get("/api/crimes-street/all-crime?lat=51.5155&lng=-0.0922&date=2015-01")
    assert r.status_code == 200 and r.json() == []


# ---- the JSON, field for field ------------------------------------------------------------------------

CRIME_KEYS = [
    "category", "location_type", "location", "context", "outcome_status",
    "persistent_id", "id", "location_subtype", "month",
]  # fmt: skip


def test_crimes_have_the_real_apis_fields_and_types(policeuk_server: LiveServer) -> None:
    body = policeuk_server.client.get(f"/api/crimes-street/all-crime?lat=51.5155&lng=-0.0922&date={MONTH}").json()
    assert body
    for c in body:
        assert list(c) == CRIME_KEYS
        loc = c["location"]
        assert list(loc) == ["latitude", "street", "longitude"]
        assert re.fullmatch(r"-?\d+\.\d{6}", loc["latitude"]) and re.fullmatch(r"-?\d+\.\d{6}", loc["longitude"])
        assert type(loc["street"]["id"]) is int and loc["street"]["name"].startswith("On or near")
        assert type(c["id"]) is int
        assert c["location_type"] == "Force" and c["month"] == MONTH
        if c["category"] == "anti-social-behaviour":
            assert c["persistent_id"] == "" and c["outcome_status"] is None
        else:
            assert re.fullmatch(r"[0-9a-f]{64}", c["persistent_id"])
        if c["outcome_status"] is not None:
            assert list(c["outcome_status"]) == ["category", "date"]
            assert vocab.outcome_by_name(c["outcome_status"]["category"]).code >= 0
            assert re.fullmatch(r"\d{4}-\d{2}", c["outcome_status"]["date"])
    assert any(c["outcome_status"] for c in body) and any(c["outcome_status"] is None for c in body)


def test_outcome_status_is_the_latest_outcome_and_its_month(policeuk_server: LiveServer) -> None:
    pid = "3f1ee8c67d4c274a330b6e925570fa676f2896ddd7fddb482a0def66d349b478"
    crime_row = next(r for r in street_rows() if r.pid == pid)
    latest = max((r for r in outcome_rows() if r.pid == pid), key=lambda r: r.month)
    body = policeuk_server.client.get(
        f"/api/crimes-street/all-crime?lat={crime_row.lat}&lng={crime_row.lng}&date={crime_row.month}"
    ).json()
    crime = next(c for c in body if c["persistent_id"] == pid)
    assert crime["outcome_status"] == {"category": latest.outcome, "date": latest.month}


def test_british_transport_police_crimes_have_location_type_btp(policeuk_server: LiveServer) -> None:
    body = policeuk_server.client.get("/api/crimes-street/all-crime?lat=51.5320&lng=-0.1233&date=2020-01").json()
    assert body and {c["location_type"] for c in body} == {"BTP"}
    assert any(c["persistent_id"] == "" and c["category"] != "anti-social-behaviour" for c in body)


# ---- polygons -----------------------------------------------------------------------------------------

SQUARE = [(51.5201, -0.1003), (51.5201, -0.0801), (51.5051, -0.0801), (51.5051, -0.1003)]  # clockwise
CONCAVE = [  # a U open to the north: the City's middle is left out
    (51.5199, -0.1001), (51.5053, -0.1001), (51.5053, -0.0753), (51.5199, -0.0753),
    (51.5199, -0.0831), (51.5101, -0.0831), (51.5101, -0.0921), (51.5199, -0.0921),
]  # fmt: skip


def crimes_in(server: LiveServer, ring: list[tuple[float, float]], month: str = MONTH) -> list[dict[str, Any]]:
    r = server.client.get(f"/api/crimes-street/all-crime?poly={poly_param(ring)}&date={month}")
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def test_polygon_query_returns_crimes_inside(policeuk_server: LiveServer) -> None:
    expected = in_polygon(month_rows(MONTH), SQUARE)
    assert 0 < len(expected) < len(month_rows(MONTH))
    assert api_keys(crimes_in(policeuk_server, SQUARE)) == keys(expected)


def test_polygon_orientation_does_not_matter(policeuk_server: LiveServer) -> None:
    clockwise = crimes_in(policeuk_server, SQUARE)
    anticlockwise = crimes_in(policeuk_server, SQUARE[::-1])
    assert api_keys(clockwise) == api_keys(anticlockwise)


def test_polygon_is_closed_automatically(policeuk_server: LiveServer) -> None:
    assert api_keys(crimes_in(policeuk_server, SQUARE + SQUARE[:1])) == api_keys(crimes_in(policeuk_server, SQUARE))


def test_concave_polygon_leaves_out_its_notch(policeuk_server: LiveServer) -> None:
    rows = month_rows(MONTH)
    expected = in_polygon(rows, CONCAVE)
    hull = [(51.5199, -0.1001), (51.5053, -0.1001), (51.5053, -0.0753), (51.5199, -0.0753)]
    assert len(in_polygon(rows, hull)) > len(expected) > 0  # the notch holds crimes
    assert api_keys(crimes_in(policeuk_server, CONCAVE)) == keys(expected)
    assert api_keys(crimes_in(policeuk_server, CONCAVE[::-1])) == keys(expected)


def test_polygon_crossing_no_crime_is_an_empty_list(policeuk_server: LiveServer) -> None:
    sea = [(50.10, -2.10), (50.10, -2.00), (50.00, -2.05)]  # the English Channel
    assert crimes_in(policeuk_server, sea) == []


def test_get_and_post_agree(policeuk_server: LiveServer) -> None:
    client = policeuk_server.client
    for params in (
        {"poly": poly_param(CONCAVE), "date": MONTH},
        {"lat": str(CITY_EDGE[0]), "lng": str(CITY_EDGE[1]), "date": MONTH},
        {"lat": "51.5155", "lng": "-0.0922"},
    ):
        got = client.get("/api/crimes-street/all-crime", params=params)
        posted = client.post("/api/crimes-street/all-crime", data=params)
        assert got.status_code == posted.status_code == 200
        assert got.json() == posted.json() and got.json()


# ---- limits -------------------------------------------------------------------------------------------


def _get_target(length: int, ring: list[tuple[float, float]]) -> str:
    """A crimes-street GET target of exactly ``length`` characters (padded with an unused parameter)."""
    target = f"/api/crimes-street/all-crime?date={MONTH}&poly={poly_param(ring)}&pad="
    return target + "x" * (length - len(target))


def test_get_longer_than_4094_characters_is_400_and_post_is_not_limited(policeuk_server: LiveServer) -> None:
    client = policeuk_server.client
    ring = [destination(51.5126, -0.0900, b, 700) for b in range(0, 360, 2)]  # 180 vertices
    ring = [(round(a, 6), round(b, 6)) for a, b in ring]
    assert len(poly_param(ring)) > 3_000
    at_limit, over = _get_target(4094, ring), _get_target(4095, ring)
    assert len(httpx.Request("GET", policeuk_server.url + over).url.raw_path) == 4095
    ok = client.get(at_limit)
    assert ok.status_code == 200 and ok.json()
    assert_error(client.get(over), 400, "4094")
    long_ring = ring * 30  # the same polygon traced 30 times: well over 4,094 characters
    posted = client.post("/api/crimes-street/all-crime", data={"poly": poly_param(long_ring), "date": MONTH})
    assert len(poly_param(long_ring)) > 50_000
    assert posted.status_code == 200 and api_keys(posted.json()) == api_keys(ok.json())
    assert api_keys(ok.json()) == keys(in_polygon(month_rows(MONTH), ring))


def test_polygon_with_more_than_10000_crimes_is_503(policeuk_server: LiveServer) -> None:
    essex = [(52.10, -0.05), (52.10, 1.35), (51.40, 1.35), (51.40, -0.05)]
    assert len(in_polygon(month_rows("2018-01"), essex)) > 10_000
    r = policeuk_server.client.get(f"/api/crimes-street/all-crime?poly={poly_param(essex)}&date=2018-01")
    assert_error(r, 503, "10,000")
    posted = policeuk_server.client.post(
        "/api/crimes-street/all-crime", data={"poly": poly_param(essex), "date": "2018-01"}
    )
    assert_error(posted, 503, "10,000")
    # One category of the same area is under the limit, and served.
    drugs = policeuk_server.client.get(f"/api/crimes-street/drugs?poly={poly_param(essex)}&date=2018-01")
    assert drugs.status_code == 200
    assert api_keys(drugs.json()) == keys(r for r in in_polygon(month_rows("2018-01"), essex) if r.category == "drugs")


def test_exactly_10000_crimes_are_served_and_10001_are_503(make_store: Callable[[], Store], live_server: Any) -> None:
    store = make_store()
    rnd = random.Random(7)
    dense = [
        synthetic_crime(i, *destination(*CENTRE, rnd.uniform(0, 360), rnd.uniform(0, 1_500)), month="2024-02")
        for i in range(1, 10_001)
    ]
    write(store, "2024-02", "metropolitan", dense)
    server = live_server(store)
    point = f"/api/crimes-street/all-crime?lat={CENTRE[0]}&lng={CENTRE[1]}&date=2024-02"
    box = [(51.52, -0.15), (51.52, -0.09), (51.48, -0.09), (51.48, -0.15)]
    area = f"/api/crimes-street/all-crime?poly={poly_param(box)}&date=2024-02"
    assert len(server.client.get(point).json()) == 10_000
    assert len(server.client.get(area).json()) == 10_000
    write(
        store,
        "2024-02",
        "city-of-london",
        [synthetic_crime(10_001, *CENTRE, month="2024-02", force="city-of-london")],
    )
    assert_error(server.client.get(point), 503, "more than 10,000")
    assert_error(server.client.get(area), 503, "more than 10,000")
    assert len(server.client.get(point.replace("all-crime", "drugs")).json()) == 0


# ---- malformed and unknown parameters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("lat=abc&lng=-0.09", ["lat and lng must be numbers"]),
        ("lat=51.5&lng=", ["lat and lng must be numbers"]),
        ("lat=91&lng=-0.09", ["lat must be in [-90, 90]"]),
        ("lat=51.5&lng=181", ["lng in [-180, 180]"]),
        ("lat=51.5", ["lat and lng must be given together"]),
        ("lng=-0.09", ["lat and lng must be given together"]),
        ("", ["lat and lng, or poly, are required"]),
        ("date=2017-01", ["lat and lng, or poly, are required"]),
        ("lat=51.5&lng=-0.09&date=2017-13", ["date must be YYYY-MM"]),
        ("lat=51.5&lng=-0.09&date=2017-1", ["date must be YYYY-MM"]),
        ("lat=51.5&lng=-0.09&date=January", ["date must be YYYY-MM"]),
        ("poly=51.5,-0.09:51.6,-0.08", ["at least three"]),
        ("poly=51.5,-0.09:51.6:51.6,-0.07", ["is not a pair"]),
        ("poly=51.5,-0.09:51.6,x:51.6,-0.07", ["lat and lng must be numbers"]),
        ("poly=", ["poly"]),
        ("poly=51.5,-0.09:51.6,-0.08:51.6,-0.07&lat=51.5&lng=-0.09", ["not both"]),
    ],
)
def test_malformed_parameters_are_400_with_a_message(policeuk_server: LiveServer, query: str, words: list[str]) -> None:
    assert_error(policeuk_server.client.get(f"/api/crimes-street/all-crime?{query}"), 400, *words)


def test_malformed_parameters_in_a_post_body_are_400(policeuk_server: LiveServer) -> None:
    r = policeuk_server.client.post("/api/crimes-street/all-crime", data={"poly": "51.5,-0.09", "date": MONTH})
    assert_error(r, 400, "at least three")


def test_unknown_category_is_404(policeuk_server: LiveServer) -> None:
    r = policeuk_server.client.get("/api/crimes-street/burglery?lat=51.5155&lng=-0.0922")
    assert_error(r, 404, "unknown crime category 'burglery'")
    assert "/api/crime-categories" in r.json()["hint"]
