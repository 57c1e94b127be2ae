"""Every setting a user can reach is documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from crimemap.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_environment_variable_read_by_crimemap_is_in_the_readme() -> None:
    used = set()
    for path in (ROOT / "src" / "crimemap").rglob("*.py"):
        used |= set(re.findall(r"\bCRIMEMAP_[A-Z_]+\b", path.read_text()))
    assert used, "expected some CRIMEMAP_ variables"
    missing = sorted(v for v in used if v not in README)
    assert missing == []


def test_every_command_line_option_is_in_the_readme() -> None:
    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    missing = []
    for name, command in commands.items():
        subcommands = getattr(command, "commands", None) or {name: command}
        for sub in subcommands.values():
            for param in sub.params:
                for opt in param.opts:
                    if opt.startswith("--") and opt not in ("--help",) and opt not in README:
                        missing.append(f"{name} {opt}")
    assert missing == []
