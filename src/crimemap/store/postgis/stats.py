"""Crime counts in the PostGIS store: the same pre-aggregated tables and plan as the embedded store.

:mod:`crimemap.store.stats_plan` decides where a query's counts come from;
this module speaks it in PostgreSQL. The PostGIS tables keep no grid cell, so
a crime's cell is computed from its coordinates with the formula the embedded
store used when it stored them (:func:`crimemap.geo.cell_of`):
``floor((lat + 90) / 0.0025)`` and ``floor((lng + 180) / 0.004)``, the same
IEEE double operations, so both stores put every crime in the same cell.

A load calls :func:`refresh` from its writer's ``finish`` with the (month,
force) sets it replaced; a database made before the counts existed gets them
whole when the store is opened (:func:`ensure_built`), under the load lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psycopg

from crimemap import geo
from crimemap.query import Polygon
from crimemap.stats_query import StatsQuery
from crimemap.store.compiler import Geometry
from crimemap.store.postgis.dialect import area_sql
from crimemap.store.stats_plan import LEVELS, Plan, Tally, cell_box, decode, months_between, plan

BUILT_KEY = "stats_built"
_SPAN = geo.ROW_SPAN
_ROW = f"floor((c.lat + 90.0::float8) / {geo.GRID_LAT!r}::float8)::integer"
_COL = f"floor((c.lng + 180.0::float8) / {geo.GRID_LNG!r}::float8)::integer"
"""A crime's grid row and column, as :func:`crimemap.geo.grid_row` and ``grid_col`` compute them."""

_GEOMETRY = Geometry(geom="c.geom", lng="c.lng", lat="c.lat")

Conn = psycopg.Connection[Any]


# -- keeping the counts ------------------------------------------------------------------------------


def _fine_counts(conn: Conn, where: str, params: list[Any]) -> None:
    fine = LEVELS[0]
    conn.execute("DROP TABLE IF EXISTS pg_temp.stats_fine")
    conn.execute(
        "CREATE TEMP TABLE stats_fine ON COMMIT DROP AS SELECT month, force, category,"
        " coalesce(outcome, -1) AS outcome,"
        f" CASE WHEN c.geom IS NOT NULL THEN {_ROW} >> {fine} END AS row,"
        f" CASE WHEN c.geom IS NOT NULL THEN {_COL} >> {fine} END AS col, count(*) AS crimes"
        f" FROM crimes c WHERE {where} GROUP BY 1, 2, 3, 4, 5, 6",
        params,
    )


def _insert_from_fine(conn: Conn) -> None:
    conn.execute("INSERT INTO stats_totals SELECT month, force, category, sum(crimes) FROM stats_fine GROUP BY 1, 2, 3")
    conn.execute(
        "INSERT INTO stats_outcomes SELECT month, force, category, outcome, sum(crimes)"
        " FROM stats_fine GROUP BY 1, 2, 3, 4"
    )
    for level in LEVELS:
        shift = level - LEVELS[0]
        conn.execute(
            f"INSERT INTO stats_cells SELECT {level}, month, row >> {shift}, col >> {shift}, force, category,"
            " sum(crimes) FROM stats_fine WHERE row IS NOT NULL GROUP BY 2, 3, 4, 5, 6"
        )
    conn.execute("DROP TABLE stats_fine")


def refresh(conn: Conn, replaced: Iterable[tuple[int, int]]) -> None:
    """Make the counts of the (month, force) sets a load replaced again, inside the load's transaction."""
    if not _built(conn):
        rebuild(conn)
        return
    by_month: dict[int, set[int]] = {}
    for month, force in replaced:
        by_month.setdefault(month, set()).add(force)
    for month, forces in sorted(by_month.items()):
        params: list[Any] = [month, sorted(forces)]
        for table in ("stats_totals", "stats_outcomes", "stats_cells"):
            conn.execute(f"DELETE FROM {table} WHERE month = %s AND force = ANY(%s::smallint[])", params)
        _fine_counts(conn, "c.month = %s AND c.force = ANY(%s::smallint[])", params)
        _insert_from_fine(conn)


def rebuild(conn: Conn) -> None:
    """Make every count again from the crimes."""
    for table in ("stats_totals", "stats_outcomes", "stats_cells"):
        conn.execute(f"DELETE FROM {table}")
    months = [m for (m,) in conn.execute("SELECT DISTINCT month FROM crimes ORDER BY month").fetchall()]
    for month in months:
        _fine_counts(conn, "c.month = %s", [month])
        _insert_from_fine(conn)
    conn.execute(
        "INSERT INTO meta VALUES (%s, '1') ON CONFLICT (key) DO UPDATE SET value = excluded.value", (BUILT_KEY,)
    )


def ensure_built(conn: Conn) -> None:
    """Give a database made before the counts existed its counts (``conn`` in autocommit mode)."""
    if _built(conn):
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('crimemap load ' || current_schema()))")
        if not _built(conn):
            rebuild(conn)


def _built(conn: Conn) -> bool:
    return conn.execute("SELECT 1 FROM meta WHERE key = %s", (BUILT_KEY,)).fetchone() is not None


# -- reading -------------------------------------------------------------------------------------------


class _Terms:
    def __init__(self, alias: str, months: list[int], p: Plan) -> None:
        self.sql = [f"{alias}.month = ANY(%s::integer[])"]
        self.params: list[Any] = [months]
        if p.category_codes:
            self.sql.append(f"{alias}.category = ANY(%s::smallint[])")
            self.params.append(list(p.category_codes))
        if p.force_codes:
            self.sql.append(f"{alias}.force = ANY(%s::smallint[])")
            self.params.append(list(p.force_codes))

    def where(self, *extra: str) -> str:
        return " AND ".join([*self.sql, *extra])


