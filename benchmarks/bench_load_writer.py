"""The embedded store's load, process by process: CPU a row of the loading, driver and parsing processes.

Loads the first ``--months`` of ``bench-data/archive-12x500000-s1`` (or, with
``--stops``, the stop-and-search files of ``archive-3x200000-stops50000-s1``
after its crimes, untimed) into a fresh store in a temporary directory, parsing
in a second process, and prints wall rows/s and CPU microseconds a row of each
process, beside the floor measured in the same run: bare ``csv`` and
``executemany`` of the same files into unindexed tables. ``--no-driver`` keeps
every load on ``sqlite3`` (:data:`crimemap.store.sqlite.DRIVER_MIN_ROWS`), for a
before/after in one hour. The driver's process reports its own CPU time (it is
a child of the loading process, as the parsing process is).

Run::

    python benchmarks/bench_load_writer.py --months 2 [--no-driver]
    python benchmarks/bench_load_writer.py --stops [--no-driver]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import crimemap.store.sqlite as sqlite_store
from crimemap.load.policeuk import load_policeuk
from crimemap.load.policeuk_files import find_sources
from crimemap.store.sqlite import SQLiteStore, load_connection

BENCH_DATA = Path(__file__).resolve().parents[1] / "bench-data"
DRIVER_CPU = "CRIMEMAP_BENCH_DRIVER_CPU"
"""Where the driver's process appends its CPU seconds (a file in the temporary directory)."""


def _cpu() -> tuple[float, float]:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def timed_serve(*args: Any) -> None:
    """The driver's process, writing down its CPU time when it ends."""
    try:
        load_connection._serve(*args)
    finally:
        me = resource.getrusage(resource.RUSAGE_SELF)
        with open(os.environ[DRIVER_CPU], "a") as f:
            f.write(f"{me.ru_utime + me.ru_stime}\n")


def floor(paths: list[Path], folder: Path) -> float:
    """Rows a second of bare ``csv`` + ``executemany`` of every row into unindexed tables."""
    conn = sqlite3.connect(folder / "floor.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    made: set[str] = set()
    rows = 0
    started = time.perf_counter()
    conn.execute("BEGIN")
    for source in find_sources(paths):
        with source.open() as raw, open(raw.fileno(), encoding="utf-8", newline="", closefd=False) as text:
            reader = csv.reader(text)
            width = len(next(reader))
            table = source.kind.replace("-", "_")
            if table not in made:
                made.add(table)
                conn.execute(f"CREATE TABLE {table} ({', '.join(f'c{i}' for i in range(width))})")
            before = conn.total_changes
            conn.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * width)})", reader)
            rows += conn.total_changes - before
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--months", type=int, default=2)
    parser.add_argument("--stops", action="store_true")
    parser.add_argument("--no-driver", action="store_true")
    args = parser.parse_args()
    if args.no_driver:
        sqlite_store.DRIVER_MIN_ROWS = 10**12
    load_connection._serve = timed_serve  # type: ignore[assignment]
    if args.stops:
        sources = find_sources([BENCH_DATA / "archive-3x200000-stops50000-s1"])
        first = [Path(s.label) for s in sources if s.kind != "stop-and-search"]
        timed = [Path(s.label) for s in sources if s.kind == "stop-and-search"]
    else:
        archive = BENCH_DATA / "archive-12x500000-s1"
        first, timed = [], sorted(p for p in archive.iterdir() if p.is_dir())[: args.months]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor_rate = floor(timed, folder)
        os.environ[DRIVER_CPU] = str(folder / "driver-cpu")
        store = SQLiteStore(folder / "store.sqlite")
        if first:
            load_policeuk(store, first, parallel=True)
        Path(os.environ[DRIVER_CPU]).unlink(missing_ok=True)
        (me_before, children_before), started = _cpu(), time.perf_counter()
        summary = load_policeuk(store, timed, parallel=True)
        wall = time.perf_counter() - started
        me_after, children_after = _cpu()
        store.close()
        cpu_file = Path(os.environ[DRIVER_CPU])
        driver = sum(map(float, cpu_file.read_text().split())) if cpu_file.exists() else 0.0
    n = summary.stops if args.stops else summary.crimes + summary.outcomes
    per_row = 1e6 / n
    print(
        f"{n:,} rows in {wall:.1f} s = {n / wall:,.0f} rows/s; CPU µs a row: loading process"
        f" {(me_after - me_before) * per_row:.2f}, driver's process {driver * per_row:.2f}, parsing process"
        f" {(children_after - children_before - driver) * per_row:.2f};"
        f" floor (csv + executemany) {floor_rate:,.0f} rows/s"
    )


if __name__ == "__main__":
    main()
