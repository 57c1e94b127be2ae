"""Whole-table downloads and ``crimemap export``: RFC 7946 GeoJSON and CSV, streamed, round-trippable."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import NYC, STORE_KINDS, LiveServer, _open_empty
from crimemap.cli import app
from crimemap.export import export_chunks
from crimemap.export import geojson as geojson_export
from crimemap.export import plan as exporting
from crimemap.export.plan import plan_export
from crimemap.load.tables import load_table
from crimemap.query import FeatureQuery
from crimemap.records import Feature
from crimemap.store import columnar
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore

TABLE = "02378420399528461352-17772055697785505571"
FILE = NYC / "2015-05-08" / f"{TABLE}.geojson"


def features_of(store: Store, table: str) -> list[Feature]:
    return list(store.features(FeatureQuery(table)))


def assert_rfc7946(collection: Any) -> None:
    """The parts of RFC 7946 an exported FeatureCollection must satisfy."""
    assert collection["type"] == "FeatureCollection" and isinstance(collection["features"], list)
    assert "crs" not in collection
    for f in collection["features"]:
        assert f["type"] == "Feature" and isinstance(f["properties"], dict)
        assert isinstance(f["id"], int)
        geometry = f["geometry"]
        if geometry is not None:
            assert geometry["type"] == "Point"
            lng, lat = geometry["coordinates"]
            assert -180 <= lng <= 180 and -90 <= lat <= 90


def export_bytes(store: Store, table: str, fmt: str, **plan: Any) -> bytes:
    return b"".join(export_chunks(store, plan_export(store, table, **plan), fmt))


@pytest.fixture
def opened() -> Iterator[Callable[[Store], Store]]:
    """Close the stores a test opens: ``other = opened(fresh_like(nyc, tmp_path))``."""
    stores: list[Store] = []

    def keep(store: Store) -> Store:
        stores.append(store)
        return store

    yield keep
    for store in stores:
        store.close()


def fresh_like(store: Store, tmp_path: Path) -> Store:
    """An empty store of the same kind as ``store`` (round trips stay within one kind)."""
    return _open_empty("sqlite" if isinstance(store, SQLiteStore) else "postgis", tmp_path / "fresh")


@pytest.fixture(scope="module", params=STORE_KINDS)
def nyc(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The NYC crimes-by-type table, loaded once per store kind; tests only read it."""
    store = _open_empty(request.param, tmp_path_factory.mktemp("nyc"))
    load_table(store, FILE)
    yield store
    store.close()


@pytest.fixture(scope="module")
def server(nyc: Store) -> Iterator[LiveServer]:
    live = LiveServer(nyc)
    yield live
    live.stop()


# -- GeoJSON ------------------------------------------------------------------------------------------------


def test_geojson_export_is_the_loaded_file_again(nyc: Store) -> None:
    collection = json.loads(export_bytes(nyc, TABLE, "geojson"))
    assert_rfc7946(collection)
    original = json.loads(FILE.read_text())["features"]
    assert [f["id"] for f in collection["features"]] == list(range(1, len(original) + 1))
    for got, want in zip(collection["features"], original, strict=True):
        assert got["geometry"] == want["geometry"]
        assert got["properties"] == want["properties"]


def test_round_trip_load_export_load_keeps_every_feature(
    nyc: Store, tmp_path: Path, opened: Callable[[Store], Store]
) -> None:
    path = tmp_path / "again.geojson"
    path.write_bytes(export_bytes(nyc, TABLE, "geojson"))
    other = opened(fresh_like(nyc, tmp_path))
    load_table(other, path, table_id=TABLE)
    assert other.table(TABLE).columns == nyc.table(TABLE).columns  # type: ignore[union-attr]
    assert features_of(other, TABLE) == features_of(nyc, TABLE)


def test_round_trip_keeps_types_nulls_missing_geometry_and_ids(
    store: Store, tmp_path: Path, opened: Callable[[Store], Store]
) -> None:
    features: list[dict[str, Any]] = [
        {"type": "Feature", "id": 10, "geometry": {"type": "Point", "coordinates": [-0.12, 51.5]},
         "properties": {"b": True, "n": 3, "d": 0.5, "s": 'x, "quoted"\nline', "t": "2020-02-02T10:00:00Z"}},
        {"type": "Feature", "id": 20, "geometry": None,
         "properties": {"b": False, "n": None, "d": 2.0, "s": "", "t": None}},
        {"type": "Feature", "id": 5, "geometry": {"type": "Point", "coordinates": [179.9, -89.9]},
         "properties": {"b": None, "n": -7, "d": None, "s": None, "t": "1999-12-31"}},
    ]  # fmt: skip
    path = tmp_path / "typed.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    load_table(store, path)
    again = tmp_path / "again.geojson"
    again.write_bytes(export_bytes(store, "typed", "geojson"))
    collection = json.loads(again.read_text())
    assert_rfc7946(collection)
    assert collection["features"] == sorted(features, key=lambda f: f["id"])
    other = opened(fresh_like(store, tmp_path))
    load_table(other, again, table_id="typed")
    assert other.table("typed").columns == store.table("typed").columns  # type: ignore[union-attr]
    assert features_of(other, "typed") == features_of(store, "typed")


