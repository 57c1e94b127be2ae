"""Crime counts in the embedded store: pre-aggregated tables, kept up to date by loads, and the reads.

The tables (in :data:`crimemap.store.sqlite.schema.SCHEMA`) and how a query
uses them are described in :mod:`crimemap.store.stats_plan`. A load calls
:func:`refresh` once, from its writer's ``finish``, with the (month, force)
sets it replaced: their counts are deleted and made again from the crimes, in
set-based statements inside the load's transaction, so a reader sees the
crimes and their counts change together. A file made before the counts
existed gets them whole the first time it is opened for writing
(:func:`ensure_built`); until then, read-only, every count is made from the
crimes (slower, the same answer).

Many ranges (blocks of cells, grid cell ranges) are passed to one statement as
a JSON array read by ``json_each``, so a query is a handful of statements
whatever the shape of its area.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from crimemap import geo
from crimemap.geometry import areas
from crimemap.query import Polygon
from crimemap.stats_query import StatsQuery
from crimemap.store import stats_neighbourhoods as kept
from crimemap.store.documents import Documents
from crimemap.store.sqlite.connection import Reader
from crimemap.store.sqlite.crimes import CRIME_GEOMETRY
from crimemap.store.sqlite.dialect import area_sql
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
LSOA = "c.lsoa"
"""A crime's LSOA, as its code into ``lsoas`` (decoded with the answer)."""


# -- keeping the counts ------------------------------------------------------------------------------


def _fine_counts(conn: sqlite3.Connection, where: str, params: Iterable[Any]) -> None:
    """``temp.stats_fine``: the crimes matching ``where`` counted by month, force, category, outcome, level-3 cell."""
    fine = LEVELS[0]
    conn.execute("DROP TABLE IF EXISTS temp.stats_fine")
    conn.execute(
        "CREATE TEMP TABLE stats_fine AS SELECT month, force, category, coalesce(outcome, -1) AS outcome,"
        f" CASE WHEN cell >= 0 THEN (cell >> {_ROW_SHIFT}) >> {fine} END AS row,"
        f" CASE WHEN cell >= 0 THEN (cell & {_COL_MASK}) >> {fine} END AS col, count(*) AS crimes"
        f" FROM crimes WHERE {where} GROUP BY 1, 2, 3, 4, 5, 6",
        tuple(params),
    )


def _insert_from_fine(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO stats_totals SELECT month, force, category, sum(crimes) FROM temp.stats_fine GROUP BY 1, 2, 3"
    )
    conn.execute(
        "INSERT INTO stats_outcomes SELECT month, force, category, outcome, sum(crimes)"
        " FROM temp.stats_fine GROUP BY 1, 2, 3, 4"
    )
    for level in LEVELS:
        shift = level - LEVELS[0]
        conn.execute(
            f"INSERT INTO stats_cells SELECT {level}, month, row >> {shift}, col >> {shift}, force, category,"
            f" sum(crimes) FROM temp.stats_fine WHERE row IS NOT NULL GROUP BY 2, 3, 4, 5, 6"
        )
    conn.execute("DROP TABLE temp.stats_fine")


def refresh(conn: sqlite3.Connection, replaced: Iterable[tuple[int, int]]) -> None:
    """Make the counts of the (month, force) sets a load replaced again, inside the load's transaction."""
    if not _built(conn):
        rebuild(conn)
        return
    by_month: dict[int, set[int]] = {}
    for month, force in replaced:
        by_month.setdefault(month, set()).add(force)
    for month, forces in sorted(by_month.items()):
        marks = ",".join("?" * len(forces))
        params = (month, *sorted(forces))
        for table in ("stats_totals", "stats_outcomes"):
            conn.execute(f"DELETE FROM {table} WHERE month = ? AND force IN ({marks})", params)
        for level in LEVELS:
            conn.execute(f"DELETE FROM stats_cells WHERE level = {level} AND month = ? AND force IN ({marks})", params)
        _fine_counts(conn, f"month = ? AND force IN ({marks})", params)
        _insert_from_fine(conn)


