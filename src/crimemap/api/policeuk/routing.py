"""The rules every police.uk method shares, and :func:`get_and_post`: a method declared once, served on both.

The real API takes its area methods (``crimes-street``, ``outcomes-at-location``,
``stops-street``) as a GET with a query string or, when that would be longer
than :data:`~crimemap.wire.MAX_GET_LENGTH` characters, as a POST with the same
parameters in a form-encoded body. A method here is one ``async`` function whose
parameters are declared with a :class:`Param`; :func:`get_and_post` registers it
twice, reading those parameters from the query string for GET and from the form
body for POST (a parameter missing from the body is read from the query string,
as police.uk does), so that the OpenAPI document describes each method as the
real API serves it.

A request with a ``poly`` is answered in the thread pool (:func:`answer`): a
polygon of thousands of points spanning degrees costs up to a second, which on
the event loop would hold every other request of the worker that long.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from crimemap.api.policeuk import schema
from crimemap.api.policeuk.errors import bad_request
from crimemap.store.base import Store
from crimemap.wire import MAX_GET_LENGTH

__all__ = [
    "ERRORS",
    "NOT_FOUND",
    "Param",
    "StoreDep",
    "answer",
    "check_get_length",
    "get_and_post",
]


async def check_get_length(request: Request) -> None:
    """The real API refuses long GETs (clients then switch to POST); so does this one."""
    if request.method != "GET":
        return
    scope = request.scope
    query = scope.get("query_string", b"")
    length = len(scope.get("raw_path") or scope["path"].encode()) + (len(query) + 1 if query else 0)
    if length > MAX_GET_LENGTH:
        raise bad_request(
            f"GET request longer than {MAX_GET_LENGTH} characters ({length})",
            "send the same parameters as a form-encoded POST body instead",
        )


async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schema.Error, "description": "A malformed parameter, or a GET over 4,094 characters."},
    401: {"model": schema.Error, "description": "No key or bearer token, where the server has API keys."},
    403: {"model": schema.Error, "description": "A key or bearer token the server does not accept."},
    413: {"model": schema.Error, "description": "A request body over 1 MiB."},
    429: {"model": schema.Error, "description": "Too many requests (only when rate limiting is on)."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": schema.Error, "description": "An unknown category, force, location or crime."}
}


# -- parameters ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A police.uk parameter, declared once: a query parameter of a GET, a form field of a POST.

    ``Annotated[str | None, Param(...)]`` in a :func:`get_and_post` method; :meth:`query` and :meth:`form`
    give FastAPI's declarations, which a method served on one verb only uses directly.
    """

    description: str
    examples: tuple[str, ...] = ()

    def query(self) -> Any:
        return Query(description=self.description, examples=list(self.examples) or None)

    def form(self) -> Any:
        return Form(description=self.description)


_LAT = Param("Latitude of the point (WGS 84 decimal degrees); given with `lng`.", ("51.513",))
_LNG = Param("Longitude of the point (WGS 84 decimal degrees); given with `lat`.", ("-0.093",))
_POLY = Param(
    "A custom area: lat,lng pairs separated by colons; it is closed automatically. Instead of `lat` and `lng`.",
    ("51.52,-0.10:51.52,-0.08:51.50,-0.09",),
)
_DATE = Param("The month, YYYY-MM. Default: the latest month stored.", ("2017-01",))
_LOCATION = Param("A map point's id (street.id in crime results). Instead of `lat` and `lng`.")

Lat = Annotated[str | None, _LAT]
Lng = Annotated[str | None, _LNG]
Poly = Annotated[str | None, _POLY]
Date = Annotated[str | None, _DATE]
Location = Annotated[str | None, _LOCATION]
LatQ = Annotated[str | None, _LAT.query()]
LngQ = Annotated[str | None, _LNG.query()]
DateQ = Annotated[str | None, _DATE.query()]
LocationQ = Annotated[str | None, _LOCATION.query()]


# -- one method, two verbs -----------------------------------------------------------------------------------------

Method = Callable[..., Awaitable[Response]]
_REQUEST = "request_for_query_string"
"""The request, added to a POST method that does not take it, to read parameters missing from the body."""


def get_and_post(
    router: APIRouter, path: str, *, summary: str, description: str, **route: Any
) -> Callable[[Method], Method]:
    """Serve the decorated method on ``GET path`` (query string) and ``POST path`` (form-encoded body).

    The POST operation is named ``<method>_by_post`` and summarised as taking its parameters in a body.
    """

    def register(method: Method) -> Method:
        signature = inspect.signature(method, eval_str=True)
        params = {name: _param_of(p.annotation) for name, p in signature.parameters.items()}
        fields = [name for name, param in params.items() if param is not None]
        takes_request = next((n for n, p in signature.parameters.items() if p.annotation is Request), None)

        @functools.wraps(method)
        async def by_get(**values: Any) -> Response:
            return await method(**values)

        async def by_post(**values: Any) -> Response:
            request: Request = values[takes_request] if takes_request else values.pop(_REQUEST)
            for name in fields:
                if values[name] is None:
                    values[name] = request.query_params.get(name)
            return await method(**values)

        by_get.__signature__ = _signature(signature, params, Param.query)  # type: ignore[attr-defined]
        post_signature = _signature(signature, params, Param.form)
        if not takes_request:
            extra = inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
            post_signature = post_signature.replace(parameters=[*post_signature.parameters.values(), extra])
        by_post.__signature__ = post_signature  # type: ignore[attr-defined]
        by_post.__name__ = by_post.__qualname__ = f"{method.__name__}_by_post"
        router.add_api_route(
            path, by_get, methods=["GET"], summary=summary, description=description, name=method.__name__, **route
        )
        router.add_api_route(
            path,
            by_post,
            methods=["POST"],
            summary=f"{summary} (parameters in a form-encoded body)",
            description=description + " The body takes the same parameters as the GET query string.",
            name=by_post.__name__,
            **route,
        )
        return method

    return register


def _param_of(annotation: Any) -> Param | None:
    if get_origin(annotation) is Annotated:
        return next((a for a in get_args(annotation)[1:] if isinstance(a, Param)), None)
    return None


def _signature(
    signature: inspect.Signature, params: dict[str, Param | None], declare: Callable[[Param], Any]
) -> inspect.Signature:
    """``signature`` with each :class:`Param` replaced by its FastAPI declaration (``Query`` or ``Form``)."""
    parameters = []
    for name, parameter in signature.parameters.items():
        param = params[name]
        if param is not None:
            parameter = parameter.replace(annotation=Annotated[str | None, declare(param)])
        parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    return signature.replace(parameters=parameters, return_annotation=Response)


# -- polygons in the thread pool -----------------------------------------------------------------------------------

_ONE_POLYGON_AT_A_TIME = threading.Lock()
"""Polygons are answered one at a time in each worker, as they were on the event loop: the stores cache
each polygon prepared by shapely, and a prepared geometry must not be used by two threads at once
(GEOS crashes)."""


def _alone(respond: Callable[..., Response], *args: Any) -> Response:
    with _ONE_POLYGON_AT_A_TIME:
        return respond(*args)


async def answer(poly: str | None, respond: Callable[..., Response], *args: Any) -> Response:
    """``respond(*args)``: in the thread pool for a polygon, so that it cannot hold the event loop."""
    if poly is None:
        return respond(*args)
    return await run_in_threadpool(_alone, respond, *args)
