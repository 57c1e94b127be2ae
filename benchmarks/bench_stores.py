"""The embedded (SQLite) and PostGIS stores side by side, on the same generated archive.

    python benchmarks/bench_stores.py --crimes 500000 --months 3

Generates a synthetic police.uk archive (:mod:`crimemap.load.generate`), loads it
into a fresh store of each kind (one transaction, every index), then times, in
process, the store calls the APIs make for their answers: ``crimes-street`` on a
dense and a sparse mile (``crimes_json``), ``crimes-at-location`` at the busiest
map point, ``outcomes-at-location`` on the dense mile (``outcomes_json``), a
polygon (not a rectangle) holding a little under 10,000 crimes, and one holding
more (the 503: 10,001 asked for), a Maps
Engine page of 1,000 crimes deep in a month, a whole month's features and whole-table
GeoJSON, CSV and GeoParquet exports (the median of 3, in turns). Before
timing, it checks that both stores give the same bodies; the two stores' runs
take turns, so that other work on the machine weighs on both alike. Prints one line per
measure with both stores' figures, the ratio PostGIS / SQLite (below 1 means
PostGIS is faster) and the target: PostGIS loads at least 100,000 rows a second
and answers within 1.5 times the embedded store's time.

PostgreSQL comes from ``--postgres URL``, else ``$CRIMEMAP_TEST_POSTGRES``, else
a throwaway local cluster as the tests start one (``tests/pg_server.py``; it
runs with ``fsync=off``, so its load figure is an upper bound for a durable server).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from crimemap import geo
from crimemap.export import export_chunks
from crimemap.export.plan import plan_export
from crimemap.load.generate.archive import generate
from crimemap.load.generate.world import DENSEST_CENTRE, TOWNS, month_range
from crimemap.load.policeuk import load_policeuk
from crimemap.query import Circle, Compare, CrimeQuery, FeatureQuery, Polygon
from crimemap.store.base import Store
from crimemap.store.catalogue import CRIMES_TABLE
from crimemap.store.postgis import PostGISStore
from crimemap.store.sqlite import SQLiteStore

CAP = 10_000
LOAD_TARGET = 100_000
QUERY_RATIO_TARGET = 1.5


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


def diamond(centre: tuple[float, float], half_m: float) -> Polygon:
    """A square turned by 45 degrees: not a rectangle, so its edge cells take the exact polygon test."""
    lng, lat = centre
    w, s, e, n = geo.circle_bbox(lng, lat, half_m)
    return Polygon(((lng, s), (e, lat), (lng, n), (w, lat), (lng, s)))


def polygons(store: Store, month: str) -> tuple[Polygon, Polygon]:
    """Diamonds around the densest point: the largest holding at most 10,000 crimes of ``month``, and one more."""
    half, under = 500.0, diamond(DENSEST_CENTRE, 500.0)
    while half < 200_000:
        poly = diamond(DENSEST_CENTRE, half)
        if store.crimes_json(CrimeQuery(month=month, area=poly), CAP + 1).found > CAP:
            return under, poly
        under = poly
        half *= 1.2
    raise SystemExit("no polygon holds 10,000 crimes: generate more crimes per month (--crimes)")


def queries(store: Store, month: str) -> dict[str, Callable[[], object]]:
    """The reads to time, by name (each as the API would make it)."""
    dense = CrimeQuery(month=month, area=Circle(DENSEST_CENTRE, geo.ONE_MILE_M))
    quiet_town = min(TOWNS, key=lambda t: t.weight)
    sparse = CrimeQuery(month=month, area=Circle((quiet_town.lng, quiet_town.lat), geo.ONE_MILE_M))
    near = store.crimes(CrimeQuery(month=month, area=Circle(DENSEST_CENTRE, 200.0)))
    busiest = Counter(c.street_id for c in near).most_common(1)[0][0]
    at_point = CrimeQuery(month=month, street_id=busiest)
    under, over = polygons(store, month)
    polygon, capped = CrimeQuery(month=month, area=under), CrimeQuery(month=month, area=over)
    where = Compare("month", "=", month)
    first = list(store.features(FeatureQuery(CRIMES_TABLE, where=where, limit=1000)))
    deep = FeatureQuery(CRIMES_TABLE, where=where, after=(first[-1].gx_id,), limit=1000)

    def answer(query: CrimeQuery) -> object:
        """What the API answers: the body, or the 503 of more than 10,000 crimes."""
        found = store.crimes_json(query, CAP + 1)
        return found.body if found.found <= CAP else 503

    return {
        "dense 1-mile crimes-street": lambda: answer(dense),
        "sparse 1-mile crimes-street": lambda: answer(sparse),
        "crimes-at-location, busiest point": lambda: answer(at_point),
        "dense 1-mile outcomes-at-location": lambda: store.outcomes_json(dense, CAP + 1),
        "polygon under 10,000 crimes": lambda: answer(polygon),
        "polygon > 10,000 crimes (503)": lambda: answer(capped),
        "Maps Engine page of 1,000": lambda: list(store.features(deep)),
    }


def load_rate(store: Store, archive: Path) -> float:
    """Rows a second of loading the archive into an empty store."""
    started = time.perf_counter()
    summary = load_policeuk(store, [archive])
    return (summary.crimes + summary.outcomes) / (time.perf_counter() - started)


def interleaved(runs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each run, the runs taking turns (so that the machine's other work weighs on each alike)."""
    for run in runs.values():
        run(), run()
    times: dict[str, list[float]] = {kind: [] for kind in runs}
    for _ in range(repeat):
        for kind, run in runs.items():
            t = time.perf_counter()
            run()
            times[kind].append(time.perf_counter() - t)
    return {kind: statistics.median(t) for kind, t in times.items()}


