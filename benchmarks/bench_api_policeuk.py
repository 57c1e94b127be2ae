"""The police.uk API: in process and over HTTP on loopback, each figure beside a floor measured in the same run.

Cases, on an existing store (the foundation benchmark's, or any other), in its latest month:

- ``point, densest``: crimes-street within a mile of the densest town centre
  (``crimemap.load.generate.DENSEST_CENTRE``, about 2,450 crimes at 500,000 a month);
- ``point, sparse``: a mile holding fewer than 100 crimes;
- ``polygon, ~10,000``: a rectangle round the centre grown to just under the 10,000-crime cap;
- ``polygon, whole country``: every crime of the month, answered 503;
- ``crimes-at-location``: the densest map point of the densest mile;
- ``outcomes-at-location``: the densest mile.

Figures, all with the response cache off unless said (``--cache-mb 0``):

- **in process**: what the handler asks of the store (``Store.crimes_json`` and the
  like), p50; floor: the same crimes' stored JSON read by SQLite alone (one
  ``group_concat`` over the area's cell ranges, no exact test, no Python);
- **over HTTP**: p50 and p99 with a raw ``http.client`` client (it reads a body as
  fast as the socket gives it; ``requests`` would add two milliseconds of its own),
  without compression and with ``Accept-Encoding: gzip`` and ``zstd``; floor: a bare
  uvicorn app returning a ready body of the same size, measured by the same client;
- **throughput**: requests/s of 8 concurrent clients on ``serve --workers 2``,
  beside the bare app's on 2 workers; and with the response cache on.

    python benchmarks/bench_api_policeuk.py --store bench-data/bench.sqlite
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from crimemap.geo import ONE_MILE_M
from crimemap.geometry import areas
from crimemap.load.generate.world import DENSEST_CENTRE
from crimemap.query import Circle, CrimeQuery, Polygon
from crimemap.store import open_store
from crimemap.store.base import Store
from crimemap.store.engines import is_server_store
from crimemap.wire import MAX_CRIMES
from crimemap_server import Server, free_port

GREAT_BRITAIN = ((-8.7, 49.8), (2.0, 49.8), (2.0, 61.0), (-8.7, 61.0), (-8.7, 49.8))
Report = Callable[[str, float, float | None], None]


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    status: int
    run: Callable[[], Any]
    """The handler's store work, in process."""
    floor: Callable[[], Any] | None
    """SQLite alone reading the same crimes' JSON."""
    target_in_process_ms: float | None = None
    target_http_ms: float | None = None


def _area_param(area: Circle | Polygon) -> str:
    if isinstance(area, Circle):
        return f"lat={area.center[1]:.6f}&lng={area.center[0]:.6f}"
    return "poly=" + quote(":".join(f"{lat:.6f},{lng:.6f}" for lng, lat in area.ring[:-1]), safe=",:")


def _rectangle(lng: float, lat: float, half: float) -> Polygon:
    w = half * 1.6  # about square on the ground in Britain
    return Polygon(((lng - w, lat - half), (lng + w, lat - half), (lng + w, lat + half), (lng - w, lat + half),
                    (lng - w, lat - half)))  # fmt: skip


def _sqlite_floor(store_path: str, month: int, area: Circle | Polygon) -> Callable[[], Any]:
    """SQLite alone: the crimes' JSON of the area's cell ranges joined by ``group_concat``, no test, no Python."""
    import sqlite3

    conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, check_same_thread=False)
    conn.execute("PRAGMA cache_size = -32768")
    ranges = list(areas.area_ranges(area))
    sql = "SELECT CAST(group_concat(json, ',') AS BLOB) FROM crimes WHERE month = ? AND cell BETWEEN ? AND ?"

    def floor() -> bytes:
        return (
            b"["
            + b",".join(filter(None, (conn.execute(sql, (month, r.lo, r.hi)).fetchone()[0] for r in ranges)))
            + b"]"
        )

    return floor


