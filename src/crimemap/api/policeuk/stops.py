"""The police.uk API's stop-and-search methods, wire-compatible, over the stored stops.

Mounted beside :mod:`crimemap.api.policeuk.crimes`, with its rules (JSON errors, the
4,094-character GET limit, rate limiting)::

    GET|POST /api/stops-street         lat+lng (1 mile) or poly; date
    GET      /api/stops-at-location    location_id; date
    GET      /api/stops-no-location    force; date
    GET      /api/stops-force          force; date: every stop of the force, with or without a location

``date`` defaults to the latest month with stop-and-search data; a month with
none is an empty list. A ``poly`` is answered in the thread pool, as for crimes
(:func:`crimemap.api.policeuk.routing.answer`). An area holding more than 10,000 stops is 503, decided
without counting them all. A stop's JSON (field order and types as the real
API's) is made when it is loaded (:func:`crimemap.policeuk_json.stop_object`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response

from crimemap.api.access import require_policeuk_access
from crimemap.api.cache import Body, ResponseCache
from crimemap.api.policeuk import params, schema
from crimemap.api.policeuk.errors import bad_request, too_many_crimes
from crimemap.api.policeuk.routing import (
    ERRORS,
    NOT_FOUND,
    Lat,
    Lng,
    Param,
    Poly,
    StoreDep,
    answer,
    check_get_length,
    get_and_post,
)
from crimemap.query import StopQuery
from crimemap.store.base import Store
from crimemap.wire import MAX_CRIMES, MAX_GET_LENGTH

MAX_STOPS = MAX_CRIMES
"""An area holding more stops than this is answered 503: police.uk's 10,000 rule, as for crimes."""

router = APIRouter(
    prefix="/api",
    tags=["police.uk stop and search"],
    dependencies=[Depends(check_get_length), Depends(require_policeuk_access)],
    responses=ERRORS,
)

_TOO_MANY: dict[int | str, dict[str, Any]] = {
    503: {"model": schema.Error, "description": f"The area holds more than {MAX_STOPS:,} stops."}
}
_STOP_DATE = Param("The month, YYYY-MM. Default: the latest month with stop-and-search data.", ("2019-12",))
StopDate = Annotated[str | None, _STOP_DATE]
StopDateQ = Annotated[str | None, _STOP_DATE.query()]
LocationQ = Annotated[
    str | None, Query(description="A map point's id (location.street.id in stop results) (required).")
]
ForceQ = Annotated[str | None, Query(description="The force id (required), e.g. city-of-london.")]


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def stop_month(store: Store, date: str | None) -> str | None:
    """``date`` as ``YYYY-MM`` (400 if malformed); absent: the latest month with stops (None if there is none)."""
    if date is None:
        return store.latest_stop_month()
    return params.month_or_none(date)


def _within_cap(store: Store, query: StopQuery) -> bytes:
    found = store.stops_json(query, MAX_STOPS + 1)
    if found.found > MAX_STOPS:
        raise too_many_crimes(
            f"more than {MAX_STOPS:,} stops and searches in this area", "ask for a smaller area or one month at a time"
        )
    return found.body


def _all_of(store: Store, query: StopQuery) -> bytes:
    """A force's stops: no area, so no cap (as police.uk answers ``stops-force``)."""
    return store.stops_json(query, 1 << 62).body


# -- stops-street ---------------------------------------------------------------------------------------------


def _stops_street(request: Request, lat: str | None, lng: str | None, poly: str | None, date: str | None) -> Response:
    store: Store = request.app.state.store
    cache: ResponseCache = request.app.state.cache
    area = params.area(lat, lng, poly)
    month = stop_month(store, date)
    if month is None:
        return _json(b"[]")
    query = StopQuery(month=month, area=area)
    return _json(cache.get_or_render((store.generation(), query), lambda: Body(_within_cap(store, query))).data)


_STREET_DOC = (
    "Stops and searches within 1 mile of a point (`lat`, `lng`) or within a custom area (`poly`), in one"
    f" month: give `lat` and `lng` together, or `poly`, not both. More than {MAX_STOPS:,} stops is 503; a GET"
    f" longer than {MAX_GET_LENGTH:,} characters is 400: POST the parameters instead."
)


@get_and_post(
    router,
    "/stops-street",
    response_model=list[schema.Stop],
    responses={**_TOO_MANY},
    summary="Stop and searches by area",
    description=_STREET_DOC,
)
async def stops_street(
    request: Request, lat: Lat = None, lng: Lng = None, poly: Poly = None, date: StopDate = None
) -> Response:
    return await answer(poly, _stops_street, request, lat, lng, poly, date)


# -- by location, without location, by force ----------------------------------------------------------------------


@router.get(
    "/stops-at-location",
    response_model=list[schema.Stop],
    responses={**NOT_FOUND},
    summary="Stop and searches at a location",
)
async def stops_at_location(
    store: StoreDep,
    location_id: LocationQ = None,
    date: StopDateQ = None,
) -> Response:
    """The stops and searches of one month at one map point (`location_id`)."""
    if location_id is None:
        raise bad_request("location_id is required", "e.g. location_id=884343: a street.id from stop results")
    street_id = params.location_id(location_id)
    if not store.stop_location_known(street_id):
        raise params.unknown_location(location_id)
    month = stop_month(store, date)
    if month is None:
        return _json(b"[]")
    return _json(_within_cap(store, StopQuery(month=month, street_id=street_id, located=True)))


@router.get(
    "/stops-no-location",
    response_model=list[schema.Stop],
    responses={**NOT_FOUND},
    summary="Stop and searches with no location",
)
async def stops_no_location(store: StoreDep, force: ForceQ = None, date: StopDateQ = None) -> Response:
    """The stops and searches a force published without a location (`location` is null), in one month."""
    force_id = params.force(force)
    month = stop_month(store, date)
    if month is None:
        return _json(b"[]")
    return _json(_all_of(store, StopQuery(month=month, force=force_id, located=False)))


@router.get(
    "/stops-force",
    response_model=list[schema.Stop],
    responses={**NOT_FOUND},
    summary="Stop and searches by force",
)
async def stops_force(store: StoreDep, force: ForceQ = None, date: StopDateQ = None) -> Response:
    """Every stop and search a force reported in one month, with or without a location, in the file's order."""
    force_id = params.force(force)
    month = stop_month(store, date)
    if month is None:
        return _json(b"[]")
    return _json(_all_of(store, StopQuery(month=month, force=force_id, located=None)))


def install(app: FastAPI) -> None:
    """Mount the stop-and-search methods (the police.uk API's errors and limits are installed with it)."""
    app.include_router(router)


__all__ = ["MAX_STOPS", "install", "router", "stop_month"]
