"""The crime map page: its files as served, and the page itself in a real headless Chromium.

(The map at every zoom, with counts, trends, boundaries and drawing, is tested in ``test_map.py``.)
The browser tests drive Debian's Chromium (``/usr/bin/chromium``) with Playwright against a live
server on loopback over the real police.uk files. They skip when Chromium, Playwright or the npm
packages (``npm ci``) are missing, except under ``CI=true``, where that is a failure:
``scripts/setup --test`` installs all three.

The page is a client of the police.uk API, whose answers are the same over either store (the
conformance suite checks that), so the page is tested over the SQLite store only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from api.policeuk.test_crimes import in_polygon, month_rows
from conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer, _unavailable  # noqa: F401  (the docs page tests import them from here)
from crimemap.api.app import Settings
from crimemap.api.web import routes as web
from crimemap.store.base import Store

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

SETTLED = "['ready', 'too-many', 'error', 'no-leaflet', 'empty'].includes(document.body.dataset.status)"
ANSWERED_FOR_VIEW = "(!crimemap.map || (document.body.dataset.query || '').includes(crimemap.polygon()))"

CITY_OF_LONDON = "/?lat=51.515&lng=-0.09&zoom=15&month=2017-01"
CHELMSFORD = "/?lat=51.7356&lng=0.4685&zoom=13&month=2018-01"

sqlite_only = pytest.mark.parametrize("policeuk_store", ["sqlite"], indirect=True)


def _leaflet() -> Path:
    """The node_modules folder holding Leaflet, which the map's tests need."""
    folder = web.node_modules()
    if folder is None:
        _unavailable("Leaflet is not installed: run `npm ci` in the repository")
    assert folder is not None
    return folder


# -- the browser ----------------------------------------------------------------------------------


class Tab:
    """A fresh browser page on one server that records console errors and every URL requested."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.requested: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("request", lambda r: self.requested.append(r.url))

    def __enter__(self) -> Tab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.context.close()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def open(self, path: str) -> None:
        self.page.goto(self.server.url + path)
        self.settle()

    def settle(self, query_part: str = "") -> str:
        """Wait until the page shows the answer for its current view (a request with ``query_part``)."""
        self.page.wait_for_function(
            f"{SETTLED} && {ANSWERED_FOR_VIEW} && (document.body.dataset.query || '').includes({query_part!r})",
            timeout=15_000,
        )
        return str(self.page.evaluate("document.body.dataset.status"))

    def js(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def query(self) -> str:
        """The API request behind what the page shows."""
        return str(self.js("document.body.dataset.query"))

    def shown(self) -> int:
        """Crimes on the map: the markers in the layer, checked against the page's own count."""
        markers = int(self.js("crimemap.layer.getLayers().length"))
        assert markers == self.js("crimemap.shown")
        return markers


@pytest.fixture
def tab(browser: Browser, policeuk_server: LiveServer) -> Iterator[Tab]:
    _leaflet()
    with Tab(browser, policeuk_server) as t:
        yield t


def _poly(query: str) -> list[tuple[float, float]]:
    """The ring of a police.uk ``poly`` parameter in a request URL."""
    match = re.search(r"poly=([^&]+)", query)
    assert match, query
    return [(float(a), float(b)) for a, b in (p.split(",") for p in match.group(1).split(":"))]


# -- the files as served (no browser) -------------------------------------------------------------


@sqlite_only
def test_the_page_and_its_files_are_served(policeuk_server: LiveServer) -> None:
    client = policeuk_server.client
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<h1 class="title">crimemap</h1>' in page.text
    assert '<script src="/static/app.js"></script>' in page.text
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200
        assert r.content == (web.WEB_DIR / name).read_bytes()
    assert "/" not in client.get("/openapi.json").json()["paths"]


@sqlite_only
@pytest.mark.parametrize("wanted", ["pages=0-10", "bytes=10-2", "bytes", "bytes=x-y"])
def test_a_range_that_cannot_be_read_is_a_json_400(policeuk_server: LiveServer, wanted: str) -> None:
    response = policeuk_server.client.get("/static/app.js", headers={"Range": wanted})
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"the Range {wanted!r} cannot be read")


