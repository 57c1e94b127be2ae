"""Crime and stop-and-search counts over HTTP: ``GET /stats/crimes`` and ``GET /stats/stops``.

What police.uk's street-level API never answered, and every resident, reporter
and analyst asks first: how many, and is it rising. Crimes are counted grouped
by any of month, category, force, outcome, LSOA and grid cell (at a web map's
zoom), stops and searches by month, force, type, outcome, object of search and
grid cell, after filters on months, forces, categories (crimes) and an area
(``bbox`` or police.uk's ``poly``), answered as JSON rows or CSV::

    GET /stats/crimes?group=month,category&months=2024-01..2024-06&bbox=-0.2,51.4,0.1,51.6
    [{"month": "2024-01", "category": "anti-social-behaviour", "count": 412}, ...]

A parameter that cannot be used, or one this call does not know, is a 400
whose message names it (police.uk's error body). Bodies are cached as the
police.uk answers are, keyed on the store's generation, so a load is seen at
once. Long ``poly`` values can be sent as a form-encoded POST.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import Response

from crimemap.api import compression
from crimemap.api.access import require_policeuk_access
from crimemap.api.policeuk import schema
from crimemap.api.policeuk.errors import PoliceUKError, bad_request
from crimemap.errors import ReadTimeout, StoreError
from crimemap.neighbourhood_stats import NEIGHBOURHOOD, count_crimes, count_stops, grouping
from crimemap.neighbourhoods import in_neighbourhood
from crimemap.stats_output import GroupedQuery, csv_text, json_bytes
from crimemap.stats_query import GROUPS, StatsError, parse_stats
from crimemap.stats_stops_query import STOP_GROUPS, parse_stop_stats
from crimemap.store.base import Store

PARAMETERS = ("group", "months", "category", "force", "bbox", "poly", "neighbourhood", "zoom", "format", "key")
"""What ``/stats/crimes`` reads (``key`` is the access model's, :mod:`crimemap.api.access`)."""
STOP_PARAMETERS = tuple(p for p in PARAMETERS if p != "category")
"""What ``/stats/stops`` reads: stops have no category."""
FORMATS = ("json", "csv")

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schema.Error, "description": "A bad or unknown parameter, named in the message."},
    401: {"model": schema.Error, "description": "No key or bearer token, where the server has API keys."},
    403: {"model": schema.Error, "description": "A key or bearer token the server does not accept."},
    413: {"model": schema.Error, "description": "A request body over 1 MiB."},
    503: {"model": schema.Error, "description": "The count took longer than the store's time budget."},
}
"""Counts are police.uk data: the same access and the same error body as the police.uk API."""

_COUNTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The rows: JSON objects of the group values and `count`, or the same as CSV.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {"type": "object", "required": ["count"], "properties": {"count": {"type": "integer"}}},
                }
            },
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}

router = APIRouter(
    prefix="/stats", tags=["statistics"], dependencies=[Depends(require_policeuk_access)], responses=ERRORS
)

_GROUP = f"Fields to group by, comma-separated: any of {', '.join((*GROUPS, NEIGHBOURHOOD))}. None: one row, the total."
_MONTHS = "One month YYYY-MM, or YYYY-MM..YYYY-MM (inclusive). Default: every stored month."
_CATEGORY = "Crime category slugs, comma-separated (see /api/crime-categories). Default: all-crime."
_FORCE = "Force ids, comma-separated (see /api/forces): the force that reported the crime."
_BBOX = (
    "Only located crimes in this box: minlng,minlat,maxlng,maxlat (edges included). Not with `poly` or `neighbourhood`."
)
_POLY = (
    "Only located crimes in this polygon, police.uk's form: lat,lng:lat,lng:... (edges included)."
    " Not with `bbox` or `neighbourhood`."
)
_NEIGHBOURHOOD = "Only what lies in this neighbourhood's stored boundary: force/id (as poly would with its /boundary)."
_ZOOM = (
    "Required with group=cell, used only then: the web map zoom whose grid to count in (cells about 24 pixels"
    " a side); 0-22."
)
_FORMAT = "json (default): a list of row objects; csv: the same rows as CSV with a header."

