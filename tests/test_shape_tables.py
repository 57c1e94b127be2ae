"""Tables of shapes read column by column: polygons come out as polygons through every reader.

Pages, downloads and exports read features column by column (``Store.feature_columns``);
a table of shapes (police force boundaries, any GeoJSON of polygons) carries each
feature's shape in those columns, so the Maps Engine API, the OGC API, the GeoJSON
export and the GIS formats (GeoParquet, GeoPackage, FlatGeobuf) all give its Polygons
and MultiPolygons, never the point on their surface that the store also keeps. On
both stores, with a small table of every kind of geometry and the 44 real force areas.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas
import orjson
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely

from conftest import SHARED_DATA, STORE_KINDS, LiveServer, _open_empty
from crimemap.export import write_export
from crimemap.export.plan import plan_export
from crimemap.load.boundaries import load_boundaries
from crimemap.load.tables import load_table
from crimemap.query import FeatureQuery, OrderKey
from crimemap.store.base import Store
from crimemap.store.catalogue import FORCE_BOUNDARIES
from crimemap.where import parse_where

AREAS = "areas"
GEOMETRIES: dict[str, dict[str, Any] | None] = {
    "square": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]},
    "two triangles": {
        "type": "MultiPolygon",
        "coordinates": [[[[2, 0], [3, 0], [3, 1], [2, 0]]], [[[5, 5], [6, 5], [6, 6], [5, 5]]]],
    },
    "holed": {
        "type": "Polygon",
        "coordinates": [[[10, 10], [14, 10], [14, 14], [10, 14], [10, 10]], [[11, 11], [11, 12], [12, 12], [11, 11]]],
    },
    "a point": {"type": "Point", "coordinates": [0.5, 0.5]},
    "nowhere": None,
}
"""The table's features by name, in ``gx_id`` order (1, 2, ...): polygons, a point, one without geometry."""


def _shape(geometry: dict[str, Any] | None) -> shapely.Geometry | None:
    return None if geometry is None else shapely.from_geojson(json.dumps(geometry))


def _same(got: dict[str, Any] | None, name: str) -> bool:
    want = GEOMETRIES[name]
    if got is None or want is None:
        return got is want
    return got["type"] == want["type"] and bool(shapely.equals(_shape(got), _shape(want)))


class Shapes:
    """A store holding the areas table, a table of points, and the 44 force boundaries; a server over it."""

    def __init__(self, store: Store, server: LiveServer) -> None:
        self.store = store
        self.server = server

    def get(self, path: str, **params: Any) -> Any:
        r = self.server.client.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module", params=STORE_KINDS)
def shapes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shapes]:
    folder = tmp_path_factory.mktemp("shapes")
    store = _open_empty(request.param, folder)
    features = [
        {"type": "Feature", "id": i, "properties": {"name": name, "rank": i * 10}, "geometry": geometry}
        for i, (name, geometry) in enumerate(GEOMETRIES.items(), start=1)
    ]
    (folder / f"{AREAS}.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    load_table(store, folder / f"{AREAS}.geojson")
    points = [{"type": "Feature", "id": 1, "properties": {"name": "p"}, "geometry": GEOMETRIES["a point"]}]
    (folder / "points.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": points}))
    load_table(store, folder / "points.geojson")
    load_boundaries(store, [SHARED_DATA / "boundaries" / "forces"])
    server = LiveServer(store)
    yield Shapes(store, server)
    server.stop()
    store.close()


# -- the store ------------------------------------------------------------------------------------------------


def test_column_wise_reads_of_a_table_of_shapes_carry_each_shape(shapes: Shapes) -> None:
    store = shapes.store
    cols = store.feature_columns(FeatureQuery(AREAS))
    assert list(cols.gx_id) == [1, 2, 3, 4, 5]
    assert cols.shape is not None and len(cols.shape) == 5
    for name, wkb in zip(cols.values[0], cols.shape, strict=True):
        want = _shape(GEOMETRIES[str(name)])
        assert (wkb is None) == (want is None), name
        if wkb is not None:
            assert shapely.equals(shapely.from_wkb(wkb), want), name
    square = shapely.from_wkb(cols.shape[0])
    assert square.contains(shapely.Point(cols.lng[0], cols.lat[0]))  # the point kept is on the surface
    assert cols.row(1).shape == cols.shape[1] and list(cols.features())[2].shape == cols.shape[2]
    assert cols.head(2).shape == cols.shape[:2] and cols.with_values(((),)).shape == cols.shape
    assert store.feature_columns(FeatureQuery("points")).shape is None