def rebuild(conn: sqlite3.Connection) -> None:
    """Make every count again from the crimes (a file older than the counts, or a repair)."""
    for table in ("stats_totals", "stats_outcomes", "stats_cells"):
        conn.execute(f"DELETE FROM {table}")
    months = [m for (m,) in conn.execute("SELECT DISTINCT month FROM crimes ORDER BY month")]
    for month in months:
        _fine_counts(conn, "month = ?", (month,))
        _insert_from_fine(conn)
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, '1')", (BUILT_KEY,))


def ensure_built(conn: sqlite3.Connection) -> None:
    """Give a file made before the counts existed its counts (on a writable open; one transaction)."""
    if _built(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _built(conn):
            rebuild(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _built(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM meta WHERE key = ?", (BUILT_KEY,)).fetchone() is not None


def refresh_neighbourhoods(conn: sqlite3.Connection, replaced: Iterable[tuple[int, int]]) -> None:
    """Keep the counts per neighbourhood (:mod:`crimemap.store.stats_neighbourhoods`), in the load's transaction."""
    documents = _DOCUMENTS.many(conn.execute(*_DOCUMENTS.kind_query(kept.BOUNDARY_KIND, None)).fetchall())

    def execute(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return conn.execute(sql, params).fetchall()

    def insert(rows: list[kept.Row]) -> None:
        conn.executemany("INSERT INTO stats_neighbourhoods VALUES (?, ?, ?, ?, ?)", rows)

    kept.Kept(execute, insert, "?").refresh(documents, replaced)


_DOCUMENTS = Documents("?")


def ensure_neighbourhoods_kept(conn: sqlite3.Connection) -> None:
    """Give a file made before the counts per neighbourhood existed its counts (on a writable open)."""
    if conn.execute("SELECT 1 FROM meta WHERE key = ?", (kept.KEPT_KEY,)).fetchone() is not None:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM meta WHERE key = ?", (kept.KEPT_KEY,)).fetchone() is None:
            refresh_neighbourhoods(conn, ())
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


# -- reading -------------------------------------------------------------------------------------------


def _marks(values: Iterable[Any]) -> str:
    return ",".join("?" for _ in values)


class _Terms:
    """The WHERE terms every part of a query shares: months, categories, forces."""

    def __init__(self, alias: str, months: list[int], p: Plan) -> None:
        self.sql = [f"{alias}.month IN ({_marks(months)})"]
        self.params: list[Any] = list(months)
        if p.category_codes:
            self.sql.append(f"{alias}.category IN ({_marks(p.category_codes)})")
            self.params.extend(p.category_codes)
        if p.force_codes:
            self.sql.append(f"{alias}.force IN ({_marks(p.force_codes)})")
            self.params.extend(p.force_codes)

    def where(self, *extra: str) -> str:
        return " AND ".join([*self.sql, *extra])


def stats(db: Reader, query: StatsQuery, outcome_slug: Callable[[int], str | None]) -> list[tuple[Any, ...]]:
    """The counts of ``query`` (see :meth:`crimemap.store.base.Store.stats`)."""
    stored = [m for (m,) in db.execute("SELECT DISTINCT month FROM loads WHERE kind = 'street'")]
    months = months_between(stored, query)
    tally = Tally()
    p = plan(query)
    if months and p.source != "crimes" and db.one("SELECT 1 FROM meta WHERE key = ?", (BUILT_KEY,)) is None:
        p = Plan("crimes", category_codes=p.category_codes, force_codes=p.force_codes)
    if months:
        if p.source in ("totals", "outcomes"):
            terms = _Terms("s", months, p)
            sql = grouped(cube_groups(query, "s", 0), "sum(s.crimes)", f"stats_{p.source} s", terms.where())
            tally.add(db.rows(sql, terms.params))
        elif p.source == "cells":
            _cells(db, query, p, months, tally)
        else:
            _crimes(db, query, p, months, tally)
    return decode(query, tally, lambda code: None if code < 0 else outcome_slug(code), _lsoa_codes(db, query, tally))


def neighbourhood_stats(db: Reader, query: StatsQuery, made: str) -> list[tuple[Any, ...]] | None:
    """The kept counts of ``query`` grouped by neighbourhood, if kept for the boundaries of fingerprint ``made``."""
    if not kept.answers(query) or not kept.usable(db.execute(
        "SELECT value FROM meta WHERE key = ?", [kept.KEPT_KEY]).fetchall(), made):  # fmt: skip
        return None

    def codes_in(column: str, codes: list[int]) -> tuple[str, list[Any]]:
        return f"{column} IN ({_marks(codes)})", list(codes)

    sql, params = kept.read_sql(query, "?", codes_in)
    return kept.decoded(query, db.rows(sql, params))


def _cells(db: Reader, query: StatsQuery, p: Plan, months: list[int], tally: Tally) -> None:
    terms = _Terms("s", months, p)
    groups = cube_groups(query, "s", p.level)
    if p.inside is None:
        sql = grouped(groups, "sum(s.crimes)", "stats_cells s", terms.where(f"s.level = {p.level}"))
        tally.add(db.rows(sql, terms.params))
        return
    if p.inside:
        sql = grouped(
            groups,
            "sum(s.crimes)",
            "json_each(?) AS b CROSS JOIN stats_cells AS s",
            terms.where(
                f"s.level = {p.level}",
                "s.row BETWEEN b.value ->> 0 AND b.value ->> 2",
                "s.col BETWEEN b.value ->> 1 AND b.value ->> 3",
            ),
        )
        tally.add(db.rows(sql, [orjson.dumps(p.inside).decode(), *terms.params]))
    if p.edges and query.area is not None:
        occupied = db.execute(
            f"SELECT DISTINCT s.row, s.col FROM json_each(?) AS e CROSS JOIN stats_cells AS s"
            f" WHERE s.level = {p.level} AND s.month IN ({_marks(months)})"
            " AND s.row = e.value ->> 0 AND s.col = e.value ->> 1",
            [orjson.dumps(p.edges).decode(), *months],
        ).fetchall()
        ranges = edge_ranges(query.area, p.level, occupied)
        _crimes_in_ranges(db, query, p, months, ranges, query.area, tally)


def _crimes(db: Reader, query: StatsQuery, p: Plan, months: list[int], tally: Tally) -> None:
    if query.area is None:
        terms = _Terms("c", months, p)
        located = ["c.cell >= 0"] if {"cell", "lng"} & set(query.group) else []
        tally.add(
            db.rows(grouped(crime_groups(query, LSOA), "count(*)", "crimes c", terms.where(*located)), terms.params)
        )
        return
    inside: list[tuple[int, int]] = []
    edge: list[tuple[int, int]] = []
    for r in areas.area_ranges(query.area):
        (inside if r.inside else edge).append((r.lo, r.hi))
    _crimes_in_ranges(db, query, p, months, inside, None, tally)
    _crimes_in_ranges(db, query, p, months, edge, query.area, tally)


def _crimes_in_ranges(
    db: Reader,
    query: StatsQuery,
    p: Plan,
    months: list[int],
    ranges: list[tuple[int, int]],
    test: Polygon | None,
    tally: Tally,
) -> None:
    """Count the crimes in grid cell ranges (each one primary-key range scan per month), tested against ``test``."""
    if not ranges:
        return
    terms = _Terms("c", months, p)
    extra = ["c.cell BETWEEN r.value ->> 0 AND r.value ->> 1"]
    params: list[Any] = [orjson.dumps(ranges).decode(), *terms.params]
    if test is not None:
        extra.append(area_sql(test, CRIME_GEOMETRY, params))
    sql = grouped(
        crime_groups(query, LSOA), "count(*)", "json_each(?) AS r CROSS JOIN crimes AS c", terms.where(*extra)
    )
    tally.add(db.rows(sql, params))


def _lsoa_codes(db: Reader, query: StatsQuery, tally: Tally) -> Callable[[int], str]:
    if "lsoa" not in query.group:
        return str
    at = query.group.index("lsoa")
    codes = sorted({key[at] for key in tally.counts})
    found = dict(db.execute("SELECT code, lsoa_code FROM lsoas WHERE code IN (SELECT value FROM json_each(?))",
                            [orjson.dumps(codes).decode()]).fetchall())  # fmt: skip
    return lambda code: found.get(code, "")
