"""The police.uk API's neighbourhood methods and a force's senior officers, wire-compatible.

Mounted beside :mod:`crimemap.api.policeuk.crimes`, with its rules (JSON errors, the
4,094-character GET limit, access keys, rate limiting)::

    GET /api/locate-neighbourhood?q=lat,lng       {"force", "neighbourhood"}; 404 where none holds the point
    GET /api/forces/{force}/people                 the force's senior officers
    GET /api/{force}/neighbourhoods                [{"id", "name"}]
    GET /api/{force}/{neighbourhood}               its details (id, name, url_force, centre, population, ...)
    GET /api/{force}/{neighbourhood}/boundary      [{"latitude", "longitude"}], strings as published
    GET /api/{force}/{neighbourhood}/people        its team
    GET /api/{force}/{neighbourhood}/events
    GET /api/{force}/{neighbourhood}/priorities

The answers are the documents stored by a load or a harvest
(:mod:`crimemap.neighbourhoods`), sent as they were published. An unknown force
or neighbourhood is 404. The ``/api/{force}/...`` paths match any first segment,
so this router is mounted after every other police.uk router: their fixed paths
(``/api/forces/{id}``, ``/api/crimes-street/{category}``) are matched first.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import Response
from pydantic import BaseModel

from crimemap import geo, neighbourhoods
from crimemap.api.access import require_policeuk_access
from crimemap.api.policeuk import params
from crimemap.api.policeuk.errors import PoliceUKError, bad_request, not_found
from crimemap.api.policeuk.routing import ERRORS, StoreDep, check_get_length
from crimemap.api.policeuk.schema import Error
from crimemap.echo import echo
from crimemap.store.base import Store


class NeighbourhoodSummary(BaseModel):
    id: str
    name: str


class Located(BaseModel):
    force: str
    neighbourhood: str


class Point(BaseModel):
    latitude: str
    longitude: str


class Neighbourhood(BaseModel):
    id: str
    name: str
    url_force: str | None
    centre: Point | None
    population: str
    contact_details: dict[str, Any]
    links: list[dict[str, Any]]
    locations: list[dict[str, Any]]
    description: str | None


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Error, "description": "An unknown force or neighbourhood."}
}

router = APIRouter(
    prefix="/api",
    tags=["police.uk neighbourhoods"],
    dependencies=[Depends(check_get_length), Depends(require_policeuk_access)],
    responses=ERRORS,
)


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _unknown(force: str, nbhd: str) -> PoliceUKError:
    return not_found(
        f"unknown neighbourhood {echo(nbhd)} of {force}",
        f"the force's neighbourhoods are at /api/{force}/neighbourhoods",
    )


def located_point(q: str | None) -> tuple[float, float]:
    """``(lng, lat)`` of ``q=lat,lng``; anything else is a 400."""
    hint = "q is a point: latitude,longitude in decimal degrees, e.g. q=52.6349,-1.1330"
    if q is None or not q.strip():
        raise bad_request("q is required", hint)
    parts = q.split(",")
    if len(parts) != 2:
        raise bad_request(f"q must be latitude,longitude, got {echo(q)}", hint)
    try:
        return geo.parse_latlng(parts[0].strip(), parts[1].strip())
    except ValueError as e:
        raise bad_request(str(e), hint) from None


@router.get(
    "/locate-neighbourhood", response_model=Located, responses={**_NOT_FOUND}, summary="The neighbourhood at a point"
)
async def locate_neighbourhood(
    store: StoreDep,
    q: Annotated[str | None, Query(description="latitude,longitude", examples=["52.6349,-1.1330"])] = None,
) -> Response:
    """The force and neighbourhood whose area holds the point; 404 where no stored neighbourhood does."""
    lng, lat = located_point(q)
    found = neighbourhoods.NeighbourhoodLocator.of(store).at(lng, lat)
    if found is None:
        raise not_found(f"no neighbourhood holds {lat},{lng}", "neighbourhood boundaries are loaded with crimemap load")
    return _json(orjson.dumps({"force": found[0], "neighbourhood": found[1]}))


@router.get("/forces/{force_id}/people", responses={**_NOT_FOUND}, summary="A force's senior officers")
async def force_people(force_id: str, store: StoreDep) -> Response:
    """The force's senior officers (name, rank, bio, contact_details), as harvested; ``[]`` when none are stored."""
    return _json(neighbourhoods.force_people_json(store, params.force(force_id)))


@router.get(
    "/{force}/neighbourhoods",
    response_model=list[NeighbourhoodSummary],
    responses={**_NOT_FOUND},
    summary="A force's neighbourhoods",
)
async def neighbourhood_list(force: str, store: StoreDep) -> Response:
    """Every neighbourhood of the force: its id and name."""
    return _json(neighbourhoods.list_json(store, params.force(force)))


@router.get(
    "/{force}/{neighbourhood}", response_model=Neighbourhood, responses={**_NOT_FOUND}, summary="A neighbourhood"
)
async def neighbourhood(force: str, neighbourhood: str, store: StoreDep) -> Response:
    """The neighbourhood's details: name, the force's page for it, centre, population, contacts, description."""
    body = neighbourhoods.details_json(store, params.force(force), neighbourhood)
    if body is None:
        raise _unknown(force, neighbourhood)
    return _json(body)


def _document(store: Store, force: str, nbhd: str, kind: str) -> Response:
    body = neighbourhoods.document_json(store, params.force(force), nbhd, kind)
    if body is None:
        raise _unknown(force, nbhd)
    return _json(body)


@router.get(
    "/{force}/{neighbourhood}/boundary",
    response_model=list[Point],
    responses={**_NOT_FOUND},
    summary="A neighbourhood's boundary",
)
async def boundary(force: str, neighbourhood: str, store: StoreDep) -> Response:
    """The points of the neighbourhood's boundary, in their published order, as strings."""
    return _document(store, force, neighbourhood, neighbourhoods.BOUNDARY)


@router.get("/{force}/{neighbourhood}/people", responses={**_NOT_FOUND}, summary="A neighbourhood's team")
async def people(force: str, neighbourhood: str, store: StoreDep) -> Response:
    """The neighbourhood's policing team: name, rank, bio, contact_details."""
    return _document(store, force, neighbourhood, neighbourhoods.PEOPLE)


@router.get("/{force}/{neighbourhood}/events", responses={**_NOT_FOUND}, summary="A neighbourhood's events")
async def events(force: str, neighbourhood: str, store: StoreDep) -> Response:
    """The neighbourhood's events: title, description, address, type, start and end dates, contact_details."""
    return _document(store, force, neighbourhood, neighbourhoods.EVENTS)


@router.get("/{force}/{neighbourhood}/priorities", responses={**_NOT_FOUND}, summary="A neighbourhood's priorities")
async def priorities(force: str, neighbourhood: str, store: StoreDep) -> Response:
    """The neighbourhood's priorities: issue, issue-date, action, action-date."""
    return _document(store, force, neighbourhood, neighbourhoods.PRIORITIES)


def install(app: FastAPI) -> None:
    """Mount the neighbourhood methods; after the other police.uk routers (see the module docstring)."""
    app.include_router(router)
