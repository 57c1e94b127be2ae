"""OGC API - Features over every stored table: QGIS, ArcGIS Pro, GDAL/ogr2ogr, geopandas read it natively.

    GET /ogc/                                         landing page
    GET /ogc/conformance                              conformance classes (only those implemented)
    GET /ogc/api                                      OpenAPI 3.0 definition
    GET /ogc/collections                              one collection per table
    GET /ogc/collections/{id}                         its title, extent (bbox, months) and links
    GET /ogc/collections/{id}/queryables              JSON Schema of its columns
    GET /ogc/collections/{id}/items                   features: bbox, datetime, limit, properties, sortby,
                                                      filter (CQL2), next/prev links
    GET /ogc/collections/{id}/items/{featureId}       one feature

A request walks one straight way: parameters are checked into query values
(:mod:`crimemap.api.ogc.params`), one page is read (:func:`crimemap.api.ogc.pages.read_page`)
and the collection is written around it. Errors are OGC exception bodies
(:mod:`crimemap.api.ogc.errors`).

``numberMatched`` is given only when it costs nothing: for a collection read
without any filter (the table's feature count), and on the last page of a
result (everything before it, plus the page).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.responses import RedirectResponse, Response

from crimemap.api.access import require_ogc_access
from crimemap.api.methods import NO_SUCH_PATH, allowed_methods
from crimemap.api.ogc import metadata as meta
from crimemap.api.ogc.errors import OGCError, OGCRoute, not_found
from crimemap.api.ogc.openapi import document
from crimemap.api.ogc.pages import Cursors, Page, read_page, seek
from crimemap.api.ogc.params import (
    FEATURE_PARAMETERS,
    METADATA_PARAMETERS,
    check_format,
    check_known,
    items_request,
    properties,
    single,
)
from crimemap.api.page_tokens import PageTokens, secret_of
from crimemap.echo import cut
from crimemap.export.geojson import feature_bytes
from crimemap.export.plan import value_fixer
from crimemap.store.base import Store
from crimemap.store.catalogue import TableInfo

PREFIX = "/ogc"

router = APIRouter(route_class=OGCRoute, tags=["OGC API - Features"], include_in_schema=False)
"""Described by its own OpenAPI document at ``/ogc/api`` (the standard's), not by the server's ``/openapi.json``."""


def install(app: FastAPI) -> None:
    """Mount the API on ``app`` (called by :func:`crimemap.api.app.create_app`)."""
    app.state.ogc_cursors = Cursors(PageTokens(secret_of(app.state.settings)))
    app.state.ogc_extents = meta.Extents()
    app.include_router(router)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _base(request: Request) -> str:
    """The API's root URL as the client reached it, without a final slash."""
    return str(request.base_url).rstrip("/") + PREFIX


def _json(content: Any, media: str = meta.JSON) -> Response:
    return Response(orjson.dumps(content), media_type=media)


def _metadata_request(request: Request) -> None:
    check_known(request.query_params, METADATA_PARAMETERS)
    check_format(request.query_params)


def _table(request: Request, collection_id: str) -> TableInfo:
    table = _store(request).table(collection_id)
    if table is None:
        raise not_found(f"no collection {collection_id!r}; GET {PREFIX}/collections lists them")
    return table


# -- metadata ---------------------------------------------------------------------------------------------


@router.get(PREFIX)
@router.get(PREFIX + "/", include_in_schema=False)
def landing_page(request: Request) -> Response:
    """The landing page: links to the API definition, the conformance classes and the collections."""
    _metadata_request(request)
    return _json(meta.landing(_base(request)))


@router.get(PREFIX + "/conformance")
def conformance(request: Request) -> Response:
    """The conformance classes implemented (Core, GeoJSON, OpenAPI 3.0, Filter, CQL2 text and JSON, Sorting)."""
    _metadata_request(request)
    return _json(meta.conformance())


@router.get(PREFIX + "/api")
def api_definition(request: Request) -> Response:
    """This API's OpenAPI 3.0 definition."""
    _metadata_request(request)
    return _json(document(_base(request)), meta.OPENAPI)


@router.get(PREFIX + "/collections", dependencies=[Depends(require_ogc_access)])
def collections(request: Request) -> Response:
    """Every stored table as a collection."""
    _metadata_request(request)
    store, base, extents = _store(request), _base(request), request.app.state.ogc_extents
    docs = [meta.collection(t, extents.of(store, t), base) for t in store.tables()]
    return _json(
        {
            "links": [meta.link(f"{base}/collections", "self", meta.JSON, "the collections")],
            "collections": docs,
        }
    )


@router.get(PREFIX + "/collections/{collection_id}", dependencies=[Depends(require_ogc_access)])
def collection(request: Request, collection_id: str) -> Response:
    """One collection: title, extent, links."""
    _metadata_request(request)
    table = _table(request, collection_id)
    return _json(meta.collection(table, request.app.state.ogc_extents.of(_store(request), table), _base(request)))


@router.get(PREFIX + "/collections/{collection_id}/queryables", dependencies=[Depends(require_ogc_access)])
def queryables(request: Request, collection_id: str) -> Response:
    """The columns a filter, sortby or properties may name, as JSON Schema.

    Served as ``application/schema+json`` when the client accepts it, else as
    ``application/json`` (GDAL asks for JSON and refuses any other type).
    """
    _metadata_request(request)
    accept = request.headers.get("accept", "")
    media = meta.SCHEMA if meta.SCHEMA in accept or "application/json" not in accept else meta.JSON
    return _json(meta.queryables(_table(request, collection_id), _base(request)), media)


@router.get(PREFIX + "/collections/{collection_id}/schema", dependencies=[Depends(require_ogc_access)])
def schema(request: Request, collection_id: str) -> Response:
    """The JSON Schema of the collection's features (its ``describedby`` link), as the queryables are served."""
    _metadata_request(request)
    accept = request.headers.get("accept", "")
    media = meta.SCHEMA if meta.SCHEMA in accept or "application/json" not in accept else meta.JSON
    return _json(meta.feature_schema(_table(request, collection_id), _base(request)), media)


@router.get(PREFIX + "/collections/{collection_id}/schema.xsd", dependencies=[Depends(require_ogc_access)])
def schema_xsd(request: Request, collection_id: str) -> Response:
    """The GML application schema of the collection's features (its XML ``describedby`` link)."""
    _metadata_request(request)
    table = _table(request, collection_id)
    xsd = meta.feature_xsd(table)
    if xsd is None:
        raise not_found(f"collection {collection_id!r} has a column whose name is no XML name; see its schema")
    return Response(xsd.encode(), media_type=meta.XML)


# -- features -----------------------------------------------------------------------------------------------


@router.get(PREFIX + "/collections/{collection_id}/items", dependencies=[Depends(require_ogc_access)])
def items(request: Request, collection_id: str) -> Response:
    """A page of features: ``bbox``, ``datetime``, ``limit``, ``properties``, ``sortby``, ``filter``, ``cursor``."""
    store = _store(request)
    table = _table(request, collection_id)
    req = items_request(request.query_params, table)
    cursors: Cursors = request.app.state.ogc_cursors
    at = cursors.open(table, req)
    start = at.after
    if start is None and at.served > 0:
        start = seek(store, table, req, at.served)
    page = Page([], None, False) if start is None and at.served > 0 else read_page(store, table, req, start)
    links = [meta.link(str(request.url), "self", meta.GEOJSON, "this page")]
    if page.more:
        token = cursors.next(table, req, at, start, page)
        links.append(meta.link(_with_cursor(request, token), "next", meta.GEOJSON, "the next page"))
    prev = cursors.prev(table, req, at)
    if prev is not None:
        links.append(meta.link(_with_cursor(request, prev), "prev", meta.GEOJSON, "the previous page"))
    links.append(meta.link(f"{_base(request)}/collections/{table.id}", "collection", meta.JSON, "the collection"))
    matched = None
    if req.where is None:
        matched = table.feature_count
    elif not page.more:
        matched = at.served + len(page.features)
    body = [b'{"type":"FeatureCollection","features":[', b",".join(page.features), b"]"]
    body.append(b',"numberReturned":%d' % len(page.features))
    if matched is not None:
        body.append(b',"numberMatched":%d' % matched)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body.append(b',"timeStamp":"%b","links":%b}' % (stamp.encode(), orjson.dumps(links)))
    return Response(b"".join(body), media_type=meta.GEOJSON)


def _with_cursor(request: Request, token: str) -> str:
    """This request's URL with ``cursor`` set to ``token`` and every other parameter kept."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    params.append(("cursor", token))
    return str(request.url.replace(query=urlencode(params)))


@router.get(PREFIX + "/collections/{collection_id}/items/{feature_id}", dependencies=[Depends(require_ogc_access)])
def item(request: Request, collection_id: str, feature_id: str) -> Response:
    """One feature by its id (``properties`` may choose the columns)."""
    check_known(request.query_params, FEATURE_PARAMETERS)
    check_format(request.query_params)
    table = _table(request, collection_id)
    names = properties(single(request.query_params, "properties"), table)
    feature = None
    if re.fullmatch(r"-?[0-9]{1,19}", feature_id) and abs(int(feature_id)) < 2**63:
        feature = _store(request).feature(table.id, int(feature_id), names)
    if feature is None:
        raise not_found(f"no feature {feature_id!r} in collection {table.id!r}")
    fix = value_fixer(table.schema, names)
    if fix is not None:
        feature = feature._replace(properties=fix(feature.properties))
    here = f"{_base(request)}/collections/{table.id}"
    links = [
        meta.link(f"{here}/items/{feature.gx_id}", "self", meta.GEOJSON, "this feature"),
        meta.link(here, "collection", meta.JSON, "the collection"),
    ]
    body = feature_bytes([feature], names)[0]
    return Response(body[:-1] + b',"links":' + orjson.dumps(links) + b"}", media_type=meta.GEOJSON)


@router.api_route(
    PREFIX + "/{path:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
    name=NO_SUCH_PATH,
)
def unknown(request: Request, path: str) -> Response:
    """404 for a path that is no resource; 405 with ``Allow`` for a method a resource does not take."""
    allowed = allowed_methods(request)
    if allowed:
        raise OGCError(
            405,
            "MethodNotAllowed",
            f"{request.method} is not allowed on {cut(request.url.path)}; use {allowed}",
            headers={"Allow": allowed},
        )
    if request.method == "GET" and path.endswith("/") and path.strip("/"):
        return RedirectResponse(f"{PREFIX}/{path.rstrip('/')}" + (f"?{request.url.query}" if request.url.query else ""))
    raise OGCError(404, "NotFound", f"{request.method} {PREFIX}/{path} is not part of this API; see {PREFIX}/api")


__all__ = ["PREFIX", "install", "router"]
