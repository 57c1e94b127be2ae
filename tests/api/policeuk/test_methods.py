"""The police.uk API's other methods: locations, no-location crimes, categories, months, outcomes, forces.

Expected answers come from the real CSV files, read independently of crimemap
(see :mod:`api.policeuk.test_crimes`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from api.policeuk.test_crimes import (
    MILE_M,
    Row,
    api_keys,
    assert_error,
    distance_m,
    inside,
    keys,
    month_rows,
    outcome_rows,
    poly_param,
    street_rows,
)
from conftest import LiveServer
from crimemap import vocab

MONTH = "2017-01"


def _get(server: LiveServer, url: str) -> Any:
    r = server.client.get(url)
    assert r.status_code == 200, r.text
    return r.json()


def _street_id(server: LiveServer, row: Row) -> int:
    """A map point's id, as crimes-street reports it for the point of ``row``."""
    body = _get(server, f"/api/crimes-street/all-crime?lat={row.lat}&lng={row.lng}&date={row.month}")
    return next(
        c["location"]["street"]["id"]
        for c in body
        if c["location"]["street"]["name"] == row.location and c["location"]["latitude"] == row.key[2]
    )


# ---- crimes-at-location -------------------------------------------------------------------------------


def _busiest_point(month: str) -> Row:
    points = Counter((r.lat, r.lng, r.location) for r in month_rows(month))
    (lat, lng, location), _ = points.most_common(1)[0]
    return next(r for r in month_rows(month) if (r.lat, r.lng, r.location) == (lat, lng, location))


def test_crimes_at_location_by_location_id(policeuk_server: LiveServer) -> None:
    point = _busiest_point(MONTH)
    sid = _street_id(policeuk_server, point)
    body = _get(policeuk_server, f"/api/crimes-at-location?location_id={sid}&date={MONTH}")
    expected = [r for r in month_rows(MONTH) if (r.lat, r.lng, r.location) == (point.lat, point.lng, point.location)]
    assert len(expected) > 1 and api_keys(body) == keys(expected)
    assert {c["location"]["street"]["id"] for c in body} == {sid}


def test_crimes_at_location_by_lat_lng_uses_the_nearest_map_point(policeuk_server: LiveServer) -> None:
    point = _busiest_point(MONTH)
    lat, lng = float(point.lat) + 0.00003, float(point.lng) - 0.00002  # about 3 m away
    all_points = {(r.lat, r.lng, r.location) for r in street_rows() if r.located}
    nearest = min(all_points, key=lambda p: distance_m(lat, lng, float(p[0]), float(p[1])))
    assert nearest[:2] == (point.lat, point.lng)
    body = _get(policeuk_server, f"/api/crimes-at-location?lat={lat}&lng={lng}&date={MONTH}")
    assert api_keys(body) == keys(r for r in month_rows(MONTH) if (r.lat, r.lng, r.location) == nearest)


def test_crimes_at_location_in_a_month_without_crimes_there_is_empty(policeuk_server: LiveServer) -> None:
    sid = _street_id(policeuk_server, _busiest_point(MONTH))
    assert _get(policeuk_server, f"/api/crimes-at-location?location_id={sid}&date=2020-01") == []


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("location_id=1&date=2017-01", 404, ["unknown location"]),
        ("location_id=abc", 400, ["location_id must be an integer"]),
        ("", 400, ["location_id, or lat and lng, are required"]),
        ("lat=51.5", 400, ["lat and lng must be given together"]),
        ("lat=51.5&lng=-0.09&date=17-01", 400, ["date must be YYYY-MM"]),
    ],
)
def test_crimes_at_location_errors(policeuk_server: LiveServer, query: str, status: int, words: list[str]) -> None:
    assert_error(policeuk_server.client.get(f"/api/crimes-at-location?{query}"), status, *words)


# ---- crimes-no-location -------------------------------------------------------------------------------


def test_crimes_no_location_are_the_rows_published_without_coordinates(policeuk_server: LiveServer) -> None:
    body = _get(policeuk_server, f"/api/crimes-no-location?category=all-crime&force=city-of-london&date={MONTH}")
    expected = [r for r in street_rows() if r.month == MONTH and r.force_file == "city-of-london" and not r.located]
    assert len(body) == len(expected) > 0
    assert all(c["location"] is None and type(c["id"]) is int for c in body)
    assert Counter((c["persistent_id"], c["category"]) for c in body) == Counter((r.pid, r.category) for r in expected)


