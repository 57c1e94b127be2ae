"""Crime and stop-and-search counts, read once for both stores: the plan's statements, each engine's spelling.

:mod:`crimemap.store.stats_plan` decides where a crime count comes from
(kept totals, kept outcomes, kept cells, or the crimes); this module turns
that plan into statements and adds up their rows, the same way for every
engine. What an engine spells its own way is the small :class:`CountSql`
it passes in:

- how a list of codes and a list of ranges reach a statement (SQLite: ``IN
  (?, ...)`` and a JSON array read by ``json_each``; PostgreSQL: typed arrays,
  ``= ANY`` and ``unnest``), so a query is a handful of statements whatever
  the shape of its area;
- how a range of grid cells is walked: SQLite joins the ranges to the table
  and walks its ``(month, cell, id)`` key; PostgreSQL needs each range in a
  ``LATERAL`` subquery, or its planner scans the months whole;
- how a crime's LSOA is read (a code into ``lsoas`` in SQLite, the code
  itself in PostgreSQL) and the exact area test;
- how the stops of an area are found: SQLite walks the stops' ``(month,
  cell, id)`` key as it does for crimes; the PostGIS stops table is indexed
  by ``(month, geom)`` (GiST) instead, so it is one ``stops-street`` area test.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from crimemap.geometry import areas
from crimemap.query import Area, Polygon
from crimemap.stats_query import StatsQuery
from crimemap.stats_stops_query import StopStatsQuery
from crimemap.store import stats_neighbourhoods as kept
from crimemap.store import stats_stops
from crimemap.store.compiler import Geometry
from crimemap.store.stats_plan import (
    Plan,
    Tally,
    crime_groups,
    cube_groups,
    decode,
    edge_ranges,
    grouped,
    months_between,
    plan,
)

BUILT_KEY = "stats_built"
"""The ``meta`` key present once the kept counts cover every stored crime."""


class CountSql(ABC):
    """What one engine spells its own way in a count's statements (see the module docstring)."""

    mark: str
    """The engine's placeholder for one bound parameter."""
    total: str = "sum(s.crimes)"
    """The sum of kept counts, as an integer."""
    wide: str = ""
    """A cast that keeps a kept row number from overflowing when made into a cell number."""
    lsoa: str
    """A crime's LSOA (alias ``c``), as :meth:`lsoa_codes` decodes it."""
    crimes: Geometry
    """A crime's point (alias ``c``), for the exact area test."""

    @abstractmethod
    def rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """The rows of one statement."""

    @abstractmethod
    def one_of(self, column: str, codes: list[int], sql_type: str) -> tuple[str, list[Any]]:
        """``column`` is one of ``codes`` (integers of ``sql_type``), and its parameters."""

    @abstractmethod
    def table(
        self, alias: str, columns: tuple[str, ...], values: Sequence[tuple[int, ...]], sql_type: str
    ) -> tuple[str, list[Any]]:
        """A FROM item ``alias`` whose rows are ``values`` (integers of ``sql_type``), named ``columns``."""

    @abstractmethod
    def exact(self, area: Area, geometry: Geometry, params: list[Any]) -> str:
        """The exact test of ``geometry``'s point against ``area``, its parameters appended to ``params``."""

    def in_ranges(self, where: str) -> tuple[str, str]:
        """The rest of a FROM and its WHERE that walk the crimes (``c``, ``where``) in each cell range ``r(lo, hi)``."""
        return "CROSS JOIN crimes AS c", f"{where} AND c.cell BETWEEN r.lo AND r.hi"

    def lsoa_codes(self, query: StatsQuery, tally: Tally) -> Callable[[int], str]:
        """How the LSOAs read as :attr:`lsoa` become their codes."""
        return str

    @abstractmethod
    def stop_area_terms(self, area: Area, params: list[Any]) -> list[tuple[str, str, list[Any]]]:
        """The (FROM, WHERE, parameters) that find the stops (alias ``s``) of ``area``, ``params`` coming first."""


class _Terms:
    """The WHERE terms every part of a query shares: months, categories, forces."""

    def __init__(self, sql: CountSql, alias: str, months: list[int], p: Plan) -> None:
        self.sql: list[str] = []
        self.params: list[Any] = []
        for column, codes, sql_type in (
            ("month", list(months), "integer"),
            ("category", list(p.category_codes), "smallint"),
            ("force", list(p.force_codes), "smallint"),
        ):
            if codes or column == "month":
                term, params = sql.one_of(f"{alias}.{column}", codes, sql_type)
                self.sql.append(term)
                self.params.extend(params)

    def where(self, *extra: str) -> str:
        return " AND ".join([*self.sql, *extra])


# -- crimes ------------------------------------------------------------------------------------------------


def crime_stats(sql: CountSql, query: StatsQuery, outcome_slug: Callable[[int], str | None]) -> list[tuple[Any, ...]]:
    """The counts of ``query`` (see :meth:`crimemap.store.base.Store.stats`)."""
    stored = [m for (m,) in sql.rows("SELECT DISTINCT month FROM loads WHERE kind = 'street'", [])]
    months = months_between(stored, query)
    tally = Tally()
    p = plan(query)
    if months and p.source != "crimes" and not sql.rows(f"SELECT 1 FROM meta WHERE key = {sql.mark}", [BUILT_KEY]):
        p = Plan("crimes", category_codes=p.category_codes, force_codes=p.force_codes)
    if months:
        if p.source in ("totals", "outcomes"):
            terms = _Terms(sql, "s", months, p)
            statement = grouped(cube_groups(query, "s", 0, sql.wide), sql.total, f"stats_{p.source} s", terms.where())
            tally.add(sql.rows(statement, terms.params))
        elif p.source == "cells":
            _cells(sql, query, p, months, tally)
        else:
            _crimes(sql, query, p, months, tally)
    return decode(query, tally, lambda code: None if code < 0 else outcome_slug(code), sql.lsoa_codes(query, tally))


