"""The API documentation at ``/docs``: Swagger UI from the npm package, so it works with no internet.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN and is blank offline
(and ``/redoc`` likewise); crimemap serves ``swagger-ui-dist`` from
``node_modules`` (``npm ci``, beside Leaflet) under ``/static/lib/``. Without
it, ``/docs`` says so and points at ``/openapi.json``, which is always served.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

from crimemap.api.web.routes import node_modules

SWAGGER_UI = "/static/lib/swagger-ui-dist"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def install(app: FastAPI) -> None:
    """Mount ``/docs`` and its OAuth2 redirect page (the app is created with ``docs_url=None``)."""
    title = f"{app.title} API"

    def docs() -> HTMLResponse:
        folder = node_modules()
        if folder is None or not (folder / "swagger-ui-dist" / "swagger-ui-bundle.js").is_file():
            return HTMLResponse(
                "<!doctype html><title>crimemap API docs</title><p>The API docs need the npm package"
                " swagger-ui-dist: run <code>npm ci</code> in the crimemap repository. The OpenAPI document"
                ' is at <a href="/openapi.json">/openapi.json</a>.</p>'
            )
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT,
        )

    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
    app.add_api_route(
        OAUTH2_REDIRECT, oauth2_redirect, methods=["GET"], include_in_schema=False, response_class=HTMLResponse
    )
