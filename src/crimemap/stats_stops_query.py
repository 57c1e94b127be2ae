"""Stop-and-search counts as data: what ``/stats/stops`` and ``crimemap stats --data stops`` ask for.

The stop-and-search counterpart of :mod:`crimemap.stats_query`, parsed by the
same functions (months, forces, ``bbox``/``poly``, ``zoom`` and its grid), so
both counts accept and refuse the same text. Stops are grouped by what their
police.uk JSON says of them, value for value:

- ``type``: the stop's ``type`` (``"Person search"``; ``None`` where the file gave none);
- ``outcome``: the stop's ``outcome``, the file's wording (``"Arrest"``, older files'
  ``"Suspect arrested"``; ``""`` where the file gave none);
- ``object``: the ``object_of_search`` (``"Controlled drugs"``; ``None``: none given);

and by ``month``, ``force`` and ``cell`` as crimes are. There is no
``category``: stops have none.

    >>> q = parse_stop_stats(group="month,type", months="2020-01..2020-03", force="city-of-london")
    >>> q.group, q.months, q.forces
    (('month', 'type'), ('2020-01', '2020-03'), ('city-of-london',))
"""

from __future__ import annotations

from dataclasses import dataclass

from crimemap.months import parse_month
from crimemap.query import Polygon
from crimemap.stats_query import parse_area, parse_forces, parse_group, parse_months, parse_zoom

STOP_GROUPS = ("month", "force", "type", "outcome", "object", "cell")
"""What stop counts can be grouped by."""


@dataclass(frozen=True)
class StopStatsQuery:
    """Counts of stops grouped by ``group`` (any of :data:`STOP_GROUPS`), after filters.

    The fields mean what :class:`crimemap.stats_query.StatsQuery`'s do: ``area``
    keeps located stops inside it (edges included, the test of ``stops-street``)
    and leaves out stops without a location; ``level`` is the grid level of ``cell``.
    """

    group: tuple[str, ...] = ()
    months: tuple[str, str] | None = None
    forces: tuple[str, ...] = ()
    area: Polygon | None = None
    level: int = 0

    @property
    def month_numbers(self) -> tuple[int, int] | None:
        if self.months is None:
            return None
        return parse_month(self.months[0]), parse_month(self.months[1])


def parse_stop_stats(
    *,
    group: str | None = None,
    months: str | None = None,
    force: str | None = None,
    bbox: str | None = None,
    poly: str | None = None,
    zoom: str | None = None,
) -> StopStatsQuery:
    """A :class:`StopStatsQuery` from request text; :class:`~crimemap.stats_query.StatsError` names a bad parameter."""
    groups = parse_group(group, STOP_GROUPS)
    area = parse_area(bbox, poly)
    return StopStatsQuery(
        group=groups,
        months=parse_months(months),
        forces=parse_forces(force),
        area=area,
        level=parse_zoom(zoom, groups),
    )


__all__ = ["STOP_GROUPS", "StopStatsQuery", "parse_stop_stats"]
