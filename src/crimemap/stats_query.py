"""Crime counts as data: what ``/stats/crimes`` and ``crimemap stats`` ask a store for.

A request's text (``group=month,category&months=2024-01..2024-06&bbox=...``)
becomes one :class:`StatsQuery`, parsed here once for the API and the command
line alike, so both accept exactly the same parameters and refuse the same
mistakes with a :class:`StatsError` that names the parameter. Nothing here
knows about SQL: group names come from a closed set (:data:`GROUPS`), values
are checked against the police.uk vocabulary, and each store compiles the
query with bound parameters.

**The grid of ``group=cell``.** Cells are the embedded store's own grid
(:mod:`crimemap.geo`: ``0.0025°`` of latitude by ``0.004°`` of longitude,
rows numbered from the South Pole, columns from the antimeridian) merged
``2**level`` cells a side. ``zoom`` picks the level so that a cell is about
24 pixels a side on a web map at that zoom (:func:`level_for_zoom`): level 7
at zoom 6 (0.32° by 0.512°, about 35 km), level 0 from zoom 13 on (about
280 m). A point's cell is ``(floor((lat + 90) / 0.0025) >> level,
floor((lng + 180) / 0.004) >> level)``, integer arithmetic on the same IEEE
doubles in both stores, so they agree on every point, borders included. A
cell is named ``level/row/col`` and answered with its centre and bounds.

    >>> q = parse_stats(group="month,cell", zoom="6", months="2024-01..2024-03", category="burglary")
    >>> q.group, q.level, q.months, q.categories
    (('month', 'cell'), 7, ('2024-01', '2024-03'), ('burglary',))
"""

from __future__ import annotations

from dataclasses import dataclass

from crimemap import geo, numerals, vocab
from crimemap.geometry import areas
from crimemap.months import format_month, parse_month
from crimemap.query import Polygon
from crimemap.rings import RingError, check_ring

GROUPS = ("month", "category", "force", "outcome", "lsoa", "cell")
"""What counts can be grouped by, in the order rows and CSV columns list them."""

MAX_LEVEL = 12
"""The coarsest cell: 4,096 grid cells a side (10.24° by 16.4°)."""

CELL_PIXELS_ZOOM = 13
"""``level = CELL_PIXELS_ZOOM - zoom``: at that sum a cell is about 24 pixels wide on a web map."""

MAX_ZOOM = 22
MAX_POLY_POINTS = 10_000
"""Vertices a ``poly`` may have (as :data:`crimemap.geometry.areas.MAX_POLYGON_VERTICES`)."""


class StatsError(ValueError):
    """A parameter of a stats request that cannot be used: ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class StatsQuery:
    """Counts of crimes grouped by ``group`` (any of :data:`GROUPS`, no repeats), after filters.

    ``months`` is ``(first, last)`` inclusive, or ``None`` for every stored
    month; ``categories`` and ``forces`` are slugs and ids, empty for all;
    ``area`` keeps located crimes inside it (edges included) and leaves out
    crimes without a location; ``level`` is the grid level of ``cell``.
    """

    group: tuple[str, ...] = ()
    months: tuple[str, str] | None = None
    categories: tuple[str, ...] = ()
    forces: tuple[str, ...] = ()
    area: Polygon | None = None
    level: int = 0

    @property
    def month_numbers(self) -> tuple[int, int] | None:
        if self.months is None:
            return None
        return parse_month(self.months[0]), parse_month(self.months[1])


def level_for_zoom(zoom: int) -> int:
    """The grid level of ``group=cell`` at a web map zoom: cells about 24 pixels a side.

    >>> [level_for_zoom(z) for z in (0, 6, 10, 13, 18)]
    [12, 7, 3, 0, 0]
    """
    return max(0, min(MAX_LEVEL, CELL_PIXELS_ZOOM - zoom))


def cell_name(level: int, row: int, col: int) -> str:
    return f"{level}/{row}/{col}"


def cell_bounds(level: int, row: int, col: int) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a cell, rounded to 7 decimals (about a centimetre).

    >>> cell_bounds(7, 442, 351)
    (-0.288, 51.44, 0.224, 51.76)
    """
    span = 1 << level
    west = col * span * geo.GRID_LNG - 180.0
    south = row * span * geo.GRID_LAT - 90.0
    east = (col + 1) * span * geo.GRID_LNG - 180.0
    north = (row + 1) * span * geo.GRID_LAT - 90.0
    return round(west, 7), round(south, 7), round(east, 7), round(north, 7)


# -- parsing request parameters --------------------------------------------------------------------


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def parse_group(text: str | None, groups: tuple[str, ...] = GROUPS) -> tuple[str, ...]:
    names = _split(text)
    for name in names:
        if name not in groups:
            raise StatsError("group", f"cannot group by {name!r}; group by any of {', '.join(groups)}")
    if len(set(names)) != len(names):
        raise StatsError("group", f"group names a field twice: {text!r}")
    return tuple(names)