def choose_cases(store: Store, store_path: str) -> list[Case]:
    from crimemap.months import parse_month

    month = store.latest_month()
    if month is None:
        raise SystemExit("the store is empty")
    m = parse_month(month)
    sqlite = not is_server_store(store_path)
    cap = MAX_CRIMES + 1

    def case(name: str, query: CrimeQuery, status: int = 200, **targets: float) -> Case:
        path = f"/api/crimes-street/all-crime?{_area_param(query.area)}&date={month}"  # type: ignore[arg-type]
        floor = _sqlite_floor(store_path, m, query.area) if sqlite and query.area is not None else None  # type: ignore[arg-type]
        return Case(name, path, status, lambda: store.crimes_json(query, cap), floor, **targets)

    dense = CrimeQuery(month=month, area=Circle(DENSEST_CENTRE, ONE_MILE_M))
    n = store.crimes_json(dense, cap).found
    cases = [case(f"point, densest ({n:,} crimes)", dense, target_in_process_ms=1.5, target_http_ms=3.0)]
    for crime in store.crimes(CrimeQuery(month=month, limit=5_000)):
        if crime.lng is None or crime.lat is None:
            continue
        q = CrimeQuery(month=month, area=Circle((crime.lng, crime.lat), ONE_MILE_M))
        n = store.crimes_json(q, 100).found
        if 30 <= n < 100:
            cases.append(case(f"point, sparse ({n} crimes)", q, target_http_ms=1.0))
            break
    low, high, best = 0.001, 0.5, None
    for _ in range(30):
        mid = (low + high) / 2
        q = CrimeQuery(month=month, area=_rectangle(*DENSEST_CENTRE, mid))
        n = store.crimes_json(q, cap).found
        if n > MAX_CRIMES:
            high = mid
        else:
            low, best = mid, (q, n)
            if n >= MAX_CRIMES * 0.97:
                break
    if best is not None:
        cases.append(case(f"polygon ({best[1]:,} crimes)", best[0], target_http_ms=20.0))
    country = CrimeQuery(month=month, area=Polygon(GREAT_BRITAIN))
    cases.append(case("polygon, whole country: 503", country, 503))
    # The densest map point of the densest mile, and the mile's outcomes.
    counts: dict[int, int] = {}
    for crime in store.crimes(dense):
        if crime.street_id is not None:
            counts[crime.street_id] = counts.get(crime.street_id, 0) + 1
    street = max(counts, key=lambda s: counts[s])
    at_point = CrimeQuery(month=month, street_id=street)
    cases.append(
        Case(
            f"crimes-at-location ({counts[street]} crimes)",
            f"/api/crimes-at-location?location_id={street}&date={month}",
            200,
            lambda: store.crimes_json(at_point, cap),
            None,
        )
    )
    outcomes = store.outcomes_json(dense, cap).found
    cases.append(
        Case(
            f"outcomes-at-location, densest mile ({outcomes:,} outcomes)",
            f"/api/outcomes-at-location?{_area_param(dense.area)}&date={month}",  # type: ignore[arg-type]
            200,
            lambda: store.outcomes_json(dense, cap),
            None,
        )
    )
    return cases


# ---- measuring --------------------------------------------------------------------------------------


