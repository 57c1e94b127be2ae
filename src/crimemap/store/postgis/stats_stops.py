"""Stop-and-search counts in the PostGIS store, made from the stops table (see :mod:`crimemap.store.stats_stops`).

One grouped read of the months asked for; an area is the ``WHERE`` of a
``stops-street`` answer (:func:`crimemap.store.postgis.dialect.area_sql`: the
``(month, geom)`` GiST index, then the exact test, edges included), so a
count and the stops answered for the same area and month agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crimemap.stats_stops_query import StopStatsQuery
from crimemap.store.postgis.dialect import area_sql
from crimemap.store.postgis.stops import GEOMETRY
from crimemap.store.stats_plan import Tally
from crimemap.store.stats_stops import force_codes, group_sql, grouped, months_asked, rows

Rows = Callable[[str, list[Any]], list[tuple[Any, ...]]]


def stop_stats(read: Rows, query: StopStatsQuery) -> list[tuple[Any, ...]]:
    """The counts of ``query``, read through ``read(sql, params)`` (see :meth:`Store.stop_stats`)."""
    stored = [m for (m,) in read("SELECT DISTINCT month FROM loads WHERE kind = 'stops'", [])]
    months = months_asked(stored, query)
    tally = Tally()
    if not months:
        return rows(query, tally)
    terms = ["s.month = ANY(%s::integer[])"]
    params: list[Any] = [months]
    codes = force_codes(query)
    if codes:
        terms.append("s.force = ANY(%s::smallint[])")
        params.append(codes)
    if query.area is not None:
        terms += ["s.geom IS NOT NULL", area_sql(query.area, GEOMETRY, params)]
    elif {"cell", "lng"} & set(query.group):
        terms.append("s.cell >= 0")
    tally.add(read(grouped(group_sql(query), "stops s", " AND ".join(terms)), params))
    return rows(query, tally)
