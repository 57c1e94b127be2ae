"""``/docs`` works with no internet: Swagger UI comes from the npm package, not from a CDN.

Driven in Debian's headless Chromium with every request to another host refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from api.web.test_page import CHROMIUM, CHROMIUM_ARGS, _unavailable
from conftest import LiveServer
from crimemap.api.web import routes as web


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is missing: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.parametrize("policeuk_store", ["sqlite"], indirect=True)
def test_the_api_docs_render_offline(chromium: object, policeuk_server: LiveServer) -> None:
    folder = web.node_modules()
    if folder is None or not (folder / "swagger-ui-dist").is_dir():
        _unavailable("swagger-ui-dist is not installed: run `npm ci` in the repository")
    browser = chromium
    context = browser.new_context()  # type: ignore[attr-defined]
    elsewhere: list[str] = []

    def only_this_server(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        if urlparse(url).netloc == urlparse(policeuk_server.url).netloc:
            route.continue_()  # type: ignore[attr-defined]
        else:
            elsewhere.append(url)
            route.abort()  # type: ignore[attr-defined]

    context.route("**/*", only_this_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(policeuk_server.url + "/docs")
    page.wait_for_selector(".opblock", timeout=15_000)
    operations = page.locator(".opblock").count()
    title = page.locator(".info .title").inner_text()
    context.close()
    assert elsewhere == []
    assert errors == []
    assert operations >= 15  # every police.uk, Maps Engine and download operation
    assert title.startswith("crimemap")


def test_redoc_is_not_served_since_it_needs_a_cdn(policeuk_server: LiveServer) -> None:
    assert policeuk_server.client.get("/redoc").status_code == 404
    page = policeuk_server.client.get("/docs").text
    assert "https://" not in page and "http://" not in page  # nothing from another host
    folder = web.node_modules()
    if folder is not None and (folder / "swagger-ui-dist").is_dir():
        assert "/static/lib/swagger-ui-dist/swagger-ui-bundle.js" in page
    else:
        assert "npm ci" in page and "/openapi.json" in page
