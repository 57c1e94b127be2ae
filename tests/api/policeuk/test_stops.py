"""The stop-and-search methods of the police.uk API, on the real files, over both stores.

Expected answers come from :mod:`stops_truth` (the CSVs read with the csv
module) and from the distance and ray-casting helpers of
:mod:`api.policeuk.test_crimes`, never from crimemap; the JSON's field order and types
are those of a real answer of data.police.uk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from api.policeuk.test_crimes import MILE_M, destination, distance_m, inside, poly_param
from conftest import POLICEUK, LiveServer, _open_empty
from crimemap.api.app import Settings
from crimemap.load.policeuk import load_policeuk
from crimemap.store.base import Store
from crimemap.vocab_stops import stop_outcome_id
from stops_truth import (
    STOPS,
    expected_keys,
    files,
    keys,
    real_answer,
    rows_of,
    stop_rows,
)

CITY = "city-of-london"
MONTH = "2020-01"
CENTRES = {
    "City of London": (51.515, -0.09),
    "Liverpool": (53.4084, -2.9916),
    "Chelmsford": (51.7356, 0.4685),
    "Derby": (52.9225, -1.4746),
}


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def stops_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Every real street, outcomes and stop-and-search file, loaded in one load, served."""
    store = _open_empty(request.param, tmp_path_factory.mktemp("stops"))
    load_policeuk(store, [POLICEUK, STOPS])
    server = LiveServer(store, Settings(cache_mb=0))
    yield server
    server.stop()
    store.close()


def get(server: LiveServer, path: str, **params: str) -> list[dict]:  # type: ignore[type-arg]
    response = server.client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: list[dict] = response.json()  # type: ignore[type-arg]
    return body


# -- the JSON, field by field --------------------------------------------------------------------------------


def test_a_stop_has_the_fields_of_the_real_answer_in_its_order_and_types(stops_server: LiveServer) -> None:
    real = real_answer()
    order = list(real[0])
    types: dict[str, set[str]] = {}
    for stop in real:
        assert list(stop) == order
        for k, v in stop.items():
            types.setdefault(k, set()).add(type(v).__name__)
    ours = get(stops_server, "/api/stops-force", force=CITY, date="2019-12")
    assert ours
    for stop in ours:
        assert list(stop) == order
        for k, v in stop.items():
            # Where the real answer has no null the files may still have an empty field.
            assert type(v).__name__ in types[k] | {"NoneType"}, (k, v)
        if stop["location"] is not None:
            assert list(stop["location"]) == list(next(s for s in real if s["location"])["location"])
            assert isinstance(stop["location"]["street"]["id"], int)


def test_outcome_ids_are_those_of_the_real_answer() -> None:
    for stop in real_answer():
        assert stop_outcome_id(stop["outcome"]) == stop["outcome_object"]["id"]


def test_older_outcome_wording_maps_to_the_id_of_the_outcome_that_replaced_it() -> None:
    assert stop_outcome_id("Nothing found - no further action") == "bu-no-further-action"
    assert stop_outcome_id("Suspect arrested") == "bu-arrest"
    assert stop_outcome_id("Suspect summonsed to court") == "bu-summons"
    assert stop_outcome_id("Offender given penalty notice") == "bu-penalty-notice"
    assert stop_outcome_id("Local resolution") == "bu-community-resolution"
    assert stop_outcome_id("") == ""


# -- stops-force and stops-no-location ---------------------------------------------------------------------------


def test_stops_force_returns_every_stop_of_every_loaded_file_with_its_fields(stops_server: LiveServer) -> None:
    for month, force in files():
        rows = rows_of(month, force)
        answer = get(stops_server, "/api/stops-force", force=force, date=month)
        assert len(answer) == len(rows), (month, force)
        assert keys(answer) == expected_keys(rows), (month, force)


def test_stops_force_keeps_the_files_order(stops_server: LiveServer) -> None:
    rows = rows_of("2019-12", "essex")
    answer = get(stops_server, "/api/stops-force", force="essex", date="2019-12")
    assert [s["datetime"] for s in answer] == [r.fields["Date"] for r in rows]


