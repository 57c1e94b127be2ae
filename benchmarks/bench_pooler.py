"""Requests a second for the densest mile, from a hot standby directly and through PgBouncer in transaction mode.

    python benchmarks/bench_pooler.py --crimes 200000 --clients 8 --seconds 10

Starts what the tests start (``tests/pg_replica.py``): a primary, a streaming hot
standby made with ``pg_basebackup -R`` and PgBouncer in transaction mode in front of
the standby, all on loopback. Loads a generated month into the primary, waits for
the standby to replay it, then runs ``crimemap serve --workers N`` against the
standby directly, directly in the pooler mode (``CRIMEMAP_PG_POOLER=transaction``: what
the mode itself costs), and through PgBouncer in that mode,
and has ``--clients`` threads ask for ``crimes-street`` on the densest mile
(the response cache off, so each request reads the store) for ``--seconds`` each.
Checks that both give the same body, and prints requests a second and errors.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "tests"))

from crimemap.load.generate.archive import generate  # noqa: E402
from crimemap.load.generate.world import DENSEST_CENTRE  # noqa: E402
from crimemap.load.policeuk import load_policeuk  # noqa: E402
from crimemap.store.postgis import PostGISStore  # noqa: E402
from pg_replica import ReplicaSet  # noqa: E402
from serve_process import serving  # noqa: E402

MONTH = "2024-03"
PATH = f"/api/crimes-street/all-crime?lat={DENSEST_CENTRE[1]}&lng={DENSEST_CENTRE[0]}&date={MONTH}"


def rate(base: str, clients: int, seconds: float) -> tuple[float, int, bytes]:
    """Requests a second over ``seconds`` with ``clients`` threads, the errors, and one body."""
    done = [0] * clients
    errors = [0] * clients
    body: list[bytes] = []
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while time.monotonic() < stop:
                r = client.get(PATH)
                if r.status_code == 200:
                    done[i] += 1
                    if not body:
                        body.append(r.content)
                else:
                    errors[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started), sum(errors), body[0] if body else b""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crimes", type=int, default=200_000, help="crimes in the generated month")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    replicas = ReplicaSet()
    database = replicas.fresh_database()
    with tempfile.TemporaryDirectory() as work:
        generate(Path(work) / "archive", months=[MONTH], crimes_per_month=args.crimes, seed=1)
        with PostGISStore(replicas.primary.url(database)) as store:
            load_policeuk(store, [Path(work) / "archive"])
    replicas.wait_for_replay()
    options = ("--workers", str(args.workers), "--cache-mb", "0")
    results = {}
    for name, url, env in (
        ("standby, direct", replicas.standby.url(database), {}),
        ("standby, direct, pooler mode", replicas.standby.url(database), {"CRIMEMAP_PG_POOLER": "transaction"}),
        ("standby, through PgBouncer", replicas.bouncer.url(database), {"CRIMEMAP_PG_POOLER": "transaction"}),
    ):
        with serving(url, *options, env=env) as base:
            rate(base, args.clients, 1)  # warm up
            results[name] = rate(base, args.clients, args.seconds)
    bodies = {body for _, _, body in results.values()}
    assert len(bodies) == 1, "the two answered differently"
    print(f"densest mile, {len(bodies.pop()):,} bytes; {args.clients} clients, {args.workers} workers")
    for name, (per_s, errors, _) in results.items():
        print(f"{name:30} {per_s:8.1f} requests/s  {errors} errors")


if __name__ == "__main__":
    main()
