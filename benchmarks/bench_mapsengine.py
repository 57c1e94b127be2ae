"""The Maps Engine API and whole-table exports on a large store, beside their in-process floors.

On an existing store (the foundation benchmark's 6-million-crime store, or any
other), reading the police.uk crimes table (``policeuk-crimes``):

- ``page with where``: one 1,000-feature ``features`` page for each of a few
  ``where`` clauses (target p50 <= 10 ms), read by a raw ``http.client``
  client. Floor: the same store query and rendering in process, no HTTP.
  Ratio: HTTP p50 / floor p50.
- ``paging by token``: following ``nextPageToken`` through the table, 1,000
  features a page, every column (target >= 250,000 features/s). Floor: the
  same keyset reads in process (the store's columns, decoded), no rendering or
  HTTP. Ratio: HTTP rate / floor rate. ``--paging-features`` pages only the
  start of the table.
- ``GeoJSON and CSV export``: ``crimemap export`` in a subprocess, the whole
  table and one month of it (targets >= 300,000 features/s for GeoJSON,
  >= 500,000 for CSV, and peak RSS < 200 MB whatever the size).
- ``GeoParquet, GeoPackage and FlatGeobuf export``: the same, the whole table
  (target >= 500,000 features/s for GeoParquet; none for the GDAL formats).
  Every format's floor: the store's driver reading the same
  statement's Arrow batches in process, nothing rendered
  (:meth:`~crimemap.store.base.Store.arrow_features`). Ratio: export rate /
  floor rate.

Run standalone::

    python benchmarks/bench_mapsengine.py --store bench.sqlite

or import :func:`bench_mapsengine` (rows ``{name, value, unit, floor, ratio,
target}``) or :func:`run` (the runner's ``report(name, value, target)``).
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crimemap.export.geojson import geojson_page
from crimemap.export.plan import Export, feature_batches
from crimemap.query import FeatureQuery, Predicate
from crimemap.store import open_store
from crimemap.store.base import Store
from crimemap.store.catalogue import CRIMES_TABLE, TableInfo
from crimemap.store.engines import is_server_store
from crimemap.store.geojson_sql import Layout
from crimemap.where import parse_where
from crimemap_server import Server, crimemap_command

FEATURES = "/mapsengine/v1/tables/{table}/features"
WHERE_CLAUSES = (
    "location_type = 'Force'",
    "crime_type = 'Burglary'",
    "category = 'burglary' AND reported_by = 'Metropolitan Police Service'",
)
"""Most rows match; one in about fourteen; one in about two hundred."""

PAGE_P50_MS = 10.0
PAGING_PER_S = 250_000.0
EXPORT_PER_S: dict[str, float | None] = {
    "geojson": 300_000.0,
    "csv": 500_000.0,
    "parquet": 500_000.0,
    "gpkg": None,
    "fgb": None,
}
FORMAT_NAMES = {"geojson": "GeoJSON", "csv": "CSV", "parquet": "GeoParquet", "gpkg": "GeoPackage", "fgb": "FlatGeobuf"}
EXPORT_PEAK_MB = 200.0

Row = dict[str, Any]


def _row(
    name: str,
    value: float,
    unit: str,
    floor: float,
    target: float | None,
    higher_is_better: bool,
) -> Row:
    ratio = value / floor if floor else float("nan")
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "floor": floor,
        "ratio": ratio,
        "target": target,
        "ok": None if target is None else (value >= target if higher_is_better else value <= target),
    }


# -- one page with a where clause --------------------------------------------------------------------------


def _page_floor(store: Store, table: TableInfo, where: Predicate | None, after: int | None = None) -> bytes:
    """A page in process: the store query and the rendered features, as the endpoint does them."""
    names = tuple(c.name for c in table.columns)
    query = FeatureQuery(table.id, where, names, (), (after,) if after is not None else None, 1_001)
    page = geojson_page(store, query, Layout(names, with_id=False))
    return b",".join(page.features[:1_000])


def _median_ms(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1_000)
    return statistics.median(times)


def bench_pages(port: int, store: Store, table: TableInfo, repeat: int) -> list[Row]:
    rows = []
    path = FEATURES.format(table=table.id)
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for clause in WHERE_CLAUSES:
        where = parse_where(clause, table.schema)
        target = f"{path}?{urllib.parse.urlencode({'where': clause, 'maxResults': 1_000})}"

        def get_page(target: str = target) -> None:
            client.request("GET", target)
            response = client.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"page failed: {response.status}")

        def floor_page(where: Predicate = where) -> None:
            _page_floor(store, table, where)

        get_page()
        floor_page()
        floors, https = [], []
        for _ in range(5):  # interleaved, so both see the same machine
            floors.append(_median_ms(floor_page, max(1, repeat // 5)))
            https.append(_median_ms(get_page, max(1, repeat // 5)))
        floor, http_ms = statistics.median(floors), statistics.median(https)
        rows.append(_row(f"page of 1,000 with where {clause}: p50", http_ms, "ms", floor, PAGE_P50_MS, False))
    return rows


# -- paging by token ----------------------------------------------------------------------------------------

_TOKEN = b'"nextPageToken":"'


def bench_paging(server: Server, store: Store, table: TableInfo, limit: int | None) -> list[Row]:
    """Follow tokens through the table: a thin keep-alive client reads each token from the raw bytes."""
    path = FEATURES.format(table=table.id)
    total = min(limit or table.feature_count, table.feature_count)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    got, token, t0 = 0, None, time.perf_counter()
    while got < total:
        query = urllib.parse.urlencode({"maxResults": 1_000, **({"pageToken": token} if token else {})})
        connection.request("GET", f"{path}?{query}")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"paging failed: {response.status} {body[:300]!r}")
        got += body.count(b'{"type":"Feature",')
        at = body.rfind(_TOKEN)
        if at < 0:
            break
        token = body[at + len(_TOKEN) : body.index(b'"', at + len(_TOKEN))].decode()
    http_rate = got / (time.perf_counter() - t0)
    connection.close()

    names = tuple(c.name for c in table.columns)
    done, after, t0 = 0, None, time.perf_counter()
    while done < got:
        query_ = FeatureQuery(table.id, None, names, (), (after,) if after is not None else None, 1_001)
        page = store.feature_columns(query_).head(1_000)
        if not len(page):
            break
        done += len(page)
        after = page.gx_id[-1]
    floor_rate = done / (time.perf_counter() - t0)
    name = f"paging {got:,} features by token, every column"
    return [_row(name, http_rate, "features/s", floor_rate, PAGING_PER_S, True)]


# -- GeoJSON export ----------------------------------------------------------------------------------------


def export_run(
    store_path: str, table: str, where: str | None, out: Path, fmt: str = "geojson"
) -> tuple[float, float, float]:
    """(seconds, peak RSS MB, peak anonymous RSS MB) of ``crimemap export`` in a subprocess.

    Peak RSS (``VmHWM``) counts the store file's pages that SQLite maps into
    memory (``mmap_size``); anonymous RSS is what the process allocated:
    Python, the exporter and SQLite's page cache (``cache_size``).
    """
    command = [*crimemap_command(), "export", table, "--store", store_path, "-o", str(out), "--quiet"]
    command += ["--format", fmt]
    if where:
        command += ["--where", where]
    t0 = time.perf_counter()
    process = subprocess.Popen(command)
    status = Path(f"/proc/{process.pid}/status")
    peak_rss = peak_anon = 0
    while process.poll() is None:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            break
        peak_rss = max(peak_rss, int(fields.get("VmHWM", "0 kB").split()[0]))
        peak_anon = max(peak_anon, int(fields.get("RssAnon", "0 kB").split()[0]))
        time.sleep(0.05)
    if process.wait() != 0:
        raise RuntimeError(f"crimemap export failed: {command}")
    return time.perf_counter() - t0, peak_rss / 1024, peak_anon / 1024


def warm(store_path: str) -> None:
    """Read a SQLite store file once, so every figure finds it in the OS cache (none pays the disk)."""
    path = Path(store_path)
    if path.is_file():
        with path.open("rb") as f:
            while f.read(1 << 23):
                pass


def _count_features(path: Path, fmt: str) -> int:
    """Features in an export: one per line, between the header and the closing line (GeoJSON) or after the header;
    a GIS file's own count."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    if fmt in ("gpkg", "fgb"):
        import pyogrio

        return int(pyogrio.read_info(path)["features"])
    with path.open("rb") as f:
        return max(0, sum(1 for _ in f) - (2 if fmt == "geojson" else 1))


