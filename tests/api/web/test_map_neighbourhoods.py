"""Neighbourhoods on the crime map, in headless Chromium against a real server: their outlines at street
zooms and not at national zoom, "pick a neighbourhood" beside "pick a force", and the panel a picked or
clicked neighbourhood opens (its counts, trend, team and priorities), each checked against the API.

The store holds two generated months of crimes, the generator's neighbourhoods (with their teams and
priorities) and the 44 real force boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import shapely

from api.web.test_page import Tab, _leaflet
from conftest import SHARED_DATA, LiveServer
from crimemap.api.app import Settings
from crimemap.load.boundaries import load_boundaries
from crimemap.load.generate.archive import generate
from crimemap.load.generate.neighbourhoods import write_neighbourhoods
from crimemap.load.neighbourhoods import load_neighbourhoods
from crimemap.load.policeuk import load_policeuk
from crimemap.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from playwright.sync_api import Browser

NATIONAL = "/?lat=53.4&lng=-2.2&zoom=6&month=2024-06"


@pytest.fixture(scope="module")
def map_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("map")
    generate(folder / "archive", months=["2024-05", "2024-06"], crimes_per_month=20_000, seed=5)
    write_neighbourhoods(folder / "neighbourhoods.zip", count=120)
    store = SQLiteStore(folder / "map.sqlite")
    load_policeuk(store, [folder / "archive"])
    load_boundaries(store, [SHARED_DATA / "boundaries" / "forces"])
    load_neighbourhoods(store, [folder / "neighbourhoods.zip"])
    server = LiveServer(store, Settings(basemap="none"))
    yield server
    server.stop()
    store.close()


@pytest.fixture
def tab(browser: Browser, map_server: LiveServer) -> Iterator[Tab]:
    _leaflet()
    with Tab(browser, map_server) as t:
        yield t


def _get(server: LiveServer, path: str, **params: str) -> Any:
    response = server.client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _busiest(server: LiveServer) -> tuple[str, str, Any]:
    """(force, id, shape) of the neighbourhood with the most crimes in 2024-06 (as group=neighbourhood counts)."""
    rows = _get(server, "/stats/crimes", group="neighbourhood", months="2024-06")
    force, nbhd = max(rows, key=lambda r: r["count"])["neighbourhood"].split("/")
    points = _get(server, f"/api/{force}/{nbhd}/boundary")
    return force, nbhd, shapely.Polygon([(float(p["longitude"]), float(p["latitude"])) for p in points])


def _wait_ready(tab: Tab) -> None:
    tab.page.wait_for_function("document.body.dataset.neighbourhood === 'ready'", timeout=15_000)


def _check_panel(tab: Tab, force: str, nbhd: str) -> None:
    """The panel shows the neighbourhood's name, counts, trend, team and priorities, as the API answers them."""
    server = tab.server
    area = f"{force}/{nbhd}"
    details = _get(server, f"/api/{force}/{nbhd}")
    assert tab.page.inner_text("#neighbourhood-title").startswith(details["name"])
    categories = _get(server, "/stats/crimes", group="category", months="2024-06", neighbourhood=area)
    total = sum(r["count"] for r in categories)
    assert tab.js("crimemap.neighbourhoods.categories") == categories and total > 0
    assert tab.page.inner_text("#neighbourhood-total") == f"{total:,} crimes in June 2024"
    assert tab.page.locator("#neighbourhood-categories li").count() == len(categories)
    trend = _get(server, "/stats/crimes", group="month", neighbourhood=area)
    assert tab.js("crimemap.neighbourhoods.trend") == trend and len(trend) == 2
    assert tab.page.locator("#neighbourhood-trend .bar").count() == 2
    label = tab.page.get_attribute("#neighbourhood-trend", "aria-label") or ""
    assert all(f"{r['count']}" in label for r in trend)
    people = _get(server, f"/api/{force}/{nbhd}/people")
    team = tab.page.locator("#neighbourhood-team li").all_inner_texts()
    assert people and [t.split(" · ")[0] for t in team] == [p["name"] for p in people]
    priorities = _get(server, f"/api/{force}/{nbhd}/priorities")
    shown = tab.page.locator("#neighbourhood-priorities li").all_inner_texts()
    assert priorities and len(shown) == len(priorities)
    assert all(re.sub(r"<[^>]+>", "", p["issue"]).strip()[:20] in s for p, s in zip(priorities, shown, strict=True))


