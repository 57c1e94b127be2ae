"""The police.uk API over HTTP on loopback, beside the in-process floor of the same query.

Four queries on an existing store (the foundation benchmark's, or any other),
each in the store's latest month:

- ``point, densest``: crimes-street within a mile of the densest town centre
  (``crimemap.load.generate.DENSEST_CENTRE``; about 2,000 crimes at 500,000 a
  month); target p50 <= 10 ms, and >= 300 requests/s with 8 concurrent clients;
- ``point, sparse``: a mile holding fewer than 100 crimes; target p50 <= 2 ms;
- ``polygon, <10,000``: a rectangle round the centre grown to just under 10,000
  crimes; target p50 <= 60 ms;
- ``polygon, whole country (503)``: every crime of the month; target: its 503
  in <= 20 ms.

The floor is the same work in process, with no HTTP: the store's query and
the JSON body (``crimes_json``: dicts and ``orjson.dumps``); for the 503, the
store's ``crimes_exceed`` and the error body. The ratio is HTTP p50 / floor p50.

Run standalone on a store::

    python benchmarks/bench_api_policeuk.py --store bench.sqlite [--workers 1]

or import :func:`bench_policeuk_api` (rows of figures) or :func:`run` (the
benchmark runner's ``report(name, value, target)`` protocol).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from crimemap.api.errors import error_body
from crimemap.api.policeuk import MAX_CRIMES
from crimemap.geo import ONE_MILE_M
from crimemap.policeuk_json import crimes_json
from crimemap.query import Circle, CrimeQuery, Polygon
from crimemap.store import open_store
from crimemap.store.base import Store
from crimemap_server import Server

try:
    from crimemap.load.generate import DENSEST_CENTRE
except ImportError:  # pragma: no cover - a checkout without the generator
    DENSEST_CENTRE = (-0.1276, 51.5073)

GREAT_BRITAIN = ((-8.7, 49.8), (2.0, 49.8), (2.0, 61.0), (-8.7, 61.0), (-8.7, 49.8))


@dataclass(frozen=True)
class Case:
    name: str
    query: CrimeQuery
    status: int
    target_p50_ms: float
    crimes: int

    @property
    def path(self) -> str:
        """The GET target a client would send for :attr:`query`."""
        area = self.query.area
        if isinstance(area, Circle):
            where = f"lat={area.center[1]:.6f}&lng={area.center[0]:.6f}"
        else:
            assert isinstance(area, Polygon)
            where = "poly=" + ":".join(f"{lat:.6f},{lng:.6f}" for lng, lat in area.ring[:-1])
        return f"/api/crimes-street/all-crime?{where}&date={self.query.month}"


# ---- choosing the queries ---------------------------------------------------------------------------


def _count(store: Store, query: CrimeQuery, stop: int = MAX_CRIMES + 1) -> int:
    return sum(1 for _ in store.crimes(replace(query, limit=stop)))


def _rectangle(lng: float, lat: float, half: float) -> Polygon:
    w = half * 1.6  # about square on the ground in Britain
    south, north = lat - half, lat + half
    return Polygon(((lng - w, south), (lng + w, south), (lng + w, north), (lng - w, north), (lng - w, south)))


def choose_cases(store: Store, centre: tuple[float, float]) -> list[Case]:
    month = store.latest_month()
    if month is None:
        raise SystemExit("the store is empty")
    dense = CrimeQuery(month=month, area=Circle(centre, ONE_MILE_M))
    cases = [Case("point, densest", dense, 200, 10.0, _count(store, dense))]

    sparse = None
    for crime in store.crimes(CrimeQuery(month=month, limit=5_000)):
        if crime.lng is None or crime.lat is None:
            continue
        q = CrimeQuery(month=month, area=Circle((crime.lng, crime.lat), ONE_MILE_M))
        n = _count(store, q, 100)
        if 30 <= n < 100:
            sparse = Case("point, sparse", q, 200, 2.0, n)
            break
    if sparse is not None:
        cases.append(sparse)

    low, high = 0.001, 0.5  # half-heights in degrees: grow the rectangle to just under the cap
    best = None
    for _ in range(30):
        mid = (low + high) / 2
        q = CrimeQuery(month=month, area=_rectangle(*centre, mid))
        n = _count(store, q)
        if n > MAX_CRIMES:
            high = mid
        else:
            low, best = mid, (q, n)
            if n >= MAX_CRIMES * 0.97:
                break
    if best is not None:
        cases.append(Case(f"polygon, {best[1]:,} crimes", best[0], 200, 60.0, best[1]))

    everything = CrimeQuery(month=month, area=Polygon(GREAT_BRITAIN))
    month_total = next(m.crimes for m in store.months() if m.month == month)
    cases.append(Case(f"polygon, whole country ({month_total:,}): 503", everything, 503, 20.0, month_total))
    return cases


# ---- measuring --------------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def floor_ms(store: Store, case: Case, n: int) -> list[float]:
    """The in-process floor: the store's query and the response body, no HTTP."""
    if case.status == 503:
        return _timed(lambda: store.crimes_exceed(case.query, MAX_CRIMES) and error_body(503, "too many"), n)
    return _timed(lambda: crimes_json(list(store.crimes(case.query))), n)


