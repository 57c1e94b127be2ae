"""How a count of crimes is answered: from pre-aggregated counts where they are exact, else from crimes.

Both stores keep three kinds of pre-aggregated counts, brought up to date in
the same transaction as every load that replaces a month and force (see each
store's ``stats`` module):

- ``stats_totals``: crimes per month, force and category;
- ``stats_outcomes``: the same per latest outcome too;
- ``stats_cells``: located crimes per month, force, category and grid cell, at
  each level of :data:`LEVELS` (cells of ``2**level`` grid cells a side, see
  :mod:`crimemap.stats_query`).

A query is planned here, once, for both stores (:func:`plan`), so they answer
it the same way. Without an area, a query grouped by month, category, force
or outcome sums the totals or outcomes (a few thousand rows for a year of
England and Wales); grouped by cell, it sums the cells at the coarsest level
no coarser than the cells asked for. With an area, the cells of that level
are split in two: those wholly inside the area (each cell's box grown by a
hair, so rounding cannot admit a point outside) are summed from
``stats_cells``; the crimes of those the area's edge crosses are counted one
by one with the exact area test. Only edge cells that hold crimes at all are
read, so the edges of a national view, at sea, cost nothing. What the
aggregates cannot answer (LSOAs, outcomes within an area, fine cells, small
areas) is counted from the crimes themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import shapely

from crimemap import deadline, geo, vocab
from crimemap.geometry import areas
from crimemap.months import format_month
from crimemap.query import Polygon
from crimemap.stats_query import StatsQuery
from crimemap.stats_stops_query import StopStatsQuery

POINT = ("lng", "lat")
"""Groups no request names: a located crime's (or stop's) longitude and latitude, what
``group=neighbourhood`` counts by when the counts kept per neighbourhood cannot answer
(:mod:`crimemap.neighbourhood_stats`). Grouped by them, only located crimes are counted."""

LEVELS = (3, 6)
"""Grid levels kept in ``stats_cells``: 8 and 64 grid cells a side (about 2 km and 18 km)."""

MAX_AREA_CELLS = 4096
"""An area is split at the finest kept level where its box spans at most this many cells."""

MIN_AREA_CELLS = 16
"""An area spanning fewer cells than this at the finest level is counted from the crimes directly."""

_EPSILON = 1e-9
"""Degrees a cell is grown by before it is called inside (as :mod:`crimemap.geometry.areas` does)."""

Source = Literal["totals", "outcomes", "cells", "crimes"]
Block = tuple[int, int, int, int]
"""``(first row, first column, last row, last column)`` of cells at a level, all inside an area."""


@dataclass(frozen=True)
class Plan:
    """Where a query's counts come from (see the module docstring).

    ``inside`` of ``None`` means everywhere (no area). ``edges`` are the cells
    at ``level`` that the area's edge crosses, to be counted from crimes.
    """

    source: Source
    level: int = 0
    inside: tuple[Block, ...] | None = None
    edges: tuple[tuple[int, int], ...] = ()
    category_codes: tuple[int, ...] = ()
    force_codes: tuple[int, ...] = ()


@dataclass
class Tally:
    """Counts by group key, added up from any number of partial answers."""

    counts: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def add(self, rows: Iterable[tuple[Any, ...]]) -> None:
        counts = self.counts
        for row in rows:
            key = tuple(row[:-1])
            counts[key] = counts.get(key, 0) + int(row[-1] or 0)  # sum() of no rows is NULL


def plan(query: StatsQuery) -> Plan:
    """The cheapest exact way to answer ``query`` (see the module docstring)."""
    cats = tuple(vocab.CATEGORY_BY_SLUG[c].code for c in query.categories)
    forces = tuple(vocab.FORCE_BY_ID[f].code for f in query.forces)
    group = set(query.group)
    if "lsoa" in group or "lng" in group or ("outcome" in group and query.area is not None):
        return Plan("crimes", category_codes=cats, force_codes=forces)
    if "outcome" in group:
        return Plan("outcomes", category_codes=cats, force_codes=forces)
    level: int | None
    if "cell" in group:
        level = max((kept for kept in LEVELS if kept <= query.level), default=None)
    elif query.area is None:
        return Plan("totals", category_codes=cats, force_codes=forces)
    else:
        level = _level_for_area(query.area)
    if level is None:
        return Plan("crimes", category_codes=cats, force_codes=forces)
    if query.area is None:
        return Plan("cells", level, None, (), cats, forces)
    inside, edges = split_area(query.area, level)
    return Plan("cells", level, tuple(inside), tuple(edges), cats, forces)


def area_bounds(area: Polygon) -> tuple[float, float, float, float]:
    box = areas.rectangle(area.ring)
    return box if box is not None else areas.polygon_of(area.ring).bounds


def _span(area: Polygon, level: int) -> tuple[int, int, int, int]:
    """First and last row and column of the cells at ``level`` that the area's box touches."""
    west, south, east, north = area_bounds(area)
    row0 = max(0, geo.grid_row(south)) >> level
    row1 = min(areas.MAX_ROW, geo.grid_row(north)) >> level
    col0 = max(0, geo.grid_col(west)) >> level
    col1 = min(areas.MAX_COL, geo.grid_col(east)) >> level
    return row0, col0, row1, col1


