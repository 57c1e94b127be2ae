"""Requests an outside probe sent that crashed the police.uk API: each now gets the answer it should.

Every test runs on both stores (``policeuk_server`` serves the real data from each).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.policeuk.test_crimes import assert_error, poly_param
from conftest import LiveServer
from crimemap import geo
from crimemap.api.policeuk.params import MAX_POLY_POINTS

TOO_BIG = str(2**63)  # one past what a signed 64-bit integer holds


@pytest.mark.parametrize("location_id", [TOO_BIG, str(2**64 + 5), "9" * 40])
def test_location_id_beyond_64_bits_is_404_like_any_unknown_location(
    policeuk_server: LiveServer, location_id: str
) -> None:
    client = policeuk_server.client
    assert_error(client.get(f"/api/crimes-at-location?location_id={location_id}"), 404, "unknown location")
    assert_error(client.get(f"/api/outcomes-at-location?location_id={location_id}"), 404, "unknown location")
    posted = client.post("/api/outcomes-at-location", data={"location_id": location_id})
    assert_error(posted, 404, "unknown location")
    # The largest id that fits is answered the same way, as it was already.
    assert_error(client.get(f"/api/crimes-at-location?location_id={2**63 - 1}"), 404, "unknown location")


@pytest.mark.parametrize(("lat", "lng"), [("-90", "-180"), ("-90", "-179.9"), ("-89.999", "-180"), ("90", "180")])
@pytest.mark.parametrize("date", ["2017-01", "2016-03"])
def test_areas_at_the_poles_and_the_antimeridian_are_empty_lists(
    policeuk_server: LiveServer, lat: str, lng: str, date: str
) -> None:
    client = policeuk_server.client
    for path in ("/api/outcomes-at-location", "/api/crimes-street/all-crime"):
        got = client.get(path, params={"lat": lat, "lng": lng, "date": date})
        assert (got.status_code, got.json()) == (200, []), got.text
        posted = client.post(path, data={"lat": lat, "lng": lng, "date": date})
        assert (posted.status_code, posted.json()) == (200, []), posted.text
    pole = client.get("/api/crimes-street/all-crime", params={"poly": f"{lat},{lng}:-89,0:-89,10", "date": date})
    assert (pole.status_code, pole.json()) == (200, [])


def test_cell_ranges_stay_on_the_globe() -> None:
    """Rows and columns past the poles or the antimeridian would reach :data:`geo.NO_CELL` and beyond."""
    for lng, lat in ((-180.0, -90.0), (-179.9, -90.0), (180.0, 90.0), (0.0, -90.0)):
        ranges = geo.cell_ranges_for_circle(lng, lat, geo.ONE_MILE_M)
        assert ranges
        for lo, hi in ranges:
            assert 0 <= lo <= hi
            assert lo // geo.ROW_SPAN == hi // geo.ROW_SPAN <= geo.LAST_ROW
            assert hi % geo.ROW_SPAN <= geo.LAST_COL
    box = list(geo.cell_ranges_for_box(-181.0, -91.0, 181.0, -89.99))
    assert box[0] == (0, geo.LAST_COL)
    assert geo.cell_of(180.0, 90.0) == geo.LAST_ROW * geo.ROW_SPAN + geo.LAST_COL


# ---- polygons: bounded work, off the event loop ---------------------------------------------------------


def _big_ring(points: int, lat_span: float = 4.9) -> list[tuple[float, float]]:
    """A wobbly ring of ``points`` (lat, lng) spanning ``lat_span`` degrees over England: the costliest shape."""
    ring = []
    for i in range(points):
        a = 2 * math.pi * i / points
        ring.append(
            (round(52.5 + lat_span / 2 * math.sin(a), 6), round(-1.5 + 2.4 * math.cos(a) + 0.01 * math.sin(50 * a), 6))
        )
    return ring


def test_a_poly_of_more_than_10000_points_is_400_without_echoing_it(policeuk_server: LiveServer) -> None:
    poly = poly_param(_big_ring(MAX_POLY_POINTS + 1))
    for path in ("/api/crimes-street/all-crime", "/api/outcomes-at-location"):
        response = policeuk_server.client.post(path, data={"poly": poly, "date": "2017-01"})
        assert_error(response, 400, f"poly has {MAX_POLY_POINTS + 1:,} points", f"at most {MAX_POLY_POINTS:,}")
        assert len(response.content) < 1_000
    at_cap = policeuk_server.client.post(
        "/api/crimes-street/drugs", data={"poly": poly_param(_big_ring(MAX_POLY_POINTS)), "date": "2017-01"}
    )
    assert at_cap.status_code == 200, at_cap.text


def test_heavy_polygons_do_not_hold_other_requests(policeuk_server: LiveServer) -> None:
    """Four of the costliest polygons at once, and a trivial GET still answers within a second."""
    poly = poly_param(_big_ring(MAX_POLY_POINTS))
    url = policeuk_server.url

    def heavy(_: int) -> float:
        started = time.perf_counter()
        with httpx.Client(base_url=url, timeout=60) as client:
            client.post("/api/outcomes-at-location", data={"poly": poly, "date": "2017-01"})
            client.post("/api/crimes-street/all-crime", data={"poly": poly, "date": "2017-01"})
        return time.perf_counter() - started

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(heavy, i) for i in range(4)]
        time.sleep(0.3)  # the heavy requests are being worked on
        waits = []
        with httpx.Client(base_url=url, timeout=60) as client:
            while not all(f.done() for f in running):
                started = time.perf_counter()
                assert client.get("/api/forces").status_code == 200
                waits.append(time.perf_counter() - started)
                time.sleep(0.05)
        took = [f.result() for f in running]
    assert waits, f"the heavy requests took {took}"
    # Within a second, or (on a machine busy with other work) a small part of the polygons' time: on
    # the event loop, the GET waited for all of them.
    bound = max(1.0, 0.35 * min(took))
    assert max(waits) < bound, f"a trivial GET waited {max(waits):.2f} s while polygons took {took}"


@pytest.mark.parametrize("month", ["٢٠١٧-٠١", "２０１７-０１", "2017-٠١", "۲۰۱۷-۰۱"])
def test_a_month_in_another_scripts_digits_is_400_as_police_uk_answers(policeuk_server: LiveServer, month: str) -> None:
    client = policeuk_server.client
    street = {"lat": "51.5155", "lng": "-0.0922", "date": month}
    assert_error(client.get("/api/crimes-street/all-crime", params=street), 400, "date must be YYYY-MM")
    assert_error(client.post("/api/crimes-street/all-crime", data=street), 400, "date must be YYYY-MM")
    no_location = {"category": "all-crime", "force": "city-of-london", "date": month}
    assert_error(client.get("/api/crimes-no-location", params=no_location), 400, "date must be YYYY-MM")
    assert_error(client.get("/stats/crimes", params={"months": month}), 400, "months")
    assert_error(client.get("/stats/crimes", params={"months": f"2016-01..{month}"}), 400, "months")
    ogc = client.get("/ogc/collections/policeuk-crimes/items", params={"datetime": month})
    assert ogc.status_code == 400 and ogc.json()["code"] == "InvalidParameterValue", ogc.text


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.mark.parametrize("script", [ARABIC_INDIC, FULLWIDTH], ids=["arabic-indic", "fullwidth"])
def test_numbers_in_another_scripts_digits_are_400_in_each_apis_envelope(
    policeuk_server: LiveServer, script: dict[int, str]
) -> None:
    """lat, lng, poly, location_id, zoom and bbox in ASCII digits only, as police.uk reads them (issue 19, item 3);
    the same requests in ASCII digits are answered."""
    client = policeuk_server.client

    for path, params, named in (
        ("/api/crimes-street/all-crime", {"lat": "51.5155", "lng": "-0.0922", "date": "2016-06"}, "lat"),
        ("/api/crimes-street/all-crime", {"lat": "51.5155", "lng": "-0.0922", "date": "2016-06"}, "lng"),
        ("/api/crimes-street/all-crime", {"poly": "51.52,-0.11:51.52,-0.07:51.50,-0.07", "date": "2016-06"}, "poly"),
        ("/api/crimes-at-location", {"location_id": "1", "date": "2016-06"}, "location_id"),
        ("/stats/crimes", {"group": "month", "bbox": "-0.11,51.50,-0.07,51.52"}, "bbox"),
        ("/stats/crimes", {"group": "cell", "zoom": "12", "bbox": "-0.11,51.50,-0.07,51.52"}, "zoom"),
    ):
        answered = client.get(path, params=params)
        assert answered.status_code in (200, 404), answered.text  # 404: no map point 1
        refused = client.get(path, params={**params, named: params[named].translate(script)})
        assert_error(refused, 400, named)
    assert client.get("/boundaries/forces.geojson", params={"zoom": "6"}).status_code == 200
    assert_error(client.get("/boundaries/forces.geojson", params={"zoom": "6".translate(script)}), 400, "zoom")

    ogc = "/ogc/collections/policeuk-crimes/items"
    for params in ({"bbox": "-0.11,51.50,-0.07,51.52"}, {"limit": "10"}):
        assert client.get(ogc, params=params).status_code == 200
        refused = client.get(ogc, params={k: v.translate(script) for k, v in params.items()})
        assert refused.status_code == 400 and refused.json()["code"] == "InvalidParameterValue", refused.text
    features = "/mapsengine/v1/tables/policeuk-crimes/features"
    assert client.get(features, params={"maxResults": "10"}).status_code == 200
    refused = client.get(features, params={"maxResults": "10".translate(script)})
    assert refused.status_code == 400 and refused.json()["error"]["errors"][0]["reason"] == "invalid", refused.text
