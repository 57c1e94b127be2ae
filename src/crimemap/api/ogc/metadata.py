"""The documents of the OGC API that describe rather than serve features.

The landing page, the conformance declaration, a collection per table (with
its spatial and temporal extent) and each collection's queryables (a JSON
Schema of its columns). Links are absolute, built on the URL the client used.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass
from typing import Any

from crimemap import __version__
from crimemap.api.ogc.params import CRS84, MAX_LIMIT, temporal_column
from crimemap.query import FeatureQuery, IsNull, Not, OrderKey
from crimemap.store.base import Store
from crimemap.store.catalogue import CRIMES_TABLE, STOPS_TABLE, ColumnType, TableInfo
from crimemap.where_syntax import GEOMETRY

GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA = "application/schema+json"
XML = "application/xml"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
)
"""What this API implements, and only that.

Not declared: HTML, CRS by reference (Part 2: CRS84 only), basic spatial
functions (``S_INTERSECTS`` is served for boxes, polygons and points, not lines),
CASEI/ACCENTI, temporal and array functions, property-to-property comparisons.
"""

_JSON_TYPES: dict[ColumnType, dict[str, str]] = {
    "integer": {"type": "integer"},
    "double": {"type": "number"},
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
}


def link(href: str, rel: str, media: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media, "title": title}


def landing(base: str) -> dict[str, Any]:
    """The landing page: ``base`` is the API's root URL without its final slash (``http://host/ogc``)."""
    return {
        "title": "crimemap",
        "description": "Police-recorded crime data and the other stored tables, as OGC API - Features "
        f"(crimemap {__version__}).",
        "links": [
            link(f"{base}/", "self", JSON, "this document"),
            link(f"{base}/api", "service-desc", OPENAPI, "the API definition (OpenAPI 3.0)"),
            link(f"{base}/conformance", "conformance", JSON, "the conformance classes implemented"),
            link(f"{base}/collections", "data", JSON, "the collections: one per stored table"),
        ],
    }


def conformance() -> dict[str, Any]:
    return {"conformsTo": list(CONFORMANCE)}


@dataclass(frozen=True)
class Extent:
    """A collection's bounding box (None when it holds no geometry) and time interval (None if it has no dates)."""

    bbox: tuple[float, float, float, float] | None
    interval: tuple[str | None, str | None] | None


def collection(table: TableInfo, extent: Extent, base: str) -> dict[str, Any]:
    """The collection document of ``table``."""
    here = f"{base}/collections/{table.id}"
    doc: dict[str, Any] = {
        "id": table.id,
        "title": table.name,
        "description": table.description,
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            link(here, "self", JSON, "this collection"),
            link(f"{here}/items", "items", GEOJSON, f"the features of {table.id}"),
            link(f"{here}/queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables", SCHEMA, "queryables"),
            link(f"{here}/queryables", "queryables", SCHEMA, "queryables (the draft's rel, which GDAL looks for)"),
            link(f"{here}/schema", "describedby", SCHEMA, "the JSON Schema of a feature (GDAL types fields by it)"),
        ],
    }
    if feature_xsd(table) is not None:
        doc["links"].append(link(f"{here}/schema.xsd", "describedby", XML, "the GML application schema of a feature"))
    described: dict[str, Any] = {}
    if extent.bbox is not None:
        described["spatial"] = {"bbox": [list(extent.bbox)], "crs": CRS84}
    if extent.interval is not None:
        described["temporal"] = {"interval": [list(extent.interval)], "trs": GREGORIAN}
    if described:
        doc["extent"] = described
    return doc


def queryables(table: TableInfo, base: str) -> dict[str, Any]:
    """A JSON Schema of what ``filter``, ``sortby`` and ``properties`` may name."""
    geometry = (
        {"title": "the feature's area", "format": "geometry-any"}  # a table of shapes: polygons, maybe points
        if table.shapes
        else {"title": "the feature's location", "format": "geometry-point"}
    )
    props: dict[str, Any] = {GEOMETRY: {**geometry, "x-ogc-role": "primary-geometry"}}
    when = temporal_column(table)
    for c in table.columns:
        entry: dict[str, Any] = {"title": c.name, **_JSON_TYPES[c.type]}
        if c.name == when:
            entry["x-ogc-role"] = "primary-instant"
        props[c.name] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/collections/{table.id}/queryables",
        "type": "object",
        "title": table.name,
        "properties": props,
        "additionalProperties": False,
        # The draft standard's list, which GDAL's driver (3.12) still reads to decide which
        # filters to send to the server; JSON Schema ignores a keyword it does not know.
        "queryables": [{"id": c.name, "type": _JSON_TYPES[c.type]["type"]} for c in table.columns],
    }


def feature_schema(table: TableInfo, base: str) -> dict[str, Any]:
    """A JSON Schema of one of the collection's GeoJSON features, which GDAL types the layer's fields by.

    GDAL's OAPIF driver reads it through the collection's ``describedby`` link; without it GDAL guesses
    from the first page, and a first page of crimes with "No location" (no coordinates, no street)
    made ``longitude``, ``latitude`` and ``street_id`` strings. GDAL reads ``integer`` as a 32-bit
    integer, which street ids and crime ids overflow, so integer columns are declared as ``number``
    (true of every integer; GDAL reads a double, exact to 2**53). A column named ``id`` is left out:
    GDAL takes that one from the features themselves (a 64-bit integer) and would repeat it.
    """
    columns = {
        c.name: {"title": c.name, **(_JSON_TYPES["double"] if c.type == "integer" else _JSON_TYPES[c.type])}
        for c in table.columns
        if c.name != "id"
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/collections/{table.id}/schema",
        "title": table.name,
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "geometry": {
                "title": "the feature's area" if table.shapes else "the feature's location",
                "format": "geometry-any" if table.shapes else "geometry-point",
                "x-ogc-role": "primary-geometry",
            },
            "properties": {"type": "object", "properties": columns},
        },
    }


