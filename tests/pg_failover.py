"""A pg_auto_failover formation for the tests: a monitor, a primary and a secondary, on loopback.

The failover the README describes, made of pg_auto_failover's own programs (Debian's
``postgresql-15-auto-failover``, ``scripts/setup --test`` installs it), each a
``pg_autoctl ... --run`` process of the tests in a folder of its own under the temporary
directory (its configuration and state too: ``HOME`` and the ``XDG_*`` folders point
there, so nothing of the machine's is read or written):

- the monitor (``pg_autoctl create monitor``), whose health checks are tuned down from
  seconds to a fraction of one (``pgautofailover.health_check_period`` and the rest;
  production keeps the defaults, see README "Failover"), so that a failover takes
  moments, not half a minute;
- ``node1``, the first keeper: it creates its PostgreSQL (``initdb``) and is the primary;
- ``node2``, the second keeper: it copies ``node1`` with ``pg_basebackup`` and streams
  from it, a synchronous secondary (pg_auto_failover's default: a commit on the primary
  waits until the secondary has it, so a failover loses nothing committed).

Connections: ``--auth trust``, no TLS (``--no-ssl``, ``sslmode=disable``), listening on
127.0.0.1 only. :meth:`Formation.url` is the multi-host URL clients use,
``postgresql://postgres@127.0.0.1:P1,127.0.0.1:P2/crimemap?target_session_attrs=...``.

:meth:`Formation.kill_primary` kills the primary's keeper and its postgres with SIGKILL,
as a machine that dies, for good (a postgres killed alone is restarted by its keeper in
under a second, and the old primary comes back, as a secondary after the tuned monitor's
failover). Everything is stopped and deleted when the test process
exits. Without the programs (or with ``$CRIMEMAP_TEST_POSTGRES`` set) :func:`formation`
skips the test, or fails it under ``CI=true``.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from pg_server import ENV, Unavailable, _free_port, server_binaries

DATABASE = "crimemap"
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": "200",
    "pgautofailover.health_check_timeout": "200",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "100",
    "pgautofailover.node_considered_unhealthy_timeout": "500",
    "pgautofailover.primary_demote_timeout": "500",
    "pgautofailover.startup_grace_period": "1",
}
"""The monitor's health checks in milliseconds (defaults: 5 s period, 20 s before a node is unhealthy, 30 s
before a silent primary is taken as demoted): a failover in moments on loopback."""
FAST_SETTINGS = {"fsync": "off", "full_page_writes": "off", "checkpoint_completion_target": "0"}
"""Durability off for speed, as pg_server's clusters run (a commit still waits for the synchronous secondary)."""


class Keeper:
    """One ``pg_autoctl ... --run`` process (a monitor, or a node's keeper and its postgres) on a port of its own."""

    def __init__(self, formation: Formation, name: str, create: list[str]) -> None:
        self.name = name
        self.alive = True
        """False once :meth:`kill` ed on purpose (its process's end is then no failure of the formation)."""
        self.port = _free_port()
        self.pgdata = formation.dir / name
        self.log = formation.dir / f"{name}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    *formation.as_user, "env", *formation.env, "pg_autoctl", "create", *create,
                    "--pgdata", str(self.pgdata), "--pgport", str(self.port), "--hostname", "127.0.0.1",
                    "--pgctl", str(formation.bindir / "pg_ctl"), "--auth", "trust", "--no-ssl", "--ssl-mode", "disable",
                    "--run",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # the keeper, its postgres and nothing else: kill() takes them all
            )  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}?sslmode=disable"

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL to the keeper and its postgres at once: the node is gone, as a machine that dies."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self) -> None:
        """Gone at once: a throwaway node needs no orderly shutdown (pg_autoctl's takes seconds)."""
        if self.proc.poll() is None:
            self.kill()


