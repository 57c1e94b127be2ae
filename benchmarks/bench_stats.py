"""Crime counts at national scale (issue 9), on the embedded store, beside floors measured in the same run.

    python benchmarks/bench_stats.py                      # 12 months x 500,000 generated crimes
    python benchmarks/bench_stats.py --months 2 --crimes-per-month 100000     # a quick look

1. Uses ``bench-data/bench.sqlite`` when ``run.py`` left one of the same size, else loads the
   generated archive (cached in ``bench-data/``) into ``bench-data/stats.sqlite``, and reports
   what keeping the pre-aggregated counts costs: making them for the whole store, timed inside a
   transaction that is then rolled back, beside the load's own time.
2. In process (``Store.stats``): counts by month and category for the whole country over every
   month (target <= 50 ms), the zoom-6 grid of the country for one month (target <= 100 ms), with
   and without the map's national view as an area, the trend of a London view, the categories in a
   drawn polygon. Floors: the same sums read raw from the pre-aggregated tables with ``sqlite3``
   (no planning, no decoding), and, once, the answer counted from the crimes themselves.
3. Over HTTP on loopback (``crimemap serve``, one worker, the response cache off): the same
   month-by-category and zoom-6 requests, beside the in-process figures.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_foundation import BENCH_DATA, archive, print_report  # noqa: E402
from crimemap.load.policeuk import load_policeuk  # noqa: E402
from crimemap.stats_query import StatsQuery, parse_stats  # noqa: E402
from crimemap.store.sqlite import SQLiteStore  # noqa: E402
from crimemap.store.sqlite import stats as sqlite_stats  # noqa: E402
from crimemap_server import Server  # noqa: E402

Report = Callable[[str, float, float | None], None]
NATIONAL_BOX = "-6.5,49.8,2.2,55.9"
LONDON_BOX = "-0.55,51.28,0.3,51.7"
CITY_POLY = "51.525,-0.115:51.525,-0.07:51.505,-0.065:51.503,-0.1:51.51,-0.12"


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """p50 and p99 in ms of ``fn`` run ``repeat`` times (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def the_store(months: int, crimes_per_month: int, report: Report) -> Path:
    """A store of the generated archive: run.py's when it holds the same crimes, else one loaded here."""
    folder = archive(months, crimes_per_month)
    for path in (BENCH_DATA / "bench.sqlite", BENCH_DATA / "stats.sqlite"):
        if path.exists():
            with SQLiteStore(path, readonly=True) as st:
                if sum(m.crimes for m in st.months()) == months * crimes_per_month:
                    return path
    path = BENCH_DATA / "stats.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    with SQLiteStore(path) as st:
        load_policeuk(st, [folder])
    report("load of the archive, counts kept up to date included: s", time.perf_counter() - started, None)
    return path


def keeping_cost(path: Path, report: Report) -> None:
    """Making every count again from the crimes, in a transaction rolled back afterwards."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        started = time.perf_counter()
        sqlite_stats.rebuild(conn)
        elapsed = time.perf_counter() - started
        rows = conn.execute(
            "SELECT (SELECT count(*) FROM stats_totals) + (SELECT count(*) FROM stats_outcomes)"
            " + (SELECT count(*) FROM stats_cells)"
        ).fetchone()[0]
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    report("making every pre-aggregated count from the crimes (whole store): s", elapsed, None)
    report("pre-aggregated rows kept", rows, None)


def in_process(path: Path, report: Report) -> None:
    store = SQLiteStore(path, readonly=True)
    raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    month = store.latest_month()
    assert month is not None
    crimes = sum(m.crimes for m in store.months())
    months = len(store.months())

    national = StatsQuery(group=("month", "category"))
    rows = store.stats(national)
    p50, p99 = timed(lambda: store.stats(national), 50)
    report(f"month x category, whole country, {months} months ({crimes:,} crimes): p50 ms", p50, 50.0)
    report("  the same: p99 ms", p99, None)
    floor, _ = timed(
        lambda: raw.execute("SELECT month, category, sum(crimes) FROM stats_totals GROUP BY 1, 2").fetchall(), 50
    )
    report(f"  floor: the {len(rows):,} sums read raw from stats_totals: p50 ms", floor, None)
    started = time.perf_counter()
    raw.execute("SELECT month, category, count(*) FROM crimes GROUP BY 1, 2").fetchall()
    report("  without pre-aggregates: counted from the crimes table: ms", (time.perf_counter() - started) * 1000, None)

    grid = parse_stats(group="cell", zoom="6", months=month)
    cells = store.stats(grid)
    p50, p99 = timed(lambda: store.stats(grid), 50)
    report(f"zoom-6 grid of the country, {month} ({len(cells):,} cells): p50 ms", p50, 100.0)
    report("  the same: p99 ms", p99, None)
    view = parse_stats(group="cell", zoom="6", months=month, bbox=NATIONAL_BOX)
    p50, _ = timed(lambda: store.stats(view), 50)
    report("zoom-6 grid within the map's national view (inside cells + exact edges): p50 ms", p50, 100.0)
    m = int(month[:4]) * 12 + int(month[5:]) - 1
    floor, _ = timed(
        lambda: raw.execute(
            "SELECT (row >> 1) * 4194304 + (col >> 1), sum(crimes) FROM stats_cells WHERE level = 6 AND month = ?"
            " GROUP BY 1",
            (m,),
        ).fetchall(),
        50,
    )
    report("  floor: the same sums read raw from stats_cells: p50 ms", floor, None)
    started = time.perf_counter()
    raw.execute(
        "SELECT ((cell >> 22) >> 7) * 4194304 + ((cell & 4194303) >> 7), count(*) FROM crimes"
        " WHERE month = ? AND cell >= 0 GROUP BY 1",
        (m,),
    ).fetchall()
    report("  without pre-aggregates: counted from the crimes table: ms", (time.perf_counter() - started) * 1000, None)

    trend = parse_stats(group="month", bbox=LONDON_BOX)
    p50, _ = timed(lambda: store.stats(trend), 20)
    (london,) = store.stats(parse_stats(bbox=LONDON_BOX))
    report(f"trend of a London view, {months} months ({london[0]:,} crimes): p50 ms", p50, None)
    drawn = parse_stats(group="category", months=month, poly=CITY_POLY)
    p50, _ = timed(lambda: store.stats(drawn), 20)
    report("categories in a drawn polygon around the City, one month: p50 ms", p50, None)
    raw.close()
    store.close()


def over_http(path: Path, report: Report) -> None:
    server = Server(str(path), workers=1, cache_mb=0)
    try:
        with SQLiteStore(path, readonly=True) as st:
            month = st.latest_month()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for name, params, target in (
                ("month x category, whole country, all months", {"group": "month,category"}, 50.0),
                ("zoom-6 grid, national view, one month", {"group": "cell", "zoom": "6", "months": str(month),
                                                           "bbox": NATIONAL_BOX}, 100.0),
            ):  # fmt: skip
                p50, _ = timed(lambda p=params: client.get("/stats/crimes", params=p).raise_for_status(), 50)
                report(f"HTTP /stats/crimes {name}, no cache: p50 ms", p50, target)
    finally:
        server.stop()


def run(report: Report, months: int, crimes_per_month: int) -> None:
    BENCH_DATA.mkdir(exist_ok=True)
    path = the_store(months, crimes_per_month, report)
    keeping_cost(path, report)
    in_process(path, report)
    over_http(path, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--crimes-per-month", type=int, default=500_000)
    args = parser.parse_args()
    print(f"# crime counts: {args.months} months x {args.crimes_per_month:,} crimes (embedded store)", flush=True)
    run(print_report, args.months, args.crimes_per_month)


if __name__ == "__main__":
    main()