def test_stops_no_location_are_the_rows_without_coordinates(stops_server: LiveServer) -> None:
    for force in ("south-yorkshire", "merseyside", CITY):
        rows = [r for r in rows_of(MONTH, force) if not r.located]
        answer = get(stops_server, "/api/stops-no-location", force=force, date=MONTH)
        assert len(answer) == len(rows) > 0 and all(s["location"] is None for s in answer)
        assert keys(answer) == expected_keys(rows)


def test_empty_fields_are_kept_as_they_are(stops_server: LiveServer) -> None:
    answer = get(stops_server, "/api/stops-force", force=CITY, date="2016-01")
    assert all(s["location"] is None for s in answer)
    assert any(s["outcome_linked_to_object_of_search"] is None for s in answer)
    blank = [s for s in get(stops_server, "/api/stops-force", force="merseyside", date=MONTH) if s["outcome"] == ""]
    for stop in blank:
        assert stop["outcome_object"] == {"id": "", "name": ""}
    assert any(
        s["outcome"] == "" for m, f in files() for s in get(stops_server, "/api/stops-force", force=f, date=m)
    ) == any(r.fields["Outcome"] == "" for r in stop_rows())


# -- stops-street: the mile and the polygon ------------------------------------------------------------------------


def within_mile(rows: list, lat: float, lng: float) -> list:  # type: ignore[type-arg]
    return [r for r in rows if r.located and distance_m(lat, lng, r.lat, r.lng) <= MILE_M]


@pytest.mark.parametrize("place", sorted(CENTRES))
def test_stops_street_agrees_with_a_great_circle_computation(stops_server: LiveServer, place: str) -> None:
    lat, lng = CENTRES[place]
    for month in ("2019-12", MONTH):
        expected = within_mile(rows_of(month), lat, lng)
        answer = get(stops_server, "/api/stops-street", lat=str(lat), lng=str(lng), date=month)
        assert keys(answer) == expected_keys(expected), (place, month)


def test_stops_street_at_the_edge_of_the_mile(stops_server: LiveServer) -> None:
    """Centres a mile (less a metre, plus a metre) from real stops: in, then out."""
    rows = [r for r in rows_of(MONTH, CITY) if r.located][:5]
    for r in rows:
        for metres, found in ((MILE_M - 1.0, True), (MILE_M + 1.0, False)):
            lat, lng = destination(r.lat, r.lng, 45.0, metres)
            answer = get(stops_server, "/api/stops-street", lat=f"{lat:.9f}", lng=f"{lng:.9f}", date=MONTH)
            expected = within_mile(rows_of(MONTH), lat, lng)
            assert keys(answer) == expected_keys(expected)
            assert (any(e.fields == r.fields for e in expected)) is found


def test_stops_street_in_a_polygon_by_get_and_by_post(stops_server: LiveServer) -> None:
    ring = [(51.52, -0.10), (51.52, -0.07), (51.505, -0.075), (51.51, -0.085), (51.50, -0.10)]
    expected = [r for r in rows_of(MONTH) if r.located and inside(r.lat, r.lng, ring)]
    by_get = get(stops_server, "/api/stops-street", poly=poly_param(ring), date=MONTH)
    response = stops_server.client.post("/api/stops-street", data={"poly": poly_param(ring), "date": MONTH})
    assert response.status_code == 200
    assert keys(by_get) == keys(response.json()) == expected_keys(expected) and expected


def test_the_latest_month_with_stops_is_the_default(stops_server: LiveServer) -> None:
    lat, lng = CENTRES["City of London"]
    assert get(stops_server, "/api/stops-street", lat=str(lat), lng=str(lng)) == get(
        stops_server, "/api/stops-street", lat=str(lat), lng=str(lng), date=MONTH
    )
    assert get(stops_server, "/api/stops-force", force=CITY) == get(
        stops_server, "/api/stops-force", force=CITY, date=MONTH
    )


