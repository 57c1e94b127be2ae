"""A month's reload on PostGIS with 3 and with 36 months stored (issue 20: flat is the target), and pruning.

Generates 36 months of ``--crimes-per-month`` crimes (``crimemap.load.generate``),
loads the last 3 into one fresh store and all 36 into another, then times
reloading the last month (its street and outcomes files, every force) in each,
``--repeat`` times, beside the floor of the same run: loading that month into an
empty store. Then the densest mile of the last month, read with partition
pruning and without it (``enable_partition_pruning=off``), in the 36-month store.

``--previous-src DIR`` also runs the reloads with another crimemap's code (for
example the last release of the unpartitioned schema 2:
``git archive a4f03fe src | tar -x -C /tmp/v2`` then ``--previous-src /tmp/v2/src``),
in a process of its own, printed beside. PostgreSQL is started as the tests start
it (``tests/pg_server.py``), or ``$CRIMEMAP_TEST_POSTGRES`` is used.

    python benchmarks/bench_partitions.py --crimes-per-month 50000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from crimemap import geo  # noqa: E402
from crimemap.load.generate.archive import generate  # noqa: E402
from crimemap.load.generate.world import DENSEST_CENTRE, month_range  # noqa: E402
from crimemap.load.policeuk import load_policeuk  # noqa: E402
from crimemap.query import Circle, CrimeQuery  # noqa: E402
from crimemap.store.postgis import PostGISStore  # noqa: E402

LAST = "2024-12"


def fresh_url() -> str:
    import pg_server  # a throwaway cluster, or $CRIMEMAP_TEST_POSTGRES

    return pg_server.server().fresh_url()


def timed(run: object) -> float:
    start = time.perf_counter()
    run()  # type: ignore[operator]
    return time.perf_counter() - start


def archives(root: Path, crimes_per_month: int) -> tuple[Path, Path]:
    """36 months ending at :data:`LAST`, and the last month alone (the same bytes for it: same seed)."""
    months, last = root / f"months-36x{crimes_per_month}", root / f"last-{crimes_per_month}"
    if not months.exists():
        generate(months, months=month_range(LAST, 36), crimes_per_month=crimes_per_month, seed=3)
    if not last.exists():
        generate(last, months=[LAST], crimes_per_month=crimes_per_month, seed=3)
    return months, last


def measure_reloads(root: Path, crimes_per_month: int, repeat: int) -> dict[str, float]:
    """Seconds (median of ``repeat``) to reload the last month with 3 and 36 stored, and the floor."""
    months, last = archives(root, crimes_per_month)
    three = [months / m for m in month_range(LAST, 3)]
    results: dict[str, float] = {}
    floors = []
    for _ in range(repeat):
        with PostGISStore(fresh_url()) as empty:
            floors.append(timed(lambda s=empty: load_policeuk(s, [last])))
    results["floor"] = statistics.median(floors)
    for stored, paths in (("3", three), ("36", [months])):
        with PostGISStore(fresh_url()) as store:
            results[f"load_{stored}"] = timed(lambda s=store, p=paths: load_policeuk(s, p))
            results[stored] = statistics.median(timed(lambda s=store: load_policeuk(s, [last])) for _ in range(repeat))
            results[f"outcomes_{stored}"] = outcomes_at_the_densest_mile(store, repeat * 10)
            if stored == "36":
                results.update(measure_pruning(store.url, repeat * 10))
    return results


def outcomes_at_the_densest_mile(store: PostGISStore, repeat: int) -> float:
    """p50 seconds of the last month's outcomes in the densest mile: each outcome is joined to its crime by
    persistent id, which may be in any month (a probe of every month's index with partitions)."""
    query = CrimeQuery(month=LAST, area=Circle(DENSEST_CENTRE, geo.ONE_MILE_M))
    store.outcomes_json(query, 10_001)  # warm
    return statistics.median(timed(lambda: store.outcomes_json(query, 10_001)) for _ in range(repeat))


def measure_pruning(url: str, repeat: int) -> dict[str, float]:
    """The densest mile of the last month (p50 seconds), read with partition pruning and without."""
    query = CrimeQuery(month=LAST, area=Circle(DENSEST_CENTRE, geo.ONE_MILE_M))
    found: dict[str, float] = {}
    no_pruning = url.replace("options=-c%20", "options=-c%20enable_partition_pruning%3Doff%20-c%20")
    for name, store_url in (("pruned", url), ("unpruned", no_pruning)):
        with PostGISStore(store_url) as store:
            store.crimes_json(query, 10_001)  # warm
            found[name] = statistics.median(timed(lambda s=store: s.crimes_json(query, 10_001)) for _ in range(repeat))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crimes-per-month", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "bench-partitions")
    parser.add_argument("--previous-src", type=Path, help="another crimemap's src, timed the same way beside")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    found = measure_reloads(args.data, args.crimes_per_month, args.repeat)
    if args.json:
        print(json.dumps(found))
        return
    columns = {"this crimemap": found}
    if args.previous_src:
        env = {**os.environ, "PYTHONPATH": str(args.previous_src)}
        out = subprocess.run(
            [sys.executable, __file__, "--json", "--crimes-per-month", str(args.crimes_per_month),
             "--repeat", str(args.repeat), "--data", str(args.data)],
            env=env, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        columns[str(args.previous_src)] = json.loads(out.strip().splitlines()[-1])
    n = args.crimes_per_month
    print(f"a month's reload, {n:,} crimes a month (its street and outcomes files), median of {args.repeat}")
    for name, r in columns.items():
        print(f"  {name}:")
        print(f"    floor: the month loaded into an empty store   {r['floor']:7.2f} s")
        print(f"    reload with  3 months stored                 {r['3']:7.2f} s  ({r['3'] / r['floor']:.2f}x floor)")
        print(f"    reload with 36 months stored                 {r['36']:7.2f} s  ({r['36'] / r['floor']:.2f}x floor)")
        print(f"    36 / 3                                       {r['36'] / r['3']:7.2f}")
        print(f"    (first loads: 3 months {r['load_3']:.1f} s, 36 months {r['load_36']:.1f} s)")
        if "outcomes_3" in r:
            print(
                f"    outcomes of the densest mile of {LAST}: 3 months stored {r['outcomes_3'] * 1000:.1f} ms,"
                f" 36 months {r['outcomes_36'] * 1000:.1f} ms ({r['outcomes_36'] / r['outcomes_3']:.2f}x)"
            )
        if "pruned" in r:
            print(
                f"    densest mile of {LAST}, 36 months stored: pruned {r['pruned'] * 1000:.1f} ms,"
                f" without pruning {r['unpruned'] * 1000:.1f} ms ({r['unpruned'] / r['pruned']:.2f}x)"
            )


if __name__ == "__main__":
    main()