_DOC = (
    "Counts of police.uk crimes, grouped and filtered. JSON is a list of rows, e.g."
    ' `[{"month": "2020-04", "category": "burglary", "count": 12}]`; a cell row carries `cell`'
    " (`level/row/col`), its centre `lng`, `lat` and `bounds` `[west, south, east, north]`. Cells are the"
    " store's grid of 0.0025° x 0.004° merged 2^level a side, level = 13 - zoom (0 to 12). `outcome` is"
    ' the latest outcome\'s code (`null`: none); `lsoa` the LSOA code (`""`: none given). Crimes without'
    " a location count in every total but in no area and no cell. Rows are in order of their values."
    " A bad or unknown parameter is 400, naming it."
)


def install(app: FastAPI) -> None:
    """Mount the statistics API on ``app`` (called by :func:`crimemap.api.app.create_app`)."""
    app.include_router(router)


@dataclass(frozen=True)
class Counted:
    """What one statistics path counts: its parameters, its parser and the store's count."""

    path: str
    parameters: tuple[str, ...]
    parse: Callable[..., GroupedQuery]
    count: Callable[[Store, Any], list[tuple[Any, ...]]]


CRIMES = Counted("/stats/crimes", PARAMETERS, grouping(parse_stats), count_crimes)
STOPS = Counted("/stats/stops", STOP_PARAMETERS, grouping(parse_stop_stats), count_stops)


def _answer(request: Request, values: dict[str, str | None], counted: Counted = CRIMES) -> Response:
    unknown = sorted(set(request.query_params) - set(counted.parameters))
    if unknown:
        raise bad_request(f"unknown parameter {unknown[0]!r}", f"the parameters are {', '.join(counted.parameters)}")
    fmt = (values.pop("format") or "json").strip().lower()
    neighbourhood = values.pop("neighbourhood", None)
    if fmt not in FORMATS:
        raise bad_request(f"format must be json or csv, got {fmt!r}", "format=csv gives the rows as CSV")
    store: Store = request.app.state.store
    try:
        query = counted.parse(**values)
        if neighbourhood is not None and neighbourhood.strip():
            query = in_neighbourhood(store, query, neighbourhood)
    except StatsError as e:
        raise bad_request(e.message, f"see /docs for the parameters of {counted.path} ({e.parameter})") from None
    media_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    try:
        key = (store.generation(), counted.path, fmt, query)
        return compression.cached_answer(request, key, lambda: _render(store, counted, query, fmt), media_type)
    except ReadTimeout as e:
        raise PoliceUKError(503, str(e), "ask for fewer months, a smaller area or coarser groups") from None
    except StoreError as e:
        raise PoliceUKError(503, str(e)) from None


def _render(store: Store, counted: Counted, query: GroupedQuery, fmt: str) -> bytes:
    rows = counted.count(store, query)
    return csv_text(query, rows).encode() if fmt == "csv" else json_bytes(query, rows)


@router.get("/crimes", summary="Crime counts", description=_DOC, response_class=Response, responses=_COUNTED)
def stats_crimes(
    request: Request,
    group: Annotated[str | None, Query(description=_GROUP, examples=["month,category"])] = None,
    months: Annotated[str | None, Query(description=_MONTHS, examples=["2024-01..2024-06"])] = None,
    category: Annotated[str | None, Query(description=_CATEGORY, examples=["burglary"])] = None,
    force: Annotated[str | None, Query(description=_FORCE, examples=["metropolitan"])] = None,
    bbox: Annotated[str | None, Query(description=_BBOX, examples=["-0.2,51.4,0.1,51.6"])] = None,
    poly: Annotated[str | None, Query(description=_POLY)] = None,
    neighbourhood: Annotated[str | None, Query(description=_NEIGHBOURHOOD, examples=["leicestershire/NC04"])] = None,
    zoom: Annotated[str | None, Query(description=_ZOOM, examples=["6"])] = None,
    format: Annotated[str | None, Query(description=_FORMAT)] = None,
    key: Annotated[str | None, Query(description="An API key, where the server has them.")] = None,
) -> Response:
    values = dict(group=group, months=months, category=category, force=force, bbox=bbox, poly=poly, zoom=zoom)
    return _answer(request, {**values, "neighbourhood": neighbourhood, "format": format})


