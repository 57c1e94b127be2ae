"""Errors of the OGC API - Features, as the standard's exception body: ``{"code", "description"}``.

Every error under ``/ogc/`` is answered as JSON, e.g.::

    400 {"code": "InvalidParameterValue", "description": "bbox: takes four numbers ..."}

- 400 ``InvalidParameterValue``: a malformed or unknown query parameter, named first in the description;
- 404 ``NotFound``: an unknown collection, feature or path;
- 500 ``ServerError``: anything that went wrong inside crimemap (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from crimemap.api.responses import JSONResponse

log = logging.getLogger("crimemap.api.ogc")


class OGCError(Exception):
    """An error answered with an OGC exception body (see the module docstring)."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description

    def response(self) -> Response:
        return JSONResponse({"code": self.code, "description": self.description}, status_code=self.status)


def invalid(parameter: str, message: str) -> OGCError:
    """400: ``parameter`` is not acceptable; ``message`` says why and what would be."""
    return OGCError(400, "InvalidParameterValue", f"{parameter}: {message}")


def not_found(message: str) -> OGCError:
    return OGCError(404, "NotFound", message)


class OGCRoute(APIRoute):
    """A route whose every failure is an OGC exception body; any page may read the answers (CORS ``*``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except OGCError as e:
                response = e.response()
            except Exception:
                log.exception("%s %s failed", request.method, request.url.path)
                response = OGCError(500, "ServerError", "the server failed to answer; see its log").response()
            response.headers["Access-Control-Allow-Origin"] = "*"
            return response

        return handle