def test_a_month_without_stops_is_an_empty_list(stops_server: LiveServer) -> None:
    assert get(stops_server, "/api/stops-street", lat="51.515", lng="-0.09", date="2018-06") == []
    assert get(stops_server, "/api/stops-force", force="kent", date=MONTH) == []


# -- map points -----------------------------------------------------------------------------------------------------


def street_points() -> dict[tuple[str, str], str]:
    """Every map point of the real street files: (lat, lng) as six-decimal text -> its name."""
    import csv

    points = {}
    for path in sorted(POLICEUK.glob("*/*-street.csv")):
        with path.open(newline="", encoding="utf-8-sig") as f:
            for raw in csv.reader(f):
                if raw[4] and raw[0] != "Crime ID" and raw[4] != "longitude":
                    points[(f"{float(raw[5]):.6f}", f"{float(raw[4]):.6f}")] = raw[6]
    return points


def test_a_stop_is_shown_at_the_stored_map_point_at_its_coordinates(stops_server: LiveServer) -> None:
    points = street_points()
    answer = get(stops_server, "/api/stops-force", force=CITY, date="2019-12")
    located = [s for s in answer if s["location"]]
    named = [s for s in located if (s["location"]["latitude"], s["location"]["longitude"]) in points]
    assert len(named) == 194 and len(located) == 242
    for s in located:
        loc = s["location"]
        name = points.get((loc["latitude"], loc["longitude"]))
        assert loc["street"]["name"] == (name or "")
    crimes = stops_server.client.get(
        "/api/crimes-at-location", params={"location_id": named[0]["location"]["street"]["id"], "date": "2017-01"}
    )
    assert crimes.status_code == 200  # the same map point as the crimes'


def test_stops_at_location_are_the_stops_at_that_map_point(stops_server: LiveServer) -> None:
    answer = get(stops_server, "/api/stops-force", force=CITY, date=MONTH)
    for stop in [s for s in answer if s["location"]][:8]:
        loc = stop["location"]
        at = get(stops_server, "/api/stops-at-location", location_id=str(loc["street"]["id"]), date=MONTH)
        here = [
            r
            for r in rows_of(MONTH)
            if r.located and (f"{r.lat:.6f}", f"{r.lng:.6f}") == (loc["latitude"], loc["longitude"])
        ]
        assert keys(at) == expected_keys(here) and stop in at


# -- crimes-street-dates ------------------------------------------------------------------------------------------


def test_crimes_street_dates_lists_the_forces_with_stops_each_month(stops_server: LiveServer) -> None:
    dates = get(stops_server, "/api/crimes-street-dates")
    months = [d["date"] for d in dates]
    assert months == sorted(months, reverse=True)
    listed = {d["date"]: d["stop-and-search"] for d in dates}
    for month in {m for m, _ in files()}:
        assert listed[month] == sorted(f for m, f in files() if m == month)
    assert listed["2018-01"] == []  # street files only (Essex, re-headed)


# -- errors -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/stops-street?lat=91&lng=0", 400, "lat must be in"),
        ("/api/stops-street?lat=x&lng=0", 400, "must be numbers"),
        ("/api/stops-street?lat=51.5", 400, "together"),
        ("/api/stops-street", 400, "required"),
        ("/api/stops-street?lat=51.5&lng=-0.1&date=2020-13", 400, "YYYY-MM"),
        ("/api/stops-street?poly=51.5,-0.1:51.6,-0.1", 400, "three"),
        ("/api/stops-at-location", 400, "location_id is required"),
        ("/api/stops-at-location?location_id=abc", 400, "integer"),
        ("/api/stops-at-location?location_id=1", 404, "unknown location"),
        ("/api/stops-force", 400, "force is required"),
        ("/api/stops-force?force=nowhere", 404, "unknown force"),
        ("/api/stops-no-location?force=nowhere&date=2020-01", 404, "unknown force"),
        ("/api/stops-street?poly=" + ":".join(["51.5,-0.1"] * 500), 400, "longer than 4094"),
    ],
)
def test_bad_requests_are_answered_as_police_uk_does(
    stops_server: LiveServer, path: str, status: int, message: str
) -> None:
    response = stops_server.client.get(path)
    assert response.status_code == status
    body = response.json()
    assert body["status"] == status and message in body["message"]


