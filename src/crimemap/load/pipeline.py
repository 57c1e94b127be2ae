"""How a police.uk load flows: files read in a second process, a month at a time, into one store transaction.

A load is a list of :class:`Group`\\ s, each what one store call replaces: an
outcomes file, or a month of street files (every force of that month together,
so that a store keeping crimes in ``(month, cell, id)`` order can write them
already in that order: full pages, no splits). Outcomes files come first, so
that each crime is dated by its newest outcome of the same load while it is read.

The reading (:func:`group_batches`) runs in a second process while this one
writes; it is a pure function of the group and of what earlier groups noted
(:class:`ReadState`), so both processes see the same plan. Files are read
column by column (:mod:`crimemap.load.columns`), and by the careful reader
(:mod:`crimemap.load.policeuk_reader`) when the fast one declines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crimemap.load.columns import MapPoints, OutcomeDates, ReadCarefully, read_outcome_columns, read_street_columns
from crimemap.load.policeuk_files import crime_id
from crimemap.load.policeuk_reader import read_outcomes, read_street
from crimemap.load.stop_columns import read_stop_columns
from crimemap.load.stops import read_stops
from crimemap.months import format_month, parse_month
from crimemap.store.batches import NO_OUTCOME, CrimeBatch, OutcomeBatch, check_of, key_of, pid_bytes

Prepare = Callable[[str, Any], Any]

CHUNK_ROWS = 50_000
"""Crimes per prepared chunk handed from the reading process to the writing one."""


@dataclass(frozen=True)
class Group:
    """What one store call replaces: ``kind`` of ``month`` for each of ``sources``' forces."""

    kind: str
    month: str
    sources: tuple[Any, ...]

    @property
    def forces(self) -> tuple[str, ...]:
        return tuple(s.force for s in self.sources)


def plan(sources: Sequence[Any], by_month: bool) -> list[Group]:
    """The groups of a load: outcomes files one by one, then street files by month (or one by one).

    When the same month, force and kind comes twice, the later file wins, as a
    later archive supersedes an earlier one.
    """
    latest: dict[tuple[str, str, str], Any] = {}
    for s in sources:
        latest[(s.kind, s.month, s.force)] = s
    chosen = [s for s in sources if latest[(s.kind, s.month, s.force)] is s]
    groups = [Group("outcomes", s.month, (s,)) for s in chosen if s.kind == "outcomes"]
    streets = [s for s in chosen if s.kind == "street"]
    # Stop-and-search files last, one by one: their map points are looked up among the load's.
    stops = [Group("stops", s.month, (s,)) for s in chosen if s.kind == "stop-and-search"]
    if not by_month:
        return groups + [Group("street", s.month, (s,)) for s in streets] + stops
    months: dict[str, list[Any]] = {}
    for s in streets:
        months.setdefault(s.month, []).append(s)
    return groups + [Group("street", m, tuple(ss)) for m, ss in months.items()] + stops


@dataclass
class ReadState:
    """What reading earlier groups of the same load left for later ones."""

    dates: OutcomeDates = field(default_factory=OutcomeDates.empty)
    points: MapPoints = field(default_factory=MapPoints)


def group_batches(group: Group, prepare: Prepare, state: ReadState) -> Iterator[Any]:
    """Read a group's files and yield its prepared chunks, in the store's order."""
    if group.kind == "stops":
        yield from _stops(group.sources[0], prepare)
        return
    if group.kind == "outcomes":
        (source,) = group.sources
        batch, checks = _outcomes(source, state)
        state.dates.add(batch, checks)
        yield prepare("outcomes", batch)
        return
    batches = [_street(source, state) for source in group.sources]
    month = CrimeBatch.concat(_distinct_placeholders(batches))
    order = np.lexsort((month.id, month.cell))
    for start in range(0, len(order), CHUNK_ROWS):
        yield prepare("street", month.take(order[start : start + CHUNK_ROWS]))


def _stops(source: Any, prepare: Prepare) -> Iterator[Any]:
    """A stop-and-search file's prepared chunks: read column by column (:mod:`crimemap.load.stop_columns`),
    or by the careful reader (:mod:`crimemap.load.stops`) when the fast one declines."""
    try:
        with source.open() as stream:
            columns = read_stop_columns(stream, source)
    except ReadCarefully:
        yield from _stops_carefully(source, prepare)
        return
    for start in range(0, len(columns), CHUNK_ROWS):
        yield prepare("stops", columns.slice(start, start + CHUNK_ROWS))


def _stops_carefully(source: Any, prepare: Prepare) -> Iterator[Any]:
    batch: list[Any] = []
    for stop in read_stops(source):
        batch.append(stop)
        if len(batch) >= CHUNK_ROWS:
            yield prepare("stops", batch)
            batch = []
    if batch:
        yield prepare("stops", batch)


def _outcomes(source: Any, state: ReadState) -> tuple[OutcomeBatch, np.ndarray]:
    try:
        with source.open() as stream:
            return read_outcome_columns(stream, source.month, source.force, state.points)
    except ReadCarefully:
        batch = OutcomeBatch.from_records(list(read_outcomes(source)))
        return batch, check_of(pid_bytes(batch.pid)[1])


def _street(source: Any, state: ReadState) -> CrimeBatch:
    try:
        with source.open() as stream:
            return read_street_columns(
                stream, source.month, source.force, crime_id(source.month, source.force, 0), state.dates, state.points
            )
    except ReadCarefully:
        pass
    records = list(read_street(source))
    if records:
        has, raw = pid_bytes([c.persistent_id for c in records])
        newest = state.dates.newest(key_of(has, raw), check_of(raw))
        records = [
            c._replace(outcome_month=format_month(int(m))) if has[i] and m >= 0 else c
            for i, (c, m) in enumerate(zip(records, newest.tolist(), strict=True))
        ]
    return CrimeBatch.from_records(records) if records else _empty(source)


def _empty(source: Any) -> CrimeBatch:
    batch = CrimeBatch.from_records([])
    batch.month = parse_month(source.month)
    return batch


def _distinct_placeholders(batches: list[CrimeBatch]) -> list[CrimeBatch]:
    """Renumber unknown outcomes' placeholders so that batches of one month can be joined."""
    taken: dict[str, int] = {}
    out = []
    for b in batches:
        if not b.unknown_outcomes:
            out.append(b)
            continue
        remap = {}
        for code, name in b.unknown_outcomes.items():
            remap[code] = taken.setdefault(name, NO_OUTCOME - 1 - len(taken))
        outcome = b.outcome.copy()
        for old, new in remap.items():
            outcome[b.outcome == old] = new
        b.outcome = outcome
        b.unknown_outcomes = {remap[c]: n for c, n in b.unknown_outcomes.items()}
        out.append(b)
    return out
