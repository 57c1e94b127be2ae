"""Exports read as Arrow batches by the store's driver (crimemap.store.columnar): the same bytes, one generation.

CSV made column by column must be byte for byte what Python's ``csv`` module
writes from the stored values (the renderer before it: ``QUOTE_MINIMAL``,
``repr`` of numbers, ``true``/``false``, empty fields for missing values, CRLF),
over tricky values and over the crimes, on both stores; and an export that runs
while a load replaces what it reads sees the table as it was when it started.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from conftest import POLICEUK, STORE_KINDS, _open_empty
from crimemap.export import export_chunks, geojson, parquet
from crimemap.export import plan as exporting
from crimemap.export.csv import header
from crimemap.export.geojson import column_bytes
from crimemap.export.plan import plan_export
from crimemap.load.generate.archive import generate
from crimemap.load.policeuk import load_policeuk
from crimemap.query import FeatureQuery
from crimemap.records import Feature
from crimemap.store import columnar, open_store
from crimemap.store.base import Store
from crimemap.store.catalogue import CRIMES_TABLE, Column, TableInfo
from crimemap.store.postgis import PostGISStore
from crimemap.store.sqlite import SQLiteStore
from pg_server import fresh_store_url

pytestmark = pytest.mark.heavy  # large generated stores for the memory tests: scheduled first under xdist

TRICKY = TableInfo(
    "tricky",
    "Values a CSV writer can get wrong",
    (Column("s", "string"), Column("n", "integer"), Column("x", "double"), Column("ok", "boolean"),
     Column("when", "datetime"), Column("blank", "string")),
)  # fmt: skip
TEXTS = [
    'say "hi"', "a,b", "line\nbreak", "cr\rlf\r\n", "Ünïcödé, ☃", "", " padded ", '"', ",", "tab\there", "é" * 40,
    "'single'", "semi;colon", None,
]  # fmt: skip
NUMBERS = [
    0.0, -0.0, 0.1, 2015.0, -1.125, 1e-05, 0.0001, 0.00012, 1e16, 1e22, 123456789012.34567, 9999999999999998.0,
    16393574076.896772, 5e-324, 1.7976931348623157e308, -51.50012345, 180.0, None,
]  # fmt: skip


def tricky_rows() -> list[Feature]:
    rows = []
    for i in range(60):
        text = TEXTS[i % len(TEXTS)]
        x = NUMBERS[i % len(NUMBERS)]
        n = None if i % 7 == 3 else (-1) ** i * 10 ** (i % 19)
        ok = None if i % 5 == 4 else bool(i % 2)
        when = None if i % 4 == 1 else ("2020-02-02T10:00:00Z" if i % 2 else "1999-12-31")
        point = (None, None) if i % 9 == 2 else (-0.1 * i, 51.5 + i / 1000)
        # The first rows hold no text in "blank": a driver that guesses types from them must not take it for numbers.
        blank = None if i < 40 else f"later, {i}"
        rows.append(Feature(1000 - i * 3, point[0], point[1], (text, n, x, ok, when, blank)))
    return rows


def reference_csv(store: Store, table: str, where: Any = None, columns: tuple[str, ...] | None = None) -> bytes:
    """What the CSV export wrote before it read Arrow: the csv module over the stored values, ``repr`` of numbers."""
    info = store.table(table)
    assert info is not None
    names = columns if columns is not None else tuple(c.name for c in info.columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header(names))
    cols = store.feature_columns(FeatureQuery(table, where, names))
    for f in cols.features():
        writer.writerow([f.gx_id, *(_field(v) for v in f.properties), _field(f.lng), _field(f.lat)])
    return buffer.getvalue().encode()


def _field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)


def csv_export(store: Store, table: str, **plan: Any) -> bytes:
    return b"".join(export_chunks(store, plan_export(store, table, **plan), "csv"))


def reference_geojson(store: Store, table: str, where: Any = None, columns: tuple[str, ...] | None = None) -> bytes:
    """What the GeoJSON export wrote before it read Arrow: a dict of each feature dumped by ``orjson``."""
    info = store.table(table)
    assert info is not None
    names = columns if columns is not None else tuple(c.name for c in info.columns)
    features = column_bytes(store.feature_columns(FeatureQuery(table, where, names)), names)
    return geojson.HEAD + b",\n".join(features) + geojson.TAIL


def geojson_export(store: Store, table: str, **plan: Any) -> bytes:
    return b"".join(export_chunks(store, plan_export(store, table, **plan), "geojson"))


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of a few rows, so that every test crosses batch boundaries (and starts with a batch of NULLs)."""
    monkeypatch.setattr(columnar, "BATCH_ROWS", 7)


