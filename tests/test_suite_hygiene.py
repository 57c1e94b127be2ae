"""The test suite cleans up after itself: a passing run leaves no temporary folder, a failing one its failures'."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TESTS = """
def test_passes(tmp_path):
    (tmp_path / "store.sqlite").write_bytes(b"x" * 1000)

def test_fails(tmp_path):
    (tmp_path / "evidence.txt").write_text("what went wrong")
    assert {fail}
"""


def _run_pytest(folder: Path, fail: bool) -> list[str]:
    """Run a two-test session with the project's pytest settings; the files left in its temporary folder."""
    test_file = folder / "test_sample.py"
    test_file.write_text(TESTS.format(fail="False" if fail else "True"))
    temp = folder / "temp"
    temp.mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "-p", "no:cacheprovider", str(test_file)],
        env={**os.environ, "TMPDIR": str(temp), "PYTEST_DEBUG_TEMPROOT": str(temp)},
        cwd=folder,
        capture_output=True,
        check=False,
    )
    return sorted(p.name for p in temp.rglob("*") if p.is_file())


def test_a_passing_run_leaves_no_temporary_files(tmp_path: Path) -> None:
    assert _run_pytest(tmp_path, fail=False) == []


def test_a_failing_run_keeps_the_failed_tests_files_only(tmp_path: Path) -> None:
    assert _run_pytest(tmp_path, fail=True) == ["evidence.txt"]


def test_only_the_last_failing_run_is_kept(tmp_path: Path) -> None:
    _run_pytest(tmp_path, fail=True)
    _run_pytest(tmp_path, fail=True)
    runs = [p.name for p in (tmp_path / "temp").glob("pytest-of-*/pytest-[0-9]*")]
    assert len(runs) == 1