def http_ms(client: httpx.Client, case: Case, n: int) -> list[float]:
    def get() -> None:
        r = client.get(case.path)
        if r.status_code != case.status:
            raise RuntimeError(f"{case.name}: expected {case.status}, got {r.status_code}: {r.text[:200]}")

    return _timed(get, n)


def requests_per_second(url: str, case: Case, concurrency: int, seconds: float) -> float:
    done = [0] * concurrency
    stop = time.perf_counter() + seconds

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            while time.perf_counter() < stop:
                c.get(case.path).raise_for_status() if case.status == 200 else c.get(case.path)
                done[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


def _pct(times: list[float], p: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def bench_policeuk_api(
    store_path: str,
    centre: tuple[float, float] = DENSEST_CENTRE,
    *,
    workers: int = 1,
    requests: int = 200,
    concurrency: int = 8,
    seconds: float = 5.0,
    cache_mb: int = 0,
    only: str | None = None,
) -> list[dict[str, Any]]:
    """Rows ``{name, crimes, status, p50_ms, p99_ms, floor_p50_ms, ratio, target_p50_ms, rps}``.

    ``cache_mb=0`` (the default) measures every request rendered afresh; with a
    response cache, repeated requests are served from memory (``only`` limits
    the cases to names starting with it).
    """
    store = open_store(store_path, readonly=not store_path.startswith("postgres"))
    rows = []
    try:
        cases = [c for c in choose_cases(store, centre) if only is None or c.name.startswith(only)]
        server = Server(store_path, workers, cache_mb)
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                for case in cases:
                    n = max(20, requests // 5) if case.crimes > 5_000 and case.status == 200 else requests
                    http_ms(client, case, max(5, n // 10))  # warm up caches on both sides
                    floor_ms(store, case, max(5, n // 10))
                    floor, http = [], []
                    for _ in range(5):  # interleaved, so both see the same machine
                        floor += floor_ms(store, case, n // 5)
                        http += http_ms(client, case, n // 5)
                    row: dict[str, Any] = {
                        "name": case.name,
                        "crimes": case.crimes,
                        "status": case.status,
                        "p50_ms": statistics.median(http),
                        "p99_ms": _pct(http, 0.99),
                        "floor_p50_ms": statistics.median(floor),
                        "target_p50_ms": case.target_p50_ms,
                        "rps": None,
                    }
                    row["ratio"] = row["p50_ms"] / row["floor_p50_ms"]
                    if case.name == "point, densest":
                        row["rps"] = requests_per_second(server.url, case, concurrency, seconds)
                    rows.append(row)
        finally:
            server.stop()
    finally:
        store.close()
    return rows


def run(store_path: str, report: Callable[[str, float, float | None], None]) -> None:
    """The benchmark runner's protocol: ``report(name, value, target)`` for every figure."""
    for row in bench_policeuk_api(store_path):
        report(f"police.uk API {row['name']}: p50 ms (no cache)", row["p50_ms"], row["target_p50_ms"])
        report(f"police.uk API {row['name']}: p99 ms", row["p99_ms"], None)
        report(f"police.uk API {row['name']}: in-process floor p50 ms", row["floor_p50_ms"], None)
        report(f"police.uk API {row['name']}: HTTP / floor", row["ratio"], None)
        if row["rps"] is not None:
            report(f"police.uk API {row['name']}: requests/s at concurrency 8 (no cache)", row["rps"], 300.0)
    for row in bench_policeuk_api(store_path, cache_mb=64, only="point, densest"):
        report(f"police.uk API {row['name']}: p50 ms (response cache)", row["p50_ms"], row["target_p50_ms"])
        report(f"police.uk API {row['name']}: requests/s at concurrency 8 (response cache)", row["rps"], 300.0)


def print_table(rows: list[dict[str, Any]], workers: int) -> None:
    print(f"police.uk API over HTTP on loopback ({workers} worker(s), {os.cpu_count()} CPUs)")
    print(f"{'query':<42} {'crimes':>9} {'p50 ms':>8} {'p99 ms':>8}", end="")
    print(f" {'floor ms':>9} {'ratio':>6} {'target':>7}")
    for r in rows:
        ok = "ok" if r["p50_ms"] <= r["target_p50_ms"] else "MISSED"
        print(
            f"{r['name']:<42} {r['crimes']:>9,} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
            f" {r['floor_p50_ms']:>9.2f} {r['ratio']:>6.2f} {'<=' + format(r['target_p50_ms'], 'g'):>5} {ok}"
        )
        if r["rps"] is not None:
            ok = "ok" if r["rps"] >= 300 else "MISSED"
            print(f"{'  ... requests/s at concurrency 8':<42} {r['rps']:>9.0f} {'':>36} >=300 {ok}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="an existing store (SQLite file or postgresql:// URL)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--requests", type=int, default=200, help="requests per query for the latencies")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of the concurrency run")
    parser.add_argument("--centre", help="lng,lat of the dense point (default: the generator's densest)")
    args = parser.parse_args()
    centre = tuple(float(v) for v in args.centre.split(",")) if args.centre else DENSEST_CENTRE
    rows = bench_policeuk_api(
        args.store, (centre[0], centre[1]), workers=args.workers, requests=args.requests, seconds=args.seconds
    )
    print_table(rows, args.workers)


if __name__ == "__main__":
    main()
