"""A PostgreSQL primary, a streaming hot standby of it and a PgBouncer in front of the standby, for the tests.

The scale-out the README describes, made of PostgreSQL's own machinery on loopback:

- the primary: a throwaway :class:`~pg_server.Cluster` of its own (``initdb``, half a second),
  so that the standby replays only what these tests write;
- the standby: ``pg_basebackup -R`` from the primary into a folder of its own, started
  on a port of its own as a hot standby (it streams the primary's WAL and answers reads);
- PgBouncer (Debian's ``pgbouncer`` package, ``scripts/setup --test`` installs it) in
  transaction mode in front of the standby, run as a process of the tests with its own
  ini file in a temporary folder (the packaged service plays no part), with fewer server
  connections than the API processes have client connections, so that clients share them
  as they do in production.

Everything is started on first use and stopped and deleted when the test process exits.
Without the programs (or with ``$CRIMEMAP_TEST_POSTGRES`` set: a server the tests did not
start cannot be given a standby) :func:`replica_set` skips the test, or fails it under
``CI=true``.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import psycopg

from pg_server import ENV, Cluster, Unavailable, _free_port, server_binaries

BOUNCER_SERVER_CONNECTIONS = 4
"""Server connections PgBouncer keeps per database: fewer than the clients', so that they are shared."""


def _pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer",) if os.access(p, os.X_OK)), None)


class Bouncer:
    """PgBouncer in transaction mode on a free loopback port, passing every database name to ``host:port``."""

    def __init__(self, program: str, host_port: tuple[str, int], as_user: list[str], owner: Path) -> None:
        self.dir = owner / "pgbouncer"
        self.dir.mkdir()
        shutil.chown(self.dir, *_owner_of(owner))
        self.port = _free_port()
        (self.dir / "users.txt").write_text('"postgres" ""\n')
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={host_port[0]} port={host_port[1]}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {BOUNCER_SERVER_CONNECTIONS}\nmax_client_conn = 1000\n"
            "server_reset_query =\nlog_connections = 0\nlog_disconnections = 0\n"
        )
        self.log = self.dir / "pgbouncer.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [*as_user, program, str(ini)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = self.log.read_text(errors="replace")[-2000:]
                    raise Unavailable(f"pgbouncer did not start: {tail}") from None
                time.sleep(0.02)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _owner_of(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid


class ReplicaSet:
    """The primary, its hot standby and the PgBouncer in front of the standby; databases are made per test."""

    def __init__(self) -> None:
        if os.environ.get(ENV):
            raise Unavailable(f"{ENV} names a server the tests did not start: no standby can be made of it")
        bindir = server_binaries()
        if bindir is None:
            raise Unavailable("no PostgreSQL server programs (scripts/setup --test installs them)")
        program = _pgbouncer()
        if program is None:
            raise Unavailable("no pgbouncer (scripts/setup --test installs Debian's pgbouncer package)")
        self.primary = Cluster(bindir)
        atexit.register(self.primary.stop)
        self.primary.start()
        # The standby cancels a read that holds up replay past this delay (a replay conflict); tests that
        # provoke one lower it on the standby with ALTER SYSTEM (see set_standby_delay).
        self.standby = Cluster(bindir, options=("hot_standby=on", "wal_receiver_status_interval=1s"))
        atexit.register(self.standby.stop)
        self.standby.run(
            str(bindir / "pg_basebackup"), "-D", str(self.standby.data), "-h", "127.0.0.1",
            "-p", str(self.primary.port), "-U", "postgres", "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip
        self.standby.launch()
        self.bouncer = Bouncer(program, ("127.0.0.1", self.standby.port), self.primary.as_user, self.primary.dir)
        atexit.register(self.bouncer.stop)
        self._counter = itertools.count()

    def fresh_database(self) -> str:
        """A new database with PostGIS on the primary, replayed onto the standby; returns its name."""
        name = f"replica_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(self.primary.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        with psycopg.connect(self.primary.url(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        self.wait_for_replay()
        return name

    def wait_for_replay(self, timeout_s: float = 30) -> None:
        """Return once the standby has replayed everything the primary had committed when this was called."""
        with psycopg.connect(self.primary.url(), autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
            assert row is not None
            target = row[0]
        deadline = time.monotonic() + timeout_s
        with psycopg.connect(self.standby.url(), autocommit=True) as conn:
            while True:
                done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()
                if done and done[0]:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"the standby did not replay up to {target} in {timeout_s} s")
                time.sleep(0.02)

    def set_standby_delay(self, setting: str) -> None:
        """Set the standby's ``max_standby_streaming_delay`` (``'0'``: a conflicting read is cancelled at once)."""
        with psycopg.connect(self.standby.url(), autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET max_standby_streaming_delay = '{setting}'")
            conn.execute("SELECT pg_reload_conf()")


_lock = threading.Lock()
_set: ReplicaSet | None = None
_failure: Unavailable | None = None


def replica_set() -> ReplicaSet:
    """The session's primary, standby and PgBouncer, started on first use; skips (fails under CI) without them."""
    import pytest

    global _set, _failure
    with _lock:
        try:
            if _failure is not None:
                raise _failure
            if _set is None:
                try:
                    _set = ReplicaSet()
                except Unavailable as e:
                    _failure = e
                    raise
            return _set
        except Unavailable as e:
            if os.environ.get("CI", "").lower() in ("true", "1"):
                pytest.fail(f"CI must run the replica tests, but: {e}", pytrace=False)
            pytest.skip(f"replica tests skipped: {e}")
