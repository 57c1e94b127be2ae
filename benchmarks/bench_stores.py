"""The embedded (SQLite) and PostGIS stores side by side, on the same generated archive.

    python benchmarks/bench_stores.py --crimes 500000 --months 3

Generates a synthetic police.uk archive (:mod:`crimemap.load.generate`), loads it
into a fresh store of each kind, then times the reads the APIs make: a dense and
a sparse one-mile ``crimes-street`` query, a polygon query stopped at the
10,000-crime cap (10,001 rows, as the API asks), keyset pages of the crimes
table and a whole-month export. Prints one line per measure with both stores'
figures and the ratio PostGIS / SQLite (below 1 means PostGIS is faster).

PostgreSQL comes from ``--postgres URL``, else ``$CRIMEMAP_TEST_POSTGRES``, else
a throwaway local cluster as the tests start one (``tests/pg_server.py``; it
runs with ``fsync=off``, so its load figure is an upper bound for a durable server).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from crimemap import geo
from crimemap.load.generate import DENSEST_CENTRE, TOWNS, generate, month_range
from crimemap.load.policeuk import load_policeuk
from crimemap.query import Circle, Compare, CrimeQuery, FeatureQuery, Polygon
from crimemap.store.base import CRIMES_TABLE, Store
from crimemap.store.postgis import PostGISStore
from crimemap.store.sqlite import SQLiteStore

CAP = 10_000


def p50(run: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``run`` after two warm-up calls."""
    run(), run()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def square(centre: tuple[float, float], half_side_m: float) -> Polygon:
    lng, lat = centre
    w, s, e, n = geo.circle_bbox(lng, lat, half_side_m)
    return Polygon(((w, s), (e, s), (e, n), (w, n), (w, s)))


def capped_polygon(store: Store, month: str) -> Polygon:
    """A square around the densest point holding more than 10,000 crimes of ``month``."""
    half = 500.0
    while half < 200_000:
        poly = square(DENSEST_CENTRE, half)
        if sum(1 for _ in store.crimes(CrimeQuery(month=month, area=poly, limit=CAP + 1))) > CAP:
            return poly
        half *= 1.5
    raise SystemExit("no square holds 10,000 crimes: generate more crimes per month (--crimes)")


def measure(store: Store, archive: Path, month: str, repeat: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    started = time.perf_counter()
    summary = load_policeuk(store, [archive])
    figures["load rows/s"] = (summary.crimes + summary.outcomes) / (time.perf_counter() - started)

    def count(query: CrimeQuery) -> int:
        return sum(1 for _ in store.crimes(query))

    dense = CrimeQuery(month=month, area=Circle(DENSEST_CENTRE, geo.ONE_MILE_M))
    quiet_town = min(TOWNS, key=lambda t: t.weight)
    sparse = CrimeQuery(month=month, area=Circle((quiet_town.lng, quiet_town.lat), geo.ONE_MILE_M))
    figures["dense 1-mile crimes"] = count(dense)
    figures["dense 1-mile p50 ms"] = p50(lambda: count(dense), repeat) * 1000
    figures["sparse 1-mile crimes"] = count(sparse)
    figures["sparse 1-mile p50 ms"] = p50(lambda: count(sparse), repeat) * 1000
    capped = CrimeQuery(month=month, area=capped_polygon(store, month), limit=CAP + 1)
    figures["10,001-crime polygon p50 ms"] = p50(lambda: count(capped), max(5, repeat // 3)) * 1000

    where = Compare("month", "=", month)
    first = list(store.features(FeatureQuery(CRIMES_TABLE, where=where, limit=1000)))
    deep_after = (first[-1].gx_id,)

    def page() -> int:
        query = FeatureQuery(CRIMES_TABLE, where=where, after=deep_after, limit=1000)
        return sum(1 for _ in store.features(query))

    figures["keyset page of 1,000 p50 ms"] = p50(page, repeat) * 1000
    started = time.perf_counter()
    exported = sum(1 for _ in store.features(FeatureQuery(CRIMES_TABLE, where=where)))
    figures["export features/s"] = exported / (time.perf_counter() - started)
    return figures


def postgres_url(given: str | None) -> str:
    if given:
        return given
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import pg_server  # a throwaway cluster, or $CRIMEMAP_TEST_POSTGRES

    try:
        return pg_server.server().fresh_url()
    except pg_server.Unavailable as e:
        raise SystemExit(f"no PostgreSQL for the benchmark: {e}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crimes", type=int, default=500_000, help="crimes per month (default 500,000)")
    parser.add_argument("--months", type=int, default=3, help="months to generate (default 3)")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per query (default 30)")
    parser.add_argument("--postgres", help="postgresql:// URL of an empty database with PostGIS")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="crimemap-bench-"))
    months = month_range("2024-06", args.months)
    print(f"generating {args.months} months x {args.crimes:,} crimes into {work} ...", file=sys.stderr)
    generate(work / "archive", months=months, crimes_per_month=args.crimes, seed=1)
    results: dict[str, dict[str, float]] = {}
    for kind in ("sqlite", "postgis"):
        print(f"loading and querying {kind} ...", file=sys.stderr)
        store: Store
        if kind == "sqlite":
            store = SQLiteStore(work / "bench.sqlite")
        else:
            store = PostGISStore(postgres_url(args.postgres))
        with store:
            results[kind] = measure(store, work / "archive", months[-1], args.repeat)
    for f in work.glob("bench.sqlite*"):
        f.unlink()

    print(f"\n{args.months} months x {args.crimes:,} crimes/month, {os.cpu_count()} cores,", end=" ")
    print(f"query times are the median of {args.repeat} runs")
    print(f"{'measure':<30} {'sqlite':>12} {'postgis':>12} {'postgis/sqlite':>15}")
    for name in results["sqlite"]:
        a, b = results["sqlite"][name], results["postgis"][name]
        ratio = f"{b / a:.2f}" if a else "-"
        print(f"{name:<30} {a:>12,.1f} {b:>12,.1f} {ratio:>15}")


if __name__ == "__main__":
    main()