def _driver_floor(store: Store, table: TableInfo, features: int) -> float:
    """Features/s of the store's driver reading the export's Arrow batches, nothing rendered (NaN without one)."""
    batches = store.arrow_features(FeatureQuery(table.id))
    if batches is None:
        return float("nan")
    done, t0 = 0, time.perf_counter()
    for batch in batches:
        done += len(batch)
        if done >= features:
            break
    rate = done / (time.perf_counter() - t0)
    close = getattr(batches, "close", None)
    if close is not None:
        close()
    return rate


def bench_export(
    store_path: str, store: Store, table: TableInfo, floor_features: int, formats: tuple[str, ...] = tuple(FORMAT_NAMES)
) -> list[Row]:
    rows = []
    month = store.latest_month()
    cases: list[tuple[str, str | None]] = [("the whole table", None)]
    if table.id == CRIMES_TABLE and month is not None:
        cases.append((f"one month ({month})", f"month = '{month}'"))
    runs = [("geojson", c) for c in cases] + [("csv", c) for c in cases]
    runs += [(fmt, cases[0]) for fmt in ("parquet", "gpkg", "fgb")]
    runs = [(fmt, case) for fmt, case in runs if fmt in formats]
    with tempfile.TemporaryDirectory(prefix="crimemap-bench-") as tmp:
        done, t0 = 0, time.perf_counter()
        for batch in feature_batches(store, Export(table)):
            done += len(batch)
            if done >= floor_features:
                break
        keyset_rate = done / (time.perf_counter() - t0)
        driver_rate = _driver_floor(store, table, floor_features)
        for fmt, (label, where) in runs:
            out = Path(tmp) / f"export.{fmt}"
            seconds, peak_rss, peak_anon = export_run(store_path, table.id, where, out, fmt)
            features = _count_features(out, fmt)
            out.unlink()
            floor = driver_rate if driver_rate == driver_rate else keyset_rate  # NaN: no driver
            name = f"{FORMAT_NAMES[fmt]} export of {label} ({features:,} features)"
            rows.append(_row(name, features / seconds, "features/s", floor, EXPORT_PER_S[fmt], True))
            rows.append(_row(f"{name}: peak anonymous RSS", peak_anon, "MB", float("nan"), EXPORT_PEAK_MB, False))
            rows.append(_row(f"{name}: peak RSS with mapped store pages", peak_rss, "MB", float("nan"), None, False))
    return rows