def export_rate(store: Store, month: str) -> float:
    started = time.perf_counter()
    exported = sum(1 for _ in store.features(FeatureQuery(CRIMES_TABLE, where=Compare("month", "=", month))))
    return exported / (time.perf_counter() - started)


def whole_export(store: Store, fmt: str) -> Callable[[], object]:
    """A whole-table export of the crimes in ``fmt``, its bytes counted and dropped."""

    def run() -> int:
        return sum(len(c) for c in export_chunks(store, plan_export(store, CRIMES_TABLE), fmt))

    return run


def postgres_url(given: str | None) -> str:
    if given:
        return given
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import pg_server  # a throwaway cluster, or $CRIMEMAP_TEST_POSTGRES

    try:
        return pg_server.server().fresh_url()
    except pg_server.Unavailable as e:
        raise SystemExit(f"no PostgreSQL for the benchmark: {e}") from None


def target(name: str, sqlite: float, postgis: float) -> str:
    if name == "load rows/s":
        return f">= {LOAD_TARGET:,}: {'met' if postgis >= LOAD_TARGET else 'NOT MET'}"
    if name.endswith("ms"):
        return f"<= {QUERY_RATIO_TARGET}x: {'met' if postgis <= QUERY_RATIO_TARGET * sqlite else 'NOT MET'}"
    return ""


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
    stores: dict[str, Store] = {}
    results: dict[str, dict[str, float]] = {"sqlite": {}, "postgis": {}}
    for kind in ("sqlite", "postgis"):
        print(f"loading {kind} ...", file=sys.stderr)
        stores[kind] = (
            SQLiteStore(work / "bench.sqlite") if kind == "sqlite" else PostGISStore(postgres_url(args.postgres))
        )
        results[kind]["load rows/s"] = load_rate(stores[kind], work / "archive")
    print("querying both, in turns ...", file=sys.stderr)
    reads = {kind: queries(store, months[-1]) for kind, store in stores.items()}
    differ = []
    sizes: dict[str, int] = {}
    for name in reads["sqlite"]:
        runs = {kind: reads[kind][name] for kind in stores}
        answer = runs["sqlite"]()
        if answer != runs["postgis"]():
            differ.append(name)
        if isinstance(answer, bytes) and "crimes-street" in name or "polygon under" in name:
            sizes[name.split(" crimes-street")[0]] = (
                answer.count(b'"persistent_id"') if isinstance(answer, bytes) else 0
            )
        times = interleaved(runs, max(5, args.repeat // 3) if "503" in name else args.repeat)
        for kind, seconds in times.items():
            results[kind][f"{name} p50 ms"] = seconds * 1000
    for fmt, label in (("geojson", "GeoJSON"), ("csv", "CSV"), ("parquet", "GeoParquet")):
        runs = {kind: whole_export(store, fmt) for kind, store in stores.items()}
        for kind, seconds in interleaved(runs, 3).items():
            results[kind][f"{label} export of the whole table ms"] = seconds * 1000
    for kind, store in stores.items():
        results[kind]["export of a month, features/s"] = export_rate(store, months[-1])
        store.close()
    shutil.rmtree(work)  # the archive and the store file

    loadavg = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\n{args.months} months x {args.crimes:,} crimes/month, {os.cpu_count()} cores, load average {loadavg};")
    print(f"query times: the median of {args.repeat} runs, the stores taking turns")
    print("answers: " + ("the same on both stores" if not differ else f"DIFFER: {', '.join(differ)}"), end="; ")
    print(", ".join(f"{name}: {n:,} crimes" for name, n in sizes.items()))
    print(f"{'measure':<44} {'sqlite':>12} {'postgis':>12} {'postgis/sqlite':>15}  target")
    for name in results["sqlite"]:
        a, b = results["sqlite"][name], results["postgis"][name]
        ratio = f"{b / a:.2f}" if a else "-"
        print(f"{name:<44} {a:>12,.2f} {b:>12,.2f} {ratio:>15}  {target(name, a, b)}")


if __name__ == "__main__":
    main()
