"""The parallel load's second process: it finds zips by any name, never outlives a killed load, and its death
is a clear error, not a load that waits forever."""

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
from crimemap.load.errors import LoadError
from crimemap.load.generate.archive import generate
from crimemap.load.policeuk import load_policeuk
from crimemap.load.policeuk_files import Source, find_sources
from crimemap.query import CrimeQuery, StopQuery
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore
from stops_truth import STOPS


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


def _spawned(parent: int) -> list[int]:
    """The children of ``parent`` that multiprocessing spawned (not its resource tracker)."""
    found = []
    for pid in _children(parent):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--multiprocessing-fork" in command and not any(b"resource_tracker" in part for part in command):
            found.append(pid)
    return found


def _holds_open(pid: int, path: Path) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def _parsing_process(parent: int) -> int:
    """The pid of the load's parsing process: the child of ``parent`` that multiprocessing spawned to parse."""
    spawned = _spawned(parent)
    if len(spawned) != 1:
        raise AssertionError(f"not one spawned process among the children of {parent}: {spawned}")
    return spawned[0]


def _load_processes(parent: int, store: Path) -> tuple[int, int]:
    """(parsing, writing) processes of a large load into the embedded store at ``store``: the writing one
    (the ADBC driver's) is the spawned child that holds the store file open."""
    spawned = _spawned(parent)
    writing = [pid for pid in spawned if _holds_open(pid, store)]
    if len(spawned) != 2 or len(writing) != 1:
        raise AssertionError(f"no parsing and writing processes among the children of {parent} yet: {spawned}")
    return next(pid for pid in spawned if pid != writing[0]), writing[0]


def _answers(store: Store) -> list[object]:
    """What the store answers about its crimes and outcomes: months, every crime, every outcome."""
    months = store.months()
    return [
        months,
        [_crime_ids(store, m.month) for m in months],
        [sorted(map(repr, store.outcomes(CrimeQuery(month=m.month)))) for m in months],
    ]


def test_a_parsing_process_killed_mid_load_is_a_load_error_within_bounded_time_and_stores_nothing(
    store: Store,
) -> None:
    load_policeuk(store, [POLICEUK / "2016-01"])
    before = _answers(store)
    killed_at: list[float] = []

    def kill_the_parser(source: Source, rows: int) -> None:
        # After the first group is stored: 36 groups, so the parser, at most a few batches ahead, is not done.
        if not killed_at:
            os.kill(_parsing_process(os.getpid()), signal.SIGKILL)
            killed_at.append(time.monotonic())

    with pytest.raises(LoadError, match=r"the parsing process died \(killed by signal 9, SIGKILL\)"):
        load_policeuk(store, sorted(POLICEUK.glob("*/*-city-of-london-*.csv")), parallel=True, on_file=kill_the_parser)
    assert killed_at and time.monotonic() - killed_at[0] < 30
    assert _answers(store) == before


def test_a_script_without_a_main_guard_fails_its_parallel_load_instead_of_hanging(tmp_path: Path) -> None:
    # spawn re-runs the script in the child, whose own load cannot start a process while bootstrapping: it exits 1.
    # (Each process opens its own store file, so that the child does not first wait for the parent's write lock.)
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import os\n"
        "from pathlib import Path\n"
        "from crimemap.load.policeuk import load_policeuk\n"
        "from crimemap.store.sqlite import SQLiteStore\n"
        f"store = SQLiteStore(Path({str(tmp_path)!r}) / f's{{os.getpid()}}.sqlite')\n"
        f"load_policeuk(store, [Path({str(POLICEUK)!r})], parallel=True)\n"
    )
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 1
    assert "LoadError: the parsing process died (exit code 1)" in ran.stderr


@pytest.mark.parametrize(
    ("killed", "said"),
    [("parsing", "error: the parsing process died (killed by signal 9, SIGKILL)"),
     ("writing", "error: the store's writing process ended")],
)  # fmt: skip
def test_the_command_line_reports_a_dead_load_process_and_exits_non_zero(
    tmp_path: Path, killed: str, said: str
) -> None:
    """A large load has two processes beside the command's: the parser, and the ADBC driver writing the store."""
    archive = tmp_path / "archive"
    generate(archive, months=["2024-01", "2024-02"], crimes_per_month=60_000, seed=3)  # over 16 MiB: parallel
    path = tmp_path / "s.sqlite"
    returncode, stderr = _load_killing_one_process(path, archive, killed)
    assert returncode == 1, stderr
    assert said in stderr and "Traceback" not in stderr
    assert "nothing was loaded" in stderr
    reopened = SQLiteStore(path)
    assert reopened.months() == []
    reopened.close()


@pytest.mark.parametrize("killed", ["parsing", "writing"])
def test_a_large_stop_and_search_load_killed_in_either_process_leaves_the_store_as_it_was(
    tmp_path: Path, killed: str
) -> None:
    """Stop-and-search files alone make a large load too: parsed in one process, written through the ADBC
    driver in another (:data:`crimemap.store.sqlite.DRIVER_MIN_ROWS` counts their rows)."""
    archive = tmp_path / "archive"
    generate(archive, months=["2024-01", "2024-02"], crimes_per_month=1_000, seed=3, stops_per_month=55_000)
    for f in archive.rglob("*.csv"):
        if not f.name.endswith("-stop-and-search.csv"):
            f.unlink()  # over 16 MiB and 100,000 rows of stops alone: parallel, and through the driver
    path = tmp_path / "s.sqlite"
    store = SQLiteStore(path)
    load_policeuk(store, sorted((STOPS / "2016-01").iterdir()))
    before = [store.stop_months(), [sorted(map(repr, store.stops(StopQuery(month="2016-01"))))]]
    store.close()
    returncode, stderr = _load_killing_one_process(path, archive, killed)
    assert returncode == 1, stderr
    assert "nothing was loaded" in stderr and "Traceback" not in stderr
    reopened = SQLiteStore(path)
    assert [reopened.stop_months(), [sorted(map(repr, reopened.stops(StopQuery(month="2016-01"))))]] == before
    assert before[0] != []
    reopened.close()


def _load_killing_one_process(path: Path, archive: Path, killed: str) -> tuple[int, str]:
    """Run ``crimemap load`` of ``archive`` into ``path`` and SIGKILL its ``killed`` ("parsing" or "writing")
    process once both are seen; the command's exit code and standard error."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "crimemap", "load", "--quiet", "--store", str(path), str(archive)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            parsing, writing = _load_processes(proc.pid, path.resolve())
            break
        except AssertionError:
            assert proc.poll() is None and time.monotonic() < deadline, "the load ended before its processes were seen"
            time.sleep(0.05)
    os.kill(parsing if killed == "parsing" else writing, signal.SIGKILL)
    try:
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return proc.returncode, stderr