def test_neighbourhoods_are_outlined_at_street_zoom_and_not_at_national_zoom(tab: Tab) -> None:
    tab.open(NATIONAL)
    assert tab.js("document.body.dataset.neighbourhoods") == "off"
    assert tab.js("crimemap.neighbourhoods.layer.getLayers().length") == 0
    force, nbhd, shape = _busiest(tab.server)
    centre = shape.representative_point()
    tab.js(f"void crimemap.map.setView([{centre.y}, {centre.x}], 14)")
    tab.page.wait_for_function("/^[0-9]+$/.test(document.body.dataset.neighbourhoods)", timeout=15_000)
    shown = tab.js("crimemap.neighbourhoods.layer.getLayers().map(l => l.feature.properties.neighbourhood)")
    bounds = tab.js("crimemap.map.getBounds().toBBoxString()")
    items = _get(tab.server, "/ogc/collections/policeuk-neighbourhoods/items", bbox=bounds, limit="1000")
    assert nbhd in shown and sorted(shown) == sorted(f["properties"]["neighbourhood"] for f in items["features"])
    tab.js("void crimemap.map.setZoom(8)")
    tab.page.wait_for_function("document.body.dataset.neighbourhoods === 'off'")
    assert tab.js("crimemap.neighbourhoods.layer.getLayers().length") == 0
    assert tab.errors == []


def test_picking_a_neighbourhood_beside_its_force_fits_the_map_to_it_and_shows_its_panel(
    tab: Tab, tmp_path: Path
) -> None:
    force, nbhd, shape = _busiest(tab.server)
    tab.open(NATIONAL)
    assert tab.page.is_hidden("#neighbourhood-label")
    tab.page.wait_for_function(
        f"Array.from(document.querySelectorAll('#force option')).some(o => o.value === '{force}')"
    )
    tab.page.select_option("#force", force)
    tab.page.wait_for_function("document.querySelectorAll('#neighbourhood option').length > 1")
    listed = _get(tab.server, f"/api/{force}/neighbourhoods")
    options = tab.page.locator("#neighbourhood option").all_inner_texts()
    assert options == ["None", *sorted(n["name"] for n in listed)]
    tab.page.select_option("#neighbourhood", nbhd)
    _wait_ready(tab)
    fits = f"crimemap.map.getZoom() >= Math.min(16, crimemap.map.getBoundsZoom({_corners(shape)})) - 1"
    tab.page.wait_for_function(f"{fits} && crimemap.map.getBounds().contains({_corners(shape)})")
    assert tab.js("crimemap.neighbourhoods.outline.getLayers().length") == 1
    _check_panel(tab, force, nbhd)
    tab.settle()
    tab.page.screenshot(path=tmp_path / "neighbourhood.png")
    tab.page.click("#neighbourhood-close")
    assert tab.page.is_hidden("#neighbourhood-panel") and tab.page.input_value("#neighbourhood") == ""
    assert tab.errors == []


def _corners(shape: Any) -> str:
    west, south, east, north = shape.bounds
    return f"L.latLngBounds([{south}, {west}], [{north}, {east}])"


def test_clicking_a_neighbourhood_on_the_map_shows_its_panel(tab: Tab) -> None:
    force, nbhd, shape = _busiest(tab.server)
    west, south, east, north = shape.bounds
    tab.open(f"/?lat={(south + north) / 2}&lng={(west + east) / 2}&zoom=14&month=2024-06&category=bicycle-theft")
    tab.page.wait_for_function("/^[0-9]+$/.test(document.body.dataset.neighbourhoods)")
    assert tab.page.is_hidden("#neighbourhood-panel")
    point = _clear_point(tab, shape)
    tab.page.mouse.click(point["x"], point["y"])
    _wait_ready(tab)
    assert tab.js("crimemap.neighbourhoods.picked") == {"force": force, "id": nbhd}
    tab.page.select_option("#category", "all-crime")
    _wait_ready(tab)
    tab.page.wait_for_function("crimemap.neighbourhoods.categories.length > 1")
    _check_panel(tab, force, nbhd)
    assert tab.errors == []


def _clear_point(tab: Tab, shape: Any) -> dict[str, float]:
    """A point on screen well inside the neighbourhood with no crime marker under it."""
    inner = shape.buffer(-0.002)
    west, south, east, north = inner.bounds
    grid = [
        shapely.Point(west + (east - west) * i / 6, south + (north - south) * j / 6) for i in range(7) for j in range(7)
    ]
    for point in [inner.representative_point(), *(p for p in grid if inner.contains(p))]:
        at = tab.js(
            f"""(() => {{
            const p = crimemap.map.latLngToContainerPoint([{point.y}, {point.x}]);
            const box = crimemap.map.getContainer().getBoundingClientRect();
            const x = box.left + p.x, y = box.top + p.y;
            const hit = document.elementFromPoint(x, y);
            return {{x, y, free: !hit.closest('.leaflet-marker-icon, .leaflet-popup, .panel, .bar')}};
        }})()"""
        )
        if at["free"]:
            return dict(at)
    raise AssertionError("no clear point inside the neighbourhood")
