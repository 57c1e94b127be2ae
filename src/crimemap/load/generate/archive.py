"""A whole synthetic archive: every month's street, outcomes and (if asked) stop-and-search files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from crimemap.load.generate.crimes import PendingOutcomes, draw_month, write_outcomes, write_street
from crimemap.load.generate.stops import write_stops
from crimemap.load.generate.world import Sink, build_world, year_month


@dataclass(frozen=True)
class GenerateSummary:
    """What :func:`generate` wrote: the files (CSVs, or zips) and row counts."""

    files: list[Path]
    crimes: int
    outcomes: int
    stops: int = 0


def generate(
    out: Path,
    *,
    months: Sequence[str],
    crimes_per_month: int,
    seed: int = 1,
    zipped: bool = False,
    progress: Callable[[int], None] | None = None,
    stops_per_month: int = 0,
) -> GenerateSummary:
    """Write a synthetic police.uk bulk archive for ``months`` into ``out``.

    Each month gets ``crimes_per_month`` street rows spread over the forces of
    :data:`TOWNS` (and BTP), and an outcomes file per force. A crime's outcome
    rows land in its own month or a later one of ``months`` (never outside
    them), so loaders meet the real archive's late outcomes; its street row's
    Last outcome category is its latest outcome. Months are generated oldest
    first whatever order they are given in; a month's crimes depend only on
    the seed and the month, so a month reads the same in any range.
    ``progress(n)`` is called after each street file with the crimes just
    written, so a progress bar's total is known up front: ``len(months) *
    crimes_per_month`` (outcome rows, whose number is not, are not counted).
    Same arguments, same bytes. ``stops_per_month`` adds stop-and-search files
    (:mod:`crimemap.load.generate.stops`), leaving the others as they are.
    """
    if crimes_per_month < 0 or stops_per_month < 0:
        raise ValueError("crimes_per_month and stops_per_month must not be negative")
    ordered = sorted(set(months), key=year_month)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    world = build_world()
    pending = [PendingOutcomes([], [], []) for _ in ordered]
    files: list[Path] = []
    crimes = outcomes = stops = 0
    for mi, month in enumerate(ordered):
        street = draw_month(world, seed, month, mi, len(ordered), crimes_per_month, pending)
        sink = Sink(out, month, zipped)
        try:
            crimes += write_street(sink, world, month, street, progress)
            outcomes += write_outcomes(sink, world, month, pending[mi], street[0])
            if stops_per_month > 0:
                stops += write_stops(sink, world, seed, month, stops_per_month)
        finally:
            sink.close()
        pending[mi] = PendingOutcomes([], [], [])
        files.extend(sink.files)
    return GenerateSummary(files=files, crimes=crimes, outcomes=outcomes, stops=stops)
