"""Every error in the envelope of the API its path belongs to, whoever raised it.

crimemap's own routes raise :class:`~crimemap.api.policeuk.errors.PoliceUKError` or
:class:`~crimemap.api.mapsengine.errors.MapsEngineError`. Errors that arise
before a route runs would otherwise reach the client as FastAPI's
``{"detail": ...}`` or uvicorn's plain text; here they get the same envelope:

- no route (404) and a wrong method (405, with ``Allow`` naming every method the path takes);
- a form the parser refuses (a field over 1 MiB, more than :data:`MAX_FORM_FIELDS` fields: 400);
- a request body over :data:`MAX_BODY_BYTES` (413), refused by :class:`BodyLimit` before it is parsed;
- header fields over :data:`MAX_HEADER_BYTES` (431), refused by :class:`HeaderLimit` before anything reads them
  (``crimemap serve`` stops reading a far longer head sooner: :mod:`crimemap.api.protocols`);
- a read the store stopped at its time budget, or a table reloaded while it was read (503);
- anything else a route or a middleware raised (500, logged), so that no failure reaches the client as
  Starlette's plain "Internal Server Error".

Paths under ``/mapsengine`` and ``/download`` answer in Google's envelope, those
under ``/ogc`` in the OGC exception body, every other path in the police.uk one
(``{"status", "error", "message", "hint"}``).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import TYPE_CHECKING

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crimemap.api.mapsengine.errors import MapsEngineError
from crimemap.api.methods import allowed_methods
from crimemap.api.ogc.errors import OGCError
from crimemap.api.ogc.errors import unavailable as ogc_unavailable
from crimemap.api.policeuk.errors import error_response
from crimemap.api.policeuk.params import MAX_POLY_POINTS
from crimemap.echo import cut
from crimemap.errors import ReadTimeout, TableChanged

if TYPE_CHECKING:
    from fastapi import FastAPI

MAX_BODY_BYTES = 1 << 20
"""The largest request body accepted (1 MiB): a ``poly`` of the most points accepted fits in a quarter of it."""

MAX_HEADER_BYTES = 64 << 10
"""The most bytes of header fields a request may have (64 KiB): each field's name and value, plus 4 for ``: `` and
the line end. Browsers send a few KiB; nginx's default is 32 KiB."""

MAX_FORM_FIELDS = 1_000
"""The most fields a form-encoded body may have (starlette's own limit, named here to be documented)."""

GOOGLE_PREFIXES = ("/mapsengine", "/download/")
"""Paths answered in Google's error envelope."""

log = logging.getLogger("crimemap.api")

_GOOGLE_REASONS = {
    400: "parseError", 404: "notFound", 405: "httpMethodNotAllowed", 413: "uploadTooLarge",
    431: "requestHeaderTooLarge", 500: "backendError",
}  # fmt: skip
_OGC_CODES = {400: "InvalidParameterValue", 404: "NotFound", 500: "ServerError", 503: "ServiceUnavailable"}
"""OGC exception codes; other statuses take their HTTP phrase (``MethodNotAllowed``)."""


def is_ogc(path: str) -> bool:
    return path == "/ogc" or path.startswith("/ogc/")