@pytest.fixture(scope="module", params=STORE_KINDS)
def tricky(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    st = _open_empty(request.param, tmp_path_factory.mktemp("tricky"))
    with st.writer() as w:
        w.replace_table(TRICKY, tricky_rows())
    load_policeuk(st, [POLICEUK / "2016-01", POLICEUK / "2016-02"])
    yield st
    st.close()


def test_the_driver_reads_whole_tables_and_selections(tricky: Store) -> None:
    assert tricky.arrow_features(FeatureQuery("tricky")) is not None
    assert tricky.arrow_features(FeatureQuery(CRIMES_TABLE, columns=("crime_id", "month"))) is not None
    where = plan_export(tricky, CRIMES_TABLE, where="category = 'burglary' AND month = '2016-02'").where
    assert tricky.arrow_features(FeatureQuery(CRIMES_TABLE, where)) is not None


def test_crimes_selected_by_an_area_or_by_a_category_and_a_force_are_read_by_the_stores_walks(tricky: Store) -> None:
    """One scan in stored order would read every crime of every month for the few in a mile or of one pair."""
    for where in (
        "ST_DISTANCE(geometry, ST_POINT(-0.09, 51.515)) < 400",
        "ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('POLYGON((-0.1 51.5, -0.08 51.5, -0.08 51.52, -0.1 51.5))'))",
        "category = 'burglary' AND reported_by = 'City of London Police'",
    ):
        query = FeatureQuery(CRIMES_TABLE, plan_export(tricky, CRIMES_TABLE, where=where).where)
        assert tricky.arrow_features(query) is None, where
    one_force = plan_export(tricky, CRIMES_TABLE, where="reported_by = 'City of London Police' AND month = '2016-02'")
    assert tricky.arrow_features(FeatureQuery(CRIMES_TABLE, one_force.where)) is not None


@pytest.mark.usefixtures("small_batches")
def test_csv_of_tricky_values_is_byte_for_byte_what_the_csv_module_writes(tricky: Store) -> None:
    got = csv_export(tricky, "tricky")
    assert got == reference_csv(tricky, "tricky")
    assert b'"say ""hi"""' in got and b'"line\nbreak"' in got and "Ünïcödé".encode() in got
    assert b",1e-05," in got and b",2015.0," in got and b",1e+16," in got


@pytest.mark.usefixtures("small_batches")
def test_csv_of_a_selection_keeps_the_columns_asked_for_in_their_order(tricky: Store) -> None:
    got = csv_export(tricky, "tricky", where="n > 0", select="x,s")
    plan = plan_export(tricky, "tricky", where="n > 0", select="x,s")
    assert got == reference_csv(tricky, "tricky", plan.where, ("x", "s"))
    assert got.startswith(b"gx_id,x,s,longitude,latitude\r\n") and got.count(b"\r\n") > 10


@pytest.mark.parametrize(
    "where",
    [None, "month = '2016-02'", "category = 'burglary' AND reported_by = 'City of London Police'",
     "last_outcome_category = 'Unable to prosecute suspect'", "ST_DISTANCE(geometry, ST_POINT(-0.09, 51.515)) < 400"],
)  # fmt: skip
def test_the_crimes_csv_is_byte_for_byte_the_previous_renderers(tricky: Store, where: str | None) -> None:
    got = csv_export(tricky, CRIMES_TABLE, where=where)
    plan = plan_export(tricky, CRIMES_TABLE, where=where)
    assert got == reference_csv(tricky, CRIMES_TABLE, plan.where)
    assert got.count(b"\r\n") > 20


@pytest.mark.usefixtures("small_batches")
def test_geojson_of_tricky_values_is_byte_for_byte_what_orjson_writes(tricky: Store) -> None:
    got = geojson_export(tricky, "tricky")
    assert got == reference_geojson(tricky, "tricky")
    assert b'"say \\"hi\\""' in got and b'"line\\nbreak"' in got and "Ünïcödé".encode() in got
    assert b'"x":0.00001,' in got and b'"x":2015.0,' in got and b'"x":1e+16,' in got and b'"x":5e-324,' in got
    assert b'"geometry":null' in got and b'"ok":true' in got and b'"n":null' in got
    orjson.loads(got)


@pytest.mark.usefixtures("small_batches")
def test_geojson_of_a_selection_keeps_the_columns_asked_for_in_their_order(tricky: Store) -> None:
    got = geojson_export(tricky, "tricky", where="n > 0", select="x,s")
    plan = plan_export(tricky, "tricky", where="n > 0", select="x,s")
    assert got == reference_geojson(tricky, "tricky", plan.where, ("x", "s"))
    assert got.count(b'"properties":{"x":') > 10


@pytest.mark.parametrize(
    "where",
    [None, "month = '2016-02'", "category = 'burglary' AND reported_by = 'City of London Police'",
     "location CONTAINS 'near'", "ST_DISTANCE(geometry, ST_POINT(-0.09, 51.515)) < 400"],
)  # fmt: skip
def test_the_crimes_geojson_is_byte_for_byte_the_previous_renderers(tricky: Store, where: str | None) -> None:
    got = geojson_export(tricky, CRIMES_TABLE, where=where)
    plan = plan_export(tricky, CRIMES_TABLE, where=where)
    assert got == reference_geojson(tricky, CRIMES_TABLE, plan.where)
    assert len(orjson.loads(got)["features"]) > 2


def test_a_where_the_driver_cannot_run_reads_in_keyset_batches_to_the_same_bytes(tricky: Store) -> None:
    where = "location CONTAINS 'near'"
    plan = plan_export(tricky, CRIMES_TABLE, where=where)
    # The embedded store tests CONTAINS with a Python function of its own connection, which the driver lacks.
    assert (tricky.arrow_features(FeatureQuery(CRIMES_TABLE, plan.where)) is None) == isinstance(tricky, SQLiteStore)
    got = csv_export(tricky, CRIMES_TABLE, where=where)
    assert got == reference_csv(tricky, CRIMES_TABLE, plan.where)
    assert got.count(b"\r\n") > 2


# -- one generation ----------------------------------------------------------------------------------------------


def _archive(folder: Path, seed: int, crimes: int = 3_000) -> Path:
    generate(folder, months=["2024-06"], crimes_per_month=crimes, seed=seed)
    return folder


@pytest.mark.parametrize("kind", STORE_KINDS)
@pytest.mark.parametrize("fmt", ["csv", "geojson", "parquet"])
def test_an_export_during_a_load_reads_one_generation(
    kind: str, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A month replaced while its export streams: the export is the month as it was, never a mix or a failure."""
    for module, name in ((columnar, "BATCH_ROWS"), (exporting, "BATCH_FEATURES"), (parquet, "ROW_GROUP_ROWS")):
        monkeypatch.setattr(module, name, 200)  # many batches and chunks: the load lands between them
    url = fresh_store_url() if kind == "postgis" else ""
    store = PostGISStore(url) if url else _open_empty(kind, tmp_path / "store")
    try:
        load_policeuk(store, [_archive(tmp_path / "old", seed=1)])
        before = b"".join(export_chunks(store, plan_export(store, CRIMES_TABLE), fmt))
        chunks = export_chunks(store, plan_export(store, CRIMES_TABLE), fmt)
        started = [next(chunks)]
        new = _archive(tmp_path / "new", seed=2)
        loading = threading.Thread(target=load_policeuk, args=(store, [new]))
        loading.start()
        _until_it_ends_or_waits_for_the_export(loading, url)
        during = b"".join([*started, *chunks])
        loading.join()
        after = b"".join(export_chunks(store, plan_export(store, CRIMES_TABLE), fmt))
    finally:
        store.close()
    assert after != before  # the load did replace the month
    if fmt != "parquet":
        assert during == before
    else:
        assert _parquet_rows(during) == _parquet_rows(before)


def _until_it_ends_or_waits_for_the_export(loading: threading.Thread, postgis_url: str) -> None:
    """Return once the load has ended, or once it is stuck behind the export (at most 60 s).

    An engine may make the load wait for the export's read (PostGIS: the load's ``LOCK TABLE`` waits for the
    export's open transaction); it then cannot land before the export ends, and waiting longer proves nothing.
    """
    deadline = time.monotonic() + 60
    while loading.is_alive() and time.monotonic() < deadline:
        if postgis_url and _waits_for_an_open_transaction(postgis_url):
            return
        loading.join(timeout=0.05)


def _waits_for_an_open_transaction(url: str) -> bool:
    """Whether a lock on one of the tables of the store at ``url`` (its schema) is waited for, behind a
    transaction idle between fetches."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            """
            SELECT EXISTS (
                SELECT FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation
                WHERE NOT l.granted AND c.relnamespace = current_schema()::regnamespace
                  AND EXISTS (SELECT FROM pg_stat_activity AS a
                              WHERE a.pid = ANY (pg_blocking_pids(l.pid)) AND a.state = 'idle in transaction'))
            """
        ).fetchone()
    return bool(row and row[0])


def _parquet_rows(data: bytes) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(data)).to_pylist()


# -- memory --------------------------------------------------------------------------------------------------------

_PEAK = """
import os, sys, threading, time
from pathlib import Path
from crimemap.store import columnar, open_store
from crimemap.export import write_export
from crimemap.export.plan import plan_export
import pyarrow, pyarrow.parquet, adbc_driver_sqlite.dbapi, adbc_driver_postgresql.dbapi  # loaded before the baseline

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

columnar.BATCH_ROWS = 2_000  # many batches for either size: the read-ahead is full in both
store = open_store(sys.argv[1], readonly=True)
write_export(store, plan_export(store, "policeuk-crimes", where="month = '1999-01'"), sys.argv[2], Path(sys.argv[3]))
peak, done = [0], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.005)

before = rss()
watcher = threading.Thread(target=sample)
watcher.start()
write_export(store, plan_export(store, "policeuk-crimes"), sys.argv[2], Path(sys.argv[3]))
done.set()
watcher.join()
print(max(peak[0], rss()) - before)
"""


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_csv_geojson_and_geoparquet_exports_keep_memory_flat_however_large_the_table(kind: str, tmp_path: Path) -> None:
    """Peak memory grows by a few batches' worth, not with the table: 4x the crimes costs (almost) nothing more."""
    import os
    import subprocess
    import sys

    grown: dict[str, list[int]] = {"csv": [], "geojson": [], "parquet": []}
    for size in (50_000, 200_000):  # each several batches of BATCH_ROWS: the steady state, not the first batch
        location = str(tmp_path / f"s{size}.sqlite") if kind == "sqlite" else fresh_store_url()
        with open_store(location) as store:
            load_policeuk(store, [_archive(tmp_path / f"a{size}", seed=1, crimes=size)])
        for fmt in grown:
            out = tmp_path / f"o{size}.{fmt}"
            env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}  # what is really held, not pooled pages
            run = subprocess.run(
                [sys.executable, "-c", _PEAK, location, fmt, str(out)], capture_output=True, text=True, env=env
            )
            assert run.returncode == 0, run.stderr
            grown[fmt].append(int(run.stdout.strip().splitlines()[-1]))
    for fmt, (small, large) in grown.items():
        assert large - small < 12 * 1024, f"{fmt}: peak grew {small} KiB -> {large} KiB for 4x the crimes"