@sqlite_only
def test_a_range_past_the_end_of_a_file_is_a_json_416_with_its_length(policeuk_server: LiveServer) -> None:
    size = (web.WEB_DIR / "app.js").stat().st_size
    response = policeuk_server.client.get("/static/app.js", headers={"Range": f"bytes={size}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"
    assert f"past the end of the file ({size:,} bytes)" in response.json()["message"]
    part = policeuk_server.client.get("/static/app.js", headers={"Range": f"bytes={size - 10}-"})
    assert (part.status_code, part.content) == (206, (web.WEB_DIR / "app.js").read_bytes()[-10:])


@sqlite_only
def test_files_are_revalidated_and_unchanged_files_are_304(policeuk_server: LiveServer) -> None:
    first = policeuk_server.client.get("/static/app.js")
    assert first.headers["cache-control"] == "no-cache"
    again = policeuk_server.client.get("/static/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


@sqlite_only
def test_leaflet_is_served_from_node_modules(policeuk_server: LiveServer) -> None:
    folder = _leaflet()
    page = policeuk_server.client.get("/").text
    for package, files in web.LIBRARIES.items():
        for name in files:
            assert f"/static/lib/{package}/{name}" in page
            r = policeuk_server.client.get(f"/static/lib/{package}/{name}")
            assert r.status_code == 200, name
            assert r.content == (folder / package / "dist" / name).read_bytes()


@sqlite_only
@pytest.mark.parametrize(
    "path",
    [
        "/static/lib/leaflet/../package.json",
        "/static/lib/leaflet/..%2F..%2Fpackage.json",
        "/static/lib/leaflet/%2Fetc%2Fpasswd",
        "/static/lib/left-pad/index.js",
        "/static/..%2Fapi%2Fweb.py",
        "/static/index.html",
        "/static/",
        "/static/%00",
        "/static/lib/leaflet/%00",
    ],
)
def test_only_the_pages_files_are_served(policeuk_server: LiveServer, path: str) -> None:
    r = policeuk_server.client.get(path)
    assert r.status_code == 404
    assert r.json()["status"] == 404


@sqlite_only
def test_without_leaflet_the_page_loads_and_says_run_npm_ci(
    browser: Browser, policeuk_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(web.NODE_MODULES_ENV, str(tmp_path))
    assert "leaflet" not in policeuk_server.client.get("/").text
    missing = policeuk_server.client.get("/static/lib/leaflet/leaflet.js")
    assert missing.status_code == 404
    assert "npm ci" in missing.json()["hint"]

    with Tab(browser, policeuk_server) as tab:
        tab.open("/")
        assert tab.settle() == "no-leaflet"
        assert "Leaflet is not installed: run `npm ci`" in tab.page.inner_text("#message")
        assert tab.page.locator("#month option").count() > 0
        assert tab.errors == []


@sqlite_only
def test_a_tile_server_is_used_only_when_configured(
    browser: Browser, policeuk_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _leaflet()
    assert '"tileUrl":null' in policeuk_server.client.get("/").text
    tiles = policeuk_server.url + "/tiles/{z}/{x}/{y}.png"
    monkeypatch.setenv(web.TILE_URL_ENV, tiles)
    monkeypatch.setenv(web.TILE_ATTRIBUTION_ENV, "</script><b>OSM</b>")
    page = policeuk_server.client.get("/").text
    assert '"tileAttribution":"\\u003c/script>\\u003cb>OSM\\u003c/b>"' in page

    with Tab(browser, policeuk_server) as tab:
        tab.open(CITY_OF_LONDON)
        sources = tab.page.locator("img.leaflet-tile").evaluate_all("imgs => imgs.map(i => i.src)")
        assert sources and all(s.startswith(policeuk_server.url + "/tiles/15/") for s in sources)
        assert "OSM" in tab.page.inner_text(".leaflet-control-attribution")


# -- the page in the browser -----------------------------------------------------------------------


@sqlite_only
def test_page_loads_without_errors_or_outside_requests_and_fills_its_dropdowns_from_the_api(
    tab: Tab, tmp_path: Path
) -> None:
    tab.open(CITY_OF_LONDON)
    assert tab.settle() == "ready"
    client = tab.server.client
    months = [d["date"] for d in client.get("/api/crimes-street-dates").json()]
    assert months[0] == "2020-01"
    page_months = tab.page.locator("#month option").evaluate_all("os => os.map(o => o.value)")
    assert page_months == months
    assert tab.page.input_value("#month") == "2017-01"
    assert tab.page.inner_text("#month option:checked") == "January 2017"
    categories = client.get("/api/crime-categories?date=2017-01").json()
    page_categories = tab.page.locator("#category option").evaluate_all(
        "os => os.map(o => ({url: o.value, name: o.textContent}))"
    )
    assert page_categories == categories
    assert tab.page.input_value("#category") == "all-crime"

    assert tab.page.inner_text("header h1") == "crimemap"
    assert tab.page.get_attribute("a[href='/docs']", "href") == "/docs"
    download = tab.page.get_attribute("#download", "href")
    assert download == "/download/policeuk-crimes.geojson?where=month%3D'2017-01'"
    assert tab.errors == []
    outside = [u for u in tab.requested if not u.startswith((tab.server.url + "/", "data:"))]
    assert outside == []
    tab.page.screenshot(path=tmp_path / "city-of-london-2017-01.png")


@sqlite_only
def test_markers_for_the_city_of_london_match_the_api_and_the_csv_for_the_visible_polygon(tab: Tab) -> None:
    tab.open(CITY_OF_LONDON)
    query = tab.query()
    assert query.startswith("/api/crimes-street/all-crime?poly=") and query.endswith("&date=2017-01")
    api = tab.server.client.get(query).json()
    truth = in_polygon(month_rows("2017-01"), _poly(query))
    assert len(truth) > 300
    assert tab.shown() == len(api) == len(truth)
    assert tab.page.inner_text("#count") == f"{len(api)} crimes shown"
    assert "Anti-social behaviour" in tab.page.inner_text("#legend")
    assert tab.errors == []


@sqlite_only
def test_clicking_a_crime_opens_its_popup(tab: Tab) -> None:
    tab.open(CITY_OF_LONDON)
    point = tab.js(
        """(() => {
        const layer = crimemap.layer, map = crimemap.map;
        const m = layer.getLayers().find(m => map.hasLayer(m) && map.getBounds().pad(-0.2).contains(m.getLatLng()));
        const p = map.latLngToContainerPoint(m.getLatLng()), box = map.getContainer().getBoundingClientRect();
        return {x: box.left + p.x, y: box.top + p.y, crime: m.crime};
    })()"""
    )
    tab.page.mouse.click(point["x"], point["y"])
    popup = tab.page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5_000)
    text = popup.inner_text()
    crime = point["crime"]
    assert crime["location"]["street"]["name"] in text
    assert "January 2017" in text
    assert "Outcome" in text
    if crime["outcome_status"]:
        assert crime["outcome_status"]["category"] in text


@sqlite_only
def test_changing_category_refetches_only_that_category(tab: Tab) -> None:
    tab.open(CITY_OF_LONDON)
    everything = tab.shown()
    tab.page.select_option("#category", "theft-from-the-person")
    assert tab.settle("/crimes-street/theft-from-the-person?") == "ready"
    api = tab.server.client.get(tab.query()).json()
    assert 0 < tab.shown() == len(api) < everything
    drawn = tab.js("[...new Set(crimemap.layer.getLayers().map(m => m.crime.category))]")
    assert drawn == ["theft-from-the-person"]
    assert "Theft from the person" in tab.page.inner_text(".legend-heading")
    assert "category=theft-from-the-person" in tab.page.url
    assert tab.errors == []


@sqlite_only
def test_zooming_out_over_many_crimes_shows_counts_per_area_not_a_dead_end(tab: Tab, tmp_path: Path) -> None:
    tab.open(CHELMSFORD)
    assert tab.settle() == "ready"
    assert tab.shown() == len(tab.server.client.get(tab.query()).json()) > 0
    assert tab.js("document.body.dataset.mode") == "crimes"
    for zoom in (12, 11, 10, 9):
        tab.page.click(".leaflet-control-zoom-out")
        tab.page.wait_for_function(f"crimemap.map.getZoom() === {zoom}")
        tab.settle()
    assert tab.js("document.body.dataset.status") == "ready"
    assert tab.js("crimemap.map.getBounds().contains([[51.45, 0.0], [52.05, 1.3]])")  # all of Essex
    assert tab.js("document.body.dataset.mode") == "cells"
    query = tab.query()
    assert query.startswith("/stats/crimes?group=cell&zoom=8&months=2018-01&poly=")
    cells = tab.server.client.get(query).json()
    assert cells == tab.js("crimemap.cellRows")
    total = tab.server.client.get(query.replace("group=cell&zoom=8&", "")).json()[0]["count"]
    assert sum(c["count"] for c in cells) == total > 10_000
    assert tab.shown() == 0
    assert tab.page.is_hidden("#message")
    tab.page.screenshot(path=tmp_path / "essex-2018-01-zoomed-out.png")
    assert tab.errors == []


@sqlite_only
def test_other_api_errors_show_their_json_message(
    browser: Browser, live_server: Callable[..., LiveServer], policeuk_store: Store
) -> None:
    _leaflet()
    # Rate limited to a burst of 2: the months and categories load, the crimes request is 429.
    server = live_server(policeuk_store, Settings(rate_limit=True, rate_per_second=0.01, rate_burst=2))
    with Tab(browser, server) as tab:
        tab.open(CITY_OF_LONDON)
        assert tab.settle() == "error"
        assert tab.page.inner_text("#message").startswith("too many requests: at most 0.01 a second")
        assert tab.shown() == 0