def test_crimes_no_location_by_category_and_default_month(policeuk_server: LiveServer) -> None:
    expected = [r for r in street_rows() if r.month == "2018-01" and not r.located]
    category = expected[0].category
    body = _get(policeuk_server, f"/api/crimes-no-location?category={category}&force=essex")
    assert body == [] or {c["month"] for c in body} == {"2020-01"}  # the default is the latest month (BTP)
    body = _get(policeuk_server, f"/api/crimes-no-location?category={category}&force=essex&date=2018-01")
    assert [c["persistent_id"] for c in body] == [r.pid for r in expected if r.category == category]


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("category=all-crime", 400, ["force is required"]),
        ("category=all-crime&force=gotham", 404, ["unknown force 'gotham'"]),
        ("category=jaywalking&force=essex", 404, ["unknown crime category 'jaywalking'"]),
        ("category=all-crime&force=essex&date=2018", 400, ["date must be YYYY-MM"]),
    ],
)
def test_crimes_no_location_errors(policeuk_server: LiveServer, query: str, status: int, words: list[str]) -> None:
    assert_error(policeuk_server.client.get(f"/api/crimes-no-location?{query}"), status, *words)


# ---- categories, months, last update ------------------------------------------------------------------


def test_crime_categories_of_a_month_after_2013_05(policeuk_server: LiveServer) -> None:
    body = _get(policeuk_server, f"/api/crime-categories?date={MONTH}")
    assert body[0] == {"url": "all-crime", "name": "All crime"}
    names = {c["url"]: c["name"] for c in body}
    assert names["violent-crime"] == "Violence and sexual offences"
    assert names["other-theft"] == "Other theft"
    assert "bicycle-theft" in names and "public-disorder-weapons" not in names
    assert {r.category for r in month_rows(MONTH)} <= set(names)


def test_crime_categories_before_2013_are_the_old_set(policeuk_server: LiveServer) -> None:
    body = _get(policeuk_server, "/api/crime-categories?date=2012-06")
    names = {c["url"]: c["name"] for c in body}
    assert names["public-disorder-weapons"] == "Public disorder and weapons"
    assert "bicycle-theft" not in names and "possession-of-weapons" not in names
    assert_error(policeuk_server.client.get("/api/crime-categories?date=2012"), 400, "date must be YYYY-MM")


def test_crimes_street_dates_lists_stored_months_newest_first(policeuk_server: LiveServer) -> None:
    body = _get(policeuk_server, "/api/crimes-street-dates")
    months = sorted({r.month for r in street_rows()}, reverse=True)
    assert [d["date"] for d in body] == months
    assert all(d["stop-and-search"] == [] for d in body)


def test_crime_last_updated_is_the_first_day_of_the_latest_month(policeuk_server: LiveServer) -> None:
    assert _get(policeuk_server, "/api/crime-last-updated") == {"date": "2020-01-01"}


# ---- outcomes -----------------------------------------------------------------------------------------


def _crime_with_most_outcomes() -> str:
    stored = {r.pid for r in street_rows() if r.pid}
    counts = Counter(r.pid for r in outcome_rows() if r.pid in stored)
    return counts.most_common(1)[0][0]


def test_outcomes_for_crime_lists_its_outcome_history(policeuk_server: LiveServer) -> None:
    pid = _crime_with_most_outcomes()
    crime_row = next(r for r in street_rows() if r.pid == pid)
    body = _get(policeuk_server, f"/api/outcomes-for-crime/{pid}")
    crime = body["crime"]
    assert list(crime) == [
        "category", "persistent_id", "location_subtype", "location_type", "location", "context", "month",
        "id",
    ]  # fmt: skip
    assert (crime["persistent_id"], crime["category"], crime["month"]) == (
        pid,
        crime_row.category,
        crime_row.month,
    )
    assert crime["location"]["latitude"] == crime_row.key[2] and type(crime["id"]) is int
    history = {(r.month, r.outcome) for r in outcome_rows() if r.pid == pid}
    outcomes = body["outcomes"]
    assert len(history) >= 3
    assert {(o["date"], o["category"]["name"]) for o in outcomes} == history
    assert [o["date"] for o in outcomes] == sorted(o["date"] for o in outcomes)  # oldest first
    for o in outcomes:
        assert list(o) == ["category", "date", "person_id"] and o["person_id"] is None
        assert o["category"]["code"] == vocab.outcome_by_name(o["category"]["name"]).slug


def test_outcomes_for_crime_without_an_outcomes_file_lists_its_last_outcome(
    policeuk_server: LiveServer,
) -> None:
    row = next(r for r in street_rows() if r.force_file == "essex" and r.pid and r.outcome)
    body = _get(policeuk_server, f"/api/outcomes-for-crime/{row.pid}")
    assert [o["category"]["name"] for o in body["outcomes"]] == [row.outcome]


@pytest.mark.parametrize("pid", ["0" * 64, "not-a-crime", "ABC"])
def test_outcomes_for_an_unknown_crime_is_404(policeuk_server: LiveServer, pid: str) -> None:
    assert_error(policeuk_server.client.get(f"/api/outcomes-for-crime/{pid}"), 404, "no crime with persistent_id")


def _stored_outcomes(month: str) -> list[Row]:
    """Outcome rows of ``month`` whose crime is stored (the API leaves the others out)."""
    stored = {r.pid for r in street_rows() if r.pid}
    return [r for r in outcome_rows() if r.month == month and r.located and r.pid in stored]


