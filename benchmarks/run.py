"""Every benchmark, in one command, on one generated store.

    python benchmarks/run.py                       # 12 months x 500,000 crimes (about 15 minutes)
    python benchmarks/run.py --crimes-per-month 100000 --months 3   # a quick look
    python benchmarks/run.py --skip stores         # leave out a part (foundation, policeuk, mapsengine, ...)

1. foundation (``bench_foundation``): generate the archive, load it (beside a bare
   ``executemany`` floor), store size, in-process 1-mile queries;
2. policeuk (``bench_api_policeuk``): the police.uk API over HTTP on loopback,
   beside the in-process floor of the same query;
3. mapsengine (``bench_mapsengine``): Maps Engine pages, paging by token, GeoJSON
   export, beside in-process floors;
4. stats (``bench_stats``): crime counts at national scale, in process and over HTTP, on the same store;
5. stores (``bench_stores``): the embedded and PostGIS stores side by side on a
   smaller archive (needs PostgreSQL with PostGIS, as the tests do);
6. stops (``bench_stops``): the load rate of stop-and-search files, and ``stops-street``
   beside ``crimes-street`` on the densest mile, on an archive of 3 months;
7. ogc (``bench_ogc``): OGC API - Features items, paging and concurrency on both stores;
8. neighbourhoods (``bench_neighbourhoods``): ``locate-neighbourhood`` over 4,600 neighbourhoods, and a
   neighbourhood's crimes by its boundary.

Every figure is printed with its target where the issues set one; the output
is the table quoted in the README.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_foundation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--crimes-per-month", type=int, default=500_000)
    parser.add_argument("--stores-crimes", type=int, default=500_000, help="crimes per month for the store comparison")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        help="foundation, policeuk, mapsengine, stats, stores, stops, ogc or neighbourhoods",
    )
    args = parser.parse_args()
    targets: list[tuple[str, float, float]] = []

    def report(name: str, value: float, target: float | None) -> None:
        bench_foundation.print_report(name, value, target)
        if target is not None:
            targets.append((name, value, target))

    started = time.perf_counter()
    print(f"# crimemap benchmarks: {args.months} months x {args.crimes_per_month:,} crimes", flush=True)
    store_path = bench_foundation.BENCH_DATA / "bench.sqlite"
    if "foundation" not in args.skip:
        print("\n## foundation: load and in-process queries (embedded store)", flush=True)
        store_path = bench_foundation.run(report, args.months, args.crimes_per_month)
    if "policeuk" not in args.skip:
        import bench_api_policeuk

        print("\n## police.uk API over HTTP (loopback, 1 worker)", flush=True)
        bench_api_policeuk.run(str(store_path), report)
    if "mapsengine" not in args.skip:
        import bench_mapsengine

        print("\n## Maps Engine API and exports", flush=True)
        bench_mapsengine.run(str(store_path), report)
    if "stats" not in args.skip:
        import bench_stats

        print("\n## crime counts (/stats/crimes)", flush=True)
        bench_stats.run(report, args.months, args.crimes_per_month)
    if "stores" not in args.skip:
        print("\n## SQLite and PostGIS side by side", flush=True)
        subprocess.run(
            [sys.executable, str(HERE / "bench_stores.py"), "--crimes", str(args.stores_crimes), "--months", "3"],
            check=True,
        )
    if "stops" not in args.skip:
        print("\n## stop and search", flush=True)
        subprocess.run([sys.executable, str(HERE / "bench_stops.py")], check=True)
    if "ogc" not in args.skip:
        print("\n## OGC API - Features", flush=True)
        if importlib.util.find_spec("pygeoapi") is None:
            print("pygeoapi is not installed (pip install -e '.[bench]'): skipped", flush=True)
        else:
            subprocess.run(
                [sys.executable, str(HERE / "bench_ogc.py"), "--crimes-per-month", str(args.stores_crimes)],
                check=True,
            )
    if "neighbourhoods" not in args.skip:
        print("\n## neighbourhoods", flush=True)
        subprocess.run([sys.executable, str(HERE / "bench_neighbourhoods.py")], check=True)
    if targets:
        print("\n## every figure with a target, once more (the stores and stops parts print their own)", flush=True)
        for name, value, target in targets:
            bench_foundation.print_report(name, value, target)
    print(f"\n# all benchmarks: {time.perf_counter() - started:,.0f} s", flush=True)


if __name__ == "__main__":
    main()
