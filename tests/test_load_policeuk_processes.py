"""The parallel load's second process: it finds zips by any name, and never outlives a killed load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import POLICEUK
from crimemap.load.generate.archive import generate
from crimemap.load.policeuk import load_policeuk
from crimemap.load.policeuk_files import find_sources
from crimemap.query import CrimeQuery
from crimemap.store.base import Store


def _crime_ids(store: Store, month: str) -> list[int]:
    return sorted(c.id for located in (True, False) for c in store.crimes(CrimeQuery(month=month, located=located)))


def _open_files() -> set[str]:
    """What this process has open, as paths."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("name", ["2016-06.ZIP", "2016-06.Zip", "archive.zip.ZIP"])
def test_an_upper_case_zip_loads_in_the_parsing_process_like_its_folder(
    make_store: Callable[[], Store], tmp_path: Path, name: str
) -> None:
    archive = tmp_path / name
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((POLICEUK / "2016-06").iterdir()):
            z.write(f, f"2016-06/{f.name}")
    from_zip, from_folder = make_store(), make_store()
    summary = load_policeuk(from_zip, [archive], parallel=True)
    load_policeuk(from_folder, [POLICEUK / "2016-06"])
    assert summary.files == 2
    assert _crime_ids(from_zip, "2016-06") == _crime_ids(from_folder, "2016-06") != []
    assert str(archive) not in _open_files()


def test_reading_a_zip_leaves_it_closed(tmp_path: Path) -> None:
    archive = tmp_path / "2016-06.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((POLICEUK / "2016-06").iterdir()):
            z.write(f, f"2016-06/{f.name}")
    sources = find_sources([archive])
    assert len(sources) == 2 and str(archive) not in _open_files()
    with sources[0].open() as raw:
        assert raw.readline().startswith(b"Crime ID")
        assert str(archive) in _open_files()
    assert str(archive) not in _open_files()


def _children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _alive(int(entry)):
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie has exited: only its parent has not collected it yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_killed_load_leaves_neither_its_parser_nor_the_resource_tracker_behind(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    generate(archive, months=["2024-01", "2024-02"], crimes_per_month=60_000, seed=3)  # over 16 MiB: parallel
    proc = subprocess.Popen(
        [sys.executable, "-m", "crimemap", "load", "--quiet", "--store", str(tmp_path / "s.sqlite"), str(archive)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Wait for the parser and the resource tracker: two children of the load.
    deadline = time.monotonic() + 60
    while len(children := _children(proc.pid)) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "the load ended before it was killed"
        time.sleep(0.05)
    time.sleep(0.5)  # the parser is well into the files
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while (left := {pid for pid in children if _alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert left == set(), f"still running after the load was killed: {left}"
