"""Whole-table downloads: ``GET /download/{table}.{geojson,csv,gpkg,parquet,fgb}``.

A table downloads as its features read (:mod:`crimemap.api.access`: open, or
with a key or bearer token once the server has them), optionally narrowed by a Maps Engine
``where`` clause and a ``select`` list of columns. The file is streamed as the
store is read (:mod:`crimemap.export`), in constant memory however large the
table; errors found before streaming starts (unknown table, bad ``where``, a
GIS format whose libraries are not installed) are answered in the same
envelope as the Maps Engine API's. GeoPackage and FlatGeobuf are written to a
temporary file first (they are written in place), so their first byte comes
when the whole file is ready.

    curl -O 'http://localhost:8000/download/policeuk-crimes.csv?where=month%3D%272017-01%27'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request
from starlette.responses import Response, StreamingResponse

from crimemap.api.access import require_table_access
from crimemap.api.mapsengine.errors import MapsEngineError, MapsEngineRoute, invalid, not_found
from crimemap.api.mapsengine.params import single
from crimemap.api.mapsengine.routes import unknown_table
from crimemap.api.mapsengine.schema import ERRORS, KeyQ, SelectQ, WhereQ
from crimemap.export import check_available, export_chunks
from crimemap.export import csv as csv_export
from crimemap.export import gdal as gdal_export
from crimemap.export import geojson as geojson_export
from crimemap.export import parquet as parquet_export
from crimemap.export.plan import FORMATS, Export, ExportError
from crimemap.query import Predicate
from crimemap.store.base import Store
from crimemap.store.catalogue import ColumnType
from crimemap.where import parse_where
from crimemap.where_columns import parse_select
from crimemap.where_syntax import GEOMETRY, WhereError

MEDIA_TYPES = {
    "geojson": geojson_export.MEDIA_TYPE,
    "csv": csv_export.MEDIA_TYPE,
    "parquet": parquet_export.MEDIA_TYPE,
    **gdal_export.MEDIA_TYPES,
}

router = APIRouter(route_class=MapsEngineRoute, tags=["downloads"])


def install(app: FastAPI) -> None:
    """Mount the downloads on ``app`` (called by :func:`crimemap.api.app.create_app`)."""
    app.include_router(router)


_DOWNLOADED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The table, streamed: RFC 7946 GeoJSON (id = gx_id), CSV (gx_id, the columns,"
        " longitude, latitude), GeoPackage, GeoParquet or FlatGeobuf.",
        "content": {media: {"schema": {"type": "string"}} for media in dict.fromkeys(MEDIA_TYPES.values())},
    }
}


@router.get("/download/{file_name}", response_class=StreamingResponse, responses={**_DOWNLOADED, **ERRORS})
def download(
    request: Request,
    file_name: Annotated[
        str, Path(description="<table id>.<geojson|csv|gpkg|parquet|fgb>", examples=["policeuk-crimes.csv"])
    ],
    where: WhereQ = None,
    select: SelectQ = None,
    key: KeyQ = None,
) -> Response:
    """A whole table as `/download/<table id>.geojson` (`.csv`, `.gpkg`, `.parquet`, `.fgb`), narrowed by
    `where` and `select`."""
    table_id, _, fmt = file_name.rpartition(".")
    if fmt not in FORMATS or not table_id:
        raise not_found(f"Not Found: download /download/<table id>.<{'|'.join(FORMATS)}>")
    require_table_access(request)
    store: Store = request.app.state.store
    table = store.table(table_id)
    if table is None:
        raise not_found(unknown_table(request, table_id))
    export = Export(table, *_filters(request, table.schema))
    try:
        check_available(fmt)
    except ExportError as e:
        raise MapsEngineError(501, "notImplemented", str(e)) from None
    headers = {"Content-Disposition": f'attachment; filename="{_safe(table_id)}.{fmt}"'}
    return StreamingResponse(export_chunks(store, export, fmt), media_type=MEDIA_TYPES[fmt], headers=headers)


def _filters(request: Request, schema: Mapping[str, ColumnType]) -> tuple[Predicate | None, tuple[str, ...] | None]:
    """The ``where`` predicate and ``select`` columns (geometry is always written)."""
    params = request.query_params
    where_text, select_text = single(params, "where"), single(params, "select")
    try:
        where = parse_where(where_text, schema) if where_text and where_text.strip() else None
        columns = None
        if select_text and select_text.strip():
            columns = tuple(n for n in parse_select(select_text, schema) if n != GEOMETRY)
    except WhereError as e:
        raise invalid(e.parameter, e.message) from None
    return where, columns


def _safe(name: str) -> str:
    """A file name for Content-Disposition: letters, digits and ``-_.`` kept, the rest ``_``."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