# -- the whole benchmark ---------------------------------------------------------------------------------


def bench_mapsengine(
    store_path: str,
    *,
    table_id: str = CRIMES_TABLE,
    repeat: int = 50,
    paging_features: int | None = None,
    export: bool = True,
    pages: bool = True,
    formats: tuple[str, ...] = tuple(FORMAT_NAMES),
    floor_features: int = 1_000_000,
) -> list[Row]:
    """Rows ``{name, value, unit, floor, ratio, target, ok}``; see the module docstring."""
    store = open_store(store_path, readonly=not is_server_store(store_path))
    try:
        table = store.table(table_id)
        if table is None or table.feature_count == 0:
            raise SystemExit(f"no features in table {table_id!r} of {store_path}")
        warm(store_path)
        rows: list[Row] = []
        if pages:
            server = Server(store_path)
            try:
                rows += bench_pages(server.port, store, table, repeat)
                rows += bench_paging(server, store, table, paging_features)
            finally:
                server.stop()
        if export:
            rows += bench_export(store_path, store, table, floor_features, formats)
    finally:
        store.close()
    return rows


def run(store_path: str, report: Callable[[str, float, float | None], None]) -> None:
    """The benchmark runner's protocol: ``report(name, value, target)`` for every figure."""
    for row in bench_mapsengine(store_path):
        report(f"Maps Engine {row['name']} ({row['unit']})", row["value"], row["target"])
        if row["floor"] == row["floor"]:  # not NaN
            report(f"Maps Engine {row['name']}: in-process floor ({row['unit']})", row["floor"], None)
            report(f"Maps Engine {row['name']}: ratio to floor", row["ratio"], None)


def print_table(rows: list[Row]) -> None:
    print(f"Maps Engine API and exports ({os.cpu_count()} CPUs)")
    print(f"{'figure':<86} {'value':>12} {'floor':>12} {'ratio':>6}  target")
    for r in rows:
        floor = f"{r['floor']:>12,.1f}" if r["floor"] == r["floor"] else f"{'-':>12}"
        ratio = f"{r['ratio']:>6.2f}" if r["ratio"] == r["ratio"] else f"{'-':>6}"
        sign = ">=" if r["unit"] == "features/s" else "<="
        target = "" if r["target"] is None else f"{sign}{r['target']:,.0f}"
        verdict = "" if r["ok"] is None else ("ok" if r["ok"] else "MISSED")
        label = f"{r['name']} ({r['unit']})"
        print(f"{label:<86} {r['value']:>12,.1f} {floor} {ratio}  {target} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="an existing store (SQLite file or postgresql:// URL)")
    parser.add_argument("--table", default=CRIMES_TABLE, help="the table to read (default: the crimes)")
    parser.add_argument("--repeat", type=int, default=50, help="requests per where clause")
    parser.add_argument("--paging-features", type=int, help="page only this many features (default: all)")
    parser.add_argument("--no-export", action="store_true", help="skip the export figures")
    parser.add_argument("--exports-only", action="store_true", help="only the export figures (no pages, no paging)")
    parser.add_argument(
        "--formats", default=",".join(FORMAT_NAMES), help="export formats to measure (default: all of them)"
    )
    args = parser.parse_args()
    rows = bench_mapsengine(
        args.store,
        table_id=args.table,
        repeat=args.repeat,
        paging_features=args.paging_features,
        export=not args.no_export,
        pages=not args.exports_only,
        formats=tuple(f.strip() for f in args.formats.split(",") if f.strip()),
    )
    print_table(rows)


if __name__ == "__main__":
    main()
