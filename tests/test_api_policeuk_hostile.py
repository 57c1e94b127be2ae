"""Requests an outside probe sent that crashed the police.uk API: each now gets the answer it should.

Every test runs on both stores (``policeuk_server`` serves the real data from each).
"""

from __future__ import annotations

import pytest

from conftest import LiveServer
from crimemap import geo
from test_api_policeuk import assert_error

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
