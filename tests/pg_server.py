"""A PostgreSQL server with PostGIS for the tests (and the benchmark), started on demand.

Where the server comes from, in order:

1. ``$CRIMEMAP_TEST_POSTGRES``: a ``postgresql://`` URL of a database where PostGIS is
   installed (or may be: ``CREATE EXTENSION postgis`` is tried). Nothing is started.
2. PostgreSQL's server programs (``/usr/lib/postgresql/*/bin/initdb``): a throwaway
   cluster in a temporary folder, listening on a free port on 127.0.0.1 (and a unix
   socket in that folder), with durability switched off for speed. It is started by the
   ``postgres`` OS user when the tests run as root (``initdb`` refuses root), and stopped
   and deleted when the test process exits.
3. Neither: :class:`Unavailable`. :func:`fresh_store_url` then skips the test, or fails it
   when ``CI=true``, since CI must run the suite against PostGIS, not skip it.

Each store a test opens gets a fresh schema (``CREATE SCHEMA``, a few milliseconds)
in one shared database, selected through ``search_path`` in the URL: PostGIS lives in
``public``, everything crimemap creates lands in the store's own schema.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

ENV = "CRIMEMAP_TEST_POSTGRES"
DATABASE = "crimemap_test"


class Unavailable(Exception):
    """No PostgreSQL server with PostGIS can be had; the message says why and what to do."""


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A throwaway PostgreSQL cluster: ``start()`` it, ``url`` to reach it, ``stop()`` deletes it."""

    def __init__(self, bindir: Path, *, options: tuple[str, ...] = ()) -> None:
        self.bindir = bindir
        self.options = options
        """Server settings on top of the fast, throwaway ones (``name=value``, as ``postgres -c`` takes them)."""
        self.dir = Path(tempfile.mkdtemp(prefix="crimemap-pg-"))
        self.data = self.dir / "data"
        self.port = 0
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root and there is no 'postgres' OS user to run the server") from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str) -> None:
        """A server program run as the cluster's OS user; :class:`Unavailable` with its output when it fails."""
        self._run(*args)

    def _run(self, *args: str) -> None:
        proc = subprocess.run([*self.as_user, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            log = self.dir / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise Unavailable(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip()}\n{tail}")

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        self.launch()

    def launch(self) -> None:
        """Start the server on the cluster's data folder (made by ``initdb``, or copied by ``pg_basebackup``)."""
        options = " ".join(
            f"-c {o}"
            for o in (
                "listen_addresses=127.0.0.1",
                f"unix_socket_directories={self.dir}",
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
                "max_connections=300",
                "max_wal_size=4GB",
                "shared_buffers=256MB",
                *self.options,
            )
        )
        for attempt in range(3):
            self.port = _free_port()
            try:
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"),
                    "-w", "-t", "60", "-o", f"-p {self.port} {options}", "start",
                )  # fmt: skip
                return
            except Unavailable:
                if attempt == 2:
                    raise

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                capture_output=True,
                stdin=subprocess.DEVNULL,
            )
        shutil.rmtree(self.dir, ignore_errors=True)


class _Server:
    """The session's server: a database with PostGIS and the schemas handed out in it."""

    def __init__(self) -> None:
        import psycopg

        self.cluster: Cluster | None = None
        external = os.environ.get(ENV)
        if external:
            self.url = external
        else:
            bindir = server_binaries()
            if bindir is None:
                raise Unavailable(
                    f"no PostgreSQL server: set {ENV} to a postgresql:// URL of a database with PostGIS,"
                    " or install the server (scripts/setup --test does: postgresql, postgresql-NN-postgis-3)"
                )
            self.cluster = Cluster(bindir)
            atexit.register(self.cluster.stop)
            self.cluster.start()
            with psycopg.connect(self.cluster.url(), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {DATABASE}")
            self.url = self.cluster.url(DATABASE)
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        except psycopg.Error as e:
            raise Unavailable(f"cannot use PostGIS at {self.url}: {e}") from None
        self.prefix = f"t{os.getpid()}_{int(time.time()) % 100000}_"
        self.counter = itertools.count()
        self.schemas: list[str] = []
        if self.cluster is None:
            atexit.register(self.drop_schemas)

    def fresh_url(self) -> str:
        """The URL of an empty store: a new schema, first on the search path."""
        import psycopg

        schema = f"{self.prefix}{next(self.counter)}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        self.schemas.append(schema)
        options = quote(f"-c search_path={schema},public", safe="")
        return self.url + ("&" if "?" in self.url else "?") + f"options={options}"

    def drop_schemas(self) -> None:
        """Remove what the tests created in a server they did not start."""
        import psycopg

        if not self.schemas:
            return
        with psycopg.connect(self.url, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        self.schemas.clear()


_lock = threading.Lock()
_server: _Server | None = None
_failure: Unavailable | None = None


def server() -> _Server:
    """The session's server, started on first use; raises :class:`Unavailable` (every time)."""
    global _server, _failure
    with _lock:
        if _failure is not None:
            raise _failure
        if _server is None:
            try:
                _server = _Server()
            except Unavailable as e:
                _failure = e
                raise
        return _server


def fresh_store_url() -> str:
    """A URL for an empty PostGIS store; skips the test without a server (fails it under CI=true)."""
    import pytest

    try:
        return server().fresh_url()
    except Unavailable as e:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI must run the PostGIS tests, but: {e}", pytrace=False)
        pytest.skip(f"PostGIS tests skipped: {e}")