class Formation:
    """The monitor and two nodes of one pg_auto_failover formation (see the module docstring)."""

    def __init__(self) -> None:
        if os.environ.get(ENV):
            raise Unavailable(f"{ENV} names a server the tests did not start: no formation can be made of it")
        bindir = server_binaries()
        if bindir is None:
            raise Unavailable("no PostgreSQL server programs (scripts/setup --test installs them)")
        if shutil.which("pg_autoctl") is None:
            raise Unavailable("no pg_autoctl (scripts/setup --test installs Debian's postgresql-15-auto-failover)")
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="crimemap-pgaf-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb, and so pg_autoctl, refuse root
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root and there is no 'postgres' OS user to run the servers") from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.env = [
            f"HOME={self.dir}", f"XDG_CONFIG_HOME={self.dir / 'config'}", f"XDG_DATA_HOME={self.dir / 'share'}",
            f"XDG_RUNTIME_DIR={self.dir / 'run'}", f"PG_CONFIG={bindir / 'pg_config'}",
        ]  # fmt: skip
        self.keepers: list[Keeper] = []
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.monitor = self._keeper("monitor", ["monitor"])
        self._settle(self.monitor, "pg_auto_failover", {**MONITOR_SETTINGS, **FAST_SETTINGS})
        monitor = f"postgres://autoctl_node@127.0.0.1:{self.monitor.port}/pg_auto_failover?sslmode=disable"
        node = ["postgres", "--monitor", monitor, "--dbname", DATABASE, "--listen", "127.0.0.1"]
        self.nodes = [self._keeper("node1", [*node, "--name", "node1"])]
        self.wait_for_states({"node1": "single"})
        self._settle(self.nodes[0], DATABASE, FAST_SETTINGS)  # node2's copy of node1 takes these along
        with psycopg.connect(self.nodes[0].url(DATABASE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        self.nodes.append(self._keeper("node2", [*node, "--name", "node2"]))
        # pg_basebackup waits for a spread checkpoint on node1 (seconds); one asked for by hand is immediate
        with psycopg.connect(self.nodes[0].url(), autocommit=True) as conn:
            self.wait_for_states(
                {"node1": "primary", "node2": "secondary"}, meanwhile=lambda: conn.execute("CHECKPOINT")
            )

    def _keeper(self, name: str, create: list[str]) -> Keeper:
        keeper = Keeper(self, name, create)
        self.keepers.append(keeper)
        return keeper

    def _settle(self, keeper: Keeper, database: str, settings: dict[str, str]) -> None:
        """Wait until ``keeper``'s postgres answers, then apply ``settings`` (ALTER SYSTEM, reloaded)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = psycopg.connect(keeper.url(database), autocommit=True, connect_timeout=2)
                break
            except psycopg.OperationalError:
                if keeper.proc.poll() is not None or time.monotonic() > deadline:
                    raise Unavailable(f"pg_autoctl {keeper.name} did not start:\n{keeper.tail()}") from None
                time.sleep(0.1)
        with conn:
            for name, value in settings.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            conn.execute("SELECT pg_reload_conf()")

    def states(self) -> dict[str, tuple[str, str]]:
        """Each node's (reported, assigned) state, as the monitor has them."""
        with psycopg.connect(self.monitor.url("pg_auto_failover"), autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute("SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node")
            return {name: (reported, goal) for name, reported, goal in rows}

    def wait_for_states(
        self, wanted: dict[str, str], *, timeout_s: float = 90, meanwhile: Callable[[], object] | None = None
    ) -> None:
        """Return once each named node reports (and is assigned) its wanted state."""
        deadline = time.monotonic() + timeout_s
        states: dict[str, tuple[str, str]] = {}
        while True:
            try:
                states = self.states()
            except psycopg.Error:  # the monitor is still starting, or still making its tables
                states = {}
            if all(states.get(name) == (state, state) for name, state in wanted.items()):
                return
            if time.monotonic() > deadline or any(k.proc.poll() is not None for k in self.keepers if k.alive):
                logs = "\n".join(f"-- {k.name}:\n{k.tail()}" for k in self.keepers)
                raise Unavailable(f"the formation did not reach {wanted} (it is at {states}):\n{logs}")
            if meanwhile is not None:
                meanwhile()
            time.sleep(0.1)

    def url(self, attrs: str = "read-write") -> str:
        """The multi-host URL of the formation's database: libpq picks a node by ``target_session_attrs``."""
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"postgresql://postgres@{hosts}/{DATABASE}?target_session_attrs={attrs}&sslmode=disable"

    def primary(self) -> Keeper:
        """The node that reports, and is assigned, a primary's state (a killed one keeps reporting what it was)."""
        states = self.states()
        primaries = ("primary", "wait_primary", "single")
        return next(n for n in self.nodes if n.name in states and states[n.name][0] == states[n.name][1] in primaries)

    def kill_primary(self) -> Keeper:
        """SIGKILL the primary's keeper and postgres; returns the node killed."""
        node = self.primary()
        node.alive = False
        node.kill()
        return node

    def stop(self) -> None:
        for keeper in reversed(self.keepers):
            keeper.stop()
        for keeper in self.keepers:  # a postgres whose keeper was killed may outlive it for a moment
            if (keeper.pgdata / "postmaster.pid").exists():
                subprocess.run(
                    [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(keeper.pgdata), "-m", "immediate", "stop"],
                    capture_output=True, stdin=subprocess.DEVNULL,
                )  # fmt: skip
        self.keepers.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


_lock = threading.Lock()
_formation: Formation | None = None
_failure: Unavailable | None = None


def formation() -> Formation:
    """The session's formation, started on first use; skips (fails under CI) without pg_auto_failover.

    A test that fails it over leaves it with one node: it is for one failover a test session.
    """
    import pytest

    global _formation, _failure
    with _lock:
        try:
            if _failure is not None:
                raise _failure
            if _formation is None:
                try:
                    _formation = Formation()
                except Unavailable as e:
                    _failure = e
                    raise
            return _formation
        except Unavailable as e:
            if os.environ.get("CI", "").lower() in ("true", "1"):
                pytest.fail(f"CI must run the failover tests, but: {e}", pytrace=False)
            pytest.skip(f"failover tests skipped: {e}")
