"""What every command prints with: the two consoles, errors, and the progress bar.

Long work shows a progress bar on a terminal and stays quiet in scripts,
pipes and CI; errors go to standard error as ``error: ...``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="CRIMEMAP_STORE",
        help="A SQLite file path, or a postgresql:// URL for PostGIS. Default: ~/.local/share/crimemap/crimemap.sqlite",
        show_default=False,
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` and return the exit to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def progress_bar(total: int | None, description: str, quiet: bool = False) -> Iterator[Any]:
    """A rich progress bar on a terminal; a no-op in scripts, pipes and CI. Yields ``advance(n, note)``."""
    enabled = not quiet and err.is_terminal
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=err,
        disable=not enabled,
        transient=False,
    )
    with bar:
        task = bar.add_task(description, total=total, note="")

        def advance(n: int = 1, note: str = "") -> None:
            bar.update(task, advance=n, note=note)

        yield advance
