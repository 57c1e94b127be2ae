"""``/ogc/api``: the OpenAPI 3.0 definition of the OGC API part of crimemap (the OpenAPI 3.0 conformance class).

Written out by hand rather than generated, because the standard fixes the
shape clients look for: GDAL, for one, reads the items path's ``limit``
parameter here to choose its page size.
"""

from __future__ import annotations

from typing import Any

from crimemap import __version__
from crimemap.api.ogc.params import CRS84_NAMES, DEFAULT_LIMIT, MAX_LIMIT
from crimemap.cql import FILTER_LANGS


def _param(name: str, description: str, schema: dict[str, Any], *, where: str = "query") -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "description": description, "schema": schema}
    if where == "path":
        p["required"] = True
    else:
        p["required"] = False
        p["style"] = "form"
        p["explode"] = False
    return p


_COLLECTION_ID = _param("collectionId", "a collection (table) id", {"type": "string"}, where="path")
_FEATURE_ID = _param("featureId", "a feature id (gx_id)", {"type": "integer"}, where="path")
_F = _param("f", "the format: json (every answer is JSON; features are GeoJSON)", {"type": "string",
            "enum": ["json", "geojson"]})  # fmt: skip

_CRS84 = {"type": "string", "enum": sorted(CRS84_NAMES)}
"""The names of CRS84 accepted: its URIs, ``OGC:CRS84`` and ``CRS84`` (an empty value is a 400, as for ``f``)."""

_ITEMS_PARAMETERS = [
    _COLLECTION_ID,
    _param(
        "limit",
        "most features on a page",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),  # fmt: skip
    _param(
        "bbox",
        "west,south,east,north in CRS84",
        {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
    ),  # fmt: skip
    _param("bbox-crs", "only CRS84", _CRS84),
    _param("datetime", "an RFC 3339 instant or interval (start/end, '..' for an open end)", {"type": "string"}),
    _param("properties", "the properties to return, comma-separated", {"type": "array", "items": {"type": "string"}}),
    _param("sortby", "[+|-]property,... to sort by", {"type": "array", "items": {"type": "string"}}),
    _param("filter", "a CQL2 filter", {"type": "string"}),
    _param(
        "filter-lang", "the language of filter", {"type": "string", "enum": list(FILTER_LANGS), "default": "cql2-text"}
    ),  # fmt: skip
    _param("filter-crs", "only CRS84", _CRS84),
    _param("cursor", "where a page starts: use the next and prev links", {"type": "string"}),
    _F,
]


def _get(summary: str, operation: str, media: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "operationId": operation,
            "tags": ["OGC API - Features"],
            "parameters": parameters,
            "responses": {
                "200": {"description": summary, "content": {media: {"schema": {"type": "object"}}}},
                "400": {"$ref": "#/components/responses/InvalidParameter"},
                "404": {"$ref": "#/components/responses/NotFound"},
            },
        }
    }


def document(base: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document, with ``base`` (``http://host/ogc``) as its server."""
    exception = {
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "crimemap: OGC API - Features",
            "version": __version__,
            "description": "Every stored table as a collection of features in CRS84: police.uk crimes and stops"
            " and NYC Crime Map tables as points, loaded GeoJSON/CSV tables as their geometries are, the force"
            " boundaries as polygons.",
            "license": {"name": "MIT"},
        },
        "servers": [{"url": base}],
        "paths": {
            "/": _get("the landing page", "getLandingPage", "application/json", [_F]),
            "/conformance": _get("the conformance classes", "getConformance", "application/json", [_F]),
            "/api": _get("this document", "getAPI", "application/vnd.oai.openapi+json;version=3.0", [_F]),
            "/collections": _get("the collections", "getCollections", "application/json", [_F]),
            "/collections/{collectionId}": _get(
                "a collection", "describeCollection", "application/json", [_COLLECTION_ID, _F]
            ),  # fmt: skip
            "/collections/{collectionId}/queryables": _get(
                "what a filter may name", "getQueryables", "application/schema+json", [_COLLECTION_ID, _F]
            ),
            "/collections/{collectionId}/schema": _get(
                "the JSON Schema of the collection's features (its describedby link, which GDAL types fields by)",
                "getSchema",
                "application/schema+json",
                [_COLLECTION_ID, _F],
            ),
            "/collections/{collectionId}/schema.xsd": _get(
                "the GML application schema of the collection's features (GDAL's preferred describedby)",
                "getSchemaXSD",
                "application/xml",
                [_COLLECTION_ID],
            ),
            "/collections/{collectionId}/items": _get(
                "the features of a collection, a page at a time",
                "getFeatures",
                "application/geo+json",
                _ITEMS_PARAMETERS,
            ),  # fmt: skip
            "/collections/{collectionId}/items/{featureId}": _get(
                "one feature",
                "getFeature",
                "application/geo+json",
                [_COLLECTION_ID, _FEATURE_ID, _ITEMS_PARAMETERS[5], _F],
            ),  # fmt: skip
        },
        "components": {
            "schemas": {"exception": exception},
            "responses": {
                "InvalidParameter": {
                    "description": "a parameter is malformed or not supported; the description names it",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}},
                },
                "NotFound": {
                    "description": "no such collection or feature",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}},
                },
            },
        },
    }
