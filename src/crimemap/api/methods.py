"""Which methods a path takes, for the ``Allow`` header of a 405.

Starlette answers a wrong method with the methods of the first route whose
path matches, but one path may have several routes (``GET`` and ``POST
/stats/crimes`` are two), and the catch-all routes under ``/mapsengine`` and
``/ogc``, which answer unknown paths in their API's envelope, take every method.
:func:`allowed_methods` reads them all, leaving out the catch-alls (named
:data:`NO_SUCH_PATH`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Route

NO_SUCH_PATH = "no-such-path"
"""The name of the catch-all routes: they answer for paths that are no method, so they allow nothing."""

_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """The methods the request's path takes, as an ``Allow`` header value (``""``: none, the path is unknown).

    >>> _allow_value({"POST", "GET"})
    'GET, POST'
    """
    methods: set[str] = set()
    for route in _routes(request.app.router.routes):
        if not isinstance(route, Route) or route.name == NO_SUCH_PATH or route.methods is None:
            continue
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= route.methods
    return _allow_value(methods)


def _routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, those of included routers too (FastAPI keeps an included router whole, as one route)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def _allow_value(methods: set[str]) -> str:
    known = [m for m in _ORDER if m in methods]
    return ", ".join(known + sorted(methods - set(_ORDER)))