def parse_months(text: str | None) -> tuple[str, str] | None:
    """``YYYY-MM`` or ``YYYY-MM..YYYY-MM`` (inclusive)."""
    if text is None or not text.strip():
        return None
    first, sep, last = text.strip().partition("..")
    try:
        start, end = parse_month(first), parse_month(last if sep else first)
    except ValueError:
        raise StatsError("months", f"months must be YYYY-MM or YYYY-MM..YYYY-MM, got {text!r}") from None
    if end < start:
        raise StatsError("months", f"months run from the first to the last: {text!r} runs backwards")
    return format_month(start), format_month(end)


def parse_categories(text: str | None) -> tuple[str, ...]:
    names = _split(text)
    if vocab.ALL_CRIME in names:
        return ()
    for name in names:
        if name not in vocab.CATEGORY_BY_SLUG:
            raise StatsError(
                "category", f"unknown crime category {name!r}; categories: {', '.join(vocab.CATEGORY_BY_SLUG)}"
            )
    return tuple(dict.fromkeys(names))


def parse_forces(text: str | None) -> tuple[str, ...]:
    names = _split(text)
    for name in names:
        if name not in vocab.FORCE_BY_ID:
            raise StatsError("force", f"unknown force {name!r}; the forces are listed at /api/forces")
    return tuple(dict.fromkeys(names))


def parse_bbox(text: str) -> Polygon:
    """``minlng,minlat,maxlng,maxlat`` as the rectangle's ring."""
    parts = text.split(",")
    usage = f"bbox is minlng,minlat,maxlng,maxlat in degrees, e.g. -0.2,51.4,0.1,51.6; got {text!r}"
    if len(parts) != 4:
        raise StatsError("bbox", usage)
    try:
        w, s, e, n = (numerals.decimal(p) for p in parts)
    except ValueError:
        raise StatsError("bbox", usage) from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise StatsError("bbox", f"{usage} (minimums below maximums, longitudes in -180..180, latitudes in -90..90)")
    return Polygon(((w, s), (e, s), (e, n), (w, n), (w, s)))


def parse_poly(text: str) -> Polygon:
    try:
        ring = geo.parse_poly(text)
    except ValueError as e:
        raise StatsError("poly", f"poly: {e}") from None
    if len(ring) > MAX_POLY_POINTS + 1:
        raise StatsError("poly", f"poly has {len(ring) - 1:,} points; at most {MAX_POLY_POINTS:,} are accepted")
    try:
        check_ring(ring)
    except RingError as e:
        raise StatsError("poly", f"poly: {e}") from None
    if not areas.polygon_of(ring).area > 0:
        raise StatsError("poly", "poly encloses no area: give at least three points that are not on one line")
    return Polygon(ring)


def parse_zoom(text: str | None, group: tuple[str, ...]) -> int:
    if "cell" not in group:
        if text is not None and text.strip():
            parse_zoom(text, ("cell",))
        return 0
    if text is None or not text.strip():
        raise StatsError("zoom", "group=cell needs zoom=Z (0-22), the web map zoom whose grid to count in")
    try:
        zoom = numerals.whole(text)
    except ValueError:
        raise StatsError("zoom", f"zoom must be a whole number from 0 to {MAX_ZOOM}, got {text!r}") from None
    if not 0 <= zoom <= MAX_ZOOM:
        raise StatsError("zoom", f"zoom must be a whole number from 0 to {MAX_ZOOM}, got {text!r}")
    return level_for_zoom(zoom)


def parse_area(bbox: str | None, poly: str | None) -> Polygon | None:
    """The area of ``bbox`` or ``poly`` (not both), or None for everywhere."""
    if bbox is not None and bbox.strip() and poly is not None and poly.strip():
        raise StatsError("bbox", "give bbox or poly, not both")
    if bbox is not None and bbox.strip():
        return parse_bbox(bbox)
    if poly is not None and poly.strip():
        return parse_poly(poly)
    return None


def parse_stats(
    *,
    group: str | None = None,
    months: str | None = None,
    category: str | None = None,
    force: str | None = None,
    bbox: str | None = None,
    poly: str | None = None,
    zoom: str | None = None,
) -> StatsQuery:
    """A :class:`StatsQuery` from request text; :class:`StatsError` names the first bad parameter."""
    groups = parse_group(group)
    area = parse_area(bbox, poly)
    return StatsQuery(
        group=groups,
        months=parse_months(months),
        categories=parse_categories(category),
        forces=parse_forces(force),
        area=area,
        level=parse_zoom(zoom, groups),
    )


__all__ = [
    "GROUPS",
    "MAX_LEVEL",
    "StatsError",
    "StatsQuery",
    "cell_bounds",
    "cell_name",
    "level_for_zoom",
    "parse_stats",
]
