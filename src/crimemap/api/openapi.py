"""The OpenAPI document (``/openapi.json``) as the API behaves: no 422, which crimemap never answers.

Every parameter is declared as a plain string and checked by crimemap itself,
which answers a bad one with its API's own 400 (documented per route); FastAPI
would still list a "422 Validation Error" for every route with parameters, and
would call every parameter optional: one whose description says
:data:`REQUIRED` is marked required here. Which parameters go together is said
in their descriptions. The OGC API - Features has its own document (the
standard's, :mod:`crimemap.api.ogc.openapi`), linked as ``externalDocs``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

REQUIRED = "(required)"
"""Said in the description of a parameter a method needs, which crimemap checks itself (a 400 in its API's words)."""

OGC_DOCUMENT = "/ogc/api"


def install(app: FastAPI) -> None:
    """Serve the document FastAPI builds, less its 422 responses and their schemas."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
                    for parameter in operation.get("parameters", []):
                        if REQUIRED in parameter.get("description", ""):
                            parameter["required"] = True
            schema["externalDocs"] = {
                "description": "OGC API - Features (under /ogc) is described by its own OpenAPI document",
                "url": OGC_DOCUMENT,
            }
            schemas = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
