"""Load police.uk bulk archives: street, outcomes and stop-and-search CSV files, folders of them, and the zips.

The files and their ids are described in :mod:`crimemap.load.policeuk_files`;
street and outcomes files are read by :mod:`crimemap.load.pipeline` (stop-and-search
ones by :mod:`crimemap.load.stops`). Everything one call loads is written in one
store transaction: a wrong header or a bad row anywhere raises
:class:`~crimemap.load.errors.LoadError` naming the file and line, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from crimemap import vocab
from crimemap.load import pipeline
from crimemap.load.errors import LoadError
from crimemap.load.parsing_process import parse_in_worker
from crimemap.load.policeuk_files import Source, find_sources
from crimemap.months import parse_month
from crimemap.store.base import Store


@dataclass
class LoadSummary:
    """What one load stored, for the command line's report."""

    crimes: int = 0
    outcomes: int = 0
    stops: int = 0
    files: int = 0
    months: set[str] = field(default_factory=set)
    forces: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)


BYTES_PER_ROW = 200
"""About how many bytes a police.uk CSV row takes, to estimate a load's rows from its files."""

PARALLEL_MIN_BYTES = 16 << 20
"""Below this much input a second process costs more than it saves."""


def _in_load_order(sources: list[Source]) -> list[Source]:
    """Outcomes files first, so that street files can be dated as they are parsed; stop-and-search
    files last, so that the map points of the load's street files are stored before stops look them up."""
    return [s for kind in ("outcomes", "street", "stop-and-search") for s in sources if s.kind == kind]


def load_policeuk(
    store: Store,
    paths: Iterable[Path],
    *,
    on_file: Callable[[Source, int], None] | None = None,
    on_message: Callable[[str], None] | None = None,
    parallel: bool | None = None,
) -> LoadSummary:
    """Load every police.uk file under ``paths`` into ``store``, all or nothing.

    Files are parsed in a second process while this one writes (``parallel``;
    by default only for inputs over :data:`PARALLEL_MIN_BYTES`).
    ``on_file(source, rows)`` is called after each file (for a progress bar);
    ``on_message`` receives notes about the load.
    """
    paths = list(paths)
    sources = find_sources(paths)
    summary = LoadSummary()
    for s in sources:
        if s.force not in vocab.FORCE_BY_ID:
            raise LoadError(f"{s.label}: unknown force {s.force!r} in the file name")
        try:
            parse_month(s.month)
        except ValueError:
            raise LoadError(f"{s.label}: bad month {s.month!r} in the file name") from None
    if not sources:
        raise LoadError("no police.uk CSV files found in " + ", ".join(str(p) for p in paths))
    wanted = _in_load_order(sources)
    if parallel is None:
        parallel = sum(s.size for s in wanted) >= PARALLEL_MIN_BYTES
    expected = sum(s.size for s in wanted) // BYTES_PER_ROW
    writer_type = store.writer_type
    prepare = writer_type.prepare
    groups = pipeline.plan(wanted, by_month=writer_type.groups_months)
    with ExitStack() as stack:
        if parallel:  # started first: its start runs beside the writer's
            parsed = stack.enter_context(parse_in_worker(groups, prepare))
        else:
            state = pipeline.ReadState()
            parsed = ((g, pipeline.group_batches(g, prepare, state)) for g in groups)
        writer = stack.enter_context(store.writer(expected))
        writer.expect(expected)
        for group, batches in parsed:
            stored = writer.replace_group(group.kind, group.month, group.forces, batches)
            for source in group.sources:
                rows = stored.get(source.force, 0)
                if source.kind == "street":
                    summary.crimes += rows
                elif source.kind == "stop-and-search":
                    summary.stops += rows
                else:
                    summary.outcomes += rows
                summary.files += 1
                summary.months.add(source.month)
                summary.forces.add(source.force)
                if on_file:
                    on_file(source, rows)
    return summary
