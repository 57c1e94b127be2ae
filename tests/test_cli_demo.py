"""``crimemap demo`` cleans up after itself and never overwrites a store it was not told to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from serve_process import demo


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _shm_dirs(pid: int) -> set[str]:
    """The shared-memory folders the server of process ``pid`` made (other servers may be running too)."""
    shm = Path("/dev/shm")
    return {p.name for p in shm.glob(f"crimemap-serve-{pid}-*")} if shm.is_dir() else set()


def test_the_demo_leaves_nothing_behind_when_stopped(tmp_path: Path) -> None:
    with demo(tmp_path, "--crimes-per-month", "3000", "--months", "1") as (url, proc):
        assert _leftovers(tmp_path) != []  # its store, while it serves
        assert not any("archive" in name for name in _leftovers(tmp_path))  # the archive went once loaded
        assert _shm_dirs(proc.pid) or not Path("/dev/shm").is_dir()  # the rate limit's shared state
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        assert proc.wait(30) == 0
    assert _leftovers(tmp_path) == []
    assert _shm_dirs(proc.pid) == set()


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
