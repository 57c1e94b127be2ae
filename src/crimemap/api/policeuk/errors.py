"""police.uk-style errors: the status code the real API answers, with a JSON body that says why.

data.police.uk answers a bad request with a bare status (400, 404, 503) and an
HTML or empty body; some clients then fail while decoding it. crimemap keeps
the status codes and always sends JSON a user can act on::

    {"status": 404, "error": "Not Found",
     "message": "unknown crime category 'burglery'",
     "hint": "the categories are listed at /api/crime-categories"}

Raise :class:`PoliceUKError` (or one of the helpers) anywhere below a police.uk
route; :func:`install` turns it into the response. Other APIs mounted on the
same app keep their own error envelopes: only this exception type is handled.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from crimemap.echo import capped


class PoliceUKError(Exception):
    """An answer other than 200, as the real API would give it, plus a message and a hint."""

    def __init__(self, status: int, message: str, hint: str = "", headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.headers = dict(headers or {})


def bad_request(message: str, hint: str = "") -> PoliceUKError:
    """400: a malformed parameter (lat/lng, date, poly, location_id) or an over-long GET."""
    return PoliceUKError(400, message, hint)


def not_found(message: str, hint: str = "") -> PoliceUKError:
    """404: an unknown category, force, location or crime."""
    return PoliceUKError(404, message, hint)


def too_many_crimes(message: str, hint: str = "") -> PoliceUKError:
    """503: the area holds more crimes than the API returns at once."""
    return PoliceUKError(503, message, hint)


def error_body(status: int, message: str, hint: str = "") -> bytes:
    """The JSON body of an error response.

    >>> error_body(404, "unknown force x")
    b'{"status":404,"error":"Not Found","message":"unknown force x"}'
    """
    body: dict[str, object] = {"status": status, "error": HTTPStatus(status).phrase, "message": capped(message)}
    if hint:
        body["hint"] = capped(hint)
    return orjson.dumps(body)


def error_response(status: int, message: str, hint: str = "", headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        error_body(status, message, hint), status_code=status, media_type="application/json", headers=headers
    )


async def _handle(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PoliceUKError)
    return error_response(exc.status, exc.message, exc.hint, exc.headers)


def install(app: FastAPI) -> None:
    """Answer every :class:`PoliceUKError` raised by a route with its JSON error response."""
    app.add_exception_handler(PoliceUKError, _handle)