@router.post(
    "/crimes",
    summary="Crime counts (parameters in a form-encoded body)",
    description=_DOC,
    response_class=Response,
    responses=_COUNTED,
)
def stats_crimes_by_post(
    request: Request,
    group: Annotated[str | None, Form(description=_GROUP)] = None,
    months: Annotated[str | None, Form(description=_MONTHS)] = None,
    category: Annotated[str | None, Form(description=_CATEGORY)] = None,
    force: Annotated[str | None, Form(description=_FORCE)] = None,
    bbox: Annotated[str | None, Form(description=_BBOX)] = None,
    poly: Annotated[str | None, Form(description=_POLY)] = None,
    neighbourhood: Annotated[str | None, Form(description=_NEIGHBOURHOOD)] = None,
    zoom: Annotated[str | None, Form(description=_ZOOM)] = None,
    format: Annotated[str | None, Form(description=_FORMAT)] = None,
) -> Response:
    values = dict(group=group, months=months, category=category, force=force, bbox=bbox, poly=poly, zoom=zoom)
    return _answer(request, {**values, "neighbourhood": neighbourhood, "format": format})


_STOP_GROUP = (
    f"Fields to group by, comma-separated: any of {', '.join((*STOP_GROUPS, NEIGHBOURHOOD))}. None: one row, the total."
)
_STOP_FORCE = "Force ids, comma-separated (see /api/forces): the force that made the stop."
_STOP_BBOX = (
    "Only located stops in this box: minlng,minlat,maxlng,maxlat (edges included). Not with `poly` or `neighbourhood`."
)
_STOP_POLY = (
    "Only located stops in this polygon, police.uk's form: lat,lng:lat,lng:... (edges included)."
    " Not with `bbox` or `neighbourhood`."
)

_STOP_DOC = (
    "Counts of police.uk stops and searches, grouped and filtered as /stats/crimes counts crimes. JSON is a"
    ' list of rows, e.g. `[{"month": "2024-06", "type": "Person search", "count": 12}]`. `type`,'
    " `outcome` and `object` are the stop's `type`, `outcome` and `object_of_search` as its police.uk"
    ' JSON gives them (`type` and `object` `null` where the file gave none, `outcome` `""`); the outcome is'
    " the file's wording, so older files' names (`Suspect arrested`) are rows of their own. Cells are those"
    " of /stats/crimes (level = 13 - zoom); an area holds the stops /api/stops-street answers for it. Stops"
    " without a location count in every total but in no area and no cell. Rows are in order of their values."
    " A bad or unknown parameter is 400, naming it."
)


@router.get(
    "/stops", summary="Stop-and-search counts", description=_STOP_DOC, response_class=Response, responses=_COUNTED
)
def stats_stops(
    request: Request,
    group: Annotated[str | None, Query(description=_STOP_GROUP, examples=["month,type"])] = None,
    months: Annotated[str | None, Query(description=_MONTHS, examples=["2020-01..2020-03"])] = None,
    force: Annotated[str | None, Query(description=_STOP_FORCE, examples=["city-of-london"])] = None,
    bbox: Annotated[str | None, Query(description=_STOP_BBOX, examples=["-0.2,51.4,0.1,51.6"])] = None,
    poly: Annotated[str | None, Query(description=_STOP_POLY)] = None,
    neighbourhood: Annotated[str | None, Query(description=_NEIGHBOURHOOD, examples=["leicestershire/NC04"])] = None,
    zoom: Annotated[str | None, Query(description=_ZOOM, examples=["6"])] = None,
    format: Annotated[str | None, Query(description=_FORMAT)] = None,
    key: Annotated[str | None, Query(description="An API key, where the server has them.")] = None,
) -> Response:
    values = dict(group=group, months=months, force=force, bbox=bbox, poly=poly, zoom=zoom)
    return _answer(request, {**values, "neighbourhood": neighbourhood, "format": format}, STOPS)


@router.post(
    "/stops",
    summary="Stop-and-search counts (parameters in a form-encoded body)",
    description=_STOP_DOC,
    response_class=Response,
    responses=_COUNTED,
)
def stats_stops_by_post(
    request: Request,
    group: Annotated[str | None, Form(description=_STOP_GROUP)] = None,
    months: Annotated[str | None, Form(description=_MONTHS)] = None,
    force: Annotated[str | None, Form(description=_STOP_FORCE)] = None,
    bbox: Annotated[str | None, Form(description=_STOP_BBOX)] = None,
    poly: Annotated[str | None, Form(description=_STOP_POLY)] = None,
    neighbourhood: Annotated[str | None, Form(description=_NEIGHBOURHOOD)] = None,
    zoom: Annotated[str | None, Form(description=_ZOOM)] = None,
    format: Annotated[str | None, Form(description=_FORMAT)] = None,
) -> Response:
    values = dict(group=group, months=months, force=force, bbox=bbox, poly=poly, zoom=zoom)
    return _answer(request, {**values, "neighbourhood": neighbourhood, "format": format}, STOPS)
