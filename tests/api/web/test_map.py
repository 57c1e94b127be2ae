"""The crime map at every zoom, in headless Chromium against a real server: counts, trend, boundaries,
drawing, force areas, outcome history, the Scotland notice, other data sets, keyboard and phone use.

The store holds the real police.uk files, two generated months spread over England and Wales
(2024-05 and 2024-06), the 44 real force boundaries and the NYC Crime Map's table. Every number the
page shows is checked against the APIs it is a client of, which the API tests check against the files.
No test needs a tile server: the base map is off, or pointed at a closed port on loopback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from api.web.test_page import Tab, _leaflet
from conftest import NYC, POLICEUK, SHARED_DATA, LiveServer
from crimemap.api.app import Settings
from crimemap.load.boundaries import load_boundaries
from crimemap.load.generate.archive import generate
from crimemap.load.policeuk import load_policeuk
from crimemap.load.tables import load_table
from crimemap.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from playwright.sync_api import Browser

NATIONAL = "/?lat=53.4&lng=-2.2&zoom=6&month=2024-06"
CHELMSFORD = "/?lat=51.7356&lng=0.4685&zoom=15&month=2024-06"
CITY_OF_LONDON = "/?lat=51.515&lng=-0.09&zoom=16&month=2017-01"
NYC_TABLE = "02378420399528461352-17772055697785505571"


@pytest.fixture(scope="module")
def map_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    folder = tmp_path_factory.mktemp("map")
    generate(folder / "archive", months=["2024-05", "2024-06"], crimes_per_month=20_000, seed=5)
    store = SQLiteStore(folder / "map.sqlite")
    load_policeuk(store, [POLICEUK])
    load_policeuk(store, [folder / "archive"])
    load_boundaries(store, [SHARED_DATA / "boundaries" / "forces"])
    load_table(store, NYC / "2015-05-08" / f"{NYC_TABLE}.geojson", table_id=NYC_TABLE)
    yield store
    store.close()


@pytest.fixture(scope="module")
def map_server(map_store: SQLiteStore) -> Iterator[LiveServer]:
    server = LiveServer(map_store, Settings(basemap="none"))
    yield server
    server.stop()


@pytest.fixture
def tab(browser: Browser, map_server: LiveServer) -> Iterator[Tab]:
    _leaflet()
    with Tab(browser, map_server) as t:
        yield t


def _stats(server: LiveServer, **params: str) -> list[dict[str, Any]]:
    r = server.client.get("/stats/crimes", params=params)
    assert r.status_code == 200, r.text
    return list(r.json())


def _poly(query: str) -> str:
    match = re.search(r"poly=([^&]+)", query)
    assert match, query
    return match.group(1)


def _click_at(tab: Tab, lat: float, lng: float) -> None:
    point = tab.js(
        f"""(() => {{
        const p = crimemap.map.latLngToContainerPoint([{lat}, {lng}]);
        const box = crimemap.map.getContainer().getBoundingClientRect();
        return {{x: box.left + p.x, y: box.top + p.y}};
    }})()"""
    )
    tab.page.mouse.click(point["x"], point["y"])


# -- every zoom ------------------------------------------------------------------------------------------


def test_the_national_view_shows_counts_per_area_that_add_up_to_the_stats(tab: Tab, tmp_path: Path) -> None:
    tab.open(NATIONAL)
    assert tab.js("document.body.dataset.mode") == "cells"
    query = tab.query()
    assert query.startswith("/stats/crimes?group=cell&zoom=5&months=2024-06&poly=")
    poly = _poly(query)
    cells = tab.js("crimemap.cellRows")
    assert cells == _stats(tab.server, group="cell", zoom="5", months="2024-06", poly=poly)
    (total,) = _stats(tab.server, months="2024-06", poly=poly)
    assert sum(c["count"] for c in cells) == total["count"] > 19_000
    assert tab.js("crimemap.cells.getLayers().length") == len(cells)
    labels = tab.page.locator(".cell-count").all_inner_texts()
    assert len(labels) == len(cells)
    assert tab.page.inner_text("#count") == f"{total['count']:,} crimes in view · counts per area"
    assert tab.js("crimemap.layer.getLayers().length") == 0
    tab.page.wait_for_function("document.body.dataset.outlines === '44'")
    tab.page.screenshot(path=tmp_path / "national.png")
    assert tab.errors == []


def test_the_national_view_loads_in_under_a_second(tab: Tab) -> None:
    started = tab.js("performance.now()")
    tab.open(NATIONAL)
    assert tab.js("performance.now()") - started < 1000 or tab.js(
        "performance.getEntriesByType('resource').filter(e => e.name.includes('/stats/')).every(e => e.duration < 500)"
    )


def test_zooming_in_from_the_country_reaches_individual_crimes(tab: Tab) -> None:
    tab.open(NATIONAL)
    assert tab.js("document.body.dataset.mode") == "cells"
    tab.js("crimemap.map.setView([51.7356, 0.4685], 15)")
    tab.page.wait_for_function("document.body.dataset.mode === 'crimes' && crimemap.query.includes('crimes-street')")
    tab.settle()
    api = tab.server.client.get(tab.query()).json()
    assert 0 < tab.shown() == len(api) <= 5000
    (total,) = _stats(tab.server, months="2024-06", poly=_poly(tab.query()))
    assert total["count"] == len(api)
    assert tab.page.inner_text("#count") == f"{len(api):,} crimes shown"


def test_a_cell_zooms_in_when_clicked_or_chosen_with_the_keyboard(tab: Tab) -> None:
    tab.open(NATIONAL)
    zoom = tab.js("crimemap.map.getZoom()")
    tab.page.locator(".leaflet-marker-icon.cell").first.focus()
    tab.page.keyboard.press("Enter")
    tab.page.wait_for_function(f"crimemap.map.getZoom() > {zoom}")


def test_the_legend_is_the_category_breakdown_of_the_view(tab: Tab) -> None:
    tab.open(NATIONAL)
    rows = _stats(tab.server, group="category", months="2024-06", poly=_poly(tab.query()))
    assert tab.js("crimemap.categoryRows") == rows
    legend = tab.page.inner_text("#legend")
    burglary = next(r for r in rows if r["category"] == "burglary")
    assert re.search(rf"Burglary\s+{burglary['count']:,}", legend)


def test_the_trend_charts_the_views_crimes_per_month_as_the_stats_count_them(tab: Tab) -> None:
    tab.open(NATIONAL)
    tab.page.wait_for_function("document.body.dataset.trend === 'ready'")
    trend = tab.js("crimemap.trend")
    assert trend == _stats(tab.server, group="month", poly=_poly(tab.query()))
    assert [r["month"] for r in trend][-2:] == ["2024-05", "2024-06"] and len(trend) == 22
    assert tab.js("crimemap.chart.data.datasets[0].data") == [r["count"] for r in trend]
    table = tab.page.locator("#trend-table tbody tr").all_inner_texts()
    assert [t.split("\t") for t in table] == [[r["month"], str(r["count"])] for r in trend]
    tab.page.select_option("#category", "burglary")
    tab.page.wait_for_function("document.body.dataset.trend === 'ready' && crimemap.trendQuery.includes('burglary')")
    burglary = _stats(tab.server, group="month", category="burglary", poly=_poly(tab.query()))
    assert tab.js("crimemap.chart.data.datasets[0].data") == [r["count"] for r in burglary]
    assert tab.page.inner_text("#trend-heading") == "Burglary per month in view"


# -- selections ------------------------------------------------------------------------------------------


def test_a_drawn_polygons_counts_equal_the_apis_and_its_download_is_exactly_that_selection(tab: Tab) -> None:
    tab.open("/?lat=51.7356&lng=0.4685&zoom=13&month=2024-06")
    tab.page.click("#draw")
    corners = [(51.745, 0.455), (51.745, 0.485), (51.728, 0.49), (51.722, 0.46)]
    for lat, lng in corners:
        _click_at(tab, lat, lng)
    assert tab.js("crimemap.state.drawing.length") == 4
    tab.page.click("#draw-finish")
    tab.page.wait_for_function("document.body.dataset.selection === 'ready'")
    ring = tab.js("crimemap.state.selection.ring")
    poly = ":".join(f"{lat:.6f},{lng:.6f}" for lat, lng in ring)
    rows = tab.js("crimemap.selectionRows")
    assert rows == _stats(tab.server, group="category", months="2024-06", poly=poly)
    total = sum(r["count"] for r in rows)
    crimes = tab.server.client.get("/api/crimes-street/all-crime", params={"poly": poly, "date": "2024-06"}).json()
    assert 0 < total == len(crimes)
    assert tab.page.inner_text("#selection-total") == f"{total:,} crimes"
    geojson = tab.server.client.get(tab.page.get_attribute("#selection-geojson", "href")).json()
    assert sorted(f["properties"]["id"] for f in geojson["features"]) == sorted(c["id"] for c in crimes)
    csv_rows = tab.server.client.get(tab.page.get_attribute("#selection-csv", "href")).text.strip().splitlines()
    assert len(csv_rows) == total + 1
    assert tab.errors == []


def test_picking_a_force_area_counts_its_crimes_and_offers_them_for_download(tab: Tab) -> None:
    tab.open(NATIONAL)
    tab.page.wait_for_function("document.querySelectorAll('#force option').length === 45")
    tab.page.select_option("#force", "essex")
    tab.page.wait_for_function("document.body.dataset.selection === 'ready'")
    rows = _stats(tab.server, group="category", months="2024-06", force="essex")
    assert tab.js("crimemap.selectionRows") == rows
    total = sum(r["count"] for r in rows)
    assert tab.page.inner_text("#selection-title") == "Essex Police · June 2024"
    csv_text = tab.server.client.get(tab.page.get_attribute("#selection-csv", "href")).text
    assert len(csv_text.strip().splitlines()) == total + 1
    assert tab.js("crimemap.map.getBounds().contains([51.73, 0.47])")  # the map went to Essex


# -- crimes, notices, data sets ------------------------------------------------------------------------


def test_clicking_a_crime_shows_its_outcome_history(tab: Tab) -> None:
    tab.open(CITY_OF_LONDON)
    target = tab.js(
        """(() => {
        const map = crimemap.map;
        const found = crimemap.layer.getLayers().filter(m => map.hasLayer(m) && m.crime.persistent_id
            && map.getBounds().pad(-0.15).contains(m.getLatLng()));
        return found.map(m => m.crime.persistent_id);
    })()"""
    )
    histories = {}
    for pid in target[:40]:
        body = tab.server.client.get(f"/api/outcomes-for-crime/{pid}").json()
        if len(body["outcomes"]) >= 2:
            histories[pid] = body["outcomes"]
            break
    assert histories, "a crime in view with two or more outcomes"
    pid, outcomes = next(iter(histories.items()))
    tab.js(
        f"""(() => {{
        const m = crimemap.layer.getLayers().find(m => m.crime.persistent_id === {json.dumps(pid)});
        const p = crimemap.map.latLngToContainerPoint(m.getLatLng());
        const box = crimemap.map.getContainer().getBoundingClientRect();
        window.__at = {{x: box.left + p.x, y: box.top + p.y}};
    }})()"""
    )
    at = tab.js("window.__at")
    tab.page.mouse.click(at["x"], at["y"])
    tab.page.wait_for_selector(".history[data-loaded='true']", timeout=5_000)
    items = tab.page.locator(".leaflet-popup-content .history-item").all_inner_texts()
    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December"]  # fmt: skip
    want = [f"{months[int(o['date'][5:]) - 1]} {o['date'][:4]} {o['category']['name']}" for o in outcomes]
    assert items == want


@pytest.mark.parametrize(
    ("view", "shown"),
    [
        ("/?lat=55.95&lng=-3.19&zoom=11&month=2024-06", True),  # Edinburgh
        ("/?lat=57.48&lng=-4.22&zoom=9&month=2024-06", True),  # Inverness
        ("/?lat=54.97&lng=-1.61&zoom=11&month=2024-06", False),  # Newcastle
        ("/?lat=54.60&lng=-5.93&zoom=11&month=2024-06", False),  # Belfast
        (CHELMSFORD, False),
    ],
)
def test_the_scotland_notice_shows_over_scotland_only(tab: Tab, view: str, shown: bool) -> None:
    tab.open(view)
    assert tab.page.is_visible("#scotland") is shown
    if shown:
        assert "Only the British Transport Police provide data for Scotland" in tab.page.inner_text("#scotland")


def test_picking_a_table_far_from_the_view_flies_to_its_extent_and_shows_it(tab: Tab) -> None:
    tab.open(CHELMSFORD)
    collection = tab.server.client.get(f"/ogc/collections/{NYC_TABLE}").json()
    west, south, east, north = collection["extent"]["spatial"]["bbox"][0]
    tab.page.select_option("#dataset", NYC_TABLE)
    tab.page.wait_for_function(f"document.body.dataset.status === 'ready' && crimemap.query.includes('{NYC_TABLE}')")
    centre = tab.js("crimemap.map.getCenter()")
    assert west <= centre["lng"] <= east and south <= centre["lat"] <= north
    assert tab.js("crimemap.tableFeatures") > 0
    assert tab.page.is_hidden("#message")


def test_another_data_set_can_be_picked_and_shows_its_features_in_view(tab: Tab) -> None:
    tab.open("/?lat=40.757&lng=-73.985&zoom=15&month=2024-06")
    options = tab.page.locator("#dataset option").evaluate_all("os => os.map(o => o.value)")
    assert options[0] == "policeuk-crimes" and NYC_TABLE in options and "policeuk-force-boundaries" in options
    tab.page.select_option("#dataset", NYC_TABLE)
    tab.page.wait_for_function(f"document.body.dataset.status === 'ready' && crimemap.query.includes('{NYC_TABLE}')")
    shown = tab.js("crimemap.tableFeatures")
    query = tab.js("crimemap.query")
    features: list[Any] = []
    url = query
    while True:
        page = tab.server.client.get(url).json()
        features.extend(page["features"])
        if "nextPageToken" not in page or len(features) >= 5000:
            break
        url = f"{query}&pageToken={page['nextPageToken']}"
    assert 0 < shown == len(features)
    assert tab.page.is_hidden("#month") and tab.page.is_hidden("#panel")
    assert tab.page.inner_text("#count").startswith(f"{shown:,}")


# -- base maps ---------------------------------------------------------------------------------------------


def test_without_a_base_map_the_boundaries_are_drawn_and_the_page_says_so(tab: Tab) -> None:
    tab.open(NATIONAL)
    assert "No base map is configured" in tab.page.inner_text("#basemap-notice")
    assert tab.page.locator("img.leaflet-tile").count() == 0
    tab.page.wait_for_function("crimemap.outlines.getLayers().length === 44")


def test_an_unreachable_tile_server_leaves_the_boundaries_and_a_notice(
    browser: Browser,
    map_store: SQLiteStore,
    live_server: Any,
) -> None:
    _leaflet()
    server = live_server(map_store, Settings(basemap="http://127.0.0.1:9/{z}/{x}/{y}.png"))
    with Tab(browser, server) as tab:
        tab.open(NATIONAL)
        tab.page.wait_for_function("!document.getElementById('basemap-notice').hidden", timeout=10_000)
        assert "could not be loaded" in tab.page.inner_text("#basemap-notice")
        tab.page.wait_for_function("crimemap.outlines.getLayers().length === 44")
        assert tab.js("document.body.dataset.mode") == "cells"


def test_the_default_base_map_of_crimemap_serve_is_openstreetmap_with_its_credit() -> None:
    from crimemap.api.web import routes as web

    osm = web.basemap("osm")
    assert osm["kind"] == "tiles" and osm["url"] == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert "OpenStreetMap" in str(osm["attribution"])
    assert web.basemap("none")["kind"] == "none"
    with pytest.raises(ValueError, match="no such PMTiles file"):
        web.basemap("/nowhere/uk.pmtiles")
    with pytest.raises(ValueError, match="give osm, none"):
        web.basemap("https://example.org/tiles")


def test_a_local_pmtiles_file_is_served_with_range_requests_and_drawn_by_protomaps(
    browser: Browser,
    map_store: SQLiteStore,
    live_server: Any,
    tmp_path: Path,
) -> None:
    folder = _leaflet()
    assert (folder / "protomaps-leaflet" / "dist" / "protomaps-leaflet.js").is_file()
    pmtiles = tmp_path / "uk.pmtiles"
    pmtiles.write_bytes(_empty_pmtiles())
    server = live_server(map_store, Settings(basemap=str(pmtiles)))
    part = server.client.get("/basemap.pmtiles", headers={"Range": "bytes=0-126"})
    assert part.status_code == 206 and part.content == pmtiles.read_bytes()[:127]
    assert httpx.get(server.url + "/basemap.pmtiles").content == pmtiles.read_bytes()
    with Tab(browser, server) as tab:
        tab.open(NATIONAL)
        assert tab.js("crimemap.basemap") == "pmtiles"
        tab.page.wait_for_timeout(500)
        assert any(u.endswith("/basemap.pmtiles") for u in tab.requested)
        outside = [u for u in tab.requested if not u.startswith((server.url + "/", "data:", "blob:"))]
        assert outside == []


def _empty_pmtiles() -> bytes:
    """A valid PMTiles v3 archive holding no tiles (header, empty root directory, empty metadata)."""
    import struct

    root = b"\x00"  # a directory of zero entries (varint 0)
    metadata = b"{}"
    header = bytearray(127)
    header[0:7] = b"PMTiles"
    header[7] = 3
    offsets = [127, len(root), 127 + len(root), len(metadata), 0, 0, 127 + len(root) + len(metadata), 0]
    struct.pack_into("<8Q", header, 8, *offsets)
    struct.pack_into("<3Q", header, 72, 0, 0, 0)  # addressed tiles, tile entries, tile contents
    header[96] = 0  # not clustered
    header[97] = 1  # internal compression: none
    header[98] = 1  # tile compression: none
    header[99] = 1  # tile type: MVT
    header[100] = 0  # min zoom
    header[101] = 14  # max zoom
    struct.pack_into("<4i", header, 102, int(-8.7e7), int(49.8e7), int(1.8e7), int(60.9e7))
    header[118] = 6
    struct.pack_into("<2i", header, 119, int(-2.2e7), int(53.4e7))
    return bytes(header) + root + metadata


# -- keyboard and phone ------------------------------------------------------------------------------------


def test_an_area_can_be_drawn_with_the_keyboard_alone(tab: Tab) -> None:
    tab.open("/?lat=51.7356&lng=0.4685&zoom=14&month=2024-06")
    tab.page.focus("#draw")
    tab.page.keyboard.press("Enter")
    assert tab.js("document.activeElement === crimemap.map.getContainer()")
    for key in ("ArrowLeft", "ArrowUp", "ArrowRight", "ArrowDown"):
        tab.page.keyboard.press("Enter")
        tab.page.keyboard.press(key)
        tab.page.keyboard.press(key)
        tab.page.wait_for_timeout(300)
    assert tab.js("crimemap.state.drawing.length") == 4
    tab.page.focus("#draw-finish")
    tab.page.keyboard.press("Enter")
    tab.page.wait_for_function("document.body.dataset.selection === 'ready'")
    assert tab.js("crimemap.state.selection.ring.length") == 4
    tab.page.keyboard.press("Escape")


def test_on_a_phone_sized_screen_nothing_overflows_and_the_panel_folds(
    browser: Browser, map_server: LiveServer
) -> None:
    _leaflet()
    with Tab(browser, map_server) as tab:
        tab.context.close()
        tab.context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        tab.page = tab.context.new_page()
        tab.page.on("pageerror", lambda e: tab.errors.append(str(e)))
        tab.open(CHELMSFORD)
        assert tab.js("document.documentElement.scrollWidth <= window.innerWidth")
        assert tab.page.is_hidden("#panel-body")
        tab.page.click("#panel-toggle")
        assert tab.page.is_visible("#panel-body")
        for control in ("#month", "#category", "#force", "#draw", "#count"):
            box = tab.page.locator(control).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, control
        assert tab.errors == []


def test_on_a_phone_the_base_map_notice_leaves_the_zoom_buttons_free(browser: Browser, map_server: LiveServer) -> None:
    _leaflet()
    with Tab(browser, map_server) as tab:
        tab.context.close()
        tab.context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        tab.page = tab.context.new_page()
        tab.open(CHELMSFORD)
        assert tab.page.is_visible("#basemap-notice")  # this server has no base map
        notice = tab.page.locator("#basemap-notice").bounding_box()
        assert notice is not None and notice["x"] + notice["width"] <= 390
        for button in (".leaflet-control-zoom-in", ".leaflet-control-zoom-out"):
            box = tab.page.locator(button).bounding_box()
            assert box is not None
            overlap_x = min(box["x"] + box["width"], notice["x"] + notice["width"]) - max(box["x"], notice["x"])
            overlap_y = min(box["y"] + box["height"], notice["y"] + notice["height"]) - max(box["y"], notice["y"])
            assert overlap_x <= 0 or overlap_y <= 0, button
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            assert tab.js(f"document.elementFromPoint({x}, {y}).closest('{button}') !== null"), button
        zoom = tab.js("crimemap.map.getZoom()")
        tab.page.locator(".leaflet-control-zoom-in").tap()
        tab.page.wait_for_function(f"crimemap.map.getZoom() === {zoom + 1}")
