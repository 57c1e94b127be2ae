"""Counts grouped by police neighbourhood: ``group=neighbourhood`` on ``/stats/crimes``, ``/stats/stops``
and ``crimemap stats``.

A neighbourhood's count is the count of its area, exactly as ``neighbourhood=force/id``
answers it: the store's own area count (kept cell counts for the cells wholly
inside, the exact test on the crimes of the cells its edge crosses, see
:mod:`crimemap.store.stats_plan`) over the stored boundary. Grouped by
neighbourhood, that count is made for each stored neighbourhood in turn, once
per request (answers are cached per store generation by the API), so the rows
of ``group=neighbourhood`` always agree with ``neighbourhood=force/id`` one by
one. Neighbourhoods whose box holds no located crime (or stop) are skipped
after one cheap read of the occupied cells. It costs about a millisecond a
neighbourhood (seconds for the 4,600 of England and Wales, see
``benchmarks/bench_neighbourhoods.py``), most of it the exact test of the
points near each boundary; a batched count over all boundaries at once would
be the next step if that matters.

A row carries the neighbourhood as ``force/id``. What lies in no neighbourhood
is left out (no null group); where stored areas overlap, what lies in both
counts in each. With an area (``bbox``, ``poly`` or ``neighbourhood``), the rows
are those of the neighbourhoods wholly inside it, so ``neighbourhood=force/id``
gives that neighbourhood's rows alone.

The query itself stays a plain :class:`~crimemap.stats_query.StatsQuery` (or
stop query) whose ``group`` names ``neighbourhood``: :func:`grouping` wraps a
parser so that it accepts the name, :func:`counting` wraps a store count so
that it answers it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson
import shapely

from crimemap import geo
from crimemap.geometry import areas
from crimemap.neighbourhoods import BOUNDARY
from crimemap.query import Polygon
from crimemap.stats_query import StatsError, StatsQuery
from crimemap.stats_stops_query import StopStatsQuery
from crimemap.store.base import Store
from crimemap.store.stats_neighbourhoods import fingerprint
from crimemap.store.stats_plan import LEVELS

NEIGHBOURHOOD = "neighbourhood"
"""The group name: a row's neighbourhood, ``force/id``."""

Q = TypeVar("Q", bound=StatsQuery | StopStatsQuery)
Rows = list[tuple[Any, ...]]


def grouping(parse: Callable[..., Q]) -> Callable[..., Q]:
    """``parse`` (``parse_stats`` or ``parse_stop_stats``) accepting ``neighbourhood`` in ``group``."""

    def parsed(*, group: str | None = None, **values: Any) -> Q:
        names = [name.strip() for name in (group or "").split(",") if name.strip()]
        if NEIGHBOURHOOD not in names:
            return parse(group=group, **values)
        at = names.index(NEIGHBOURHOOD)
        rest = names[:at] + names[at + 1 :]
        if NEIGHBOURHOOD in rest:
            raise StatsError("group", f"group names a field twice: {group!r}")
        query = parse(group=",".join(rest), **values)
        return replace(query, group=(*query.group[:at], NEIGHBOURHOOD, *query.group[at:]))

    return parsed


def counting(count: Callable[[Store, Q], Rows]) -> Callable[[Store, Q], Rows]:
    """``count`` (a store's ``stats`` or ``stop_stats``) answering ``group=neighbourhood`` too."""

    def counted(store: Store, query: Q) -> Rows:
        if NEIGHBOURHOOD not in query.group:
            return count(store, query)
        return by_neighbourhood(store, query, count)

    return counted


@dataclass(frozen=True)
class CountedArea:
    """One stored neighbourhood as the counts see it: ``force/id``, the boundary's ring and shape."""

    key: str
    area: Polygon
    shape: Any
    cells: tuple[int, int, int, int]
    """First and last row and column of the level-``LEVELS[0]`` cells its box touches."""


def by_neighbourhood(store: Store, query: Q, count: Callable[[Store, Q], Rows]) -> Rows:
    """The rows of ``query`` (its group naming ``neighbourhood``), one area count per neighbourhood."""
    at = query.group.index(NEIGHBOURHOOD)
    rest = query.group[:at] + query.group[at + 1 :]
    counted = CountedAreas.of(store)
    candidates = counted.areas
    if query.area is not None:
        within = areas.polygon_of(query.area.ring)
        candidates = [a for a in candidates if shapely.covers(within, a.shape)]
    if not candidates:
        return []
    if isinstance(query, StatsQuery):
        kept = store.neighbourhood_stats(replace(query, area=None), counted.fingerprint)
        if kept is not None:
            if query.area is None:
                return kept
            keys = {a.key for a in candidates}
            return [row for row in kept if row[at] in keys]
    level = LEVELS[0]
    occupied = {row[0] for row in count(store, replace(query, group=("cell",), level=level, area=None)) if row[-1]}
    found: Rows = []
    for nbhd in candidates:
        row0, col0, row1, col1 = nbhd.cells
        if not any((r, c) in occupied for r in range(row0, row1 + 1) for c in range(col0, col1 + 1)):
            continue
        for row in count(store, replace(query, group=rest, area=nbhd.area)):
            if row[-1]:
                found.append((*row[:at], nbhd.key, *row[at:-1], row[-1]))
    found.sort(key=lambda row: tuple((v is not None, v if v is not None else "") for v in row[:-1]))
    return found


def _crimes(store: Store, query: StatsQuery) -> Rows:
    return store.stats(query)


def _stops(store: Store, query: StopStatsQuery) -> Rows:
    return store.stop_stats(query)


count_crimes = counting(_crimes)
"""``Store.stats`` answering ``group=neighbourhood`` too."""
count_stops = counting(_stops)
"""``Store.stop_stats`` answering ``group=neighbourhood`` too."""


class CountedAreas:
    """The stored neighbourhoods' counted areas (as ``neighbourhood=force/id`` reads them), by ``force/id``.

    Read from the ``boundary`` documents once per store generation (:meth:`of`).
    """

    def __init__(self, boundaries: list[tuple[str, str, bytes]]) -> None:
        self.fingerprint = fingerprint(boundaries)
        """Of the boundaries read: whether the store's counts kept per neighbourhood are theirs."""
        self.areas: list[CountedArea] = []
        for force, nbhd, body in boundaries:
            points = orjson.loads(body)
            if len(points) < 3:
                continue
            ring = tuple((float(p["longitude"]), float(p["latitude"])) for p in points)
            shape = areas.polygon_of(ring)
            west, south, east, north = shape.bounds
            level = LEVELS[0]
            cells = (
                max(0, geo.grid_row(south)) >> level,
                max(0, geo.grid_col(west)) >> level,
                min(areas.MAX_ROW, geo.grid_row(north)) >> level,
                min(areas.MAX_COL, geo.grid_col(east)) >> level,
            )
            self.areas.append(CountedArea(f"{force}/{nbhd}", Polygon(ring), shape, cells))

    _made: weakref.WeakKeyDictionary[Store, tuple[str, CountedAreas]] = weakref.WeakKeyDictionary()
    _making = threading.Lock()

    @classmethod
    def of(cls, store: Store) -> CountedAreas:
        """The counted areas of the store's neighbourhoods as they are now (read again after each load)."""
        generation = store.generation()
        made = cls._made.get(store)
        if made is not None and made[0] == generation:
            return made[1]
        with cls._making:
            made = cls._made.get(store)
            if made is None or made[0] != generation:
                made = (generation, cls(store.documents(BOUNDARY)))
                cls._made[store] = made
            return made[1]
