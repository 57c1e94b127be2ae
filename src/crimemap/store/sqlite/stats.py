"""Crime counts in the embedded store: pre-aggregated tables kept up to date by loads, and how it spells a read.

The tables (in :data:`crimemap.store.sqlite.schema.SCHEMA`) and how a query
uses them are described in :mod:`crimemap.store.stats_plan`. A load calls
:func:`refresh` once, from its writer's ``finish``, with the (month, force)
sets it replaced: their counts are deleted and made again from the crimes, in
set-based statements inside the load's transaction, so a reader sees the
crimes and their counts change together. A file made before the counts
existed gets them whole the first time it is opened for writing
(:func:`ensure_built`); until then, read-only, every count is made from the
crimes (slower, the same answer).

The reads are planned once for both stores (:mod:`crimemap.store.count_reads`);
:class:`SqliteCounts` is what this engine spells its own way: many ranges
(blocks of cells, grid cell ranges) go to one statement as a JSON array read by
``json_each``, and a crime's LSOA is read as its code into ``lsoas``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from crimemap import geo
from crimemap.geometry import areas
from crimemap.query import Area
from crimemap.stats_query import StatsQuery
from crimemap.store import stats_neighbourhoods as kept
from crimemap.store.compiler import Geometry
from crimemap.store.count_reads import BUILT_KEY, CountSql
from crimemap.store.documents import Documents
from crimemap.store.load_counts import LoadCounts
from crimemap.store.sqlite.connection import Reader
from crimemap.store.sqlite.crimes import CRIME_GEOMETRY
from crimemap.store.sqlite.dialect import area_sql
from crimemap.store.sqlite.load_connection import SqlConnection
from crimemap.store.sqlite.stops import GEOMETRY as STOP_GEOMETRY
from crimemap.store.stats_plan import LEVELS, Tally

_SPAN = geo.ROW_SPAN
_COL_MASK = geo.ROW_SPAN - 1
_ROW_SHIFT = _SPAN.bit_length() - 1


# -- keeping the counts ------------------------------------------------------------------------------


def _fine_counts(conn: SqlConnection, where: str, params: Iterable[Any]) -> None:
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


def _insert_from_fine(conn: SqlConnection) -> None:
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


RUN_CRIMES = 1_000_000
"""At most about this many stored crimes (whole months) are counted in one pass of :func:`refresh`."""

_REPLACED = "(month, force) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))"
"""The (month, force) sets a load replaced, given as one JSON array of pairs."""


def refresh(conn: SqlConnection, replaced: Iterable[tuple[int, int]], written: LoadCounts | None = None) -> None:
    """Make the counts of the (month, force) sets a load replaced again, inside the load's transaction.

    The sets whose crimes ``written`` counted as the load wrote them are
    inserted from its groups; the rest are counted from the stored crimes.
    Consecutive months are counted together (up to :data:`RUN_CRIMES` stored
    crimes), so a load of many small months runs a dozen statements, not a
    dozen a month; each pass reads one range of the crimes' clustered key.
    """
    if not _built(conn):
        rebuild(conn)
        return
    replaced = list(replaced)
    counted, uncounted = written.counted(replaced) if written is not None else ([], replaced)
    stored = dict(conn.execute("SELECT month, sum(rows) FROM loads WHERE kind = 'street' GROUP BY month"))
    for sets, count in ((replaced, False), (uncounted, True)):
        by_month: dict[int, set[int]] = {}
        for month, force in sets:
            by_month.setdefault(month, set()).add(force)
        for run in _consecutive_runs(sorted(by_month), stored):
            pairs = orjson.dumps([[m, f] for m in run for f in sorted(by_month[m])]).decode()
            where, params = f"month BETWEEN ? AND ? AND {_REPLACED}", (run[0], run[-1], pairs)
            if count:
                _fine_counts(conn, where, params)
                _insert_from_fine(conn)
                continue
            for table in ("stats_totals", "stats_outcomes"):
                conn.execute(f"DELETE FROM {table} WHERE {where}", params)
            for level in LEVELS:
                conn.execute(f"DELETE FROM stats_cells WHERE level = {level} AND {where}", params)
    if counted:
        assert written is not None
        for table, rows in written.tables(counted).items():
            marks = ", ".join("?" * rows.num_columns)
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def _consecutive_runs(months: list[int], stored: dict[int, int]) -> list[list[int]]:
    """``months`` (sorted) cut into runs of consecutive months holding at most :data:`RUN_CRIMES` crimes each."""
    runs: list[list[int]] = []
    crimes = 0
    for month in months:
        rows = stored.get(month) or 0
        if runs and month == runs[-1][-1] + 1 and crimes + rows <= RUN_CRIMES:
            runs[-1].append(month)
            crimes += rows
        else:
            runs.append([month])
            crimes = rows
    return runs


def rebuild(conn: SqlConnection) -> None:
    """Make every count again from the crimes (a file older than the counts, or a repair)."""
    for table in ("stats_totals", "stats_outcomes", "stats_cells"):
        conn.execute(f"DELETE FROM {table}")
    months = [m for (m,) in conn.execute("SELECT DISTINCT month FROM crimes ORDER BY month")]
    for month in months:
        _fine_counts(conn, "month = ?", (month,))
        _insert_from_fine(conn)
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, '1')", (BUILT_KEY,))


def ensure_built(conn: SqlConnection) -> None:
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


def _built(conn: SqlConnection) -> bool:
    return conn.execute("SELECT 1 FROM meta WHERE key = ?", (BUILT_KEY,)).fetchone() is not None


def refresh_neighbourhoods(conn: SqlConnection, replaced: Iterable[tuple[int, int]]) -> None:
    """Keep the counts per neighbourhood (:mod:`crimemap.store.stats_neighbourhoods`), in the load's transaction."""
    documents = _DOCUMENTS.many(conn.execute(*_DOCUMENTS.kind_query(kept.BOUNDARY_KIND, None)).fetchall())

    def execute(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return conn.execute(sql, params).fetchall()

    def insert(rows: list[kept.Row]) -> None:
        conn.executemany("INSERT INTO stats_neighbourhoods VALUES (?, ?, ?, ?, ?)", rows)

    kept.Kept(execute, insert, "?").refresh(documents, replaced)


_DOCUMENTS = Documents("?")


def ensure_neighbourhoods_kept(conn: SqlConnection) -> None:
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


class SqliteCounts(CountSql):
    """How the embedded store spells a count's statements (:mod:`crimemap.store.count_reads`)."""

    mark = "?"
    lsoa = "c.lsoa"
    crimes = CRIME_GEOMETRY

    def __init__(self, db: Reader) -> None:
        self.db = db

    def rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return list(self.db.rows(sql, params))

    def one_of(self, column: str, codes: list[int], sql_type: str) -> tuple[str, list[Any]]:
        return f"{column} IN ({','.join('?' * len(codes))})", list(codes)

    def table(
        self, alias: str, columns: tuple[str, ...], values: Sequence[tuple[int, ...]], sql_type: str
    ) -> tuple[str, list[Any]]:
        named = ", ".join(f"value ->> {i} AS {c}" for i, c in enumerate(columns))
        return f"(SELECT {named} FROM json_each(?)) AS {alias}", [orjson.dumps(values).decode()]

    def exact(self, area: Area, geometry: Geometry, params: list[Any]) -> str:
        return area_sql(area, geometry, params)

    def lsoa_codes(self, query: StatsQuery, tally: Tally) -> Callable[[int], str]:
        if "lsoa" not in query.group:
            return str
        at = query.group.index("lsoa")
        codes = sorted({key[at] for key in tally.counts})
        found = dict(self.db.execute("SELECT code, lsoa_code FROM lsoas WHERE code IN (SELECT value FROM json_each(?))",
                                     [orjson.dumps(codes).decode()]).fetchall())  # fmt: skip
        return lambda code: found.get(code, "")

    def stop_area_terms(self, area: Area, params: list[Any]) -> list[tuple[str, str, list[Any]]]:
        """The area's cell ranges along the stops' ``(month, cell, id)`` key; those on its edge tested exactly."""
        inside: list[tuple[int, int]] = []
        edge: list[tuple[int, int]] = []
        for r in areas.area_ranges(area):
            (inside if r.inside else edge).append((r.lo, r.hi))
        found = []
        for ranges, exact in ((inside, False), (edge, True)):
            if ranges:
                source, ranged = self.table("r", ("lo", "hi"), ranges, "bigint")
                ranged.extend(params)
                where = "s.cell BETWEEN r.lo AND r.hi"
                if exact:
                    where += " AND " + area_sql(area, STOP_GEOMETRY, ranged)
                found.append((f"{source} CROSS JOIN stops AS s", where, ranged))
        return found
