"""Shared fixtures: real stores on real files, real servers on loopback.

``SHARED_DATA`` is the project's real data (never copied into the repo): ``../shared/data`` beside the
checkout, or ``$CRIMEMAP_SHARED_DATA``. Tests that need it skip with the reason when it is missing,
except under ``CI=true``, where they fail: CI must test on the real data.
``make_store`` opens an empty store of each kind the suite runs against;
``live_server`` serves a store with uvicorn on a free loopback port; ``browser``
is headless Chromium for the web map's tests.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn

from crimemap.api.app import Settings, create_app
from crimemap.load.policeuk import load_policeuk
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore
from pg_server import fresh_store_url

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SHARED_DATA = Path(os.environ.get("CRIMEMAP_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
POLICEUK = SHARED_DATA / "policeuk"
NYC = SHARED_DATA / "nyc-crime-map"
_DATA_FIXTURES = frozenset({"policeuk_store", "policeuk_server"})


def needs_shared_data() -> None:
    """Skip the calling test when the real data is missing (fail under CI=true)."""
    if POLICEUK.is_dir() and NYC.is_dir():
        return
    reason = (
        f"the real data is not at {SHARED_DATA}: put the project's shared/data beside the checkout"
        " (or set CRIMEMAP_SHARED_DATA); see the README's Running the tests"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}. CI must test on the real data")
    pytest.skip(reason)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests of modules that read the real data, or that use the stores loaded with it, need it."""
    module = getattr(item, "module", None)
    imported = vars(module).values() if module is not None else ()
    if _DATA_FIXTURES & set(getattr(item, "fixturenames", ())) or any(
        value is path for value in imported for path in (SHARED_DATA, POLICEUK, NYC)
    ):
        needs_shared_data()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the files marked ``heavy`` first: one handed out last keeps the other workers idle.

    scripts/test passes ``--no-loadscope-reorder``, so that xdist hands the files out in this order.
    """
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Under pytest-xdist, a test marked ``alone`` runs while no other worker runs a test (nor sets one up)."""
    with _turn(item.config, exclusive=item.get_closest_marker("alone") is not None):
        return (yield)


def _lock_files(config: pytest.Config) -> tuple[Path, Path] | None:
    """The gate and the lock the workers of this xdist run share (None outside a worker)."""
    run = getattr(config, "workerinput", {}).get("testrunuid")
    if run is None:
        return None
    folder = Path(tempfile.gettempdir())
    return folder / f"crimemap-tests-{run}.gate", folder / f"crimemap-tests-{run}.lock"


@contextlib.contextmanager
def _turn(config: pytest.Config, *, exclusive: bool) -> Iterator[None]:
    """A readers-writer lock over the workers of one run (``flock`` on two files), the writer first in line.

    Every test holds the lock shared; an ``alone`` test holds it exclusively, and holds the gate while it waits,
    so that the other workers queue behind it rather than keep it waiting. Without xdist it is a no-op.
    """
    files = _lock_files(config)
    if files is None:
        yield
        return
    with open(files[0], "a") as gate, open(files[1], "a") as lock:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            if not exclusive:
                fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A worker that has run its last test removes the lock files (the last one to finish removes them for good)."""
    for path in _lock_files(session.config) or ():
        path.unlink(missing_ok=True)


STORE_KINDS = ["sqlite", "postgis"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _unavailable(reason: str) -> None:
    """Skip, or fail under CI=true, where scripts/setup --test must have installed everything."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI runs scripts/setup --test, which installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium from Debian, driven by Playwright (skips without it, except under CI=true)."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is missing: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _open_empty(kind: str, tmp_path: Path) -> Store:
    """An empty store; ``postgis`` skips (fails under CI=true) without a server (see pg_server)."""
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "store.sqlite")
    if kind == "postgis":
        from crimemap.store.postgis import PostGISStore

        return PostGISStore(fresh_store_url())
    raise ValueError(kind)


@pytest.fixture(params=STORE_KINDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A factory of empty stores of one kind (the suite runs once per kind)."""
    opened: list[Store] = []

    def factory() -> Store:
        store = _open_empty(request.param, tmp_path / f"s{len(opened)}")
        opened.append(store)
        return store

    yield factory
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store: Callable[[], Store]) -> Store:
    return make_store()


@pytest.fixture(scope="session", params=STORE_KINDS)
def policeuk_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Every real police.uk file in shared/data loaded once; tests must only read it."""
    st = _open_empty(request.param, tmp_path_factory.mktemp("policeuk"))
    load_policeuk(st, [POLICEUK])
    yield st
    st.close()


class LiveServer:
    """A uvicorn server in a thread on 127.0.0.1 and an httpx client for it."""

    def __init__(self, store: Store, settings: Settings | None = None) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(store, settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """Start servers over stores: ``live_server(store, settings=None)``; all stop after the test."""
    servers: list[LiveServer] = []

    def start(store: Store, settings: Settings | None = None) -> LiveServer:
        servers.append(LiveServer(store, settings))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="session")
def policeuk_server(policeuk_store: Store) -> Iterator[LiveServer]:
    """One server over the real police.uk data for the whole session (read-only tests)."""
    server = LiveServer(policeuk_store)
    yield server
    server.stop()
