"""Errors of the OGC API - Features, as the standard's exception body: ``{"code", "description"}``.

Every error under ``/ogc/`` is answered as JSON, e.g.::

    400 {"code": "InvalidParameterValue", "description": "bbox: takes four numbers ..."}

- 400 ``InvalidParameterValue``: a malformed or unknown query parameter, named first in the description;
- 401 ``Unauthorized`` / 403 ``Forbidden``: no credential, or one this server does not accept,
  where the server has API keys or bearer tokens (see :mod:`crimemap.api.access`);
- 404 ``NotFound``: an unknown collection, feature or path;
- 503 ``ServiceUnavailable``: a read the store stopped at its time budget, or a table reloaded mid-read;
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
from crimemap.echo import capped
from crimemap.errors import ReadTimeout, TableChanged

log = logging.getLogger("crimemap.api.ogc.routes")


class OGCError(Exception):
    """An error answered with an OGC exception body (see the module docstring)."""

    def __init__(self, status: int, code: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.headers = headers or {}

    def response(self) -> Response:
        return JSONResponse(
            {"code": self.code, "description": capped(self.description)}, status_code=self.status, headers=self.headers
        )


def invalid(parameter: str, message: str) -> OGCError:
    """400: ``parameter`` is not acceptable; ``message`` says why and what would be."""
    return OGCError(400, "InvalidParameterValue", f"{parameter}: {message}")


def not_found(message: str) -> OGCError:
    return OGCError(404, "NotFound", message)


def unavailable(message: str) -> Response:
    """503: the store stopped a read at its time budget, or the table was reloaded while it was read."""
    response = OGCError(503, "ServiceUnavailable", message).response()
    response.headers["Retry-After"] = "1"
    return response


class OGCRoute(APIRoute):
    """A route whose every failure is an OGC exception body; any page may read the answers (CORS ``*``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except OGCError as e:
                response = e.response()
            except (ReadTimeout, TableChanged) as e:
                response = unavailable(str(e))
            except Exception:
                log.exception("%s %s failed", request.method, request.url.path)
                response = OGCError(500, "ServerError", "the server failed to answer; see its log").response()
            response.headers["Access-Control-Allow-Origin"] = "*"
            return response

        return handle
