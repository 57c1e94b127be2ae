"""The police.uk API (data.police.uk/docs), wire-compatible, over the stored crimes.

Any client of the real API works by changing only its base URL to
``http://<host>:<port>/api/``. Served methods::

    GET|POST /api/crimes-street/{category}   lat+lng (1 mile) or poly; date
    GET      /api/crimes-at-location         location_id, or lat+lng (nearest map point); date
    GET      /api/crimes-no-location         category, force; date
    GET      /api/crime-categories           date
    GET      /api/crimes-street-dates
    GET      /api/crime-last-updated
    GET      /api/outcomes-for-crime/{persistent_id}
    GET|POST /api/outcomes-at-location       location_id, lat+lng (1 mile) or poly; date
    GET      /api/forces, /api/forces/{id}

(and the stop-and-search methods, :mod:`crimemap.api.policeuk.stops`; the neighbourhood
methods and a force's people, :mod:`crimemap.api.policeuk.neighbourhoods`).

The real API's limits hold: a GET whose target (path and query string) is
longer than :data:`~crimemap.wire.MAX_GET_LENGTH` characters is 400 (POST has no limit); an
area (a point's mile or a polygon) with more than :data:`~crimemap.wire.MAX_CRIMES` crimes is
503, decided by asking the store whether more than that many match, which it
answers without counting them all. Errors are JSON (:mod:`crimemap.api.policeuk.errors`);
rate limiting is :mod:`crimemap.api.ratelimit`.

The routes are ``async`` and query the store on the event loop. An embedded
store's query is CPU work under the GIL: run in a thread pool, eight
concurrent queries fight over the GIL (the sqlite3 module releases it at every
row) and together served fewer requests a second than one at a time did.
Scale with worker processes (``crimemap serve --workers N``) instead.

Polygons are the exception: a ``poly`` of thousands of points spanning degrees
costs up to a second, and on the event loop it would hold every other request
of the worker that long. A request with a ``poly`` is answered in the thread
pool (:func:`~crimemap.api.policeuk.routing.answer`), and a ``poly`` is at most
:data:`~crimemap.api.policeuk.params.MAX_POLY_POINTS` points. Each GET|POST method is
declared once (:func:`~crimemap.api.policeuk.routing.get_and_post`).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response

from crimemap import vocab
from crimemap.api import compression, ratelimit
from crimemap.api.access import require_policeuk_access
from crimemap.api.policeuk import errors, params, schema
from crimemap.api.policeuk.errors import bad_request, not_found, too_many_crimes
from crimemap.api.policeuk.routing import (
    ERRORS,
    NOT_FOUND,
    Date,
    DateQ,
    Lat,
    LatQ,
    Lng,
    LngQ,
    Location,
    LocationQ,
    Poly,
    StoreDep,
    answer,
    check_get_length,
    get_and_post,
)
from crimemap.echo import echo
from crimemap.neighbourhoods import force_json
from crimemap.policeuk_json import outcomes_for_crime_json
from crimemap.query import Circle, CrimeQuery
from crimemap.store.base import Store
from crimemap.wire import MAX_CRIMES, MAX_GET_LENGTH

_SAME_POINT_M = 1.0
"""Map points closer than this are the same point (coordinates have six decimals: 0.1 m)."""

_TOO_MANY: dict[int | str, dict[str, Any]] = {
    503: {"model": schema.Error, "description": f"The area holds more than {MAX_CRIMES:,} crimes."}
}

router = APIRouter(
    prefix="/api",
    tags=["police.uk"],
    dependencies=[Depends(check_get_length), Depends(require_policeuk_access)],
    responses=ERRORS,
)


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


# -- the 10,000-crime rule --------------------------------------------------------------------------


def crimes_within_cap(store: Store, query: CrimeQuery) -> bytes:
    """The JSON of the crimes ``query`` selects, or 503 when there are more than :data:`MAX_CRIMES`."""
    found = store.crimes_json(query, MAX_CRIMES + 1)
    if found.found > MAX_CRIMES:
        raise _too_many()
    return found.body


def _outcomes_within_cap(store: Store, query: CrimeQuery) -> bytes:
    found = store.outcomes_json(query, MAX_CRIMES + 1)
    if found.found > MAX_CRIMES:
        raise _too_many("outcomes")
    return found.body


def _too_many(what: str = "crimes") -> errors.PoliceUKError:
    return too_many_crimes(
        f"more than {MAX_CRIMES:,} {what} in this area",
        "ask for a smaller area, one category, or one month at a time",
    )


# -- crimes -------------------------------------------------------------------------------------------


def _crimes_street(
    request: Request, category: str, lat: str | None, lng: str | None, poly: str | None, date: str | None
) -> Response:
    store: Store = request.app.state.store
    slug = params.category(category)
    area = params.area(lat, lng, poly)
    month = params.month(store, date)
    if month is None:
        return _json(b"[]")
    query = CrimeQuery(month=month, area=area, category=slug)
    return compression.cached_answer(
        request, (store.generation(), query), lambda: crimes_within_cap(store, query), "application/json"
    )


_STREET_DOC = (
    "Street-level crimes within 1 mile of a point (`lat`, `lng`) or within a custom area (`poly`), in one"
    " month: give `lat` and `lng` together, or `poly`, not both. `category` is a slug from crime-categories, or"
    f" `all-crime`. More than {MAX_CRIMES:,} crimes is 503; a GET longer than {MAX_GET_LENGTH:,} characters is"
    " 400: POST the parameters instead."
)


@get_and_post(
    router,
    "/crimes-street/{category}",
    response_model=list[schema.Crime],
    responses={**NOT_FOUND, **_TOO_MANY},
    summary="Street-level crimes",
    description=_STREET_DOC,
)
async def crimes_street(
    request: Request, category: str, lat: Lat = None, lng: Lng = None, poly: Poly = None, date: Date = None
) -> Response:
    return await answer(poly, _crimes_street, request, category, lat, lng, poly, date)


@router.get(
    "/crimes-at-location",
    response_model=list[schema.Crime],
    responses={**NOT_FOUND},
    summary="Crimes at a location",
)
async def crimes_at_location(
    store: StoreDep, location_id: LocationQ = None, lat: LatQ = None, lng: LngQ = None, date: DateQ = None
) -> Response:
    """The crimes of one month at one map point: `location_id`, or the map point nearest to `lat`/`lng`.

    Give `location_id`, or `lat` and `lng` together, not both.
    """
    street_id = params.street(store, location_id, lat, lng)
    month = params.month(store, date)
    if street_id is None or month is None:
        return _json(b"[]")
    return _json(crimes_within_cap(store, CrimeQuery(month=month, street_id=street_id)))


@router.get(
    "/crimes-no-location",
    response_model=list[schema.Crime],
    responses={**NOT_FOUND},
    summary="Crimes with no location",
)
async def crimes_no_location(
    store: StoreDep,
    force: Annotated[str | None, Query(description="The force id (required), e.g. city-of-london.")] = None,
    category: Annotated[str | None, Query(description="A category slug, or all-crime (the default).")] = None,
    date: DateQ = None,
) -> Response:
    """Crimes a force published without a location (`location` is null), in one month."""
    force_id = params.force(force)
    slug = params.category(category)
    month = params.month(store, date)
    if month is None:
        return _json(b"[]")
    query = CrimeQuery(month=month, category=slug, force=force_id, located=False)
    return _json(crimes_within_cap(store, query))


# -- months and categories ------------------------------------------------------------------------------


@router.get("/crime-categories", response_model=list[schema.CrimeCategory], summary="Crime categories")
async def crime_categories(date: DateQ = None) -> Response:
    """The categories valid in a month (the set changed in 2013-05), `all-crime` first."""
    month = params.month_or_none(date)
    body = [{"url": vocab.ALL_CRIME, "name": "All crime"}]
    body += [{"url": c.slug, "name": c.name} for c in vocab.categories_for_month(month)]
    return _json(orjson.dumps(body))


@router.get("/crimes-street-dates", response_model=list[schema.StreetDate], summary="Months available")
async def crimes_street_dates(store: StoreDep) -> Response:
    """Every stored month, newest first, with the forces whose stop-and-search data it holds (`stop-and-search`)."""
    stops = {m.month: list(m.forces) for m in store.stop_months()}
    months = sorted({m.month for m in store.months()} | stops.keys(), reverse=True)
    return _json(orjson.dumps([{"date": m, "stop-and-search": stops.get(m, [])} for m in months]))


@router.get("/crime-last-updated", response_model=schema.LastUpdated, summary="Latest month")
async def crime_last_updated(store: StoreDep) -> Response:
    """The first day of the latest stored month (`YYYY-MM-01`); null for an empty store."""
    latest = store.latest_month()
    return _json(orjson.dumps({"date": f"{latest}-01" if latest else None}))


# -- outcomes -------------------------------------------------------------------------------------------


@router.get(
    "/outcomes-for-crime/{persistent_id}",
    response_model=schema.CrimeOutcomes,
    responses={**NOT_FOUND},
    summary="Outcomes for a crime",
)
async def outcomes_for_crime(persistent_id: str, store: StoreDep) -> Response:
    """A crime (by its 64-character `persistent_id`) and its outcomes, oldest first."""
    crime = store.crime_by_persistent_id(persistent_id)
    if crime is None:
        raise not_found(
            f"no crime with persistent_id {echo(persistent_id)}",
            "persistent ids are 64 hexadecimal characters, from crime results",
        )
    return _json(outcomes_for_crime_json(crime, store.outcome_history(persistent_id)))


def _outcomes_at_location(
    store: Store,
    location_id: str | None,
    lat: str | None,
    lng: str | None,
    poly: str | None,
    date: str | None,
) -> Response:
    month = params.month(store, date)
    if location_id is not None:
        if lat is not None or lng is not None or poly is not None:
            raise bad_request("give one of location_id, lat and lng, or poly")
        return _outcomes_at_street(store, params.location_id(location_id), month)
    query = CrimeQuery(month=month, area=params.area(lat, lng, poly))
    if month is None:
        return _json(b"[]")
    return _json(_outcomes_within_cap(store, query))


def _outcomes_at_street(store: Store, street_id: int, month: str | None) -> Response:
    """Outcomes of the crimes at one map point.

    Found by the point's coordinates, then kept by their crime's map point:
    outcomes files spell street names in capitals ("On or near FLEET STREET")
    where street files do not, so an outcome row's own street id cannot be
    trusted to match the crime's.
    """
    street = store.street(street_id)
    if street is None:
        raise not_found(f"unknown location {street_id}", "location ids are street.id in crime results")
    if month is None:
        return _json(b"[]")
    query = CrimeQuery(month=month, area=Circle((street.lng, street.lat), _SAME_POINT_M), street_id=street_id)
    return _json(_outcomes_within_cap(store, query))


_OUTCOMES_DOC = (
    "Outcomes recorded in one month at a map point (`location_id`), within 1 mile of a point (`lat`, `lng`)"
    " or within a custom area (`poly`), each with its crime: give one of `location_id`, `lat` and `lng` together,"
    " or `poly`. Outcomes of crimes that are not stored are"
    f" left out. More than {MAX_CRIMES:,} outcomes is 503."
)


@get_and_post(
    router,
    "/outcomes-at-location",
    response_model=list[schema.OutcomeAtLocation],
    responses={**NOT_FOUND, **_TOO_MANY},
    summary="Street-level outcomes",
    description=_OUTCOMES_DOC,
)
async def outcomes_at_location(
    store: StoreDep,
    location_id: Location = None,
    lat: Lat = None,
    lng: Lng = None,
    poly: Poly = None,
    date: Date = None,
) -> Response:
    return await answer(poly, _outcomes_at_location, store, location_id, lat, lng, poly, date)


# -- forces ----------------------------------------------------------------------------------------------

_FORCES_BODY = orjson.dumps([{"id": f.id, "name": f.name} for f in vocab.FORCES])


@router.get("/forces", response_model=list[schema.ForceSummary], summary="Forces")
async def forces() -> Response:
    """Every police force: its id (used by crimes-no-location and forces/{id}) and name."""
    return _json(_FORCES_BODY)


@router.get("/forces/{force_id}", response_model=schema.Force, responses={**NOT_FOUND}, summary="A force")
async def force(force_id: str, store: StoreDep) -> Response:
    """One force: as harvested from police.uk (crimemap harvest policeuk --data forces), else its id and name
    with the other fields null or empty."""
    return _json(force_json(store, params.force(force_id)))


def install(app: FastAPI) -> None:
    """Mount the police.uk API under ``/api``, with its JSON errors and (if configured) rate limiting."""
    errors.install(app)
    app.include_router(router)
    ratelimit.install(app, app.state.settings)
