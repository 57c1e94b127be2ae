"""Crime counts in the PostGIS store: the same pre-aggregated tables and plan as the embedded store.

:mod:`crimemap.store.stats_plan` decides where a query's counts come from;
this module speaks it in PostgreSQL. Schema 2 keeps each crime's grid cell
(``cell``: ``row * ROW_SPAN + col``, ``-1`` without location, made as the
embedded store makes it), so a crime's row and column are the cell's high and
low bits, as in :mod:`crimemap.store.sqlite.stats`, and an area's crimes are
read as cell ranges along the ``(month, cell, id)`` index, each range through
a ``LATERAL`` subquery (see :mod:`crimemap.store.postgis.crimes`), with the
exact test of :func:`crimemap.store.postgis.dialect.exact_sql` on its edges.

A load calls :func:`refresh` from its writer's ``finish`` with the (month,
force) sets it replaced, reading the months the load swapped in; a database
made before the counts existed gets them whole when the store is opened
(:func:`ensure_built`), under the load lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psycopg

from crimemap import geo
from crimemap.geometry import areas
from crimemap.query import Polygon
from crimemap.stats_query import StatsQuery
from crimemap.store import stats_neighbourhoods as kept
from crimemap.store.documents import Documents
from crimemap.store.postgis.crimes import CRIME_GEOMETRY
from crimemap.store.postgis.dialect import exact_sql, text
from crimemap.store.stats_plan import (
    LEVELS,
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
"""The ``meta`` key present once the counts cover every stored crime."""

_SPAN = geo.ROW_SPAN
_COL_MASK = geo.ROW_SPAN - 1
_ROW_SHIFT = _SPAN.bit_length() - 1
WIDE = "::bigint"
"""A kept row number made wide enough to be multiplied into a cell number."""
LSOA = text("c.lsoa_code")
"""A crime's LSOA code, compared and sorted byte-wise as the embedded store does."""

Conn = psycopg.Connection[Any]


# -- keeping the counts ------------------------------------------------------------------------------