def error_for_path(
    path: str, status: int, message: str, hint: str = "", headers: dict[str, str] | None = None
) -> Response:
    """The error response for ``path``, in its API's envelope."""
    text = f"{message}; {hint}" if hint else message
    if is_ogc(path):
        code = _OGC_CODES.get(status) or HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
        response = OGCError(status, code, text, headers).response()
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response
    if path.startswith(GOOGLE_PREFIXES):
        error = MapsEngineError(status, _GOOGLE_REASONS.get(status, "invalid"), text, headers=headers)
        response = error.response()
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response
    return error_response(status, message, hint, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    path, method = request.url.path, request.method
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message, hint = f"no such method: {method} {cut(path)}", "the methods are documented at /docs"
    elif exc.status_code == 405:
        allowed = allowed_methods(request) or headers.get("allow", headers.get("Allow", ""))
        headers = {k: v for k, v in headers.items() if k.lower() != "allow"} | {"Allow": allowed}
        message = f"{method} is not allowed on {cut(path)}" + (f"; use {allowed}" if allowed else "")
        hint = "the methods are documented at /docs"
    else:
        message, hint = f"the request could not be read: {exc.detail}", ""
    return error_for_path(path, exc.status_code, message, hint, headers)


async def _store_busy(request: Request, exc: Exception) -> Response:
    """503 in the path's envelope: a read past the store's time budget, or a table reloaded mid-read."""
    assert isinstance(exc, ReadTimeout | TableChanged)
    if isinstance(exc, TableChanged):
        message, hint, headers = str(exc), "the data was reloaded while it was read; ask again", {"Retry-After": "1"}
    else:
        message, hint, headers = str(exc), "", None
    if request.url.path.startswith("/ogc"):
        return ogc_unavailable(message)
    return error_for_path(request.url.path, 503, message, hint, headers)


SERVER_ERROR = "the server failed to answer; see its log"


class ServerErrors:
    """Answer what a route or an inner middleware raised, and nothing answered, with a 500 in the path's envelope.

    The exception is logged here and not raised further, so the connection stays open
    for the client's next request (uvicorn closes it after an exception). An exception
    after the answer has begun (a download that fails mid-stream) can only end the
    connection: it is raised on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if started:
                raise
            log.exception("%s %s failed", scope["method"], scope["path"])
            await error_for_path(scope["path"], 500, SERVER_ERROR)(scope, receive, send)


async def _server_error(request: Request, exc: Exception) -> Response:
    """The last resort, for a failure in an outer middleware: Starlette sends this, then raises ``exc`` on."""
    return error_for_path(request.url.path, 500, SERVER_ERROR)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    what = errors[0].get("msg", "invalid request") if errors else "invalid request"
    return error_for_path(request.url.path, 400, f"the request could not be read: {what}")


class BodyLimit:
    """Refuse (413) a request whose body is over ``max_bytes``, before anything parses it.

    The body is read here (it is at most ``max_bytes``) and handed on unchanged;
    later ``receive`` calls (a disconnect while a download streams) go through.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_for_path(
            scope["path"],
            413,
            f"the request body is longer than {self.max_bytes:,} bytes",
            f"a poly may have at most {MAX_POLY_POINTS:,} points; fewer fit in a smaller body",
            {"Connection": "close"},
        )
        await response(scope, receive, send)


def header_bytes(headers: list[tuple[bytes, bytes]]) -> int:
    """The size of header fields as they were sent: ``name: value`` and a line end each."""
    return sum(len(name) + len(value) + 4 for name, value in headers)


def headers_too_large(path: str, size: int | None = None) -> Response:
    """431 in the path's envelope; the connection is closed after it."""
    got = f" ({size:,} bytes)" if size is not None else ""
    return error_for_path(
        path,
        431,
        f"the request's header fields are longer than {MAX_HEADER_BYTES:,} bytes{got}",
        "send long parameters (a poly) as a form-encoded POST body; keep cookies and custom headers short",
        {"Connection": "close"},
    )


class HeaderLimit:
    """Refuse (431) a request whose header fields are over :data:`MAX_HEADER_BYTES`, before anything reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = header_bytes(scope["headers"])
            if size > self.max_bytes:
                await headers_too_large(scope["path"], size)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


def install(app: FastAPI) -> None:
    """Answer routing, form, body and server errors in the envelopes, and limit request bodies and headers."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ReadTimeout, _store_busy)
    app.add_exception_handler(TableChanged, _store_busy)
    app.add_exception_handler(Exception, _server_error)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(ServerErrors)
    app.add_middleware(HeaderLimit, max_bytes=MAX_HEADER_BYTES)