def _level_for_area(area: Polygon) -> int | None:
    for level in LEVELS:
        row0, col0, row1, col1 = _span(area, level)
        cells = (row1 - row0 + 1) * (col1 - col0 + 1)
        if level == LEVELS[0] and cells < MIN_AREA_CELLS:
            return None
        if cells <= MAX_AREA_CELLS:
            return level
    return LEVELS[-1]


def cell_box(level: int, row: int, col: int, grow: float = 0.0) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a cell at ``level``, grown by ``grow`` degrees."""
    span = 1 << level
    return (
        col * span * geo.GRID_LNG - 180.0 - grow,
        row * span * geo.GRID_LAT - 90.0 - grow,
        (col + 1) * span * geo.GRID_LNG - 180.0 + grow,
        (row + 1) * span * geo.GRID_LAT - 90.0 + grow,
    )


def split_area(area: Polygon, level: int) -> tuple[list[Block], list[tuple[int, int]]]:
    """The area's cells at ``level``: blocks wholly inside it, and the cells its edge crosses."""
    row0, col0, row1, col1 = _span(area, level)
    box = areas.rectangle(area.ring)
    if box is not None:
        return _split_rectangle(box, level, row0, col0, row1, col1)
    return _split_shape(areas.polygon_of(area.ring), level, row0, col0, row1, col1)


def _split_rectangle(
    box: tuple[float, float, float, float], level: int, row0: int, col0: int, row1: int, col1: int
) -> tuple[list[Block], list[tuple[int, int]]]:
    west, south, east, north = box

    def inside_row(r: int) -> bool:
        _, s, _, n = cell_box(level, r, col0, _EPSILON)
        return s >= south and n <= north

    def inside_col(c: int) -> bool:
        w, _, e, _ = cell_box(level, row0, c, _EPSILON)
        return w >= west and e <= east

    in_row0 = row0 if inside_row(row0) else row0 + 1
    in_row1 = row1 if inside_row(row1) else row1 - 1
    in_col0 = col0 if inside_col(col0) else col0 + 1
    in_col1 = col1 if inside_col(col1) else col1 - 1
    if in_row0 > in_row1 or in_col0 > in_col1:
        return [], [(r, c) for r in range(row0, row1 + 1) for c in range(col0, col1 + 1)]
    edges: list[tuple[int, int]] = []
    for r in range(row0, row1 + 1):
        if in_row0 <= r <= in_row1:
            edges.extend((r, c) for c in range(col0, in_col0))
            edges.extend((r, c) for c in range(in_col1 + 1, col1 + 1))
        else:
            edges.extend((r, c) for c in range(col0, col1 + 1))
    return [(in_row0, in_col0, in_row1, in_col1)], edges


def _split_shape(
    shape: Any, level: int, row0: int, col0: int, row1: int, col1: int
) -> tuple[list[Block], list[tuple[int, int]]]:
    """Quarter blocks of cells while they straddle the shape's edge (as :func:`areas.polygon_ranges`)."""
    inside: list[Block] = []
    edges: list[tuple[int, int]] = []
    blocks: list[Block] = [(row0, col0, row1, col1)]
    while blocks:
        deadline.check()
        arr = np.array(blocks, dtype=np.float64)
        span = float(1 << level)
        boxes = shapely.box(
            arr[:, 1] * span * geo.GRID_LNG - 180.0 - _EPSILON,
            arr[:, 0] * span * geo.GRID_LAT - 90.0 - _EPSILON,
            (arr[:, 3] + 1) * span * geo.GRID_LNG - 180.0 + _EPSILON,
            (arr[:, 2] + 1) * span * geo.GRID_LAT - 90.0 + _EPSILON,
        )
        covered = shapely.covers(shape, boxes).tolist()
        touching = shapely.intersects(shape, boxes).tolist()
        split: list[Block] = []
        for (r0, c0, r1, c1), whole, touch in zip(blocks, covered, touching, strict=True):
            if not touch:
                continue
            if whole:
                inside.append((r0, c0, r1, c1))
            elif r0 == r1 and c0 == c1:
                edges.append((r0, c0))
            else:
                rm, cm = (r0 + r1) // 2, (c0 + c1) // 2
                for a0, a1 in ((r0, rm), (rm + 1, r1)):
                    for b0, b1 in ((c0, cm), (cm + 1, c1)):
                        if a0 <= a1 and b0 <= b1:
                            split.append((a0, b0, a1, b1))
        blocks = split
    return inside, sorted(edges)