def _fine_counts(conn: Conn, crimes: str, where: str, params: list[Any]) -> None:
    """``stats_fine``: the crimes matching ``where`` counted by month, force, category, outcome, level-3 cell."""
    fine = LEVELS[0]
    conn.execute("DROP TABLE IF EXISTS pg_temp.stats_fine")
    conn.execute(
        "CREATE TEMP TABLE stats_fine ON COMMIT DROP AS SELECT month, force, category,"
        " coalesce(outcome, -1) AS outcome,"
        f" CASE WHEN cell >= 0 THEN ((cell >> {_ROW_SHIFT}) >> {fine})::integer END AS row,"
        f" CASE WHEN cell >= 0 THEN ((cell & {_COL_MASK}) >> {fine})::integer END AS col, count(*) AS crimes"
        f" FROM {crimes} WHERE {where} GROUP BY 1, 2, 3, 4, 5, 6",
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


def refresh(conn: Conn, replaced: Iterable[tuple[int, int]], crimes: str = "crimes") -> None:
    """Make the counts of the (month, force) sets a load replaced again from ``crimes``, in the load's transaction."""
    if not _built(conn):
        rebuild(conn, crimes)
        return
    by_month: dict[int, set[int]] = {}
    for month, force in replaced:
        by_month.setdefault(month, set()).add(force)
    for month, forces in sorted(by_month.items()):
        params: list[Any] = [month, sorted(forces)]
        for table in ("stats_totals", "stats_outcomes", "stats_cells"):
            conn.execute(f"DELETE FROM {table} WHERE month = %s AND force = ANY(%s::smallint[])", params)
        _fine_counts(conn, crimes, "month = %s AND force = ANY(%s::smallint[])", params)
        _insert_from_fine(conn)


def rebuild(conn: Conn, crimes: str = "crimes") -> None:
    """Make every count again from the crimes."""
    for table in ("stats_totals", "stats_outcomes", "stats_cells"):
        conn.execute(f"DELETE FROM {table}")
    months = [m for (m,) in conn.execute(f"SELECT DISTINCT month FROM {crimes} ORDER BY month").fetchall()]
    for month in months:
        _fine_counts(conn, crimes, "month = %s", [month])
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


def built(conn: Conn) -> bool:
    """Whether the counts have been built (a store opened read-only cannot build them)."""
    return _built(conn)


def _built(conn: Conn) -> bool:
    return conn.execute("SELECT 1 FROM meta WHERE key = %s", (BUILT_KEY,)).fetchone() is not None


def refresh_neighbourhoods(conn: Conn, replaced: Iterable[tuple[int, int]], crimes: str = "crimes") -> None:
    """Keep the counts per neighbourhood (:mod:`crimemap.store.stats_neighbourhoods`) from ``crimes``, in the
    load's transaction."""
    documents = _DOCUMENTS.many(conn.execute(*_DOCUMENTS.kind_query(kept.BOUNDARY_KIND, None)).fetchall())

    def execute(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description is not None else []

    def insert(rows: list[kept.Row]) -> None:
        with conn.cursor() as cur, cur.copy(
            "COPY stats_neighbourhoods (month, force, category, neighbourhood, crimes) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)

    kept.Kept(execute, insert, "%s", crimes).refresh(documents, replaced)


_DOCUMENTS = Documents("%s")


def ensure_neighbourhoods_kept(conn: Conn) -> None:
    """Give a database made before the counts per neighbourhood existed its counts (``conn`` in autocommit)."""
    if conn.execute("SELECT 1 FROM meta WHERE key = %s", (kept.KEPT_KEY,)).fetchone() is not None:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('crimemap load ' || current_schema()))")
        if conn.execute("SELECT 1 FROM meta WHERE key = %s", (kept.KEPT_KEY,)).fetchone() is None:
            refresh_neighbourhoods(conn, ())


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
            sql = grouped(
                cube_groups(query, "s", 0, WIDE), "sum(s.crimes)::bigint", f"stats_{p.source} s", terms.where()
            )
            tally.add(rows(sql, terms.params))
        elif p.source == "cells":
            _cells(rows, query, p, months, tally)
        else:
            _crimes(rows, query, p, months, tally)
    return decode(query, tally, lambda code: None if code < 0 else outcome_slug(code), str)


def neighbourhood_stats(rows: Rows, query: StatsQuery, made: str) -> list[tuple[Any, ...]] | None:
    """The kept counts of ``query`` grouped by neighbourhood, if kept for the boundaries of fingerprint ``made``."""
    if not kept.answers(query) or not kept.usable(rows("SELECT value FROM meta WHERE key = %s", [kept.KEPT_KEY]), made):
        return None

    def codes_in(column: str, codes: list[int]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%s::smallint[])", [list(codes)]

    sql, params = kept.read_sql(query, "%s", codes_in)
    return kept.decoded(query, rows(sql, params))


def _cells(rows: Rows, query: StatsQuery, p: Plan, months: list[int], tally: Tally) -> None:
    terms = _Terms("s", months, p)
    groups = cube_groups(query, "s", p.level, WIDE)
    if p.inside is None:
        sql = grouped(groups, "sum(s.crimes)::bigint", "stats_cells s", terms.where(f"s.level = {p.level}"))
        tally.add(rows(sql, terms.params))
        return
    if p.inside:
        blocks = list(zip(*p.inside, strict=True))
        sql = grouped(
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
        ranges = edge_ranges(query.area, p.level, [(r, c) for r, c in occupied])
        _crimes_in_ranges(rows, query, p, months, ranges, query.area, tally)


def _crimes(rows: Rows, query: StatsQuery, p: Plan, months: list[int], tally: Tally) -> None:
    if query.area is None:
        terms = _Terms("c", months, p)
        located = ["c.cell >= 0"] if {"cell", "lng"} & set(query.group) else []
        tally.add(rows(grouped(crime_groups(query, LSOA), "count(*)", "crimes c", terms.where(*located)), terms.params))
        return
    inside: list[tuple[int, int]] = []
    edge: list[tuple[int, int]] = []
    for r in areas.area_ranges(query.area):
        (inside if r.inside else edge).append((r.lo, r.hi))
    _crimes_in_ranges(rows, query, p, months, inside, None, tally)
    _crimes_in_ranges(rows, query, p, months, edge, query.area, tally)


def _crimes_in_ranges(
    rows: Rows,
    query: StatsQuery,
    p: Plan,
    months: list[int],
    ranges: list[tuple[int, int]],
    test: Polygon | None,
    tally: Tally,
) -> None:
    """Count the crimes in grid cell ranges (each range one ``(month, cell)`` index scan), tested against ``test``."""
    if not ranges:
        return
    terms = _Terms("c", months, p)
    extra = ["c.cell BETWEEN r.lo AND r.hi"]
    params: list[Any] = [[lo for lo, _ in ranges], [hi for _, hi in ranges], *terms.params]
    if test is not None:
        extra.append(exact_sql(test, CRIME_GEOMETRY, params))
    # OFFSET 0 keeps the subquery a subquery: the planner walks the index range by range (see the module docstring).
    columns = "c.month, c.category, c.force, c.outcome, c.lsoa_code, c.cell"
    inner = f"SELECT {columns} FROM crimes c WHERE {terms.where(*extra)} OFFSET 0"
    source = f"unnest(%s::bigint[], %s::bigint[]) AS r(lo, hi) CROSS JOIN LATERAL ({inner}) AS c"
    tally.add(rows(grouped(crime_groups(query, LSOA), "count(*)", source, "TRUE"), params))