_XSD_TYPES: dict[ColumnType, str] = {
    "integer": "xs:long",
    "double": "xs:double",
    "string": "xs:string",
    "boolean": "xs:boolean",
    "datetime": "xs:dateTime",
}
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def feature_xsd(table: TableInfo) -> str | None:
    """A GML application schema of the collection's features, or None when a column's name is no XML name.

    The second ``describedby`` link, which GDAL prefers to the JSON Schema: from it GDAL also takes the
    geometry type (``Point`` for the crimes, though their first page may have no locations) and 64-bit
    integers (``xs:long``). ``id`` is left to the features, as in :func:`feature_schema`.
    """
    columns = [c for c in table.columns if c.name != "id"]
    if not all(_NCNAME.fullmatch(c.name) for c in columns):
        return None
    geometry = "gml:GeometryPropertyType" if table.shapes else "gml:PointPropertyType"
    elements = [f'<xs:element name="geometry" type="{geometry}" minOccurs="0" nillable="true"/>']
    elements += [
        f'<xs:element name="{c.name}" type="{_XSD_TYPES[c.type]}" minOccurs="0" nillable="true"/>' for c in columns
    ]
    body = "\n".join("          " + e for e in elements)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:gml="http://www.opengis.net/gml/3.2"
    xmlns:crimemap="urn:crimemap:features" targetNamespace="urn:crimemap:features"
    elementFormDefault="qualified" version="1.0">
  <xs:import namespace="http://www.opengis.net/gml/3.2" schemaLocation="http://schemas.opengis.net/gml/3.2.1/gml.xsd"/>
  <xs:element name="Feature" type="crimemap:FeatureType" substitutionGroup="gml:AbstractFeature"/>
  <xs:complexType name="FeatureType">
    <xs:complexContent>
      <xs:extension base="gml:AbstractFeatureType">
        <xs:sequence>
{body}
        </xs:sequence>
      </xs:extension>
    </xs:complexContent>
  </xs:complexType>
</xs:schema>
"""


class Extents:
    """Collection extents, computed once per table and store generation (a load changes them).

    Feature tables carry their bounding box; the crimes table's is its map
    points' (one read of a small table), the stop-and-search table's its
    smallest and largest longitude and latitude (four ordered reads); the
    crimes' time interval is the stored months.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], Extent] = {}

    def of(self, store: Store, table: TableInfo) -> Extent:
        key = (table.id, store.generation())
        with self._lock:
            found = self._known.get(key)
        if found is not None:
            return found
        extent = Extent(table.bbox if table.bbox is not None else _bbox(store, table), _interval(store, table))
        with self._lock:
            if len(self._known) > 1024:
                self._known.clear()
            self._known[key] = extent
        return extent


def _bbox(store: Store, table: TableInfo) -> tuple[float, float, float, float] | None:
    """The police.uk tables' extent (feature tables carry theirs): the crimes' from their map points."""
    if table.id not in (CRIMES_TABLE, STOPS_TABLE):
        return None
    if table.id == CRIMES_TABLE and (points := store.map_points_bbox()) is not None:
        return points
    ends = []
    for column in ("longitude", "latitude"):
        for descending in (False, True):
            query = FeatureQuery(
                table.id, Not(IsNull(column)), (column,), (OrderKey(column, descending),), None, limit=1
            )
            found = next(iter(store.features(query)), None)
            if found is None:
                return None
            ends.append(float(found.properties[0]))  # type: ignore[arg-type]
    west, east, south, north = ends
    return west, south, east, north


def _interval(store: Store, table: TableInfo) -> tuple[str | None, str | None] | None:
    column = temporal_column(table)
    if column is None:
        return None
    if table.id == CRIMES_TABLE:
        months = sorted(m.month for m in store.months())
        if not months:
            return None
        first = dt.datetime.strptime(months[0] + "-01", "%Y-%m-%d")
        following = (dt.datetime.strptime(months[-1] + "-01", "%Y-%m-%d") + dt.timedelta(days=32)).replace(day=1)
        last = following - dt.timedelta(seconds=1)
        return first.strftime("%Y-%m-%dT%H:%M:%SZ"), last.strftime("%Y-%m-%dT%H:%M:%SZ")
    ends: list[str | None] = []
    for descending in (False, True):
        query = FeatureQuery(table.id, Not(IsNull(column)), (column,), (OrderKey(column, descending),), None, 1)
        found = next(iter(store.features(query)), None)
        ends.append(_rfc3339(str(found.properties[0])) if found is not None else None)
    return (ends[0], ends[1]) if ends[0] is not None else None


def _rfc3339(stored: str) -> str:
    """A stored date or time as RFC 3339 (a date is its midnight, UTC)."""
    return stored + "T00:00:00Z" if len(stored) == 10 else stored


__all__ = ["CONFORMANCE", "MAX_LIMIT", "Extent", "Extents", "collection", "conformance", "landing", "queryables"]
