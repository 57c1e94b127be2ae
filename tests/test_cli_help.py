"""``crimemap --help`` as a user reads it, in a pipe: values named plainly, no Python types, full width."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["load", "generate", "upgrade", "info", "stats", "serve", "demo", "export", "harvest", "harvest policeuk"]


def _crimemap(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH", "LINES")}
    done = subprocess.run(
        [sys.executable, "-m", "crimemap", *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def _option_line(help_text: str, option: str) -> str:
    return next(line for line in help_text.splitlines() if re.search(rf"(^|\s){re.escape(option)}\s", line))


@pytest.mark.parametrize("command", [[], *(c.split() for c in COMMANDS)], ids=["crimemap", *COMMANDS])
def test_help_shows_no_python_types(command: list[str]) -> None:
    text = _crimemap(*command, "--help")
    python_types = r"<(?:bool|str|int|float|path|Path|datetime|list\[\w+\])>|\{[a-z_]+\}(?:\.\.\.)?(?!/)"
    assert re.findall(python_types, text.replace("tables/{id}", "").replace("{z}/{x}/{y}", "")) == []


def test_flags_take_no_value_in_the_help() -> None:
    demo = _crimemap("demo", "--help")
    assert _option_line(demo, "--force").split("--force")[1].split()[0] == "Replace"
    load = _crimemap("load", "--help")
    assert _option_line(load, "-q").split(" -q")[1].split()[0] == "Print"
    assert _option_line(load, "--store").split("--store")[1].split()[0] == "TEXT"
    assert "Usage: python -m crimemap load [OPTIONS] PATH..." in load


def test_help_in_a_pipe_is_not_squeezed_to_80_columns() -> None:
    lines = _crimemap("--help").splitlines()
    assert 80 < max(len(line) for line in lines) <= 120
    serve = next(line for line in lines if line.strip("│ ").startswith("serve "))
    assert "OGC API - Features" in serve


def test_the_summaries_name_all_they_do() -> None:
    assert "OGC API - Features" in _crimemap("serve", "--help")
    load = " ".join(_crimemap("load", "--help").split())
    assert "stop-and-search" in load and "force boundaries" in load


def test_version_prints_crimemaps_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert _crimemap("--version") == f"crimemap {version}\n"
