"""Stop and search: how fast stop-and-search files load, and ``stops-street`` beside ``crimes-street``.

On a generated archive of a few months (street, outcomes and stop-and-search
files, :mod:`crimemap.load.generate`):

- **load rate**: the archive's street and outcomes files are loaded first (their
  map points name the stops), then its stop-and-search files alone, timed: stops
  a second, parsing in a second process as every large load does;
- **stops-street p50**: ``/api/stops-street`` within a mile of the densest town
  centre (``DENSEST_CENTRE``) in the latest month, over HTTP on loopback (one
  worker, response cache off), beside ``/api/crimes-street/all-crime`` at the
  same point, and beside each one's in-process floor (the store's JSON answer,
  no HTTP). ``--postgis`` adds the load rate into a PostGIS store.

Run::

    python benchmarks/bench_stops.py                      # 3 months x 200,000 crimes, 50,000 stops a month
    python benchmarks/bench_stops.py --months 2 --crimes 100000 --stops 20000 --postgis
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from crimemap.geo import ONE_MILE_M
from crimemap.load.generate.archive import generate
from crimemap.load.generate.world import DENSEST_CENTRE, month_range
from crimemap.load.policeuk import load_policeuk
from crimemap.load.policeuk_files import find_sources
from crimemap.query import Circle, CrimeQuery, StopQuery
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore

HERE = Path(__file__).resolve().parent
BENCH_DATA = HERE.parent / "bench-data"
sys.path.insert(0, str(HERE))

from crimemap_server import Server  # noqa: E402


def archive(months: int, crimes: int, stops: int) -> Path:
    """The generated archive (made once, kept in bench-data/)."""
    out = BENCH_DATA / f"archive-{months}x{crimes}-stops{stops}-s1"
    if not (out / ".complete").exists():
        generate(out, months=month_range("2024-06", months), crimes_per_month=crimes, seed=1, stops_per_month=stops)
        (out / ".complete").write_text("")
    return out


def _files(folder: Path, stops: bool) -> list[Path]:
    return [Path(s.label) for s in find_sources([folder]) if (s.kind == "stop-and-search") == stops]


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the parsing process)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def load_rate(store: Store, folder: Path) -> tuple[int, float, float]:
    """Load the crimes untimed, then the stops timed: (stops, wall seconds, CPU seconds).

    CPU time is given beside wall time because the machine may be shared: on two
    busy cores the wall clock measures the neighbours as much as the load.
    """
    load_policeuk(store, _files(folder, stops=False))
    started, cpu = time.perf_counter(), _cpu()
    summary = load_policeuk(store, _files(folder, stops=True), parallel=True)
    return summary.stops, time.perf_counter() - started, _cpu() - cpu


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    fn()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--crimes", type=int, default=200_000, help="crimes a month")
    parser.add_argument("--stops", type=int, default=50_000, help="stops and searches a month")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--postgis", action="store_true", help="also load into a throwaway PostGIS store")
    args = parser.parse_args()
    folder = archive(args.months, args.crimes, args.stops)
    print(f"# stop and search: {args.months} months x {args.crimes:,} crimes and {args.stops:,} stops", flush=True)
    with tempfile.TemporaryDirectory(dir=BENCH_DATA) as tmp:
        path = Path(tmp) / "stops.sqlite"
        store = SQLiteStore(path)
        n, seconds, cpu = load_rate(store, folder)
        print(
            f"load, embedded store: {n:,} stops in {seconds:.1f} s = {n / seconds:,.0f} stops/s"
            f" ({cpu:.1f} CPU s in both processes)",
            flush=True,
        )
        month = store.latest_stop_month()
        assert month is not None
        mile = Circle(DENSEST_CENTRE, ONE_MILE_M)
        stop_query, crime_query = StopQuery(month=month, area=mile), CrimeQuery(month=month, area=mile)
        stops_found = store.stops_json(stop_query, 10_001).found
        crimes_found = store.crimes_json(crime_query, 10_001).found
        floors = {
            "stops-street": _timed(lambda: store.stops_json(stop_query, 10_001), args.requests),
            "crimes-street": _timed(lambda: store.crimes_json(crime_query, 10_001), args.requests),
        }
        store.close()
        lng, lat = DENSEST_CENTRE
        where = f"lat={lat:.6f}&lng={lng:.6f}&date={month}"
        paths = {"stops-street": f"/api/stops-street?{where}", "crimes-street": f"/api/crimes-street/all-crime?{where}"}
        server = Server(str(path), workers=1, cache_mb=0)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                http = {
                    name: _timed(lambda p=p: client.get(p).raise_for_status(), args.requests)  # type: ignore[misc]
                    for name, p in paths.items()
                }
        finally:
            server.stop()
        found = {"stops-street": stops_found, "crimes-street": crimes_found}
        print(f"densest mile ({DENSEST_CENTRE[1]:.4f}, {DENSEST_CENTRE[0]:.4f}), {month}, {args.requests} requests:")
        for name in paths:
            p50, floor = statistics.median(http[name]), statistics.median(floors[name])
            print(
                f"  {name:<14} {found[name]:>6,} answered   HTTP p50 {p50:6.2f} ms   p95"
                f" {statistics.quantiles(http[name], n=20)[-1]:6.2f} ms   in-process floor p50 {floor:6.2f} ms",
                flush=True,
            )
    if args.postgis:
        sys.path.insert(0, str(HERE.parent / "tests"))
        from crimemap.store.postgis import PostGISStore
        from pg_server import fresh_store_url

        with PostGISStore(fresh_store_url()) as pg:
            n, seconds, cpu = load_rate(pg, folder)
        print(
            f"load, PostGIS store: {n:,} stops in {seconds:.1f} s = {n / seconds:,.0f} stops/s"
            f" ({cpu:.1f} CPU s of crimemap's, beside the server's)",
            flush=True,
        )


if __name__ == "__main__":
    main()
