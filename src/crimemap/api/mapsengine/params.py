"""The parameters of ``tables/{id}/features``, checked and turned into one :class:`FeaturesRequest`.

Everything a client sends is parsed here against the table's schema
(``where``/``select``/``orderBy`` by :mod:`crimemap.where`) and refused with a
400 naming the parameter if it is not understood; nothing here or after it
builds SQL from request text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import shapely
from shapely.errors import GEOSException
from starlette.datastructures import QueryParams

from crimemap.api.mapsengine.errors import invalid
from crimemap.api.page_tokens import Page, PageTokens, TokenError
from crimemap.query import And, Area, Circle, OrderKey, Polygon, Predicate, Within
from crimemap.rings import RingError, check_ring
from crimemap.store.catalogue import TableInfo
from crimemap.where import parse_where
from crimemap.where_columns import parse_order_by, parse_select
from crimemap.where_syntax import GEOMETRY, WhereError
from crimemap.wire import GX_ID, MAX_RESULTS

VERSIONS = ("published", "draft")
INCLUDES = ("schema",)
SINGLE_VALUED = (
    "where", "select", "orderBy", "limit", "maxResults", "pageToken",
    "intersects", "include", "version", "key",
)  # fmt: skip

_WHOLE = re.compile(r"[0-9]{1,18}")
_CIRCLE = re.compile(
    r"\s*CIRCLE\s*\(\s*(?P<lng>[-+]?[0-9.eE+-]+)\s+(?P<lat>[-+]?[0-9.eE+-]+)\s*,\s*(?P<r>[-+]?[0-9.eE+-]+)\s*\)\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FeaturesRequest:
    """A checked ``features`` call: what to read, how to show it, and where the page starts."""

    where: Predicate | None
    output: tuple[str, ...]
    """The selected names in ``select`` order, ``geometry`` and ``gx_id`` included."""
    order_by: tuple[OrderKey, ...]
    limit: int | None
    max_results: int
    include_schema: bool
    fingerprint: str
    page: Page | None

    @property
    def with_geometry(self) -> bool:
        return GEOMETRY in self.output

    @property
    def properties(self) -> tuple[str, ...]:
        return tuple(n for n in self.output if n != GEOMETRY)


def single(params: QueryParams, name: str) -> str | None:
    """A parameter's value; giving one twice is a 400 (no guessing which one was meant)."""
    values = params.getlist(name)
    if len(values) > 1:
        raise invalid(name, f"{name} was given {len(values)} times; give it once")
    return values[0] if values else None


def whole_number(params: QueryParams, name: str, low: int, high: int | None) -> int | None:
    text = single(params, name)
    if text is None or text == "":
        return None
    if not _WHOLE.fullmatch(text) or not (low <= int(text) and (high is None or int(text) <= high)):
        shown = text if len(text) <= 40 else text[:37] + "..."
        bounds = f"[{low}, {high}]" if high is not None else f"[{low}, ...]"
        raise invalid(name, f"Invalid value '{shown}'. Values must be within the range: {bounds}")
    return int(text)


def check_version(params: QueryParams) -> None:
    """``version`` is ``published`` or ``draft``; crimemap has one version of each table, served for both."""
    version = single(params, "version")
    if version not in (None, "", *VERSIONS):
        raise invalid("version", f"version must be one of {', '.join(VERSIONS)}, not {version!r}")


def selection(params: QueryParams, table: TableInfo) -> tuple[str, ...]:
    """The ``select`` list; without one, geometry and then every column, as Maps Engine answered."""
    text = single(params, "select")
    schema = dict(table.schema)
    schema.setdefault(GX_ID, "string")
    try:
        if text is None or not text.strip():
            return (GEOMETRY, *(c.name for c in table.columns))
        return parse_select(text, schema)
    except WhereError as e:
        raise invalid(e.parameter, e.message) from None