def neighbourhood_stats(sql: CountSql, query: StatsQuery, made: str) -> list[tuple[Any, ...]] | None:
    """The kept counts of ``query`` grouped by neighbourhood, if kept for the boundaries of fingerprint ``made``."""
    if not kept.answers(query):
        return None
    if not kept.usable(sql.rows(f"SELECT value FROM meta WHERE key = {sql.mark}", [kept.KEPT_KEY]), made):
        return None

    def codes_in(column: str, codes: list[int]) -> tuple[str, list[Any]]:
        return sql.one_of(column, list(codes), "smallint")

    statement, params = kept.read_sql(query, sql.mark, codes_in)
    return kept.decoded(query, sql.rows(statement, params))


def _cells(sql: CountSql, query: StatsQuery, p: Plan, months: list[int], tally: Tally) -> None:
    terms = _Terms(sql, "s", months, p)
    groups = cube_groups(query, "s", p.level, sql.wide)
    if p.inside is None:
        statement = grouped(groups, sql.total, "stats_cells s", terms.where(f"s.level = {p.level}"))
        tally.add(sql.rows(statement, terms.params))
        return
    if p.inside:
        blocks, params = sql.table("r", ("r0", "c0", "r1", "c1"), list(p.inside), "integer")
        statement = grouped(
            groups,
            sql.total,
            f"{blocks} CROSS JOIN stats_cells AS s",
            terms.where(f"s.level = {p.level}", "s.row BETWEEN r.r0 AND r.r1", "s.col BETWEEN r.c0 AND r.c1"),
        )
        tally.add(sql.rows(statement, [*params, *terms.params]))
    if p.edges and query.area is not None:
        cells, params = sql.table("r", ("row", "col"), list(p.edges), "integer")
        month_in, month_params = sql.one_of("s.month", months, "integer")
        occupied = sql.rows(
            f"SELECT DISTINCT s.row, s.col FROM {cells} CROSS JOIN stats_cells AS s"
            f" WHERE s.level = {p.level} AND {month_in} AND s.row = r.row AND s.col = r.col",
            [*params, *month_params],
        )
        ranges = edge_ranges(query.area, p.level, [(r, c) for r, c in occupied])
        _crimes_in_ranges(sql, query, p, months, ranges, query.area, tally)


def _crimes(sql: CountSql, query: StatsQuery, p: Plan, months: list[int], tally: Tally) -> None:
    if query.area is None:
        terms = _Terms(sql, "c", months, p)
        located = ["c.cell >= 0"] if {"cell", "lng"} & set(query.group) else []
        statement = grouped(crime_groups(query, sql.lsoa), "count(*)", "crimes c", terms.where(*located))
        tally.add(sql.rows(statement, terms.params))
        return
    inside: list[tuple[int, int]] = []
    edge: list[tuple[int, int]] = []
    for r in areas.area_ranges(query.area):
        (inside if r.inside else edge).append((r.lo, r.hi))
    _crimes_in_ranges(sql, query, p, months, inside, None, tally)
    _crimes_in_ranges(sql, query, p, months, edge, query.area, tally)


def _crimes_in_ranges(
    sql: CountSql,
    query: StatsQuery,
    p: Plan,
    months: list[int],
    ranges: list[tuple[int, int]],
    test: Polygon | None,
    tally: Tally,
) -> None:
    """Count the crimes in grid cell ranges (each range one walk of the ``(month, cell)`` key), tested by ``test``."""
    if not ranges:
        return
    source, params = sql.table("r", ("lo", "hi"), ranges, "bigint")
    terms = _Terms(sql, "c", months, p)
    params.extend(terms.params)
    where = terms.where()
    if test is not None:
        where += " AND " + sql.exact(test, sql.crimes, params)
    walk, walk_where = sql.in_ranges(where)
    tally.add(sql.rows(grouped(crime_groups(query, sql.lsoa), "count(*)", f"{source} {walk}", walk_where), params))


# -- stops -------------------------------------------------------------------------------------------------


def stop_stats(sql: CountSql, query: StopStatsQuery) -> list[tuple[Any, ...]]:
    """The counts of ``query`` (see :meth:`crimemap.store.base.Store.stop_stats`)."""
    stored = [m for (m,) in sql.rows("SELECT DISTINCT month FROM loads WHERE kind = 'stops'", [])]
    months = stats_stops.months_asked(stored, query)
    tally = Tally()
    if not months:
        return stats_stops.rows(query, tally)
    term, params = sql.one_of("s.month", months, "integer")
    terms = [term]
    codes = stats_stops.force_codes(query)
    if codes:
        term, force_params = sql.one_of("s.force", codes, "smallint")
        terms.append(term)
        params.extend(force_params)
    groups = stats_stops.group_sql(query)
    if query.area is None:
        located = ["s.cell >= 0"] if {"cell", "lng"} & set(query.group) else []
        tally.add(sql.rows(stats_stops.grouped(groups, "stops s", " AND ".join(terms + located)), params))
    else:
        for source, where, area_params in sql.stop_area_terms(query.area, params):
            tally.add(sql.rows(stats_stops.grouped(groups, source, " AND ".join([*terms, where])), area_params))
    return stats_stops.rows(query, tally)
