"""``crimemap demo`` cleans up after itself and never overwrites a store it was not told to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import NYC, needs_shared_data
from crimemap.cli import NYC_TITLES, _load_nyc_tables
from crimemap.store.sqlite import SQLiteStore
from serve_process import demo, free_port, hangup_as_by_default

pytestmark = pytest.mark.heavy  # a crimemap process started and stopped in each test: scheduled first under xdist


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _shm_dirs(pid: int) -> set[str]:
    """The shared-memory folders the server of process ``pid`` made (other servers may be running too)."""
    shm = Path("/dev/shm")
    return {p.name for p in shm.glob(f"crimemap-serve-{pid}-*")} if shm.is_dir() else set()


# How each way of stopping ends the process: Ctrl-C as uvicorn ends it (status 0); SIGTERM (systemd, Docker,
# kill) by the signal itself, once the clean-up has run; SIGHUP (its terminal closed) as SIGTERM does.
STOPPING = [
    pytest.param(signal.SIGINT, 0, id="SIGINT"),
    pytest.param(signal.SIGTERM, -signal.SIGTERM, id="SIGTERM"),
    pytest.param(signal.SIGHUP, -signal.SIGTERM, id="SIGHUP"),
]


@pytest.mark.parametrize(("signum", "status"), STOPPING)
def test_the_demo_leaves_nothing_behind_when_stopped(tmp_path: Path, signum: int, status: int) -> None:
    with demo(tmp_path, "--crimes-per-month", "3000", "--months", "1") as (url, proc):
        assert _leftovers(tmp_path) != []  # its store, while it serves
        assert not any("archive" in name for name in _leftovers(tmp_path))  # the archive went once loaded
        assert _shm_dirs(proc.pid) or not Path("/dev/shm").is_dir()  # the rate limit's shared state
        os.killpg(proc.pid, signum)
        assert proc.wait(30) == status
    assert _leftovers(tmp_path) == []
    assert _shm_dirs(proc.pid) == set()


@pytest.mark.parametrize(("signum", "status"), STOPPING)
def test_serve_removes_its_shared_folder_when_stopped(tmp_path: Path, signum: int, status: int) -> None:
    _serve_and_stop(tmp_path, signum, status, "1")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_with_workers_removes_its_shared_folder_when_stopped(tmp_path: Path, signum: int) -> None:
    # uvicorn's supervisor of several workers stops them all and returns (status 0); SIGHUP restarts the workers.
    _serve_and_stop(tmp_path, signum, 0, "2")


def _serve_and_stop(tmp_path: Path, signum: int, status: int, workers: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "crimemap", "serve", "--store", str(tmp_path / "s.sqlite"), "--port", str(port),
         "--workers", workers],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=hangup_as_by_default,
    )  # fmt: skip
    with proc:
        try:
            _wait_until_it_answers(url, proc)
            assert _shm_dirs(proc.pid) or not Path("/dev/shm").is_dir()
            os.killpg(proc.pid, signum)
            assert proc.wait(30) == status
        finally:
            if proc.poll() is None:  # it did not stop: fail, never hang the suite
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert _shm_dirs(proc.pid) == set()


def _wait_until_it_answers(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"crimemap serve did not start: {proc.stderr.read() if proc.stderr else ''}")


def test_the_demo_refuses_to_replace_an_existing_store(tmp_path: Path) -> None:
    store = tmp_path / "precious.sqlite"
    store.write_bytes(b"not yours to delete")
    refused = subprocess.run(
        [sys.executable, "-m", "crimemap", "demo", "--store", str(store)],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "exists" in refused.stderr and "--force" in refused.stderr
    assert store.read_bytes() == b"not yours to delete"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with demo(scratch, "--store", str(store), "--force", "--crimes-per-month", "2000", "--months", "1") as (url, _):
        assert store.read_bytes().startswith(b"SQLite format 3")
    assert store.exists()  # a store the user named is kept after the demo


def test_the_demo_titles_the_nyc_tables_rather_than_naming_them_by_their_ids(tmp_path: Path) -> None:
    needs_shared_data()
    store = tmp_path / "demo.sqlite"
    _load_nyc_tables(str(store), NYC / "2015-05-08")
    with SQLiteStore(store) as st:
        titles = {t.id: t.name for t in st.tables() if t.id in NYC_TITLES}
    assert titles == NYC_TITLES and all(not title[0].isdigit() for title in titles.values())


def test_load_takes_a_tables_title(tmp_path: Path) -> None:
    table = tmp_path / "places.geojson"
    table.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"n": 1},'
                     ' "geometry": {"type": "Point", "coordinates": [-0.1, 51.5]}}]}')  # fmt: skip
    store = str(tmp_path / "s.sqlite")
    crimemap = [sys.executable, "-m", "crimemap"]
    subprocess.run([*crimemap, "load", str(table), "--title", "Places we like", "--store", store], check=True)
    info = subprocess.run([*crimemap, "info", "--store", store], check=True, capture_output=True, text=True).stdout
    assert "table places: 1 features (Places we like)" in info
