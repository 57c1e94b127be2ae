"""Crime counts in the PostGIS store: the same pre-aggregated tables and plan as the embedded store.

:mod:`crimemap.store.stats_plan` decides where a query's counts come from and
:mod:`crimemap.store.count_reads` reads them, once for both stores;
:class:`PostgisCounts` is how this engine spells those statements. Schema 2 keeps each crime's grid cell
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

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg

from crimemap import geo
from crimemap.query import Area
from crimemap.store import stats_neighbourhoods as kept
from crimemap.store.compiler import Geometry
from crimemap.store.count_reads import BUILT_KEY, CountSql
from crimemap.store.documents import Documents
from crimemap.store.postgis.crimes import CRIME_GEOMETRY
from crimemap.store.postgis.dialect import area_sql, exact_sql, text
from crimemap.store.postgis.stops import GEOMETRY as STOP_GEOMETRY
from crimemap.store.stats_plan import LEVELS

_SPAN = geo.ROW_SPAN
_COL_MASK = geo.ROW_SPAN - 1
_ROW_SHIFT = _SPAN.bit_length() - 1

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
        with (
            conn.cursor() as cur,
            cur.copy("COPY stats_neighbourhoods (month, force, category, neighbourhood, crimes) FROM STDIN") as copy,
        ):
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


class PostgisCounts(CountSql):
    """How the PostGIS store spells a count's statements (:mod:`crimemap.store.count_reads`)."""

    mark = "%s"
    total = "sum(s.crimes)::bigint"
    wide = "::bigint"
    lsoa = text("c.lsoa_code")
    """A crime's LSOA code, compared and sorted byte-wise as the embedded store does."""
    crimes = CRIME_GEOMETRY

    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    def rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return self._rows(sql, params)

    def one_of(self, column: str, codes: list[int], sql_type: str) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%s::{sql_type}[])", [list(codes)]

    def table(
        self, alias: str, columns: tuple[str, ...], values: Sequence[tuple[int, ...]], sql_type: str
    ) -> tuple[str, list[Any]]:
        arrays = ", ".join(f"%s::{sql_type}[]" for _ in columns)
        return f"unnest({arrays}) AS {alias}({', '.join(columns)})", [list(c) for c in zip(*values, strict=True)]

    def exact(self, area: Area, geometry: Geometry, params: list[Any]) -> str:
        return exact_sql(area, geometry, params)

    def in_ranges(self, where: str) -> tuple[str, str]:
        """Each range in a ``LATERAL`` subquery; ``OFFSET 0`` keeps it one, so the planner walks range by range."""
        columns = "c.month, c.category, c.force, c.outcome, c.lsoa_code, c.cell, c.lng, c.lat"
        inner = f"SELECT {columns} FROM crimes c WHERE {where} AND c.cell BETWEEN r.lo AND r.hi OFFSET 0"
        return f"CROSS JOIN LATERAL ({inner}) AS c", "TRUE"

    def stop_area_terms(self, area: Area, params: list[Any]) -> list[tuple[str, str, list[Any]]]:
        """The ``stops-street`` area test: the stops' ``(month, geom)`` GiST index, then the exact test."""
        params = list(params)
        return [("stops s", "s.geom IS NOT NULL AND " + area_sql(area, STOP_GEOMETRY, params), params)]


Rows = Callable[[str, list[Any]], list[tuple[Any, ...]]]