def features_request(params: QueryParams, table: TableInfo, tokens: PageTokens) -> FeaturesRequest:
    """Check every parameter of a ``features`` call (see the module docstring)."""
    for name in SINGLE_VALUED:
        single(params, name)
    check_version(params)
    output = selection(params, table)
    schema = table.schema
    try:
        where_text = single(params, "where")
        where = parse_where(where_text, schema) if where_text and where_text.strip() else None
        order_by = parse_order_by(single(params, "orderBy"), schema)
    except WhereError as e:
        raise invalid(e.parameter, e.message) from None
    area = intersects(single(params, "intersects"))
    if area is not None:
        where = And((where, Within(area))) if where is not None else Within(area)
    limit = whole_number(params, "limit", 1, None)
    max_results = whole_number(params, "maxResults", 1, MAX_RESULTS) or MAX_RESULTS
    include = [p.strip() for p in (single(params, "include") or "").split(",") if p.strip()]
    for part in include:
        if part not in INCLUDES:
            raise invalid("include", f"include may list {', '.join(INCLUDES)}, not {part!r}")
    fingerprint = repr((where, output, order_by, limit))
    token = single(params, "pageToken")
    page = None
    if token:
        try:
            page = tokens.read(table.id, fingerprint, token)
        except TokenError as e:
            raise invalid("pageToken", str(e)) from None
        if len(page.after) != len(order_by) + 1:
            raise invalid("pageToken", "the page token does not fit this query")
    return FeaturesRequest(where, output, order_by, limit, max_results, "schema" in include, fingerprint, page)


def intersects(text: str | None) -> Area | None:
    """The ``intersects`` area: ``POLYGON((lng lat, ...))`` (WKT, GeoJSON) or ``CIRCLE(lng lat, metres)``."""
    if text is None or not text.strip():
        return None
    usage = "intersects takes POLYGON((lng lat, ...)) in WKT, a GeoJSON Polygon, or CIRCLE(lng lat, metres)"
    if len(text) > 16 * 1024:
        raise invalid("intersects", "intersects is longer than 16384 characters")
    circle = _CIRCLE.fullmatch(text)
    if circle is not None:
        try:
            lng, lat, radius = float(circle["lng"]), float(circle["lat"]), float(circle["r"])
        except ValueError:
            raise invalid("intersects", usage) from None
        if not (_in_range(lng, lat) and math.isfinite(radius) and radius >= 0):
            raise invalid("intersects", "CIRCLE needs a longitude, a latitude and a radius in metres >= 0")
        return Circle((lng, lat), radius)
    try:
        geometry = shapely.from_geojson(text) if text.lstrip().startswith("{") else shapely.from_wkt(text)
    except (GEOSException, ValueError, TypeError):
        raise invalid("intersects", f"{usage}; this is not a geometry") from None
    if not isinstance(geometry, shapely.Polygon) or geometry.is_empty:
        raise invalid("intersects", f"{usage}, not {geometry.geom_type}")
    if geometry.interiors:
        raise invalid("intersects", "polygons with holes are not supported in intersects")
    ring = tuple((float(x), float(y)) for x, y, *_ in geometry.exterior.coords)
    if not all(_in_range(x, y) for x, y in ring):
        raise invalid("intersects", "every point must be a longitude in -180..180 and a latitude in -90..90")
    try:
        check_ring(ring)
    except RingError as e:
        raise invalid("intersects", f"intersects: {e}") from None
    return Polygon(ring)


def _in_range(lng: float, lat: float) -> bool:
    return math.isfinite(lng) and math.isfinite(lat) and -180 <= lng <= 180 and -90 <= lat <= 90


def schema_resource(table: TableInfo) -> dict[str, object]:
    """The table's ``schema`` as Maps Engine described it: geometry column first, then the columns."""
    return {
        "columns": [
            {"name": GEOMETRY, "type": "polygons" if table.shapes else "points"},
            *({"name": c.name, "type": c.type} for c in table.columns),
        ],
        "primaryGeometry": GEOMETRY,
        "primaryKey": GX_ID,
    }
