"""Errors of the Maps Engine API, in Google's error envelope, exactly as its clients parse them.

Every error under ``/mapsengine/`` (and of the downloads) is answered as::

    {"error": {"errors": [{"domain": "global", "reason": "invalid", "message": "...",
                           "locationType": "parameter", "location": "where"}],
               "code": 400, "message": "..."}}

The errors raised, by status:

- 400 ``invalid``: a bad parameter, named in ``location`` (``where``, ``select``, ``pageToken``, ...)
- 400 ``keyInvalid`` (domain ``usageLimits``): a ``key`` that is not one of the configured API keys
- 401 ``required``: no ``Authorization`` header where a bearer token is needed ("Login Required")
- 401 ``authError``: a bearer token that is not one of the configured ones ("Invalid Credentials")
- 403 ``dailyLimitExceededUnreg`` (domain ``usageLimits``): no ``key`` while API keys are configured
- 404 ``notFound``: an unknown table, feature or path
- 503 ``backendError``: anything that went wrong inside crimemap (logged; "Backend Error")
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
from crimemap.errors import ClientGone, ReadTimeout

log = logging.getLogger("crimemap.api.mapsengine.routes")

LOGIN_REQUIRED: dict[str, Any] = {
    "error": {
        "errors": [
            {
                "domain": "global",
                "reason": "required",
                "message": "Login Required",
                "locationType": "header",
                "location": "Authorization",
            }
        ],
        "code": 401,
        "message": "Login Required",
    }
}
"""The real API's answer to ``tables/{id}`` without a bearer token, byte for byte in content."""


class MapsEngineError(Exception):
    """An error answered in Google's envelope (see the module docstring)."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location = location
        self.location_type = location_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        message = capped(self.message)
        item: dict[str, Any] = {"domain": self.domain, "reason": self.reason, "message": message}
        if self.location is not None:
            item["locationType"] = self.location_type or "parameter"
            item["location"] = self.location
        return {"error": {"errors": [item], "code": self.code, "message": message}}

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.code, headers=self.headers)


def invalid(parameter: str, message: str) -> MapsEngineError:
    """400: a parameter's value is not acceptable; ``message`` says why and what would be."""
    return MapsEngineError(400, "invalid", message, location=parameter)


def not_found(message: str) -> MapsEngineError:
    return MapsEngineError(404, "notFound", message)


def login_required() -> MapsEngineError:
    return MapsEngineError(
        401,
        "required",
        "Login Required",
        location="Authorization",
        location_type="header",
        headers={"WWW-Authenticate": 'Bearer realm="crimemap"'},
    )


def invalid_credentials() -> MapsEngineError:
    return MapsEngineError(
        401,
        "authError",
        "Invalid Credentials",
        location="Authorization",
        location_type="header",
        headers={"WWW-Authenticate": 'Bearer realm="crimemap", error="invalid_token"'},
    )


def key_invalid() -> MapsEngineError:
    return MapsEngineError(400, "keyInvalid", "Bad Request", domain="usageLimits")


def key_required() -> MapsEngineError:
    return MapsEngineError(
        403,
        "dailyLimitExceededUnreg",
        "Daily Limit for Unauthenticated Use Exceeded. Continued use requires signup.",
        domain="usageLimits",
    )


def backend_error() -> MapsEngineError:
    return MapsEngineError(503, "backendError", "Backend Error")


class MapsEngineRoute(APIRoute):
    """A route whose every failure is answered in the envelope: its own errors as raised, the rest as 503.

    Every answer may be read by pages of any origin (``Access-Control-Allow-Origin: *``),
    as Google's APIs allowed: the NYC Crime Map called the API from its own site.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except MapsEngineError as e:
                response = e.response()
            except ClientGone:  # the work for a client that hung up was stopped: nothing went wrong
                response = backend_error().response()
            except ReadTimeout as e:  # over the time budget: expected under load, worth a line, not a traceback
                log.warning("%s %s: %s", request.method, request.url.path, e)
                response = backend_error().response()
            except Exception:
                log.exception("%s %s failed", request.method, request.url.path)
                response = backend_error().response()
            response.headers["Access-Control-Allow-Origin"] = "*"
            return response

        return handle