def edge_ranges(area: Polygon, level: int, edges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Grid cell ranges (one per grid row of each edge cell, clipped to the area's box), merged, in order."""
    west, south, east, north = area_bounds(area)
    row_lo, row_hi = max(0, geo.grid_row(south)), min(areas.MAX_ROW, geo.grid_row(north))
    col_lo, col_hi = max(0, geo.grid_col(west)), min(areas.MAX_COL, geo.grid_col(east))
    spans: list[tuple[int, int, int]] = []
    for r, c in edges:
        c0, c1 = max(c << level, col_lo), min(((c + 1) << level) - 1, col_hi)
        for row in range(max(r << level, row_lo), min(((r + 1) << level) - 1, row_hi) + 1):
            spans.append((row, c0, c1))
    spans.sort()
    ranges: list[tuple[int, int]] = []
    for row, c0, c1 in spans:
        lo, hi = row * geo.ROW_SPAN + c0, row * geo.ROW_SPAN + c1
        if ranges and ranges[-1][1] + 1 == lo:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    return ranges


def months_between(stored: Iterable[int], query: StatsQuery | StopStatsQuery) -> list[int]:
    """The stored months (numbers) the query asks for, oldest first."""
    wanted = query.month_numbers
    months = sorted(set(stored))
    if wanted is None:
        return months
    return [m for m in months if wanted[0] <= m <= wanted[1]]


CELL_KEY_SPAN = geo.ROW_SPAN
"""A cell's key in a group is ``row * CELL_KEY_SPAN + col`` at the query's level."""


def decode(query: StatsQuery, tally: Tally, outcome_slug: Any, lsoa_code: Any) -> list[tuple[Any, ...]]:
    """Rows of group values then the count, in group-value order (None first), as :meth:`Store.stats` answers.

    Months become ``YYYY-MM``, categories slugs, forces ids, outcomes slugs
    (``None`` for none) through ``outcome_slug``, LSOAs codes through
    ``lsoa_code`` (identity where the store keeps the text), cells
    ``(row, col)`` at the query's level.
    """
    converters = {
        "month": format_month,
        "category": lambda code: vocab.CATEGORIES[code].slug,
        "force": lambda code: vocab.FORCES[code].id,
        "outcome": outcome_slug,
        "lsoa": lsoa_code,
        "cell": lambda key: (key // CELL_KEY_SPAN, key % CELL_KEY_SPAN),
        "lng": float,
        "lat": float,
    }
    convert = [converters[name] for name in query.group]
    merged: dict[tuple[Any, ...], int] = {}
    for key, n in tally.counts.items():
        if n == 0:
            continue
        decoded = tuple(f(v) for f, v in zip(convert, key, strict=True))
        merged[decoded] = merged.get(decoded, 0) + n
    if not query.group and not merged:
        merged[()] = 0
    return [(*key, n) for key, n in sorted(merged.items(), key=lambda kv: _sort_key(kv[0]))]


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is not None, v if v is not None else "") for v in key)


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- the SQL both stores group by ----------------------------------------------------------------------------

_SPAN = geo.ROW_SPAN
_COL_MASK = geo.ROW_SPAN - 1
_ROW_SHIFT = _SPAN.bit_length() - 1


def cube_groups(query: StatsQuery, alias: str, level: int, wide: str = "") -> list[str]:
    """SQL of ``query``'s groups over the kept counts of ``level`` (``alias``), in the query's order.

    ``wide`` is a cast that keeps a cell number from overflowing a stored
    integer row (PostgreSQL's ``::bigint``; SQLite's integers are 64-bit already).
    """
    shift = query.level - level
    exprs = {
        "month": f"{alias}.month",
        "category": f"{alias}.category",
        "force": f"{alias}.force",
        "outcome": f"{alias}.outcome",
        "cell": f"(({alias}.row >> {shift}){wide} * {_SPAN} + ({alias}.col >> {shift}))",
    }
    return [exprs[g] for g in query.group]


def crime_groups(query: StatsQuery, lsoa: str) -> list[str]:
    """SQL of ``query``'s groups over the crimes (``c``); ``lsoa`` is how this store reads a crime's LSOA."""
    k = query.level
    exprs = {
        "month": "c.month",
        "category": "c.category",
        "force": "c.force",
        "outcome": "coalesce(c.outcome, -1)",
        "lsoa": lsoa,
        "cell": f"(((c.cell >> {_ROW_SHIFT}) >> {k}) * {_SPAN} + ((c.cell & {_COL_MASK}) >> {k}))",
        "lng": "c.lng",
        "lat": "c.lat",
    }
    return [exprs[g] for g in query.group]


def grouped(select: list[str], count: str, source: str, where: str) -> str:
    """``SELECT select..., count FROM source WHERE where GROUP BY`` the selected columns."""
    columns = ", ".join([*select, count])
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(select)))}" if select else ""
    return f"SELECT {columns} FROM {source} WHERE {where}{group}"