def test_export_narrows_by_where_and_select(nyc: Store) -> None:
    collection = json.loads(export_bytes(nyc, TABLE, "geojson", where="CR = 'MURDER'", select="CR,geometry,MO"))
    original = json.loads(FILE.read_text())["features"]
    murders = [(i, f) for i, f in enumerate(original, start=1) if f["properties"]["CR"] == "MURDER"]
    assert [f["id"] for f in collection["features"]] == [i for i, _ in murders]
    assert collection["features"][0]["properties"] == {
        "CR": "MURDER",
        "MO": murders[0][1]["properties"]["MO"],
    }


def test_an_empty_result_is_an_empty_feature_collection(nyc: Store) -> None:
    assert json.loads(export_bytes(nyc, TABLE, "geojson", where="MO = 12")) == {
        "type": "FeatureCollection",
        "features": [],
    }
    assert export_bytes(nyc, TABLE, "csv", where="MO = 12") == b"gx_id,MO,YR,CR,TOT,Y,X,longitude,latitude\r\n"


def test_export_is_streamed_in_small_chunks_from_small_batches(nyc: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columnar, "BATCH_ROWS", 1_000)
    batches: list[int] = []
    real = exporting.arrow_batches

    def spy(*args: Any) -> Any:
        for batch in real(*args):
            batches.append(len(batch))
            yield batch

    monkeypatch.setattr(geojson_export, "arrow_batches", spy)
    plan = plan_export(nyc, TABLE)
    tracemalloc.start()
    sizes = [len(c) for c in export_chunks(nyc, plan, "geojson")]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sum(sizes) > 3_000_000 and len(sizes) > 40
    assert set(sizes[:-1]) == {exporting.CHUNK_BYTES} and 0 < sizes[-1] <= exporting.CHUNK_BYTES
    # SQLite's driver cuts batches by rows, PostgreSQL's by bytes: either way a few thousand rows at a time.
    assert len(batches) > 5 and max(batches) <= 2_500
    assert sum(batches) == len(json.loads(FILE.read_text())["features"])
    assert peak < 2_500_000, f"peak {peak:,} bytes for a {sum(sizes):,}-byte export"


# -- CSV ----------------------------------------------------------------------------------------------------


def test_csv_export_has_gx_id_columns_and_coordinates(nyc: Store) -> None:
    rows = list(csv.reader(io.StringIO(export_bytes(nyc, TABLE, "csv").decode())))
    assert rows[0] == ["gx_id", "MO", "YR", "CR", "TOT", "Y", "X", "longitude", "latitude"]
    first = json.loads(FILE.read_text())["features"][0]
    assert rows[1] == [
        "1",
        *(repr(first["properties"][k]) if k != "CR" else first["properties"][k] for k in rows[0][1:-2]),
        *map(repr, first["geometry"]["coordinates"]),
    ]
    assert len(rows) == 19_145 + 1


def test_csv_round_trip_keeps_the_table(nyc: Store, tmp_path: Path, opened: Callable[[Store], Store]) -> None:
    path = tmp_path / "again.csv"
    path.write_bytes(export_bytes(nyc, TABLE, "csv"))
    other = opened(fresh_like(nyc, tmp_path))
    load_table(other, path, table_id=TABLE)
    assert other.table(TABLE).columns == nyc.table(TABLE).columns  # type: ignore[union-attr]
    assert features_of(other, TABLE) == features_of(nyc, TABLE)