def test_a_page_of_shapes_by_an_area_an_order_and_a_cursor_keeps_the_shapes_in_step(shapes: Shapes) -> None:
    store = shapes.store
    info = store.table(AREAS)
    assert info is not None and info.shapes
    where = parse_where(
        "ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('POLYGON((0.5 0.5, 13 0.5, 13 13, 0.5 0.5))'))", info.schema
    )
    order = (OrderKey("name", descending=True),)
    first = store.feature_columns(FeatureQuery(AREAS, where, ("name",), order, None, 2))
    assert list(first.values[0]) == ["two triangles", "square"]
    after = (first.values[0][-1], first.gx_id[-1])
    rest = store.feature_columns(FeatureQuery(AREAS, where, ("name",), order, after, 10))
    assert list(rest.values[0]) == ["holed", "a point"]
    for page in (first, rest):
        assert page.shape is not None
        for name, wkb in zip(page.values[0], page.shape, strict=True):
            assert wkb is not None and shapely.equals(shapely.from_wkb(wkb), _shape(GEOMETRIES[str(name)]))


# -- the APIs -------------------------------------------------------------------------------------------------


def test_maps_engine_pages_and_features_of_a_table_of_shapes_are_polygons(shapes: Shapes) -> None:
    base = f"/mapsengine/v1/tables/{AREAS}/features"
    seen: dict[str, Any] = {}
    page = shapes.get(base, maxResults=2)
    while True:
        for f in page["features"]:
            seen[f["properties"]["name"]] = f["geometry"]
        if "nextPageToken" not in page:
            break
        page = shapes.get(base, maxResults=2, pageToken=page["nextPageToken"])
    assert set(seen) == set(GEOMETRIES)
    assert all(_same(seen[name], name) for name in GEOMETRIES), seen
    ordered = shapes.get(base, select="geometry,name", orderBy="rank DESC", maxResults=3)
    assert [f["properties"]["name"] for f in ordered["features"]] == ["nowhere", "a point", "holed"]
    assert _same(ordered["features"][2]["geometry"], "holed")
    inside = shapes.get(base, intersects="POLYGON((1.5 0.1, 2.6 0.1, 2.6 0.5, 1.5 0.1))", select="name,geometry")
    assert [f["properties"]["name"] for f in inside["features"]] == ["two triangles"]
    assert _same(inside["features"][0]["geometry"], "two triangles")
    without = shapes.get(base, select="name", maxResults=1)
    assert "geometry" not in without["features"][0]
    one = shapes.get(f"{base}/3")
    assert _same(one["geometry"], "holed") and one["properties"]["name"] == "holed"


def test_ogc_items_of_a_table_of_shapes_are_polygons_and_its_queryables_say_so(shapes: Shapes) -> None:
    items = f"/ogc/collections/{AREAS}/items"
    body = shapes.get(items, limit=2)
    got = {f["properties"]["name"]: f["geometry"] for f in body["features"]}
    while (href := next((lk["href"] for lk in body["links"] if lk["rel"] == "next"), None)) is not None:
        body = shapes.server.client.get(href).json()
        got.update({f["properties"]["name"]: f["geometry"] for f in body["features"]})
    assert set(got) == set(GEOMETRIES) and all(_same(got[name], name) for name in GEOMETRIES), got
    boxed = shapes.get(items, bbox="4.5,4.5,5.5,5.5")
    assert [f["id"] for f in boxed["features"]] == [2]
    assert _same(boxed["features"][0]["geometry"], "two triangles")
    assert _same(shapes.get(f"{items}/3")["geometry"], "holed")
    queryables = shapes.get(f"/ogc/collections/{AREAS}/queryables")
    assert queryables["properties"]["geometry"]["format"] == "geometry-any"
    assert shapes.get("/ogc/collections/points/queryables")["properties"]["geometry"]["format"] == "geometry-point"
    extent = shapes.get(f"/ogc/collections/{AREAS}")["extent"]["spatial"]["bbox"][0]
    assert extent == [0, 0, 14, 14]


