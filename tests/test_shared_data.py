"""Without ``../shared/data`` the tests that need it skip and say why; under CI=true they fail instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDS_DATA = [
    "tests/test_server_smoke.py",
    "tests/test_tables_load.py::test_nyc_tables_load_under_their_real_ids_with_the_real_schema",
]


def _pytest(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["CRIMEMAP_SHARED_DATA"] = str(tmp_path / "no-data-here")
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-k", "sqlite", *NEEDS_DATA],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_missing_shared_data_skips_with_the_reason(tmp_path: Path) -> None:
    done = _pytest(tmp_path, ci=False)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "SKIPPED [2]" in done.stdout
    assert "the real data is not at" in done.stdout and "no-data-here" in done.stdout


def test_missing_shared_data_fails_under_ci(tmp_path: Path) -> None:
    done = _pytest(tmp_path, ci=True)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "CI must test on the real data" in done.stdout