def test_the_crimes_table_exports_and_loads_back(
    policeuk_store: Store, tmp_path: Path, opened: Callable[[Store], Store]
) -> None:
    where = "month = '2017-01'"
    geojson = json.loads(export_bytes(policeuk_store, "policeuk-crimes", "geojson", where=where))
    assert_rfc7946(geojson)
    table = plan_export(policeuk_store, "policeuk-crimes", where=where)
    stored = [f for batch in exporting.feature_batches(policeuk_store, table) for f in batch.features()]
    assert [f["id"] for f in geojson["features"]] == [f.gx_id for f in stored] and len(stored) > 100
    path = tmp_path / "crimes.csv"
    path.write_bytes(export_bytes(policeuk_store, "policeuk-crimes", "csv", where=where))
    assert path.read_text().startswith("gx_id,id,crime_id,month,")
    assert path.read_bytes().split(b"\r\n", 1)[0].endswith(b",gx_longitude,gx_latitude")
    other = opened(fresh_like(policeuk_store, tmp_path))
    load_table(other, path, table_id="crimes-2017-01")
    again = features_of(other, "crimes-2017-01")
    # A table's order is the store's; the features are the same.
    assert sorted((f.gx_id, f.lng, f.lat) for f in again) == sorted((f.gx_id, f.lng, f.lat) for f in stored)


# -- HTTP downloads -----------------------------------------------------------------------------------------


def test_download_geojson_is_streamed_valid_geojson(server: LiveServer) -> None:
    with server.client.stream("GET", f"/download/{TABLE}.geojson") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/geo+json"
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["content-disposition"] == f'attachment; filename="{TABLE}.geojson"'
        body = b"".join(response.iter_bytes())
    collection = json.loads(body)
    assert_rfc7946(collection)
    assert len(collection["features"]) == 19_145


def test_download_csv_with_where_and_select(server: LiveServer) -> None:
    response = server.client.get(f"/download/{TABLE}.csv", params={"where": "MO = 1", "select": "TOT,CR"})
    assert response.status_code == 200 and response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ["gx_id", "TOT", "CR", "longitude", "latitude"]
    original = json.loads(FILE.read_text())["features"]
    assert len(rows) == sum(1 for f in original if f["properties"]["MO"] == 1)


@pytest.mark.parametrize(
    ("path", "params", "status", "reason"),
    [
        (f"/download/{TABLE}.geojson", {"where": "MO ="}, 400, "invalid"),
        (f"/download/{TABLE}.csv", {"select": "NOPE"}, 400, "invalid"),
        (f"/download/{TABLE}.csv", {"where": "1; DROP TABLE feature_tables"}, 400, "invalid"),
        ("/download/nope.geojson", {}, 404, "notFound"),
        (f"/download/{TABLE}.xml", {}, 404, "notFound"),
        (f"/download/{TABLE}", {}, 404, "notFound"),
    ],
)
def test_download_errors_use_the_envelope(
    server: LiveServer, path: str, params: dict[str, str], status: int, reason: str
) -> None:
    response = server.client.get(path, params=params)
    assert response.status_code == status
    assert response.json()["error"]["errors"][0]["reason"] == reason


# -- crimemap export ----------------------------------------------------------------------------------------


def test_crimemap_export_writes_a_file(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    runner = CliRunner()
    assert runner.invoke(app, ["load", str(FILE), "--store", str(store), "--quiet"]).exit_code == 0
    out = tmp_path / "out.geojson"
    result = runner.invoke(app, ["export", TABLE, "--store", str(store), "--where", "CR = 'MURDER'", "-o", str(out)])
    assert result.exit_code == 0, result.output
    collection = json.loads(out.read_text())
    assert_rfc7946(collection)
    assert {f["properties"]["CR"] for f in collection["features"]} == {"MURDER"}
    result = runner.invoke(app, ["export", TABLE, "--store", str(store), "--format", "csv", "--select", "CR"])
    assert result.exit_code == 0 and result.stdout_bytes.startswith(b"gx_id,CR,longitude,latitude\r\n")
    assert (tmp_path / "x.csv").exists() is False
    result = runner.invoke(app, ["export", TABLE, "--store", str(store), "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 0 and (tmp_path / "x.csv").read_text().startswith("gx_id,")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no table 'nope'"),
        ([TABLE, "--where", "MO = "], "--where: expected a value"),
        ([TABLE, "--select", "NOPE"], "--select: unknown column 'NOPE'"),
        ([TABLE, "--format", "kml"], "unknown format 'kml'"),
    ],
)
def test_crimemap_export_explains_what_is_wrong(tmp_path: Path, args: list[str], message: str) -> None:
    store = tmp_path / "store.sqlite"
    runner = CliRunner()
    assert runner.invoke(app, ["load", str(FILE), "--store", str(store), "--quiet"]).exit_code == 0
    out = tmp_path / "out.geojson"
    result = runner.invoke(app, ["export", *args, "--store", str(store), "-o", str(out)])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
