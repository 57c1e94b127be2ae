"""The Google Maps Engine v1 tables API (read endpoints), wire-compatible, over every stored table.

Google shut Maps Engine down in 2016; clients written for it (the NYC Crime
Map, scripts that paged its tables) work against crimemap unchanged::

    GET /mapsengine/v1/tables/{id}/features?select=YR,MO,geometry&where=MO=2&maxResults=1000
    GET /mapsengine/v1/tables/{id}/features/{gx_id}
    GET /mapsengine/v1/tables/{id}          (needs a bearer token, as it did)
    GET /mapsengine/v1/tables               (needs a bearer token)

Decisions, where the samples of the real API in ``shared/data`` and its
documentation are silent:

- A feature has a ``geometry`` member only when ``geometry`` is selected (or
  ``select`` is absent), placed before ``properties`` as the real pages had
  it; properties follow ``select`` order. A feature stored without geometry
  has ``"geometry": null``.
- ``gx_id`` (the feature id) is selectable like a column and returned as a
  string, as Maps Engine's was; ``where``/``orderBy`` cannot use it.
- Pages follow ``orderBy`` then ``gx_id``; ``nextPageToken`` is a keyset
  cursor (:mod:`crimemap.api.page_tokens`), so paging returns every
  feature exactly once and is unaffected by other tables loading.
- ``version=draft`` is served like ``published``: a table has one version.
- Unknown parameters are ignored (so are Google's ``alt``, ``fields``,
  ``prettyPrint``); responses are compact JSON.

Access (:mod:`crimemap.api.access`): when API keys are configured,
``features`` calls need ``key`` to be one of them (403 without, 400
``keyInvalid`` for another) unless they carry a valid bearer token; the table
resources always need ``Authorization: Bearer <token>`` with a configured
token, and answer the real API's 401 "Login Required" without one.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from crimemap.api.access import credentials_configured, require_bearer, require_table_access, settings_of
from crimemap.api.mapsengine.errors import (
    MapsEngineError,
    MapsEngineRoute,
    invalid,
    not_found,
)
from crimemap.api.mapsengine.params import (
    GX_ID,
    FeaturesRequest,
    check_version,
    features_request,
    schema_resource,
    selection,
)
from crimemap.api.mapsengine.schema import (
    ERRORS,
    TABLE_ERRORS,
    FeatureCollection,
    IncludeQ,
    IntersectsQ,
    KeyQ,
    LimitQ,
    MaxResultsQ,
    OrderByQ,
    PageTokenQ,
    SelectQ,
    Table,
    Tables,
    VersionQ,
    WhereQ,
)
from crimemap.api.mapsengine.schema import Feature as FeatureModel
from crimemap.api.methods import NO_SUCH_PATH, allowed_methods
from crimemap.api.page_tokens import Page, PageTokens, secret_of
from crimemap.api.responses import JSONResponse
from crimemap.echo import cut, echo
from crimemap.errors import PageCursorGone
from crimemap.export.geojson import feature_bytes, geojson_page
from crimemap.export.plan import value_fixer
from crimemap.query import FeatureQuery, Scalar
from crimemap.records import Feature
from crimemap.store.base import Store
from crimemap.store.catalogue import TableInfo
from crimemap.store.geojson_sql import GeoJSONPage, Layout
from crimemap.where_syntax import GEOMETRY

PREFIX = "/mapsengine/v1"

router = APIRouter(route_class=MapsEngineRoute, tags=["Maps Engine"])


def install(app: FastAPI) -> None:
    """Mount the API on ``app`` (called by :func:`crimemap.api.app.create_app`)."""
    app.state.mapsengine_tokens = PageTokens(secret_of(app.state.settings))
    app.include_router(router)


# -- access (crimemap.api.access) -------------------------------------------------------------------


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _table(request: Request, table_id: str) -> TableInfo:
    table = _store(request).table(table_id)
    if table is None:
        raise not_found(unknown_table(request, table_id))
    return table


def unknown_table(request: Request, table_id: str) -> str:
    """The 404 message for an unknown table, pointing at a listing this server will answer."""
    where = "GET /health lists the tables"
    if credentials_configured(settings_of(request)):
        where += " (send your key or bearer token with it)"
    return f"Table {echo(table_id)} not found; {where}"


# -- features --------------------------------------------------------------------------------------------


@router.get(PREFIX + "/tables/{table_id}/features", response_model=FeatureCollection, responses=ERRORS)
@router.get(PREFIX + "/tables/{table_id}/features/", include_in_schema=False)
def list_features(
    request: Request,
    table_id: str,
    where: WhereQ = None,
    select: SelectQ = None,
    order_by: OrderByQ = None,
    limit: LimitQ = None,
    max_results: MaxResultsQ = None,
    page_token: PageTokenQ = None,
    intersects: IntersectsQ = None,
    include: IncludeQ = None,
    version: VersionQ = None,
    key: KeyQ = None,
) -> Response:
    """Features of a table, a page at a time: follow `nextPageToken` until it is absent."""
    require_table_access(request)
    table = _table(request, table_id)
    tokens: PageTokens = request.app.state.mapsengine_tokens
    req = features_request(request.query_params, table, tokens)
    served = req.page.served if req.page else 0
    size = req.max_results if req.limit is None else min(req.max_results, req.limit - served)
    names = tuple(n for n in req.properties if n in table.schema)
    fetch = names + tuple(k.column for k in req.order_by if k.column not in names)
    after = req.page.after if req.page else None
    query = FeatureQuery(table.id, req.where, fetch, req.order_by, after, size + 1)
    layout = Layout(
        req.properties,
        frozenset(n for n in req.properties if n not in table.schema),
        with_id=False,
        with_geometry=req.with_geometry,
    )
    try:
        found = geojson_page(_store(request), query, layout) if size > 0 else GeoJSONPage([], [])
    except PageCursorGone as e:
        raise invalid("pageToken", str(e)) from None
    more = len(found.features) > size
    features = found.features[:size]
    body = [b'{"type":"FeatureCollection","features":[', b",".join(features), b"]"]
    if more and (req.limit is None or served + size < req.limit):
        token = tokens.issue(table.id, req.fingerprint, Page(served + size, tuple(found.cursors[size - 1])))
        body.append(b',"nextPageToken":' + orjson.dumps(token))
    if req.include_schema:
        body.append(b',"schema":' + orjson.dumps(schema_resource(table)))
    body.append(b"}")
    return Response(b"".join(body), media_type="application/json")


@router.get(PREFIX + "/tables/{table_id}/features/{feature_id}", response_model=FeatureModel, responses=ERRORS)
@router.get(PREFIX + "/tables/{table_id}/features/{feature_id}/", include_in_schema=False)
def get_feature(
    request: Request,
    table_id: str,
    feature_id: str,
    select: SelectQ = None,
    version: VersionQ = None,
    key: KeyQ = None,
) -> Response:
    """One feature by its `gx_id` (`select` and `version` only, as in Maps Engine)."""
    require_table_access(request)
    table = _table(request, table_id)
    check_version(request.query_params)
    output = selection(request.query_params, table)
    names = tuple(n for n in output if n in table.schema)
    feature = None
    if re.fullmatch(r"-?[0-9]{1,19}", feature_id) and abs(int(feature_id)) < 2**63:
        feature = _store(request).feature(table.id, int(feature_id), names)
    if feature is None:
        raise not_found(f"Feature {echo(feature_id)} not found in table {table.id!r}")
    req = FeaturesRequest(None, output, (), None, 1, False, "", None)
    return Response(render_features(table, req, names, [feature])[0], media_type="application/json")


def render_features(
    table: TableInfo, req: FeaturesRequest, fetched: tuple[str, ...], features: list[Feature]
) -> list[bytes]:
    """GeoJSON features with properties in ``select`` order (``gx_id`` as a string, as Maps Engine had it)."""
    names = req.properties
    fix = value_fixer(table.schema, fetched)
    if names != fetched or fix is not None:
        slots = [fetched.index(n) if n in table.schema else -1 for n in names]
        rows = []
        for f in features:
            values: tuple[Scalar, ...] = fix(f.properties) if fix is not None else f.properties
            rows.append(f._replace(properties=tuple(values[i] if i >= 0 else str(f.gx_id) for i in slots)))
        features = rows
    return feature_bytes(features, names, with_id=False, with_geometry=req.with_geometry)


# -- tables -----------------------------------------------------------------------------------------------


@router.get(PREFIX + "/tables", response_model=Tables, responses=TABLE_ERRORS)
@router.get(PREFIX + "/tables/", include_in_schema=False)
def list_tables(request: Request) -> Response:
    """Every table: the police.uk crimes and each loaded GeoJSON/CSV table (bearer token needed)."""
    require_bearer(request)
    return JSONResponse({"tables": [table_resource(t) for t in _store(request).tables()]})


@router.get(PREFIX + "/tables/{table_id}", response_model=Table, responses=TABLE_ERRORS)
@router.get(PREFIX + "/tables/{table_id}/", include_in_schema=False)
def get_table(request: Request, table_id: str, version: VersionQ = None) -> Response:
    """A table's resource: id, name, bbox, schema... (bearer token needed, as in Maps Engine)."""
    require_bearer(request)
    check_version(request.query_params)
    return JSONResponse(table_resource(_table(request, table_id)))