def test_more_than_10000_stops_in_an_area_is_503(
    make_store: Callable[[], Store], tmp_path: Path, live_server: Callable[..., LiveServer]
) -> None:
    """A file of 10,001 stops at one point, and one of 10,000: the first is refused, the second answered."""
    header = (STOPS / "2020-01" / f"2020-01-{CITY}-stop-and-search.csv").read_text().splitlines()[0]
    row = "Person search,2020-01-05T10:00:00+00:00,,,51.515000,-0.090000,Male,18-24,,White,,,Arrest,,"
    for n, status in ((10_001, 503), (10_000, 200)):
        folder = tmp_path / str(n) / "2020-01"
        folder.mkdir(parents=True)
        (folder / f"2020-01-{CITY}-stop-and-search.csv").write_text("\n".join([header, *[row] * n]) + "\n")
        store = make_store()
        load_policeuk(store, [folder])
        server = live_server(store)
        response = server.client.get("/api/stops-street", params={"lat": "51.515", "lng": "-0.09"})
        assert response.status_code == status
        if status == 503:
            assert "more than 10,000 stops" in response.json()["message"]
        else:
            assert len(response.json()) == n
        everything = server.client.get("/api/stops-force", params={"force": CITY})
        assert everything.status_code == 200 and len(everything.json()) == n  # a force's stops have no cap


# -- the stop-and-search table through OGC API - Features ------------------------------------------------------


def test_the_ogc_stops_collection_has_the_extent_of_the_located_stops(stops_server: LiveServer) -> None:
    located = [r.fields for r in stop_rows() if r.fields["Latitude"] and r.fields["Longitude"]]
    lngs, lats = [float(r["Longitude"]) for r in located], [float(r["Latitude"]) for r in located]
    response = stops_server.client.get("/ogc/collections/policeuk-stops")
    assert response.status_code == 200, response.text
    extent = response.json()["extent"]
    assert extent["spatial"]["bbox"] == [[min(lngs), min(lats), max(lngs), max(lats)]]
    assert extent["temporal"]["interval"][0][0].startswith(min(r.month for r in stop_rows()))


def test_the_ogc_stops_items_are_every_located_stop_of_a_month(stops_server: LiveServer) -> None:
    month, force = files()[0]
    expected = [r for r in rows_of(month) if r.fields["Latitude"] and r.fields["Longitude"]]
    response = stops_server.client.get(
        "/ogc/collections/policeuk-stops/items", params={"datetime": month, "limit": 10_000}
    )
    assert response.status_code == 200, response.text
    features = [f for f in response.json()["features"] if f["geometry"] is not None]
    assert len(features) == len(expected)
    assert sorted(f["geometry"]["coordinates"][1] for f in features) == sorted(
        float(r.fields["Latitude"]) for r in expected
    )


@pytest.mark.parametrize("when", ["9999-12", "9999-12-31", "9999-12-31T23:30:00-01:00", "0001-01-01T00:00:00+01:00"])
def test_ogc_stops_at_the_ends_of_the_calendar_are_an_empty_page(stops_server: LiveServer, when: str) -> None:
    response = stops_server.client.get("/ogc/collections/policeuk-stops/items", params={"datetime": when})
    assert response.status_code == 200, response.text
    assert response.json()["features"] == []


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00/9999-12-31", "0001-01/9999-12", "../9999-12-31"])
def test_ogc_stops_over_the_whole_calendar_are_every_stop(stops_server: LiveServer, when: str) -> None:
    items = "/ogc/collections/policeuk-stops/items"
    everything = stops_server.client.get(items, params={"limit": 1_000}).json()["features"]
    response = stops_server.client.get(items, params={"datetime": when, "limit": 1_000})
    assert response.status_code == 200, response.text
    assert response.json()["features"] == everything
