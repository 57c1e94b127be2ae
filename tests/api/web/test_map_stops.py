"""The map's data picker: stops and searches on the map, in a real headless Chromium (see test_page)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from api.policeuk.test_crimes import inside
from api.web.test_page import Tab, _leaflet, _poly
from conftest import POLICEUK, LiveServer
from crimemap.load.policeuk import load_policeuk
from crimemap.store.sqlite import SQLiteStore
from stops_truth import STOPS, rows_of

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CITY_STOPS = "/?data=stops&lat=51.515&lng=-0.09&zoom=15&month=2020-01"


@pytest.fixture(scope="module")
def stops_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    store = SQLiteStore(tmp_path_factory.mktemp("web-stops") / "s.sqlite")
    load_policeuk(store, [POLICEUK, STOPS])
    server = LiveServer(store)
    yield server
    server.stop()
    store.close()


@pytest.fixture
def tab(browser: Browser, stops_site: LiveServer) -> Iterator[Tab]:
    _leaflet()
    with Tab(browser, stops_site) as t:
        yield t


def test_the_stops_in_view_match_the_api_and_the_csv(tab: Tab, tmp_path: Path) -> None:
    tab.open(CITY_STOPS)
    assert tab.settle() == "ready"
    query = tab.query()
    assert query.startswith("/api/stops-street?poly=") and query.endswith("&date=2020-01")
    api = tab.server.client.get(query).json()
    ring = _poly(query)
    truth = [r for r in rows_of("2020-01") if r.located and inside(r.lat, r.lng, ring)]
    assert tab.shown() == len(api) == len(truth) > 50
    assert tab.page.inner_text("#count") == f"{len(api)} stops shown"
    assert tab.page.is_hidden("#category-label")
    assert "Stop and search · January 2020" in tab.page.inner_text(".legend-heading")
    assert "A no further action disposal" in tab.page.inner_text("#legend")
    assert tab.page.get_attribute("#download", "href") == "/download/policeuk-stops.geojson?where=month%3D'2020-01'"
    colours = tab.js("[...new Set(crimemap.layer.getLayers().map(m => m.key))]")
    assert "bu-no-further-action" in colours
    assert tab.errors == []
    tab.page.screenshot(path=tmp_path / "stops-city-2020-01.png")


def test_only_months_with_stops_are_offered(tab: Tab) -> None:
    tab.open(CITY_STOPS)
    months = tab.page.locator("#month option").evaluate_all("os => os.map(o => o.value)")
    dates = tab.server.client.get("/api/crimes-street-dates").json()
    assert months == [d["date"] for d in dates if d["stop-and-search"]]
    assert "2018-01" not in months


def test_clicking_a_stop_opens_its_fields(tab: Tab) -> None:
    tab.open(CITY_STOPS)
    point = tab.js(
        """(() => {
        const layer = crimemap.layer, map = crimemap.map;
        const m = layer.getLayers().find(m => map.hasLayer(m) && map.getBounds().pad(-0.2).contains(m.getLatLng()));
        const p = map.latLngToContainerPoint(m.getLatLng()), box = map.getContainer().getBoundingClientRect();
        return {x: box.left + p.x, y: box.top + p.y, stop: m.crime};
    })()"""
    )
    tab.page.mouse.click(point["x"], point["y"])
    popup = tab.page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5_000)
    text = popup.inner_text()
    stop = point["stop"]
    assert (stop["outcome"] or "No outcome recorded") in text
    assert "Object of search" in text and "Type" in text
    assert (stop["location"]["street"]["name"] or "Street not named") in text


def test_the_picker_switches_between_crimes_and_stops(tab: Tab) -> None:
    tab.open("/?lat=51.515&lng=-0.09&zoom=15&month=2017-06")
    assert tab.query().startswith("/api/crimes-street/all-crime?")
    tab.page.select_option("#dataset", "policeuk-stops")
    assert tab.settle("/api/stops-street?") == "ready"
    assert tab.page.input_value("#month") == "2020-01"  # June 2017 has crimes but no stops
    assert "data=stops" in tab.page.url
    tab.page.select_option("#dataset", "policeuk-crimes")
    assert tab.settle("/api/crimes-street/") == "ready"
    assert tab.page.is_visible("#category-label")
    assert tab.errors == []
