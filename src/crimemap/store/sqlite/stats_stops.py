"""Stop-and-search counts in the embedded store, made from the stops table (see :mod:`crimemap.store.stats_stops`).

Without an area, one grouped read of the months asked for. With one, the
area's grid cell ranges (:func:`crimemap.geometry.areas.area_ranges`) are read
along the stops' ``(month, cell, id)`` primary key: ranges wholly inside are
counted as they are, the others with the exact test ``stops-street`` applies
(a box's ``BETWEEN``, shapely's point-in-polygon with edges included through
``cm_in_polygon``). Many ranges go to one statement as a JSON array.
"""

from __future__ import annotations

from typing import Any

import orjson

from crimemap.geometry import areas
from crimemap.stats_stops_query import StopStatsQuery
from crimemap.store.sqlite.connection import Reader
from crimemap.store.sqlite.dialect import area_sql
from crimemap.store.sqlite.stops import GEOMETRY
from crimemap.store.stats_plan import Tally
from crimemap.store.stats_stops import force_codes, group_sql, grouped, months_asked, rows


def stop_stats(db: Reader, query: StopStatsQuery) -> list[tuple[Any, ...]]:
    """The counts of ``query`` (see :meth:`crimemap.store.base.Store.stop_stats`)."""
    stored = [m for (m,) in db.execute("SELECT DISTINCT month FROM loads WHERE kind = 'stops'")]
    months = months_asked(stored, query)
    tally = Tally()
    if not months:
        return rows(query, tally)
    terms = [f"s.month IN ({','.join('?' * len(months))})"]
    params: list[Any] = list(months)
    codes = force_codes(query)
    if codes:
        terms.append(f"s.force IN ({','.join('?' * len(codes))})")
        params.extend(codes)
    if query.area is None:
        located = ["s.cell >= 0"] if {"cell", "lng"} & set(query.group) else []
        tally.add(db.rows(grouped(group_sql(query), "stops s", " AND ".join(terms + located)), params))
        return rows(query, tally)
    inside: list[tuple[int, int]] = []
    edge: list[tuple[int, int]] = []
    for r in areas.area_ranges(query.area):
        (inside if r.inside else edge).append((r.lo, r.hi))
    for ranges, exact in ((inside, False), (edge, True)):
        if not ranges:
            continue
        ranged = [orjson.dumps(ranges).decode(), *params]
        where = [*terms, "s.cell BETWEEN r.value ->> 0 AND r.value ->> 1"]
        if exact:
            where.append(area_sql(query.area, GEOMETRY, ranged))
        source = "json_each(?) AS r CROSS JOIN stops AS s"
        tally.add(db.rows(grouped(group_sql(query), source, " AND ".join(where)), ranged))
    return rows(query, tally)
