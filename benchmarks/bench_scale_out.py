"""Scale-out figures, each beside the single-server baseline of the same run: API processes, replica lag, failover.

    python benchmarks/bench_scale_out.py                      # all three parts, a generated load of 2 x 200,000
    python benchmarks/bench_scale_out.py --load-archive bench-data/archive-12x500000-s1   # the issue's 6M rows

Starts what the tests start, on loopback: a primary, a streaming hot standby and PgBouncer
(``tests/pg_replica.py``) for the first two parts, a pg_auto_failover monitor, primary and
secondary (``tests/pg_failover.py``) for the third. ``crimemap serve --workers 1 --cache-mb 0``
(uncached: every request reads the store) answers ``crimes-street`` on the densest mile of a
generated month; ``wrk`` (Debian's, a C load generator) times it.

1. **API processes.** Requests a second with one API process on the primary (the single
   server), one on the standby, and two on the standby (on two ports, a ``wrk`` each, as a
   balancer would spread them), with the same connections in all: ``--connections`` split
   over two ``wrk`` runs every time; the set-ups take turns, ``--rounds`` times, and the
   median of each is printed beside its rounds.
2. **Replica lag during a load.** ``crimemap load`` of ``--load-archive`` (or a generated
   archive of ``--load-months`` x ``--load-crimes``) into the primary, while ``wrk`` reads the
   standby in windows of ``--window`` seconds and the standby's replay lag is sampled four times
   a second (seconds, as ``/health`` reports it, and bytes of WAL behind the primary). The read
   p99 during the load is printed beside the p99 of the same reads before it.
3. **Failover.** ``kill -9`` of the primary's keeper and postgres (a machine lost) while two API
   processes read, one through ``target_session_attrs=read-write`` (reads on the primary) and one
   through ``prefer-standby`` (reads on the secondary); the read gap of each (from the kill to its
   first answer after it) beside the time PostgreSQL took to promote the secondary and a read's
   usual time. The monitor's health checks are tuned down as the tests run them (see pg_failover).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "tests"))

from crimemap.load.generate.archive import generate  # noqa: E402
from crimemap.load.generate.world import DENSEST_CENTRE  # noqa: E402
from crimemap.load.policeuk import load_policeuk  # noqa: E402
from crimemap.store.postgis import PostGISStore  # noqa: E402
from pg_failover import Formation  # noqa: E402
from pg_replica import ReplicaSet  # noqa: E402
from serve_process import serving  # noqa: E402

MONTH = "2024-09"
"""The month read: outside the bench archive's 2023-07..2024-06, so that a load never replaces it."""
PATH = f"/api/crimes-street/all-crime?lat={DENSEST_CENTRE[1]}&lng={DENSEST_CENTRE[0]}&date={MONTH}"
SERVE = ("--workers", "1", "--cache-mb", "0")


