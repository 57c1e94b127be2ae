"""Failover on PostgreSQL: multi-host URLs, dead pooled connections, and a real pg_auto_failover failover.

The first tests use the session's throwaway server (:mod:`pg_server`) and one of their own:
a store reached through a URL naming several hosts, pooled connections killed under a
store, a server that goes away. The last ones kill the primary of a real pg_auto_failover
formation (:mod:`pg_failover`: a monitor, a primary and a synchronous secondary) while a
real ``crimemap serve`` answers reads and a real ``crimemap load`` writes, once for all of
them (:func:`failover`). PostGIS-only by nature: the embedded store has no servers to lose.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from conftest import POLICEUK
from crimemap.errors import DatabaseUnavailable, ReadTimeout
from crimemap.load.generate.archive import generate
from crimemap.load.policeuk import load_policeuk
from crimemap.query import Circle, CrimeQuery
from crimemap.store.postgis import PostGISStore
from pg_failover import formation
from pg_server import Cluster, _free_port, fresh_store_url, server, server_binaries
from serve_process import serving

pytestmark = pytest.mark.heavy  # a pg_auto_failover formation and servers of its own: scheduled first under xdist

SPOT = (51.515, -0.09)
PATHS = [
    f"/api/crimes-street/all-crime?lat={SPOT[0]}&lng={SPOT[1]}&date=2016-01",
    f"/api/crimes-at-location?lat={SPOT[0]}&lng={SPOT[1]}&date=2016-01",
    f"/api/outcomes-at-location?lat={SPOT[0]}&lng={SPOT[1]}&date=2016-01",
    "/api/crimes-no-location?category=all-crime&force=city-of-london&date=2016-01",
]
"""Answers about the month loaded before the failover."""
READ = f"/api/crimes-street/all-crime?lat={SPOT[0]}&lng={SPOT[1]}&date=2016-01"


def _answers(base: str, paths: list[str]) -> dict[str, tuple[int, bytes]]:
    with httpx.Client(base_url=base, timeout=60) as client:
        return {p: (r.status_code, r.content) for p in paths for r in [client.get(p)]}


def _with_application_name(url: str, name: str) -> str:
    return url + ("&" if "?" in url else "?") + f"application_name={name}"


def _terminate(application_name: str) -> int:
    """Kill every server process of connections named ``application_name``; how many there were."""
    with psycopg.connect(server().url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).fetchall()
    return len(rows)


# -- multi-host URLs and dead connections, on the session's server ----------------------------------


def test_a_url_naming_a_dead_host_before_the_live_one_opens_the_store_on_the_live_one() -> None:
    url = fresh_store_url()
    with PostGISStore(url) as store:
        load_policeuk(store, [POLICEUK / "2016-01"])
        expected = store.months()
    live = url.split("@", 1)[1].split("/", 1)[0]
    several = url.replace(live, f"127.0.0.1:{_free_port()},{live}", 1)
    with PostGISStore(several + "&target_session_attrs=read-write") as store:
        assert store.months() == expected
        assert "," in store.url


def test_pooled_connections_killed_under_the_store_are_replaced_and_the_reads_answer() -> None:
    url = _with_application_name(fresh_store_url(), "pooled_victim")
    with PostGISStore(url) as store:
        load_policeuk(store, [POLICEUK / "2016-01"])
        query = CrimeQuery(month="2016-01", area=Circle((SPOT[1], SPOT[0]), 1609.344))
        months, answer = store.months(), store.crimes_json(query, 10_000)
        exported = list(store.crimes(query))
        assert _terminate("pooled_victim") >= 1
        assert store.months() == months  # db.all: a whole answer
        assert _terminate("pooled_victim") >= 1
        assert store.crimes_json(query, 10_000) == answer  # a read of its own cursor
        assert _terminate("pooled_victim") >= 1
        assert list(store.crimes(query)) == exported  # a stream, retried before its first row


@pytest.fixture
def own_server() -> Iterator[Cluster]:
    """A throwaway server of this test's own, to be stopped under a store."""
    bindir = server_binaries()
    if bindir is None:
        pytest.skip("no PostgreSQL server programs")
    cluster = Cluster(bindir)
    try:
        cluster.start()
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        yield cluster
    finally:
        cluster.stop()


def test_reads_after_the_server_died_are_database_unavailable_503_within_their_budget(own_server: Cluster) -> None:
    with PostGISStore(own_server.url()) as store:
        load_policeuk(store, [POLICEUK / "2016-01"])
    with (
        PostGISStore(own_server.url(), statement_timeout_s=2) as store,
        serving(own_server.url(), env={"CRIMEMAP_STATEMENT_TIMEOUT": "2"}) as api,
    ):
        assert httpx.get(f"{api}{READ}").status_code == 200
        store.months()
        subprocess.run(
            [*own_server.as_user, str(own_server.bindir / "pg_ctl"), "-D", str(own_server.data), "-m", "immediate",
             "stop"], check=True, capture_output=True,
        )  # fmt: skip
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match="cannot be reached") as raised:
            store.months()
        assert time.monotonic() - started < 30  # "it returns at all": the budget is 2 s
        assert isinstance(raised.value, ReadTimeout)  # what every API answers as its own 503
        answered = httpx.get(f"{api}{READ}", timeout=60)
    assert answered.status_code == 503


# -- a pg_auto_failover failover ------------------------------------------------------------------


