"""``scripts/test``, as CI runs it, says what it is doing at every step and how long the step took."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.alone  # scripts/setup reinstalls crimemap into the .venv and node_modules (npm ci)


def test_scripts_test_announces_and_times_every_step() -> None:
    done = subprocess.run(
        ["./scripts/test", "-q", "-p", "no:cacheprovider", "tests/test_docs.py"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stderr
    assert re.findall(r"^== (\w+): \S", log, re.MULTILINE) == ["setup", "ruff", "mypy", "pytest"]
    assert len(re.findall(r"^   \(done in \d+ s\)$", log, re.MULTILINE)) == 4
    for said in ("setup: pip install -e '.[test]' into ", "setup: npm ci"):
        assert said in log, log
    assert "passed" in done.stdout


def test_scripts_setup_installs_what_geopackage_and_flatgeobuf_downloads_need(tmp_path: Path) -> None:
    # A user's fresh environment, as the quickstart makes one (PYTHON= skips only the making of .venv).
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    setup = subprocess.run(
        ["./scripts/setup"], cwd=ROOT, env={**env, "PYTHON": python}, capture_output=True, text=True, timeout=1200
    )
    assert setup.returncode == 0, setup.stderr[-3000:]
    crimemap = [python, "-m", "crimemap"]
    store = str(tmp_path / "s.sqlite")
    for args in (
        ["generate", str(tmp_path / "archive"), "--months", "1", "--crimes-per-month", "200"],
        ["load", str(tmp_path / "archive"), "--store", store],
    ):
        subprocess.run([*crimemap, *args], env=env, check=True, capture_output=True, timeout=300)
    for fmt in ("gpkg", "fgb"):
        out = tmp_path / f"crimes.{fmt}"
        done = subprocess.run(
            [*crimemap, "export", "policeuk-crimes", "--store", store, "-o", str(out)],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert out.stat().st_size > 0