# -- exports and downloads ------------------------------------------------------------------------------------


def _export(store: Store, table: str, fmt: str, path: Path) -> Path:
    write_export(store, plan_export(store, table), fmt, path)
    return path


def test_geojson_exports_and_downloads_of_a_table_of_shapes_hold_its_polygons(shapes: Shapes, tmp_path: Path) -> None:
    exported = orjson.loads(_export(shapes.store, AREAS, "geojson", tmp_path / "areas.geojson").read_bytes())
    downloaded = shapes.get(f"/download/{AREAS}.geojson")
    assert exported == downloaded
    assert [f["id"] for f in exported["features"]] == [1, 2, 3, 4, 5]
    for f in exported["features"]:
        assert _same(f["geometry"], f["properties"]["name"]), f
    csv_rows = shapes.server.client.get(f"/download/{AREAS}.csv").text.splitlines()
    assert csv_rows[0] == "gx_id,name,rank,longitude,latitude" and len(csv_rows) == 6  # a point on each shape


def _read_back(path: Path) -> dict[str, shapely.Geometry | None]:
    frame = geopandas.read_parquet(path) if path.suffix == ".parquet" else geopandas.read_file(path)
    return {str(row["name"]): (None if row.geometry is None else row.geometry) for _, row in frame.iterrows()}


@pytest.mark.parametrize("fmt", ["parquet", "gpkg", "fgb"])
def test_gis_exports_of_a_table_of_shapes_hold_its_polygons(shapes: Shapes, fmt: str, tmp_path: Path) -> None:
    path = _export(shapes.store, AREAS, fmt, tmp_path / f"areas.{fmt}")
    got = _read_back(path)
    assert set(got) == set(GEOMETRIES)
    for name, geometry in got.items():
        want = _shape(GEOMETRIES[name])
        if want is None:
            assert geometry is None or geometry.is_empty, name
        else:
            assert geometry is not None and geometry.geom_type == want.geom_type and geometry.equals(want), name
    if fmt == "parquet":
        geo = orjson.loads(pq.read_schema(path).metadata[b"geo"])
        assert geo["columns"]["geometry"]["geometry_types"] == []  # any: polygons, and a point
        points = _export(shapes.store, "points", fmt, tmp_path / "points.parquet")
        assert orjson.loads(pq.read_schema(points).metadata[b"geo"])["columns"]["geometry"]["geometry_types"] == [
            "Point"
        ]
    else:
        assert pyogrio.read_info(path)["geometry_type"] == "Unknown"
    downloaded = shapes.server.client.get(f"/download/{AREAS}.{fmt}")
    assert downloaded.status_code == 200
    (tmp_path / f"download.{fmt}").write_bytes(downloaded.content)
    assert _read_back(tmp_path / f"download.{fmt}").keys() == got.keys()


def test_the_44_force_areas_come_out_of_every_reader_as_the_multipolygons_stored(
    shapes: Shapes, tmp_path: Path
) -> None:
    stored = {force: shapely.from_wkb(wkb) for force, (_, wkb) in shapes.store.force_boundaries().items()}
    assert len(stored) == 44
    page = shapes.get(f"/mapsengine/v1/tables/{FORCE_BOUNDARIES}/features", select="force,geometry")
    served = {f["properties"]["force"]: shapely.from_geojson(json.dumps(f["geometry"])) for f in page["features"]}
    items = shapes.get(f"/ogc/collections/{FORCE_BOUNDARIES}/items", limit=100)["features"]
    ogc = {f["properties"]["force"]: shapely.from_geojson(json.dumps(f["geometry"])) for f in items}
    frame = geopandas.read_file(_export(shapes.store, FORCE_BOUNDARIES, "gpkg", tmp_path / "forces.gpkg"))
    gpkg = dict(zip(frame["force"], frame.geometry, strict=True))
    for force, area in stored.items():
        assert area.geom_type == "MultiPolygon"
        for reader in (served, ogc, gpkg):
            assert reader[force].geom_type == "MultiPolygon" and reader[force].equals_exact(area, 1e-9), force
