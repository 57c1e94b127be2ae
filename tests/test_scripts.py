"""``scripts/test``, as CI runs it, says what it is doing at every step and how long the step took."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
