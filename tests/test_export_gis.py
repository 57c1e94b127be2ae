"""GeoPackage, GeoParquet and FlatGeobuf exports and downloads, read back with GDAL, geopandas and DuckDB.

Every file is compared with the store it came from: ids, values with their
types, points (and features without one), on both stores.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import geopandas
import pyarrow.parquet as pq
import pyogrio
import pytest
from typer.testing import CliRunner

from conftest import NYC, POLICEUK, STORE_KINDS, LiveServer, _open_empty
from crimemap.cli import app
from crimemap.export import write_export
from crimemap.export.arrow import require
from crimemap.export.plan import ExportError, plan_export
from crimemap.load.policeuk import load_policeuk
from crimemap.load.tables import load_table
from crimemap.query import FeatureQuery
from crimemap.records import Feature
from crimemap.store.base import Store
from crimemap.store.catalogue import CRIMES_TABLE, Column, TableInfo

pytestmark = pytest.mark.heavy  # large generated stores for the memory test: scheduled first under xdist

BY_TYPE_ID = "02378420399528461352-17772055697785505571"
TYPES = TableInfo(
    "types",
    "Every type",
    (Column("name", "string"), Column("n", "integer"), Column("x", "double"), Column("ok", "boolean"),
     Column("when", "datetime")),
)  # fmt: skip
TYPE_ROWS = [
    Feature(10, -0.1, 51.5, ("Hyde, \"quoted\"", 100, 4.5, True, "2015-01-01T10:00:00Z")),
    Feature(20, None, None, (None, None, None, None, None)),
    Feature(7, 2.35, 48.85, ("Ünïcode", -7, -1.25, False, "2016-06-01")),
]  # fmt: skip


@pytest.fixture(scope="module", params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The real police.uk files, the NYC crimes-by-type table and a table of every type; tests only read it."""
    st = _open_empty(request.param, tmp_path_factory.mktemp("gis"))
    load_policeuk(st, sorted(POLICEUK.glob("2016-0[1-3]")) + [POLICEUK / "2020-01"])
    load_table(st, NYC / "2015-05-08" / f"{BY_TYPE_ID}.geojson")
    with st.writer() as w:
        w.replace_table(TYPES, TYPE_ROWS)
    yield st
    st.close()


def stored(store: Store, table: str) -> dict[int, Feature]:
    return {f.gx_id: f for f in store.features(FeatureQuery(table))}


def export(store: Store, table: str, fmt: str, path: Path, **plan: Any) -> Path:
    write_export(store, plan_export(store, table, **plan), fmt, path)
    return path