def timed_ms(fn: Callable[[], Any], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def p(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Client:
    """A keep-alive ``http.client`` connection: a request, and its body read whole."""

    def __init__(self, port: int, encoding: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Accept-Encoding": encoding} if encoding else {}

    def get(self, path: str) -> tuple[int, int]:
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, len(body)

    def close(self) -> None:
        self.conn.close()


def http_ms(port: int, path: str, status: int, n: int, encoding: str | None = None) -> list[float]:
    client = Client(port, encoding)
    try:
        got = client.get(path)
        if got[0] != status:
            raise RuntimeError(f"{path}: expected {status}, got {got[0]}")
        return timed_ms(lambda: client.get(path), n)
    finally:
        client.close()


def throughput(port: int, path: str, clients: int, seconds: float) -> float:
    """Requests/s of ``clients`` concurrent keep-alive clients, each asking ``path`` again and again."""
    done = [0] * clients
    stop = time.perf_counter() + seconds

    def run(i: int) -> None:
        client = Client(port)
        try:
            while time.perf_counter() < stop:
                client.get(path)
                done[i] += 1
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


class BareApp:
    """A bare uvicorn app answering every GET with a ready body of ``size`` bytes: the HTTP floor."""

    def __init__(self, size: int, workers: int = 1) -> None:
        self.port = free_port()
        code = (
            f"body = b'[' + b'x' * {size - 2} + b']'\n"
            "async def app(scope, receive, send):\n"
            "    if scope['type'] != 'http':\n"
            "        return\n"
            "    await send({'type': 'http.response.start', 'status': 200,\n"
            "                'headers': [(b'content-type', b'application/json'),"
            " (b'content-length', str(len(body)).encode())]})\n"
            "    await send({'type': 'http.response.body', 'body': body})\n"
        )
        folder = Path(__file__).resolve().parents[1] / "bench-data"
        folder.mkdir(exist_ok=True)
        script = folder / "_bare_app.py"
        script.write_text(code)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(folder), "_bare_app:app",
             "--port", str(self.port), "--workers", str(workers), "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.script = script
        deadline = time.monotonic() + 30
        while True:
            try:
                Client(self.port).get("/")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the bare app did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.script.unlink(missing_ok=True)


def bench_policeuk_api(store_path: str, report: Report, requests: int = 200, seconds: float = 5.0) -> None:
    """Every figure (see the module docstring), through ``report(name, value, target)``."""
    store = open_store(store_path, readonly=not is_server_store(store_path))
    try:
        cases = choose_cases(store, store_path)
        server = Server(store_path, workers=1, cache_mb=0)
        try:
            dense_bytes = 0
            dense_http = 0.0
            for case in cases:
                n = requests if "polygon (" not in case.name else max(20, requests // 4)
                case.run()
                in_process, floor, plain = [], [], []
                for _ in range(5):  # interleaved, so that all see the same machine
                    in_process += timed_ms(case.run, n // 5)
                    if case.floor is not None and case.status == 200:
                        floor += timed_ms(case.floor, n // 5)
                    plain += http_ms(server.port, case.path, case.status, n // 5)
                report(f"{case.name}: in process p50 ms", statistics.median(in_process), case.target_in_process_ms)
                if floor and case.status == 200:
                    report(f"{case.name}: floor, SQLite alone joining the JSON, p50 ms", statistics.median(floor), None)
                report(f"{case.name}: over HTTP p50 ms", statistics.median(plain), case.target_http_ms)
                report(f"{case.name}: over HTTP p99 ms", p(plain, 0.99), None)
                if case.name.startswith("point, densest"):
                    dense_http = statistics.median(plain)
                    dense_bytes = Client(server.port).get(case.path)[1]
                    for encoding, target in (("gzip", 6.0), ("zstd", 6.0), ("br", None)):
                        packed = http_ms(server.port, case.path, 200, n, encoding)
                        report(f"{case.name}: over HTTP, {encoding}, p50 ms", statistics.median(packed), target)
            dense = cases[0]
            bare = BareApp(dense_bytes)
            try:
                floor_http = statistics.median(http_ms(bare.port, "/", 200, requests))
            finally:
                bare.stop()
            report(f"HTTP floor: a bare uvicorn app returning {dense_bytes:,} bytes, p50 ms", floor_http, None)
            report("densest mile over HTTP / bare app", dense_http / floor_http, None)
        finally:
            server.stop()
        for workers, cache_mb, label in ((2, 0, "no cache"), (2, 64, "response cache")):
            server = Server(store_path, workers=workers, cache_mb=cache_mb)
            try:
                throughput(server.port, dense.path, 8, 1.0)  # warm both workers
                rps = throughput(server.port, dense.path, 8, seconds)
            finally:
                server.stop()
            target = 300.0 if cache_mb == 0 else None
            report(f"densest mile, 8 clients, serve --workers {workers}, {label}: requests/s", rps, target)
        bare = BareApp(dense_bytes, workers=2)
        try:
            throughput(bare.port, "/", 8, 1.0)
            report(
                "floor: the bare app, 8 clients, 2 workers: requests/s", throughput(bare.port, "/", 8, seconds), None
            )
        finally:
            bare.stop()
    finally:
        store.close()


def run(store_path: str, report: Report) -> None:
    """The benchmark runner's protocol: ``report(name, value, target)`` for every figure."""
    bench_policeuk_api(store_path, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, help="an existing store (SQLite file or postgresql:// URL)")
    parser.add_argument("--requests", type=int, default=200, help="requests per case for the latencies")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    args = parser.parse_args()
    from bench_foundation import print_report

    bench_policeuk_api(args.store, print_report, args.requests, args.seconds)


if __name__ == "__main__":
    main()