_PROJECT_ASSET = re.compile(r"([0-9]{20})-[0-9]{20}")


def table_resource(table: TableInfo) -> dict[str, Any]:
    """The Maps Engine ``Table`` resource of a table."""
    project = _PROJECT_ASSET.fullmatch(table.id)
    resource: dict[str, Any] = {
        "id": table.id,
        "projectId": project.group(1) if project else "crimemap",
        "name": table.name,
        "description": table.description,
        "tags": list(table.tags),
        "sourceEncoding": "UTF-8",
        "processingStatus": "complete",
        "schema": schema_resource(table),
    }
    if table.bbox is not None:
        resource["bbox"] = list(table.bbox)
    if table.created is not None:
        resource["creationTime"] = _rfc3339(table.created)
    if table.modified is not None:
        resource["lastModifiedTime"] = _rfc3339(table.modified)
    return resource


def _rfc3339(when: dt.datetime) -> str:
    when = when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


# -- everything else under /mapsengine ---------------------------------------------------------------------


@router.api_route(
    "/mapsengine",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
    name=NO_SUCH_PATH,
)
@router.api_route(
    "/mapsengine/{path:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
    name=NO_SUCH_PATH,
)
def unknown(request: Request, path: str = "") -> Response:
    """404 for a path that is no method; 405 with ``Allow`` for a method a path does not take."""
    allowed = allowed_methods(request)
    if allowed:
        raise MapsEngineError(
            405,
            "httpMethodNotAllowed",
            f"{request.method} is not allowed on {cut(request.url.path)}; use {allowed}",
            headers={"Allow": allowed},
        )
    raise MapsEngineError(
        404,
        "notFound",
        f"Not Found: {request.method} /mapsengine/{path} is not part of this API; crimemap serves"
        f" GET {PREFIX}/tables, {PREFIX}/tables/{{id}}, {PREFIX}/tables/{{id}}/features and"
        f" {PREFIX}/tables/{{id}}/features/{{gx_id}}",
    )


__all__ = ["GEOMETRY", "GX_ID", "PREFIX", "install", "router", "table_resource"]