def _cube_groups(query: StatsQuery, alias: str, level: int) -> list[str]:
    shift = query.level - level
    exprs = {
        "month": f"{alias}.month",
        "category": f"{alias}.category",
        "force": f"{alias}.force",
        "outcome": f"{alias}.outcome",
        "cell": f"(({alias}.row >> {shift})::bigint * {_SPAN} + ({alias}.col >> {shift}))",
    }
    return [exprs[g] for g in query.group]


def _crime_groups(query: StatsQuery) -> list[str]:
    k = query.level
    exprs = {
        "month": "c.month",
        "category": "c.category",
        "force": "c.force",
        "outcome": "coalesce(c.outcome, -1)",
        "lsoa": 'c.lsoa_code COLLATE "C"',
        "cell": f"(({_ROW} >> {k})::bigint * {_SPAN} + ({_COL} >> {k}))",
    }
    return [exprs[g] for g in query.group]


def _grouped(select: list[str], count: str, source: str, where: str) -> str:
    columns = ", ".join([*select, count])
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(select)))}" if select else ""
    return f"SELECT {columns} FROM {source} WHERE {where}{group}"


Rows = Callable[[str, list[Any]], list[tuple[Any, ...]]]


def stats(rows: Rows, query: StatsQuery, outcome_slug: Callable[[int], str | None]) -> list[tuple[Any, ...]]:
    """The counts of ``query``, read through ``rows(sql, params)`` (see :meth:`Store.stats`)."""
    stored = [m for (m,) in rows("SELECT DISTINCT month FROM loads WHERE kind = 'street'", [])]
    months = months_between(stored, query)
    tally = Tally()
    p = plan(query)
    if months and p.source != "crimes" and not rows("SELECT 1 FROM meta WHERE key = %s", [BUILT_KEY]):
        p = Plan("crimes", category_codes=p.category_codes, force_codes=p.force_codes)
    if months:
        if p.source in ("totals", "outcomes"):
            terms = _Terms("s", months, p)
            sql = _grouped(_cube_groups(query, "s", 0), "sum(s.crimes)::bigint", f"stats_{p.source} s", terms.where())
            tally.add(rows(sql, terms.params))
        elif p.source == "cells":
            _cells(rows, query, p, months, tally)
        else:
            _crimes(rows, query, p, months, tally)
    return decode(query, tally, lambda code: None if code < 0 else outcome_slug(code), str)


def _cells(rows: Rows, query: StatsQuery, p: Plan, months: list[int], tally: Tally) -> None:
    terms = _Terms("s", months, p)
    groups = _cube_groups(query, "s", p.level)
    if p.inside is None:
        sql = _grouped(groups, "sum(s.crimes)::bigint", "stats_cells s", terms.where(f"s.level = {p.level}"))
        tally.add(rows(sql, terms.params))
        return
    if p.inside:
        blocks = list(zip(*p.inside, strict=True))
        sql = _grouped(
            groups,
            "sum(s.crimes)::bigint",
            "unnest(%s::integer[], %s::integer[], %s::integer[], %s::integer[]) AS b(r0, c0, r1, c1)"
            " JOIN stats_cells s ON s.row BETWEEN b.r0 AND b.r1 AND s.col BETWEEN b.c0 AND b.c1",
            terms.where(f"s.level = {p.level}"),
        )
        tally.add(rows(sql, [*(list(b) for b in blocks), *terms.params]))
    if p.edges and query.area is not None:
        edge_rows, edge_cols = (list(v) for v in zip(*p.edges, strict=True))
        occupied = rows(
            "SELECT DISTINCT s.row, s.col FROM unnest(%s::integer[], %s::integer[]) AS e(r, c)"
            f" JOIN stats_cells s ON s.row = e.r AND s.col = e.c WHERE s.level = {p.level}"
            " AND s.month = ANY(%s::integer[])",
            [edge_rows, edge_cols, months],
        )
        if occupied:
            _edge_crimes(rows, query, p, months, sorted(occupied), query.area, tally)


def _edge_crimes(
    rows: Rows,
    query: StatsQuery,
    p: Plan,
    months: list[int],
    cells: list[tuple[int, int]],
    area: Polygon,
    tally: Tally,
) -> None:
    """Count the crimes of the given cells at ``p.level`` that lie in ``area``, one index probe per cell."""
    boxes = [cell_box(p.level, r, c, 1e-7) for r, c in cells]
    terms = _Terms("c", months, p)
    params: list[Any] = [[r for r, _ in cells], [c for _, c in cells], *(list(v) for v in zip(*boxes, strict=True))]
    params.extend(terms.params)
    test = area_sql(area, _GEOMETRY, params)
    sql = _grouped(
        _crime_groups(query),
        "count(*)",
        "unnest(%s::integer[], %s::integer[], %s::float8[], %s::float8[], %s::float8[], %s::float8[])"
        " AS e(r, c, w, s, e, n) JOIN crimes c ON c.geom && ST_MakeEnvelope(e.w, e.s, e.e, e.n, 4326)",
        terms.where(f"({_ROW} >> {p.level}) = e.r", f"({_COL} >> {p.level}) = e.c", test),
    )
    tally.add(rows(sql, params))


def _crimes(rows: Rows, query: StatsQuery, p: Plan, months: list[int], tally: Tally) -> None:
    terms = _Terms("c", months, p)
    extra: list[str] = []
    params = list(terms.params)
    if query.area is not None:
        extra.append(area_sql(query.area, _GEOMETRY, params))
    elif "cell" in query.group:
        extra.append("c.geom IS NOT NULL")
    tally.add(rows(_grouped(_crime_groups(query), "count(*)", "crimes c", terms.where(*extra)), params))
