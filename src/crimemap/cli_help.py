"""How ``crimemap --help`` reads: values named as a user types them, and as wide as a pipe allows.

Recent typer versions label every option with its Python type (``--force <bool>``,
``--api-key <list[str]>``, ``{paths}...``). The command classes below name values the way
command-line tools do (``--store TEXT``, ``--port INTEGER``, ``PATH...``), show nothing after a
flag, and give help printed into a pipe or a file 120 columns rather than rich's 80.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer import rich_utils
from typer.core import TyperArgument, TyperCommand, TyperGroup

PIPED_WIDTH = 120
"""Columns of help written to a pipe or a file (a terminal's own width is used on a terminal)."""

_PLAIN_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH", "Path": "PATH"}


def _plain_name(type_label: str) -> str:
    """``<list[str]>`` -> ``TEXT``, ``<int>`` -> ``INTEGER``, ``<a|b>`` -> ``a|b``."""
    label = type_label.strip("<>").removesuffix("...")
    if label.startswith("list[") and label.endswith("]"):
        label = label[len("list[") : -1]
    return _PLAIN_NAMES.get(label, label.upper() if label.isidentifier() else label)


class _NamedArgument(TyperArgument):
    """An argument shown by its metavar alone: ``PATH...``, not ``{paths}...`` and ``<list[Path]>``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.metavar or self.name or ""
        return name if self.required else f"[{name}]"


def _plain(params: Iterable[Any], ctx: Any) -> None:
    """Give each parameter the name its value is shown by, unless it has one already."""
    for param in params:
        if isinstance(param, TyperArgument):
            if hasattr(param, "_usage_display_name"):  # typer's own argument class, which these versions have
                if param.metavar is None:
                    param.metavar = (param.name or "").upper() + ("..." if param.nargs != 1 else "")
                param.__class__ = _NamedArgument
        elif param.metavar is None and hasattr(param, "display_type"):
            param.metavar = "" if getattr(param, "is_flag", False) else _plain_name(param.display_type(ctx))


@contextmanager
def _wide_when_piped() -> Iterator[None]:
    """Help for a pipe or a file is PIPED_WIDTH columns, unless COLUMNS or TERMINAL_WIDTH says otherwise."""
    narrow = rich_utils.MAX_WIDTH is None and "COLUMNS" not in os.environ and not sys.stdout.isatty()
    if narrow:
        rich_utils.MAX_WIDTH = PIPED_WIDTH
    try:
        yield
    finally:
        if narrow:
            rich_utils.MAX_WIDTH = None


class Command(TyperCommand):
    """A command whose help names values plainly (see the module's docstring)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain(self.get_params(ctx), ctx)
        with _wide_when_piped():
            super().format_help(ctx, formatter)


class Group(TyperGroup):
    """The ``crimemap`` group, whose help names values plainly (see the module's docstring)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain(self.get_params(ctx), ctx)
        with _wide_when_piped():
            super().format_help(ctx, formatter)


class App(typer.Typer):
    """A ``typer.Typer`` whose help, and its commands', names values plainly."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)
