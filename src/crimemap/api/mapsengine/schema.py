"""The Maps Engine API's parameters and response shapes, for the OpenAPI document at ``/docs`` only.

The routes read their parameters from the query string themselves (through
:mod:`crimemap.api.mapsengine.params`, which refuses a parameter given twice
and answers in Google's envelope); these declarations only document them, as
plain strings, so that FastAPI never answers a 422 of its own.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field


def _q(description: str, example: str | None = None, alias: str | None = None) -> Any:
    return Query(alias=alias, description=description, examples=[example] if example is not None else None)


WhereQ = Annotated[
    str | None,
    _q("A Maps Engine where clause (at most 16 KiB), e.g. MO=10 AND YR=2013; see the README.", "MO = 2"),
]
SelectQ = Annotated[
    str | None, _q("Columns to return, comma-separated, geometry and gx_id included.", "MO,YR,geometry")
]
OrderByQ = Annotated[str | None, _q("Sort keys: column [ASC|DESC], comma-separated.", "YR DESC", "orderBy")]
LimitQ = Annotated[str | None, _q("The most features to return over all pages (a whole number >= 1).", "100")]
MaxResultsQ = Annotated[
    str | None, _q("Features per page: a whole number from 1 to 1,000 (the default).", "1000", "maxResults")
]
PageTokenQ = Annotated[str | None, _q("nextPageToken of the previous page, to get the next one.", None, "pageToken")]
IntersectsQ = Annotated[
    str | None,
    _q(
        "An area: POLYGON((lng lat, ...)) in WKT, a GeoJSON Polygon, or CIRCLE(lng lat, metres).",
        "CIRCLE(-73.95 40.75, 500)",
    ),
]
IncludeQ = Annotated[str | None, _q("schema: add the table's schema to the page.", "schema")]
VersionQ = Annotated[str | None, _q("published or draft (a table has one version, served for both).", "published")]
KeyQ = Annotated[str | None, _q("An API key, needed when the server has keys configured.")]


class Geometry(BaseModel):
    type: str = Field(description='"Point"; in a table of shapes, "Polygon" or "MultiPolygon" (or "Point")')
    coordinates: list[Any] = Field(
        description="[longitude, latitude] for a Point; its rings of such positions for a Polygon, its polygons"
        " for a MultiPolygon"
    )


class Feature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(description='"Feature"')
    geometry: Geometry | None = Field(
        default=None, description="Present when geometry is selected (or select is absent); null without a location."
    )
    properties: dict[str, Any] = Field(description="The selected columns, in select order; gx_id as a string.")


class Column(BaseModel):
    name: str
    type: str = Field(description="points (polygons: a table of shapes), integer, double, string, boolean or datetime")


class TableSchema(BaseModel):
    columns: list[Column]
    primaryGeometry: str
    primaryKey: str


class FeatureCollection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(description='"FeatureCollection"')
    features: list[Feature]
    nextPageToken: str | None = Field(default=None, description="Absent on the last page.")
    schema_: TableSchema | None = Field(default=None, alias="schema", description="With include=schema.")


class Table(BaseModel):
    id: str
    projectId: str
    name: str
    description: str
    tags: list[str]
    sourceEncoding: str
    processingStatus: str
    schema_: TableSchema = Field(alias="schema")
    bbox: list[float] | None = Field(default=None, description="[west, south, east, north]; absent when empty.")
    creationTime: str | None = None
    lastModifiedTime: str | None = None


class Tables(BaseModel):
    tables: list[Table]


class ErrorItem(BaseModel):
    domain: str
    reason: str = Field(description="invalid, keyInvalid, required, authError, dailyLimitExceededUnreg, notFound, ...")
    message: str
    locationType: str | None = None
    location: str | None = Field(default=None, description="The parameter or header at fault.")


class ErrorBody(BaseModel):
    errors: list[ErrorItem]
    code: int
    message: str


class Error(BaseModel):
    """Google's error envelope."""

    error: ErrorBody


def _error(description: str) -> dict[str, Any]:
    return {"model": Error, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("invalid: a parameter is not acceptable (named in location); keyInvalid: an unknown key."),
    403: _error("dailyLimitExceededUnreg: no key, where the server has API keys."),
    404: _error("notFound: no such table or feature."),
    413: _error("uploadTooLarge: a request body over 1 MiB."),
    503: _error("backendError: something went wrong inside crimemap."),
}
"""The errors a features call or a download may answer."""

TABLE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    401: _error("required / authError: no bearer token, or not one the server accepts."),
}
"""The errors of the table resources, which need a bearer token."""
