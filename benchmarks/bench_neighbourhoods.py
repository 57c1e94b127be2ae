"""Neighbourhoods at national scale: ``locate-neighbourhood`` and a neighbourhood's crimes by its boundary.

On about 4,600 generated neighbourhoods (as many as England and Wales have,
:mod:`crimemap.load.generate.neighbourhoods`) and one generated month of crimes,
in the embedded store, served by ``crimemap serve`` (one worker, response cache off):

- **load**: the KML zip loaded (parse, check, store both the points and the shapes);
- **locate-neighbourhood p50** over HTTP on loopback, at a random point inside a
  random neighbourhood each time (target: 1 ms), beside the in-process floor
  (the locator alone) and beside ``/api/crime-last-updated``, the cheapest police.uk
  method (what HTTP itself costs);
- **counts grouped by neighbourhood**: ``/stats/crimes?group=neighbourhood`` (and with
  ``,category`` and ``month,...,force``) for the month, in process (the counts kept per
  neighbourhood, :mod:`crimemap.store.stats_neighbourhoods`; the first call reading the
  boundaries too) and over HTTP, beside ``group=force`` (the kept totals) and the cheapest
  police.uk method (the HTTP floor), beside the same sums read raw with ``sqlite3`` (the floor); stops
  (a tenth as many, counted point by point) grouped by neighbourhood; once
  ``group=neighbourhood,outcome`` (point by point) and once the former way (one area count
  per neighbourhood, as before the counts were kept);
- **a neighbourhood's crimes**: ``crimes-street`` with the neighbourhood's
  ``/boundary`` as ``poly``, for the densest town centre's neighbourhood, beside
  the same call with a square of the same area at the same place (the issue: as
  fast as any polygon of that size).

Run::

    python benchmarks/bench_neighbourhoods.py                 # 4,600 neighbourhoods, 500,000 crimes
    python benchmarks/bench_neighbourhoods.py --crimes 100000 --requests 500
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import shapely

from crimemap.load.generate.archive import generate
from crimemap.load.generate.neighbourhoods import plan, write_neighbourhoods
from crimemap.load.generate.world import DENSEST_CENTRE, month_range
from crimemap.load.neighbourhoods import load_neighbourhoods
from crimemap.load.policeuk import load_policeuk
from crimemap.months import parse_month
from crimemap.neighbourhood_stats import CountedAreas, count_crimes, count_stops, grouping
from crimemap.neighbourhoods import NeighbourhoodLocator
from crimemap.stats_query import StatsQuery, parse_stats
from crimemap.stats_stops_query import parse_stop_stats
from crimemap.store.sqlite import SQLiteStore

HERE = Path(__file__).resolve().parent
BENCH_DATA = HERE.parent / "bench-data"
sys.path.insert(0, str(HERE))

from crimemap_server import Server  # noqa: E402

MONTH = "2024-06"


def _timed(fn: Callable[[int], Any], n: int) -> list[float]:
    fn(0)
    times = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _points(count: int, n: int) -> list[tuple[float, float]]:
    """``n`` (lng, lat) points, each inside a random one of the generated neighbourhoods."""
    rng = np.random.default_rng(7)
    made = plan(count)
    points = []
    for i in rng.integers(0, len(made), n).tolist():
        shape = made[i].shape
        west, south, east, north = shape.bounds
        while True:
            lng, lat = rng.uniform(west, east), rng.uniform(south, north)
            if shape.contains(shapely.Point(lng, lat)):
                points.append((float(lng), float(lat)))
                break
    return points


def _square_poly(shape: Any) -> str:
    """A square of the shape's area around its centroid, as a ``poly``."""
    centre = shape.centroid
    half = math.sqrt(shape.area) / 2
    corners = [(-half, -half), (half, -half), (half, half), (-half, half)]
    return ":".join(f"{centre.y + dy:.6f},{centre.x + dx:.6f}" for dx, dy in corners)


def _report(name: str, times: list[float], extra: str = "") -> None:
    p50, p95 = statistics.median(times), statistics.quantiles(times, n=20)[-1]
    print(f"  {name:<46} p50 {p50:7.3f} ms   p95 {p95:7.3f} ms{extra}", flush=True)