@dataclass
class Timed:
    """What one or more ``wrk`` runs measured together."""

    per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(urls: list[str], connections: int, seconds: float) -> Timed:
    """``wrk --latency`` against each URL at once, ``connections`` split among them: summed rates, worst p99."""
    each = max(1, connections // len(urls))
    runs = [
        subprocess.Popen(
            ["wrk", "-t1", f"-c{each}", f"-d{seconds:g}s", "--latency", "--timeout", "30s", url],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for url in urls
    ]
    results = []
    for run in runs:
        out = run.communicate()[0]
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        failed = re.search(r"Socket errors:.*?timeout (\d+)", out)
        results.append((rate, p50, p99, int(bad.group(1)) if bad else 0, int(failed.group(1)) if failed else 0))
    return Timed(
        per_s=sum(r[0] for r in results),
        p50_ms=max(r[1] for r in results),
        p99_ms=max(r[2] for r in results),
        errors=sum(r[3] + r[4] for r in results),
    )


def _same_body(bases: list[str]) -> int:
    bodies = {httpx.get(f"{base}{PATH}", timeout=60).content for base in bases}
    assert len(bodies) == 1, "the API processes answered differently"
    return len(bodies.pop())


# -- 1. API processes ---------------------------------------------------------------------------------------


def api_processes(replicas: ReplicaSet, database: str, args: argparse.Namespace) -> None:
    """The three set-ups all started at once, timed in turn ``--rounds`` times: the median of each survives noise."""
    setups = (
        ("1 API process on the primary (single server)", replicas.primary.url(database), 1),
        ("1 API process on the replica", replicas.standby.url(database), 1),
        ("2 API processes on the replica", replicas.standby.url(database), 2),
    )
    timed: dict[str, list[Timed]] = {name: [] for name, _, _ in setups}
    with ExitStack() as stack:
        targets = {}
        for name, url, processes in setups:
            bases = [stack.enter_context(serving(url, *SERVE)) for _ in range(processes)]
            targets[name] = [f"{base}{PATH}" for base in bases] * (2 // processes)
        size = _same_body([t.removesuffix(PATH) for urls in targets.values() for t in urls])
        for urls in targets.values():
            wrk(urls, args.connections, 2)  # warm up
        for _ in range(args.rounds):
            for name, urls in targets.items():
                timed[name].append(wrk(urls, args.connections, args.seconds))
    rows = [
        (name, statistics.median(t.per_s for t in runs), statistics.median(t.p50_ms for t in runs),
         statistics.median(t.p99_ms for t in runs), sum(t.errors for t in runs), [t.per_s for t in runs])
        for name, runs in timed.items()
    ]  # fmt: skip
    base = rows[0][1]
    print(
        f"\n1. densest mile ({size:,} bytes), uncached; wrk, {args.connections} connections;"
        f" median of {args.rounds} rounds of {args.seconds:g} s, the set-ups taking turns"
    )
    print(f"{'':48} {'requests/s':>10} {'x single':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}  rounds")
    for name, per_s, p50, p99, errors, each in rows:
        runs = " ".join(f"{r:.0f}" for r in each)
        print(f"{name:48} {per_s:10.1f} {per_s / base:8.2f} {p50:7.1f} {p99:7.1f} {errors:6}  {runs}")


# -- 2. replica lag during a load -----------------------------------------------------------------------------


@dataclass
class Sample:
    """One look at both servers: when, the primary's WAL position, the standby's replay position, two lags:
    PostgreSQL's own (time since the last replayed commit while WAL waits) and /health's (replay stalled)."""

    at: float
    primary_lsn: int
    replayed_lsn: int
    pg_lag_s: float
    health_lag_s: float


def _sample(
    standby: psycopg.Connection[tuple[Any, ...]], primary: psycopg.Connection[tuple[Any, ...]], api: str
) -> Sample:
    row = primary.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    found = standby.execute(
        "SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn,"
        " CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
        " ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
    ).fetchone()
    assert row is not None and found is not None
    health = httpx.get(f"{api}/health", timeout=30).json()["replication"]["lag_s"]
    return Sample(time.monotonic(), int(row[0]), int(found[0]), float(found[1] or 0), float(health or 0))


def _replay_delays(samples: list[Sample]) -> list[float]:
    """For each moment sampled, the seconds until the standby had replayed what the primary had written by then."""
    delays = []
    for i, s in enumerate(samples):
        later = next((t.at for t in samples[i:] if t.replayed_lsn >= s.primary_lsn), None)
        if later is not None:
            delays.append(later - s.at)
    return delays


def lag_during_a_load(replicas: ReplicaSet, database: str, archive: Path, rows: str, args: argparse.Namespace) -> None:
    with serving(replicas.standby.url(database), *SERVE) as api:
        target = [f"{api}{PATH}"]
        wrk(target, args.connections, 2)  # warm up
        before = wrk(target, args.connections, args.window * 2)
        samples: list[Sample] = []
        windows: list[Timed] = []
        done = threading.Event()

        def sample() -> None:
            with (
                psycopg.connect(replicas.standby.url(), autocommit=True) as standby,
                psycopg.connect(replicas.primary.url(), autocommit=True) as primary,
            ):
                while not done.is_set():
                    samples.append(_sample(standby, primary, api))
                    time.sleep(0.25)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        load = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crimemap",
                "load",
                "--store",
                replicas.primary.url(database),
                "--quiet",
                str(archive),
            ]
        )
        while load.poll() is None:
            windows.append(wrk(target, args.connections, args.window))
        loaded_s = time.monotonic() - started
        replicas.wait_for_replay(timeout_s=3600)
        caught_up_s = time.monotonic() - started - loaded_s
        done.set()
        sampler.join()
    assert load.returncode == 0, "the load failed"
    p99s = sorted(w.p99_ms for w in windows)
    print(
        f"\n2. a load of {rows} into the primary: {loaded_s:.0f} s; the standby caught up {caught_up_s:.1f} s after it"
    )
    delays = _replay_delays(samples)
    behind = max(t.primary_lsn - t.replayed_lsn for t in samples) / 2**20
    print(
        f"   replica lag (until the standby replayed what the primary had written): max {max(delays):.2f} s,"
        f" median {statistics.median(delays):.2f} s; at most {behind:,.0f} MB of WAL behind"
    )
    print(
        f"   /health's lag_s (how long replay has stalled): max {max(t.health_lag_s for t in samples):.2f} s;"
        f" PostgreSQL's time since the last replayed commit, while WAL waits: max"
        f" {max(t.pg_lag_s for t in samples):.1f} s (a load is one transaction: it grows all along)"
    )
    print(
        f"   reads on the replica (wrk, {args.connections} connections, {len(windows)} windows of {args.window:g} s):"
    )
    print(f"{'':48} {'requests/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    print(
        f"{'   before the load (baseline)':48} {before.per_s:10.1f} {before.p50_ms:7.1f} {before.p99_ms:7.1f} "
        f"{before.errors:6}"
    )
    during = statistics.mean(w.per_s for w in windows)
    p50 = statistics.median(w.p50_ms for w in windows)
    errors = sum(w.errors for w in windows)
    print(
        f"{'   during the load, median window p99':48} {during:10.1f} {p50:7.1f} {statistics.median(p99s):7.1f} "
        f"{errors:6}"
    )
    print(f"{'   during the load, worst window p99':48} {'':10} {'':7} {p99s[-1]:7.1f}")  # fmt: skip


# -- 3. failover --------------------------------------------------------------------------------------------------


def failover(args: argparse.Namespace, work: Path) -> None:
    started = time.monotonic()
    nodes = Formation()
    print(f"\n3. pg_auto_failover formation up in {time.monotonic() - started:.1f} s", flush=True)
    try:
        generate(work / "failover", months=[MONTH], crimes_per_month=args.crimes // 4, seed=1)
        with PostGISStore(nodes.url("read-write")) as store:
            load_policeuk(store, [work / "failover"])
        reads: dict[str, list[tuple[float, float, int | str]]] = {"read-write": [], "prefer-standby": []}
        stop = threading.Event()
        with ExitStack() as stack:
            apis = {attrs: stack.enter_context(serving(nodes.url(attrs), *SERVE)) for attrs in reads}

            def read(attrs: str) -> None:
                with httpx.Client(base_url=apis[attrs], timeout=60) as client:
                    while not stop.is_set():
                        sent = time.monotonic()
                        try:
                            status: int | str = client.get(PATH).status_code
                        except httpx.HTTPError as e:
                            status = type(e).__name__
                        reads[attrs].append((sent, time.monotonic(), status))

            threads = [threading.Thread(target=read, args=(attrs,)) for attrs in reads for _ in range(2)]
            for t in threads:
                t.start()
            time.sleep(3)
            survivor = next(n for n in nodes.nodes if n is not nodes.primary())
            nodes.kill_primary()
            killed = time.monotonic()
            promoted = _wait_promoted(survivor.url())
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not all(
                any(sent > killed and status == 200 for sent, _, status in r) for r in reads.values()
            ):
                time.sleep(0.05)
            time.sleep(1)
            stop.set()
            for t in threads:
                t.join(90)
    finally:
        nodes.stop()
    usual = statistics.median(done - sent for r in reads.values() for sent, done, s in r if sent < killed and s == 200)
    print(
        f"   kill -9 of the primary (keeper and postgres); the secondary took read-write sessions"
        f" {promoted - killed:.2f} s after it"
    )
    print(f"{'':48} {'read gap s':>10} {'refused':>7} {'longest wait s':>14}")
    for attrs, r in reads.items():
        after = [done for sent, done, s in r if sent > killed and s == 200]
        gap = min(after) - killed if after else float("nan")
        refused = sum(1 for sent, _, s in r if sent > killed - 1 and s != 200)
        longest = max(done - sent for sent, done, _ in r)
        print(f"{'   API with target_session_attrs=' + attrs:48} {gap:10.2f} {refused:7} {longest:14.2f}")
    print(f"{'   a read before the kill (p50, baseline)':48} {usual:10.3f}")


def _wait_promoted(url: str) -> float:
    """When a read-write session could first be opened on ``url`` (libpq's ``target_session_attrs=read-write``)."""
    while True:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=2, target_session_attrs="read-write"):
                return time.monotonic()
        except psycopg.OperationalError:
            time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts", default="1,2,3", help="which parts, comma-separated (1: API processes, 2: lag, 3: failover)"
    )
    parser.add_argument("--crimes", type=int, default=200_000, help="crimes in the generated month read")
    parser.add_argument("--connections", type=int, default=8, help="wrk's connections (split over two wrk runs)")
    parser.add_argument("--seconds", type=float, default=10, help="each timing of part 1")
    parser.add_argument("--rounds", type=int, default=3, help="timings of each set-up in part 1, in turns")
    parser.add_argument("--window", type=float, default=5, help="each wrk window of part 2")
    parser.add_argument("--load-archive", type=Path, help="a police.uk archive to load in part 2 (default: generated)")
    parser.add_argument("--load-months", type=int, default=2)
    parser.add_argument("--load-crimes", type=int, default=200_000, help="crimes a month of the generated load")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if shutil.which("wrk") is None:
        sys.exit("bench_scale_out: wrk is missing (apt-get install wrk; scripts/setup --test installs it)")
    with tempfile.TemporaryDirectory(prefix="bench-scale-out-") as tmp:
        work = Path(tmp)
        if parts & {"1", "2"}:
            replicas = ReplicaSet()
            database = replicas.fresh_database()
            generate(work / "read", months=[MONTH], crimes_per_month=args.crimes, seed=1)
            with PostGISStore(replicas.primary.url(database)) as store:
                load_policeuk(store, [work / "read"])
            replicas.wait_for_replay()
            print(f"a generated month of {args.crimes:,} crimes read; crimes-street on the densest mile")
            if "1" in parts:
                api_processes(replicas, database, args)
            if "2" in parts:
                if args.load_archive:
                    archive, rows = args.load_archive, f"{args.load_archive.name}"
                else:
                    archive = work / "load"
                    months = [f"2023-{m:02d}" for m in range(1, args.load_months + 1)]
                    generate(archive, months=months, crimes_per_month=args.load_crimes, seed=2)
                    rows = f"{args.load_months} x {args.load_crimes:,} generated crimes"
                lag_during_a_load(replicas, database, archive, rows, args)
            replicas.bouncer.stop()
            replicas.standby.stop()
            replicas.primary.stop()
        if "3" in parts:
            failover(args, work)


if __name__ == "__main__":
    main()
