"""Stop-and-search counts, what both stores share: the grouped columns, the months, the rows answered.

Stops are about a tenth as many as crimes, so their counts are made from the
stops table itself, with no pre-aggregated tables to keep:
:func:`crimemap.store.count_reads.stop_stats` groups the stops of the months
asked for, and of an area by the exact test its ``stops-street`` answer uses. The SQL of a group
is the same in both stores (the stops tables have the same columns);
values are decoded and ordered here, once, so both stores answer alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crimemap import geo, vocab
from crimemap.months import format_month
from crimemap.stats_stops_query import StopStatsQuery
from crimemap.store.stats_plan import CELL_KEY_SPAN, Tally, months_between
from crimemap.store.stop_rows import FORCE_IDS

_ROW_SHIFT = geo.ROW_SPAN.bit_length() - 1
_COL_MASK = geo.ROW_SPAN - 1


def group_sql(query: StopStatsQuery, alias: str = "s") -> list[str]:
    """The SQL of each group of ``query`` over the stops table (``alias``), in group order.

    An empty outcome is stored as NULL and answered ``""``, as the stop's JSON has it.
    """
    k = query.level
    exprs = {
        "month": f"{alias}.month",
        "force": f"{alias}.force",
        "type": f"{alias}.type",
        "outcome": f"coalesce({alias}.outcome, '')",
        "object": f"{alias}.object_of_search",
        "cell": f"((({alias}.cell >> {_ROW_SHIFT}) >> {k}) * {CELL_KEY_SPAN} + (({alias}.cell & {_COL_MASK}) >> {k}))",
        "lng": f"{alias}.lng",  # stats_plan.POINT: what group=neighbourhood counts by
        "lat": f"{alias}.lat",
    }
    return [exprs[g] for g in query.group]


def grouped(select: list[str], source: str, where: str) -> str:
    """``SELECT <groups>, count(*) FROM <source> WHERE <where> GROUP BY <groups>``."""
    columns = ", ".join([*select, "count(*)"])
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(select)))}" if select else ""
    return f"SELECT {columns} FROM {source} WHERE {where}{group}"


def force_codes(query: StopStatsQuery) -> list[int]:
    return [vocab.FORCE_BY_ID[f].code for f in query.forces]


def months_asked(stored: Iterable[int], query: StopStatsQuery) -> list[int]:
    """The months with stop-and-search data that ``query`` asks for (numbers), oldest first."""
    return months_between(stored, query)


def rows(query: StopStatsQuery, tally: Tally) -> list[tuple[Any, ...]]:
    """Rows of group values then the count, ordered by values (``None`` first), as :meth:`Store.stop_stats` answers."""
    converters = {
        "month": format_month,
        "force": lambda code: FORCE_IDS[code],
        "type": lambda v: v,
        "outcome": lambda v: v,
        "object": lambda v: v,
        "cell": lambda key: (key // CELL_KEY_SPAN, key % CELL_KEY_SPAN),
        "lng": float,
        "lat": float,
    }
    convert = [converters[name] for name in query.group]
    found = {tuple(f(v) for f, v in zip(convert, key, strict=True)): n for key, n in tally.counts.items() if n}
    if not query.group and not found:
        found[()] = 0
    ordered = sorted(found.items(), key=lambda kv: tuple((v is not None, v if v is not None else "") for v in kv[0]))
    return [(*key, n) for key, n in ordered]


def no_stops(query: StopStatsQuery) -> list[tuple[Any, ...]]:
    """The answer of a store without stops: no rows, or a total of 0."""
    return rows(query, Tally())
