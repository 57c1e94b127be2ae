"""Compressed answers for clients that ask for them: zstd, brotli or gzip, chosen by ``Accept-Encoding``.

Clients across the internet pay for bytes: a dense mile of crimes is about a
megabyte of JSON and a tenth of that compressed. Every answer of a compressible
type (JSON, GeoJSON, CSV, HTML, JavaScript, CSS) is compressed when the client
accepts an encoding this server speaks, with the fastest settings that still
shrink JSON eight- to ten-fold, measured on a dense mile (963 KB):

=========================  ========  ==========
encoding                   time      size
=========================  ========  ==========
zstd, level 1              0.8 ms    105 KB
brotli, quality 1          1.1 ms    109 KB
gzip, ISA-L level 1        0.6 ms    123 KB
gzip, zlib level 1         3.8 ms    140 KB
=========================  ========  ==========

So gzip is made by ISA-L (``isal``, Intel's igzip) when it is installed, else by
zlib. When a client accepts several encodings equally, zstd is preferred, then
brotli, then gzip. Streamed answers (downloads) are compressed as they stream.

Answers kept in the response cache (``crimes-street``, the crime counts, the
force outlines: :func:`cached_answer`) are compressed before they are cached
(:func:`compress`), one entry per encoding; everything else is compressed on
its way out by :class:`CompressionMiddleware`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crimemap.api.cache import Body, ResponseCache

MIN_BYTES = 1024
"""Answers smaller than this are sent as they are: compressing them saves nothing worth the time."""

PREFERENCE = ("zstd", "br", "gzip")
"""Encodings this server speaks, the preferred first when a client accepts several equally."""

_COMPRESSIBLE = ("application/json", "application/geo+json", "text/", "application/javascript", "image/svg")


def _available() -> tuple[str, ...]:
    found = []
    for name, module in (("zstd", "zstandard"), ("br", "brotli")):
        try:
            __import__(module)
        except ImportError:
            continue
        found.append(name)
    return (*found, "gzip")


AVAILABLE = _available()


def negotiate(accept_encoding: str | None) -> str | None:
    """The encoding to answer in, by the client's ``Accept-Encoding`` (q-values honoured), or None.

    >>> negotiate("gzip, deflate, br, zstd")
    'zstd'
    >>> negotiate("gzip;q=1, br;q=0.5")
    'gzip'
    >>> negotiate("identity") is None
    True
    """
    if not accept_encoding:
        return None
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name:
            weights[name] = q
    star = weights.get("*", 0.0)
    best: tuple[float, int, str] | None = None
    for rank, name in enumerate(PREFERENCE):
        if name not in AVAILABLE:
            continue
        q = weights.get(name, star)
        if q <= 0:
            continue
        candidate = (q, -rank, name)
        if best is None or candidate > best:
            best = candidate
    return best[2] if best is not None else None


def compress(body: bytes, encoding: str | None) -> bytes:
    """``body`` in ``encoding`` (None: as it is)."""
    if encoding is None:
        return body
    compressor = streaming(encoding)
    return compressor(body, True)


def cached_answer(request: Request, key: tuple[Any, ...], render: Callable[[], bytes], media_type: str) -> Response:
    """The answer ``render()`` makes, kept in the app's response cache as it is sent: compressed for
    the client's ``Accept-Encoding`` (``key`` plus the encoding is the entry's key), so a repeated
    request costs a lookup, neither rendering nor compressing. ``key`` must name the store's generation.
    """
    cache: ResponseCache = request.app.state.cache
    encoding = negotiate(request.headers.get("accept-encoding"))

    def render_body() -> Body:
        body = render()
        if encoding is None or len(body) < MIN_BYTES:
            return Body(body)
        return Body(compress(body, encoding), encoding)

    found = cache.get_or_render((*key, encoding), render_body)
    headers = {"Vary": "Accept-Encoding"}
    if found.encoding is not None:
        headers["Content-Encoding"] = found.encoding
    return Response(found.data, media_type=media_type, headers=headers)


Compressor = Callable[[bytes, bool], bytes]
"""Called with each chunk in turn and whether it is the last; returns the compressed bytes to send."""


def streaming(encoding: str) -> Compressor:
    """A compressor for a stream of chunks in ``encoding``."""
    if encoding == "zstd":
        import zstandard

        zc = zstandard.ZstdCompressor(level=1).compressobj()

        def zstd(chunk: bytes, last: bool) -> bytes:
            out = zc.compress(chunk)
            return out + zc.flush() if last else out

        return zstd
    if encoding == "br":
        import brotli

        bc = brotli.Compressor(quality=1)

        def br(chunk: bytes, last: bool) -> bytes:
            out: bytes = bc.process(chunk)
            return out + bc.finish() if last else out

        return br
    gc = _gzip_object()

    def gzip(chunk: bytes, last: bool) -> bytes:
        out: bytes = gc.compress(chunk)
        return out + gc.flush() if last else out

    return gzip


def _gzip_object() -> Any:
    try:
        from isal import isal_zlib

        return isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
    except ImportError:  # pragma: no cover - isal has wheels for the usual platforms
        return zlib.compressobj(1, zlib.DEFLATED, 31)


def compressible(headers: Headers) -> bool:
    kind = headers.get("content-type", "")
    return "content-encoding" not in headers and kind.startswith(_COMPRESSIBLE)


class CompressionMiddleware:
    """Compress answers of a compressible type for clients that accept an encoding (see the module docstring).

    Answers that already carry ``Content-Encoding`` (the police.uk API's cached,
    compressed bodies) pass as they are. Every answer of a compressible type
    says ``Vary: Accept-Encoding``, so caches keep the variants apart.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding = negotiate(Headers(scope=scope).get("accept-encoding"))
        state: dict[str, Any] = {"start": None, "compressor": None, "passthrough": False}

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["start"] = message
                return
            if message["type"] != "http.response.body" or state["passthrough"]:
                await send(message)
                return
            start = state["start"]
            if start is not None:
                state["start"] = None
                headers = MutableHeaders(raw=start["headers"])
                body, more = message.get("body", b""), message.get("more_body", False)
                if not compressible(headers):
                    state["passthrough"] = True
                    await send(start)
                    await send(message)
                    return
                headers.add_vary_header("Accept-Encoding")
                if encoding is None or (not more and len(body) < MIN_BYTES):
                    state["passthrough"] = True
                    await send(start)
                    await send(message)
                    return
                headers["Content-Encoding"] = encoding
                del headers["Content-Length"]
                state["compressor"] = streaming(encoding)
                if not more:
                    data = state["compressor"](body, True)
                    headers["Content-Length"] = str(len(data))
                    await send(start)
                    await send({"type": "http.response.body", "body": data, "more_body": False})
                    return
                await send(start)
            more = message.get("more_body", False)
            data = state["compressor"](message.get("body", b""), not more)
            await send({"type": "http.response.body", "body": data, "more_body": more})

        await self.app(scope, receive, wrapped)


def install(app: Any) -> None:
    """Compress the application's answers (outermost, so every other layer's answers are compressed too)."""
    app.add_middleware(CompressionMiddleware)