def _by_neighbourhood(store: SQLiteStore) -> None:
    """Counts grouped by neighbourhood in process (the kept counts), beside the kept totals by force, the raw
    sums (the floor), stops, a group counted point by point, and once the former way (each area in turn)."""
    count = count_crimes
    started = time.perf_counter()
    rows = count(store, grouping(parse_stats)(group="neighbourhood", months=MONTH))
    first = (time.perf_counter() - started) * 1000
    areas = len(CountedAreas.of(store).areas)
    print(f"group=neighbourhood: {len(rows):,} rows, {sum(r[-1] for r in rows):,} crimes;"
          f" first call {first:,.0f} ms ({areas:,} boundaries read)", flush=True)  # fmt: skip
    for group in ("neighbourhood", "neighbourhood,category", "month,neighbourhood,force", "force"):
        query = grouping(parse_stats)(group=group, months=MONTH)
        _report(f"group={group} in process", _timed(lambda i, q=query: count(store, q), 20))
    raw = sqlite3.connect(store.path)
    month = parse_month(MONTH)
    for columns in ("neighbourhood", "neighbourhood, category"):
        sql = f"SELECT {columns}, sum(crimes) FROM stats_neighbourhoods WHERE month = ? GROUP BY {columns}"
        floor = _timed(lambda i, q=sql: raw.execute(q, (month,)).fetchall(), 20)
        _report(f"floor: {columns} summed raw (sqlite3)", floor)
    raw.close()
    for group in ("neighbourhood", "neighbourhood,type"):
        stops = grouping(parse_stop_stats)(group=group, months=MONTH)
        _report(f"stops: group={group} in process", _timed(lambda i, q=stops: count_stops(store, q), 5))
    query = grouping(parse_stats)(group="neighbourhood,outcome", months=MONTH)
    started = time.perf_counter()
    rows = count(store, query)
    print(f"  group=neighbourhood,outcome (point by point): {(time.perf_counter() - started) * 1000:,.0f} ms,"
          f" {len(rows):,} rows", flush=True)  # fmt: skip
    started = time.perf_counter()
    former = sum(
        1
        for a in CountedAreas.of(store).areas
        for r in _area_counts(store, replace(query, group=(), area=a.area))
        if r[-1]
    )
    print(f"  group=neighbourhood the former way (one area count per neighbourhood):"
          f" {(time.perf_counter() - started) * 1000:,.0f} ms, {former:,} rows", flush=True)  # fmt: skip


def _area_counts(store: SQLiteStore, query: StatsQuery) -> list[tuple[Any, ...]]:
    return store.stats(query)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neighbourhoods", type=int, default=4600)
    parser.add_argument("--crimes", type=int, default=500_000, help="crimes in the month")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    BENCH_DATA.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BENCH_DATA) as tmp:
        folder = Path(tmp)
        generate(folder / "archive", months=month_range(MONTH, 1), crimes_per_month=args.crimes,
                 stops_per_month=args.crimes // 10, seed=1)  # fmt: skip
        made = write_neighbourhoods(folder / "neighbourhoods.zip", args.neighbourhoods)
        store = SQLiteStore(folder / "n.sqlite")
        load_policeuk(store, [folder / "archive"])
        started = time.perf_counter()
        load_neighbourhoods(store, [folder / "neighbourhoods.zip"])
        loaded = time.perf_counter() - started
        print(f"# neighbourhoods: {made:,} generated, {args.crimes:,} crimes and {args.crimes // 10:,} stops"
              f" in {MONTH}", flush=True)  # fmt: skip
        print(f"  load of the KML zip: {loaded:.1f} s, the counts per neighbourhood of the month's crimes included"
              f" ({made / loaded:,.0f} neighbourhoods/s)", flush=True)  # fmt: skip
        points = _points(args.neighbourhoods, args.requests + 1)
        started = time.perf_counter()
        locator = NeighbourhoodLocator.of(store)
        print(f"  locator made in {(time.perf_counter() - started) * 1000:.0f} ms (once per load)", flush=True)
        floor = _timed(lambda i: locator.at(*points[i]), args.requests)
        dense = min(plan(args.neighbourhoods), key=lambda n: math.dist(n.seed, DENSEST_CENTRE))
        _by_neighbourhood(store)
        store.close()
        server = Server(str(folder / "n.sqlite"), workers=1, cache_mb=0)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:

                def locate(i: int) -> None:
                    lng, lat = points[i]
                    client.get("/api/locate-neighbourhood", params={"q": f"{lat:.6f},{lng:.6f}"}).raise_for_status()

                http = _timed(locate, args.requests)
                grouped = _timed(
                    lambda i: client.get(
                        "/stats/crimes", params={"group": "neighbourhood", "months": MONTH}
                    ).raise_for_status(),
                    20,
                )
                by_force = _timed(
                    lambda i: client.get(
                        "/stats/crimes", params={"group": "force", "months": MONTH}
                    ).raise_for_status(),
                    20,
                )
                cheapest = _timed(lambda i: client.get("/api/crime-last-updated").raise_for_status(), args.requests)
                boundary = client.get(f"/api/{dense.force}/{dense.id}/boundary").json()
                poly = ":".join(f"{p['latitude']},{p['longitude']}" for p in boundary)
                square = _square_poly(dense.shape)
                by = {}
                for name, area in (("its boundary", poly), ("a square of its area", square)):
                    answer = client.post("/api/crimes-street/all-crime", data={"poly": area, "date": MONTH})
                    answer.raise_for_status()
                    by[name] = (
                        len(answer.json()),
                        _timed(
                            lambda i, a=area: client.post(  # type: ignore[misc]
                                "/api/crimes-street/all-crime", data={"poly": a, "date": MONTH}
                            ).raise_for_status(),
                            max(20, args.requests // 20),
                        ),
                    )
        finally:
            server.stop()
        print(f"locate-neighbourhood, {args.requests} random points inside neighbourhoods:")
        _report("over HTTP (target p50 <= 1 ms)", http)
        _report("in process (the locator alone)", floor)
        _report("crime-last-updated over HTTP (the HTTP floor)", cheapest)
        _report("/stats/crimes?group=neighbourhood over HTTP", grouped)
        _report("/stats/crimes?group=force over HTTP", by_force)
        print(f"crimes of {dense.force}/{dense.id} ({dense.name}, {len(boundary)} points) in {MONTH}, POST:")
        for name, (found, times) in by.items():
            _report(f"poly = {name}", times, f"   {found:,} crimes")


if __name__ == "__main__":
    main()
