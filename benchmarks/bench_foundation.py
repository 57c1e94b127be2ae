"""Loading and in-process querying of the embedded store, beside floors measured in the same run.

1. Generates a synthetic police.uk archive (default 12 months x 500,000 crimes,
   with their outcomes files), cached in ``bench-data/`` between runs.
2. Loads it into a fresh SQLite store with ``crimemap.load.policeuk`` (every
   index, the outcome join, one transaction) and reports rows/s.
   Floor: the same CSV rows, parsed with ``csv`` and inserted with a bare
   ``executemany`` into an unindexed table (no checks, no ids, no index).
3. Reports the store's size on disk.
4. Times 1-mile point queries in process (``Store.crimes``, every crime
   materialised): in the densest town centre and in random places, p50/p99.

    python benchmarks/bench_foundation.py [--crimes-per-month 500000] [--months 12]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from crimemap.geo import ONE_MILE_M
from crimemap.load.generate.archive import generate
from crimemap.load.generate.world import DENSEST_CENTRE, TOWNS, month_range
from crimemap.load.policeuk import load_policeuk
from crimemap.load.policeuk_files import find_sources
from crimemap.query import Circle, CrimeQuery
from crimemap.store.sqlite import SQLiteStore

Report = Callable[[str, float, float | None], None]
BENCH_DATA = Path(__file__).resolve().parents[1] / "bench-data"
SHARED_DATA = Path(os.environ.get("CRIMEMAP_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
REAL_POLICEUK = SHARED_DATA / "policeuk"


def archive(months: int, crimes_per_month: int, seed: int = 1) -> Path:
    """The generated archive for these parameters, generated once and kept in bench-data/."""
    out = BENCH_DATA / f"archive-{months}x{crimes_per_month}-s{seed}"
    done = out / ".complete"
    if not done.exists():
        generate(out, months=month_range("2024-06", months), crimes_per_month=crimes_per_month, seed=seed)
        done.write_text("ok\n")
    return out


def floor_rows_per_second(paths: list[Path]) -> tuple[int, float]:
    """Bare ``csv`` + ``executemany`` of every row into one unindexed table: the floor.

    Timed like a load, from the first row to the closed connection, with the same
    durability (WAL, ``synchronous = NORMAL``): both commits pass SQLite's automatic
    checkpoint (a WAL over 1,000 pages), which copies the pages into the database and
    syncs it, so each is on disk when its timer stops.
    """
    with tempfile.TemporaryDirectory(dir=BENCH_DATA) as tmp:
        conn = sqlite3.connect(Path(tmp) / "floor.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("CREATE TABLE street (" + ", ".join(f"c{i}" for i in range(12)) + ")")
        conn.execute("CREATE TABLE outcomes (" + ", ".join(f"c{i}" for i in range(10)) + ")")
        rows = 0
        started = time.perf_counter()
        conn.execute("BEGIN")
        for source in find_sources(paths):
            with (
                source.open() as raw,
                open(raw.fileno(), encoding="utf-8", newline="", closefd=False) as text,
            ):
                reader = csv.reader(text)
                next(reader)
                before = conn.total_changes
                width = 12 if source.kind == "street" else 10
                table = "street" if source.kind == "street" else "outcomes"
                conn.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * width)})", reader)
                rows += conn.total_changes - before
        conn.execute("COMMIT")
        conn.close()  # inside the timer, as a load closes its connection before it returns
        elapsed = time.perf_counter() - started
    return rows, rows / elapsed


def query_times(
    store: SQLiteStore, centres: list[tuple[float, float]], month: str, repeat: int
) -> tuple[float, float, float]:
    """p50 and p99 in ms of 1-mile queries at ``centres`` (each ``repeat`` times), and the mean count."""
    times, counts = [], []
    for _ in range(repeat):
        for lng, lat in centres:
            q = CrimeQuery(month=month, area=Circle((lng, lat), ONE_MILE_M))
            started = time.perf_counter()
            found = list(store.crimes(q))
            times.append((time.perf_counter() - started) * 1000)
            counts.append(len(found))
    times.sort()
    return (
        statistics.median(times),
        times[min(len(times) - 1, int(len(times) * 0.99))],
        statistics.mean(counts),
    )


def random_places(n: int, seed: int = 3) -> list[tuple[float, float]]:
    """Random points: half anywhere in England and Wales's box, half within 5 km of a town."""
    rng = random.Random(seed)
    places = [(rng.uniform(-5.5, 1.7), rng.uniform(50.1, 55.8)) for _ in range(n // 2)]
    for _ in range(n - len(places)):
        town = rng.choice(TOWNS)
        places.append((town.lng + rng.uniform(-0.07, 0.07), town.lat + rng.uniform(-0.045, 0.045)))
    return places


def run(report: Report, months: int = 12, crimes_per_month: int = 500_000, keep: Path | None = None) -> Path:
    """Every figure of the foundation benchmark; returns the loaded store's path for later benchmarks."""
    BENCH_DATA.mkdir(exist_ok=True)
    started = time.perf_counter()
    folder = archive(months, crimes_per_month)
    report(f"archive ready ({months} x {crimes_per_month:,} crimes): s", time.perf_counter() - started, None)

    floor_rows, floor_rate = floor_rows_per_second([folder])
    store_path = keep or BENCH_DATA / "bench.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)
    store = SQLiteStore(store_path)
    started = time.perf_counter()
    summary = load_policeuk(store, [folder])
    elapsed = time.perf_counter() - started
    rows = summary.crimes + summary.outcomes
    assert rows == floor_rows, (rows, floor_rows)
    report(f"load: rows ({summary.crimes:,} crimes + {summary.outcomes:,} outcomes)", rows, None)
    report("load: rows/s, every index, one transaction", rows / elapsed, 150_000.0)
    report("load floor: bare csv + executemany, no index: rows/s", floor_rate, None)
    report("load / floor", (rows / elapsed) / floor_rate, None)
    store.close()
    size = sum(os.path.getsize(f"{store_path}{s}") for s in ("", "-wal") if os.path.exists(f"{store_path}{s}"))
    report("store size on disk: MB", size / 1e6, None)
    report("store size per crime: bytes", size / summary.crimes, 650.0)

    store = SQLiteStore(store_path, readonly=True)
    month = store.latest_month()
    assert month is not None
    p50, p99, count = query_times(store, [DENSEST_CENTRE], month, 200)
    report(f"1-mile query in process, densest centre ({count:,.0f} crimes): p50 ms", p50, 2.0)
    report("1-mile query in process, densest centre: p99 ms", p99, None)
    p50, p99, count = query_times(store, random_places(400), month, 1)
    report(f"1-mile query in process, random places (mean {count:,.0f} crimes): p50 ms", p50, 2.0)
    report("1-mile query in process, random places: p99 ms", p99, None)
    store.close()
    small_files(report)
    return store_path


def small_files(report: Report) -> None:
    """The real City of London files (street and outcomes, 18 months: 36 small files) beside the floor."""
    files = sorted(REAL_POLICEUK.glob("*/*-city-of-london-*.csv"))
    if not files:
        report(f"small real files: none in {REAL_POLICEUK}, skipped", 0, None)
        return
    rates, floor_rates = [], []
    for _ in range(3):  # in turns, so that both meet the same moments of a shared machine
        floor_rows, floor_rate = floor_rows_per_second(files)
        floor_rates.append(floor_rate)
        with tempfile.TemporaryDirectory(dir=BENCH_DATA) as tmp:
            store = SQLiteStore(Path(tmp) / "small.sqlite")
            started = time.perf_counter()
            summary = load_policeuk(store, files)
            rates.append((summary.crimes + summary.outcomes) / (time.perf_counter() - started))
            store.close()
    rate, floor_rate = statistics.median(rates), statistics.median(floor_rates)
    report(f"load {len(files)} small real files ({floor_rows:,} rows): rows/s, median of 3", rate, None)
    report("small files floor: bare csv + executemany, no index: rows/s, median of 3", floor_rate, None)
    report("small files: load / floor", rate / floor_rate, 0.5)


def print_report(name: str, value: float, target: float | None) -> None:
    """One aligned line: the figure, and its target where the issue sets one."""
    shown = f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    goal = ""
    if target is not None:
        lower_is_better = any(unit in name for unit in ("ms", "MB", ": s", "bytes"))
        met = value <= target if lower_is_better else value >= target
        goal = f"  (target {'<=' if lower_is_better else '>='} {target:,g}: {'met' if met else 'NOT met'})"
    print(f"{name:<72} {shown:>14}{goal}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--crimes-per-month", type=int, default=500_000)
    args = parser.parse_args()
    run(print_report, args.months, args.crimes_per_month)


if __name__ == "__main__":
    main()