def _outcome_keys(body: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    return Counter((o["crime"]["persistent_id"], o["category"]["name"], o["date"]) for o in body)


def test_outcomes_at_location_by_location_id(policeuk_server: LiveServer) -> None:
    rows = _stored_outcomes("2017-03")
    (lat, lng), _ = Counter((r.lat, r.lng) for r in rows).most_common(1)[0]
    expected = [r for r in rows if (r.lat, r.lng) == (lat, lng)]
    crime = next(r for r in street_rows() if r.pid == expected[0].pid)
    sid = _street_id(policeuk_server, crime)
    body = _get(policeuk_server, f"/api/outcomes-at-location?location_id={sid}&date=2017-03")
    assert len(expected) > 1
    assert _outcome_keys(body) == Counter((r.pid, r.outcome, r.month) for r in expected)
    for o in body:
        assert list(o) == ["category", "date", "person_id", "crime"]
        assert o["crime"]["location"]["street"]["id"] == sid


def test_outcomes_at_location_within_a_mile_and_in_a_polygon(policeuk_server: LiveServer) -> None:
    rows = _stored_outcomes("2017-03")
    lat, lng = 51.5105, -0.1050
    near = [r for r in rows if distance_m(lat, lng, float(r.lat), float(r.lng)) <= MILE_M]
    body = _get(policeuk_server, f"/api/outcomes-at-location?lat={lat}&lng={lng}&date=2017-03")
    assert 0 < len(near) < len(rows)
    assert _outcome_keys(body) == Counter((r.pid, r.outcome, r.month) for r in near)
    ring = [
        (51.5199, -0.1001),
        (51.5053, -0.1001),
        (51.5053, -0.0753),
        (51.5199, -0.0753),
        (51.5101, -0.0876),
    ]
    in_ring = [r for r in rows if inside(float(r.lat), float(r.lng), ring)]
    got = _get(policeuk_server, f"/api/outcomes-at-location?poly={poly_param(ring)}&date=2017-03")
    posted = policeuk_server.client.post(
        "/api/outcomes-at-location", data={"poly": poly_param(ring), "date": "2017-03"}
    )
    assert in_ring and _outcome_keys(got) == Counter((r.pid, r.outcome, r.month) for r in in_ring)
    assert posted.json() == got


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("location_id=1", 404, ["unknown location"]),
        ("location_id=x", 400, ["location_id must be an integer"]),
        ("location_id=1&lat=51.5&lng=0.1", 400, ["give one of"]),
        ("poly=51.5,0.1:51.6,0.1", 400, ["at least three"]),
        ("lat=51.5&lng=0.1&date=2017-00", 400, ["date must be YYYY-MM"]),
        ("", 400, ["lat and lng, or poly, are required"]),
    ],
)
def test_outcomes_at_location_errors(policeuk_server: LiveServer, query: str, status: int, words: list[str]) -> None:
    assert_error(policeuk_server.client.get(f"/api/outcomes-at-location?{query}"), status, *words)


# ---- forces -------------------------------------------------------------------------------------------


def test_forces_lists_every_force(policeuk_server: LiveServer) -> None:
    body = _get(policeuk_server, "/api/forces")
    assert {"id": "city-of-london", "name": "City of London Police"} in body
    assert {"id": "btp", "name": "British Transport Police"} in body
    assert len(body) == len({f["id"] for f in body}) >= 44


def test_force_by_id(policeuk_server: LiveServer) -> None:
    assert _get(policeuk_server, "/api/forces/essex") == {
        "id": "essex",
        "name": "Essex Police",
        "description": None,
        "url": None,
        "telephone": None,
        "engagement_methods": [],
    }
    assert_error(policeuk_server.client.get("/api/forces/gotham"), 404, "unknown force 'gotham'")


# ---- documentation ------------------------------------------------------------------------------------


def test_every_method_is_documented_at_docs(policeuk_server: LiveServer) -> None:
    paths = _get(policeuk_server, "/openapi.json")["paths"]
    for path, methods in {
        "/api/crimes-street/{category}": {"get", "post"},
        "/api/crimes-at-location": {"get"},
        "/api/crimes-no-location": {"get"},
        "/api/crime-categories": {"get"},
        "/api/crimes-street-dates": {"get"},
        "/api/crime-last-updated": {"get"},
        "/api/outcomes-for-crime/{persistent_id}": {"get"},
        "/api/outcomes-at-location": {"get", "post"},
        "/api/forces": {"get"},
        "/api/forces/{force_id}": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
        for method in methods:
            operation = paths[path][method]
            assert operation.get("description") or operation.get("summary")
            assert "400" in operation["responses"]
    street = paths["/api/crimes-street/{category}"]["get"]
    assert {"lat", "lng", "poly", "date"} <= {p["name"] for p in street["parameters"]}
    assert {"404", "503"} <= set(street["responses"])
    docs = policeuk_server.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