@dataclass
class Failover:
    """What the readers and the loads saw when the primary was killed (see :func:`failover`)."""

    before: dict[str, tuple[int, bytes]]
    after: dict[str, tuple[int, bytes]]
    """The same requests' answers before the kill, and from the promoted node (before the load is run again)."""
    reads: list[tuple[float, float, int | str]] = field(default_factory=list)
    """(sent, answered, HTTP status or the exception's name), monotonic seconds."""
    killed_at: float = 0.0
    interrupted: subprocess.CompletedProcess[str] | None = None
    rerun: subprocess.CompletedProcess[str] | None = None
    months_after: list[str] = field(default_factory=list)


def _load_command(url: str, archive: Path) -> list[str]:
    return [sys.executable, "-m", "crimemap", "load", "--store", url, "--quiet", str(archive)]


def _writing(primary_url: str) -> bool:
    """Whether a load's transaction is open on the primary and has written rows (until it commits)."""
    with psycopg.connect(primary_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.backend_xid IS NOT NULL"
        ).fetchone()
    return bool(row and row[0])


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory) -> Failover:
    """Load a month, then kill -9 the primary while an API reads it and a second load is writing rows.

    The API and the loads know the formation only by its multi-host URL with
    ``target_session_attrs=read-write``: they reach whichever node is the primary.
    """
    nodes = formation()
    url = nodes.url("read-write")
    with PostGISStore(url) as store:
        load_policeuk(store, [POLICEUK / "2016-01"])
    archive = tmp_path_factory.mktemp("failover") / "archive"
    generate(archive, months=["2024-03"], crimes_per_month=30_000, seed=1)
    env = {**os.environ, "CRIMEMAP_STATEMENT_TIMEOUT": "5"}
    with serving(url, "--cache-mb", "0", env={"CRIMEMAP_STATEMENT_TIMEOUT": "5"}) as api:
        seen = Failover(before=_answers(api, PATHS), after={})
        stop = threading.Event()

        def read() -> None:
            with httpx.Client(base_url=api, timeout=60) as client:
                while not stop.is_set():
                    sent = time.monotonic()
                    try:
                        status: int | str = client.get(READ).status_code
                    except httpx.HTTPError as e:
                        status = type(e).__name__
                    seen.reads.append((sent, time.monotonic(), status))

        readers = [threading.Thread(target=read) for _ in range(2)]
        for reader in readers:
            reader.start()
        try:
            load = subprocess.Popen(
                _load_command(url, archive), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            primary = nodes.primary().url()
            deadline = time.monotonic() + 120
            while not _writing(primary):
                assert load.poll() is None, f"the load ended before it could be interrupted: {load.communicate()}"
                assert time.monotonic() < deadline, "the load never started writing"
                time.sleep(0.01)
            nodes.kill_primary()
            seen.killed_at = time.monotonic()
            out, err = load.communicate(timeout=120)
            seen.interrupted = subprocess.CompletedProcess(load.args, load.returncode, out, err)
            deadline = time.monotonic() + 120
            while not any(at > seen.killed_at and status == 200 for at, _, status in seen.reads[-20:]):
                assert time.monotonic() < deadline, "reads did not resume in 120 s"
                time.sleep(0.05)
            time.sleep(0.5)  # a few more reads on the promoted node
        finally:
            stop.set()
            for reader in readers:
                reader.join(90)
        seen.after = _answers(api, PATHS)
        seen.rerun = subprocess.run(_load_command(url, archive), env=env, capture_output=True, text=True, timeout=300)
        seen.months_after = [d["date"] for d in httpx.get(f"{api}/api/crimes-street-dates").json()]
    return seen


def _gap(seen: Failover) -> float:
    """Seconds from the kill to the first read answered after it."""
    return min(answered for sent, answered, status in seen.reads if sent > seen.killed_at and status == 200) - (
        seen.killed_at
    )


def test_reads_through_crimemap_resume_on_the_promoted_node_after_the_primary_is_killed(failover: Failover) -> None:
    assert any(status == 200 for sent, _, status in failover.reads if sent < failover.killed_at)
    gap = _gap(failover)
    print(f"read gap after kill -9 of the primary: {gap:.2f} s")
    assert gap < 60  # "they resume at all": the figure is measured by benchmarks/bench_scale_out.py
    assert failover.after == failover.before


def test_reads_during_the_failover_are_answered_or_refused_with_503_never_left_hanging(failover: Failover) -> None:
    statuses = {status for _, _, status in failover.reads}
    assert statuses <= {200, 503}, statuses
    assert max(answered - sent for sent, answered, _ in failover.reads) < 30


def test_a_load_interrupted_by_the_failover_fails_with_a_clear_error_and_a_rerun_on_the_same_url_completes(
    failover: Failover,
) -> None:
    interrupted, rerun = failover.interrupted, failover.rerun
    assert interrupted is not None and rerun is not None
    assert interrupted.returncode == 1, interrupted
    assert "was lost during the load" in interrupted.stderr
    assert "nothing was loaded; the store is as it was" in interrupted.stderr
    assert "Traceback" not in interrupted.stderr
    assert rerun.returncode == 0, rerun.stderr
    assert failover.months_after == ["2024-03", "2016-01"]


def test_nothing_loaded_before_the_failover_is_lost(failover: Failover) -> None:
    assert all(status == 200 for status, _ in failover.before.values())
    assert failover.after == failover.before