def plain(value: Any) -> Any:
    """A value read back from a file as the store holds it (NaN and NaT are missing values)."""
    if value is None or (isinstance(value, float) and value != value) or str(value) in ("NaT", "<NA>"):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def when(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    moment = dt.datetime.fromisoformat(text if len(text) != 10 else text + "T00:00:00")
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


# -- GeoPackage and FlatGeobuf ----------------------------------------------------------------------------


@pytest.mark.parametrize("table", [CRIMES_TABLE, BY_TYPE_ID])
def test_a_geopackage_reads_back_as_the_table_with_its_ids(store: Store, table: str, tmp_path: Path) -> None:
    path = export(store, table, "gpkg", tmp_path / "out.gpkg")
    assert pyogrio.list_layers(path).tolist() == [[table, "Point"]]
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4326" and info["fid_column"] == "gx_id"
    frame = pyogrio.read_dataframe(path, fid_as_index=True)
    expected = stored(store, table)
    assert sorted(frame.index) == sorted(expected)
    names = [c.name for c in store.table(table).columns]  # type: ignore[union-attr]
    for gx_id, row in frame.iterrows():
        feature = expected[int(gx_id)]
        assert [plain(row[n]) for n in names] == list(feature.properties)
        assert (None if row.geometry is None else (row.geometry.x, row.geometry.y)) == (
            None if feature.lng is None else (feature.lng, feature.lat)
        )


def test_every_type_and_missing_value_survives_geopackage_and_flatgeobuf(store: Store, tmp_path: Path) -> None:
    for fmt in ("gpkg", "fgb"):
        path = export(store, "types", fmt, tmp_path / f"t.{fmt}")
        read = pyogrio.read_dataframe(path, fid_as_index=True)
        if fmt == "fgb":  # FlatGeobuf has no id column of its own: gx_id is a property
            read = read.set_index("gx_id")
        for feature in TYPE_ROWS:
            row = read.loc[feature.gx_id]
            name, n, x, ok, at = feature.properties
            assert [plain(row["name"]), plain(row["n"]), plain(row["x"]), plain(row["ok"])] == [name, n, x, ok]
            got = plain(row["when"])
            assert (got if got is None else got.to_pydatetime()) == when(at)
            assert (row.geometry is None) == (feature.lng is None)


def test_a_flatgeobuf_holds_every_crime(store: Store, tmp_path: Path) -> None:
    frame = pyogrio.read_dataframe(export(store, CRIMES_TABLE, "fgb", tmp_path / "c.fgb"), columns=["gx_id", "month"])
    assert sorted(frame["gx_id"]) == sorted(stored(store, CRIMES_TABLE))
    assert pyogrio.read_info(tmp_path / "c.fgb")["crs"] == "EPSG:4326"


# -- GeoParquet ---------------------------------------------------------------------------------------------


def test_a_geoparquet_file_is_valid_geoparquet_read_by_geopandas(store: Store, tmp_path: Path) -> None:
    path = export(store, CRIMES_TABLE, "parquet", tmp_path / "c.parquet")
    geo = json.loads(pq.read_schema(path).metadata[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"] == {"encoding": "WKB", "geometry_types": ["Point"]}
    frame = geopandas.read_parquet(path)
    assert frame.crs.to_string() == "OGC:CRS84"
    expected = stored(store, CRIMES_TABLE)
    assert sorted(frame["gx_id"]) == sorted(expected)
    names = [c.name for c in store.table(CRIMES_TABLE).columns]  # type: ignore[union-attr]
    for _, row in frame.sample(300, random_state=1).iterrows():
        feature = expected[row["gx_id"]]
        assert [plain(row[n]) for n in names] == list(feature.properties)
        assert (None if row.geometry is None else (row.geometry.x, row.geometry.y)) == (
            None if feature.lng is None else (feature.lng, feature.lat)
        )


def test_duckdb_queries_a_geoparquet_export_as_the_store_answers(store: Store, tmp_path: Path) -> None:
    path = export(store, CRIMES_TABLE, "parquet", tmp_path / "c.parquet", where="month = '2016-02'")
    got = dict(duckdb.sql(f"SELECT category, count(*) FROM '{path}' GROUP BY category").fetchall())
    expected: dict[str, int] = {}
    for f in store.features(FeatureQuery(CRIMES_TABLE, columns=("month", "category"))):
        if f.properties[0] == "2016-02":
            expected[str(f.properties[1])] = expected.get(str(f.properties[1]), 0) + 1
    assert got == expected and sum(got.values()) > 300


def test_geoparquet_keeps_types_nulls_and_ids(store: Store, tmp_path: Path) -> None:
    table = pq.read_table(export(store, "types", "parquet", tmp_path / "t.parquet"))
    rows = {r["gx_id"]: r for r in table.to_pylist()}
    for feature in TYPE_ROWS:
        row = rows[feature.gx_id]
        name, n, x, ok, at = feature.properties
        assert (row["name"], row["n"], row["x"], row["ok"], row["when"]) == (name, n, x, ok, when(at))
        assert (row["geometry"] is None) == (feature.lng is None)


def test_an_empty_selection_is_a_valid_empty_file(store: Store, tmp_path: Path) -> None:
    assert pq.read_table(export(store, BY_TYPE_ID, "parquet", tmp_path / "e.parquet", where="YR = 1900")).num_rows == 0
    assert len(pyogrio.read_dataframe(export(store, BY_TYPE_ID, "gpkg", tmp_path / "e.gpkg", where="YR = 1900"))) == 0


# -- downloads and the command line ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(store: Store) -> Iterator[LiveServer]:
    live = LiveServer(store)
    yield live
    live.stop()


@pytest.mark.parametrize(
    ("fmt", "media"),
    [("gpkg", "application/geopackage+sqlite3"), ("parquet", "application/vnd.apache.parquet"),
     ("fgb", "application/flatgeobuf")],
)  # fmt: skip
def test_downloads_in_gis_formats_with_where_and_select(
    server: LiveServer, store: Store, tmp_path: Path, fmt: str, media: str
) -> None:
    response = server.client.get(f"/download/{BY_TYPE_ID}.{fmt}", params={"where": "CR = 'ROBBERY'", "select": "CR,YR"})
    assert response.status_code == 200 and response.headers["content-type"] == media
    assert response.headers["content-disposition"] == f'attachment; filename="{BY_TYPE_ID}.{fmt}"'
    path = tmp_path / f"d.{fmt}"
    path.write_bytes(response.content)
    frame = pyogrio.read_dataframe(path) if fmt != "parquet" else geopandas.read_parquet(path)
    cr = [c.name for c in store.table(BY_TYPE_ID).columns].index("CR")  # type: ignore[union-attr]
    robberies = [f for f in stored(store, BY_TYPE_ID).values() if f.properties[cr] == "ROBBERY"]
    assert list(frame.columns) == (["CR", "YR", "geometry"] if fmt == "gpkg" else ["gx_id", "CR", "YR", "geometry"])
    assert len(frame) == len(robberies) > 100 and set(frame["CR"]) == {"ROBBERY"}


def test_crimemap_export_picks_the_format_from_the_file_name(store: Store, tmp_path: Path) -> None:
    if not isinstance(store.url, str) or store.url.startswith("postgres"):
        pytest.skip("the command line test uses the embedded store's file")
    out = tmp_path / "nyc.gpkg"
    result = CliRunner().invoke(app, ["export", BY_TYPE_ID, "-o", str(out), "--store", store.url, "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(pyogrio.read_dataframe(out)) == len(stored(store, BY_TYPE_ID))
    assert not list(tmp_path.glob(".*partial*"))
    result = CliRunner().invoke(app, ["export", BY_TYPE_ID, "-o", str(tmp_path / "x.parquet"), "-f", "parquet",
                                      "--store", store.url, "--quiet"])  # fmt: skip
    assert result.exit_code == 0 and pq.read_table(tmp_path / "x.parquet").num_rows == len(stored(store, BY_TYPE_ID))


def test_a_missing_gis_library_is_a_clear_message() -> None:
    with pytest.raises(ExportError, match=r"pip install 'crimemap\[gis\]'"):
        require("pyarrow", "crimemap_no_such_library")


# -- memory --------------------------------------------------------------------------------------------------------

_PEAK = """
import os, sys, threading, time
from pathlib import Path
from crimemap.store.sqlite import SQLiteStore
from crimemap.export import write_export
from crimemap.export.plan import plan_export
import pyarrow, pyogrio  # loaded before the baseline

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

peak, done = [0], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.005)

store = SQLiteStore(sys.argv[1], readonly=True)
# The reader's page cache (32 MB) fills as the file grows past it: keep it small to measure the writers.
store._db.reader().conn.execute("PRAGMA cache_size = -1024")
before = rss()
watcher = threading.Thread(target=sample)
watcher.start()
write_export(store, plan_export(store, "policeuk-crimes"), sys.argv[2], Path(sys.argv[3]))
done.set()
watcher.join()
print(max(peak[0], rss()) - before)
"""


def test_gis_exports_keep_memory_flat_however_large_the_table(tmp_path: Path) -> None:
    """Peak memory grows by a batch's worth, not with the table: 4x the crimes costs (almost) nothing more."""
    from crimemap.load.generate.archive import generate

    grown: dict[str, list[int]] = {"gpkg": [], "parquet": [], "fgb": []}
    for size in (60_000, 240_000):
        archive = tmp_path / f"a{size}"
        generate(archive, months=["2024-06"], crimes_per_month=size, seed=1)
        from crimemap.store.sqlite import SQLiteStore

        with SQLiteStore(tmp_path / f"s{size}.sqlite") as st:
            load_policeuk(st, [archive])
        for fmt in grown:
            out = tmp_path / f"o{size}.{fmt}"
            command = [sys.executable, "-c", _PEAK, str(tmp_path / f"s{size}.sqlite"), fmt, str(out)]
            # Arrow's own allocator keeps freed pages for reuse; the system one shows what is really held.
            env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}
            run = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            grown[fmt].append(int(run.stdout.strip().splitlines()[-1]))
    for fmt, (small, large) in grown.items():
        assert large - small < 24 * 1024, f"{fmt}: peak grew {small} KiB -> {large} KiB for 4x the crimes"
