"""Counts grouped by police neighbourhood: ``group=neighbourhood`` on ``/stats/crimes``, ``/stats/stops``
and ``crimemap stats``.

A neighbourhood's count is the count of its area, exactly as ``neighbourhood=force/id``
answers it: the crimes (or stops) whose point lies in the polygon of the stored
boundary or on its edge, the stores' exact area test. Two ways make it for all
neighbourhoods at once, so the rows of ``group=neighbourhood`` always agree with
``neighbourhood=force/id`` one by one:

- crimes grouped by neighbourhood and any of month, category and force are summed
  from the counts each store keeps per neighbourhood, made at load time
  (:mod:`crimemap.store.stats_neighbourhoods`): about 15 ms for the 4,600
  neighbourhoods of England and Wales and a month of 500,000 crimes (the sums read
  raw take 7 ms, ``group=force`` a tenth of a millisecond; ``benchmarks/bench_neighbourhoods.py``);
- anything else (stops; crimes by outcome, LSOA or cell; a store whose counts were
  kept for other boundaries, e.g. an older file opened read-only) is counted month
  by month: the month's located points counted by point and the other groups
  (:data:`~crimemap.store.stats_plan.POINT`), then each point placed in the areas
  holding it, in one vectorised pass (an STRtree of the areas' boxes, then the exact
  test). That costs about 3 s a month of 500,000 crimes, a quarter of a second a
  month of 50,000 stops (the former way, one area count per neighbourhood, took 3 to
  5 s for the crimes of ``group=neighbourhood`` alone).

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
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
import shapely

from crimemap import deadline
from crimemap.geometry import areas
from crimemap.neighbourhoods import BOUNDARY
from crimemap.query import Polygon
from crimemap.stats_query import StatsError, StatsQuery
from crimemap.stats_stops_query import StopStatsQuery
from crimemap.store.base import Store
from crimemap.store.stats_neighbourhoods import boundaries, fingerprint, located_in
from crimemap.store.stats_plan import POINT

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
    """One stored neighbourhood as the counts see it: ``force/id``, the boundary's ring and its own polygon."""

    key: str
    area: Polygon
    shape: Any


def by_neighbourhood(store: Store, query: Q, count: Callable[[Store, Q], Rows]) -> Rows:
    """The rows of ``query`` (its group naming ``neighbourhood``): from the store's counts kept per
    neighbourhood where they answer, else from the points counted month by month (see the module docstring)."""
    at = query.group.index(NEIGHBOURHOOD)
    counted = CountedAreas.of(store)
    kept = None
    if isinstance(query, StatsQuery) and counted.documents:
        kept = store.neighbourhood_stats(replace(query, area=None), counted.fingerprint)
        if kept is not None and query.area is None:
            return kept
    candidates = counted.areas
    if query.area is not None:
        within = areas.polygon_of(query.area.ring)
        candidates = [a for a in candidates if shapely.covers(within, a.shape)]
    if not candidates:
        return []
    if kept is not None:
        keys = {a.key for a in candidates}
        return [row for row in kept if row[at] in keys]
    return _by_point(store, query, count, counted, candidates)


def _by_point(
    store: Store, query: Q, count: Callable[[Store, Q], Rows], counted: CountedAreas, candidates: list[CountedArea]
) -> Rows:
    """Each month's located crimes (or stops) counted by point and the other groups, each point then placed
    in the neighbourhoods whose area holds it (one vectorised pass a month), and the counts added up."""
    at = query.group.index(NEIGHBOURHOOD)
    rest = query.group[:at] + query.group[at + 1 :]
    months = [row[0] for row in count(store, replace(query, group=("month",), area=None)) if row[-1]]
    shapes = [a.shape for a in candidates]
    tally: dict[tuple[Any, ...], int] = {}
    for month in months:
        deadline.check()  # a request's time budget, and its client still there, month by month
        rows = count(store, replace(query, group=(*POINT, *rest), months=(month, month), area=None))
        if not rows:
            continue
        lng = np.array([row[0] for row in rows], dtype=np.float64)
        lat = np.array([row[1] for row in rows], dtype=np.float64)
        with counted.testing:  # the areas' prepared polygons serve one thread at a time
            points, held = located_in(shapes, lng, lat)
        for p, a in zip(points.tolist(), held.tolist(), strict=True):
            row = rows[p]
            key = (*row[2 : 2 + at], candidates[a].key, *row[2 + at : -1])
            tally[key] = tally.get(key, 0) + row[-1]
    found = [(*key, n) for key, n in tally.items() if n]
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

    def __init__(self, documents: list[tuple[str, str, bytes]]) -> None:
        self.testing = threading.Lock()
        """Held while the areas' prepared polygons test points: GEOS's prepared geometries serve one thread."""
        self.fingerprint = fingerprint(documents)
        """Of the boundaries read: whether the store's counts kept per neighbourhood are theirs."""
        self.documents = documents

    @cached_property
    def areas(self) -> list[CountedArea]:
        """The areas, made when first needed: the kept counts need the fingerprint alone."""
        return [CountedArea(b.key, Polygon(b.ring), b.shape) for b in boundaries(self.documents)]

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
