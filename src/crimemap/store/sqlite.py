"""The embedded store: one SQLite file, standard-library ``sqlite3``, no set-up.

WAL mode lets any number of readers (API worker threads, other processes) read
a consistent snapshot while one load writes; a load is one transaction, so a
failure or a kill -9 halfway leaves the file as it was. See
:mod:`crimemap.store.sqlite_schema` for the layout and why.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely

from crimemap import geo, vocab
from crimemap.months import format_month, parse_month
from crimemap.query import Circle, CrimeQuery, FeatureQuery, Polygon
from crimemap.store.base import (
    CRIME_COLUMNS,
    CRIMES_TABLE,
    Column,
    Crime,
    Feature,
    MonthSummary,
    OutcomeEvent,
    OutcomeRecord,
    PageCursorGone,
    Store,
    StoreError,
    StoreWriter,
    Street,
    TableInfo,
)
from crimemap.store.records import (
    CRIME_FIELDS,
    FORCE_IDS,
    KNOWN_OUTCOMES,
    crime_from_row,
    encode_category_name,
    encode_category_slug,
    encode_force_name,
    encode_pid,
)
from crimemap.store.sqlite_predicates import (
    SqlColumn,
    compile_predicate,
    keyset_condition,
    order_clause,
    polygon_of,
    register_functions,
)
from crimemap.store.sqlite_schema import ensure_schema

_CRIME_SELECT = ", ".join(CRIME_FIELDS)
_FORCE_IDS = FORCE_IDS


READ_CACHE_KIB = 32 * 1024
WRITE_CACHE_KIB = 256 * 1024


def pid_key(pid: bytes) -> int:
    """The non-negative 63-bit integer that indexes a persistent id (see the schema)."""
    return int.from_bytes(pid[:8], "big") >> 1


class SQLiteStore(Store):
    """The embedded store (see the module docstring)."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.url = str(self.path)
        self.readonly = readonly
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise StoreError(f"no store at {self.path}")
        self._local = threading.local()
        self._outcome_names: dict[int, str] = {}
        conn = self._connection()
        if not readonly:
            ensure_schema(conn)
        self._refresh_outcome_names()

    # -- connections -------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        conn.execute("PRAGMA journal_mode = WAL") if not self.readonly else None
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        # Readers (one per server thread, or an export) keep a small page cache and no
        # memory map, so a whole-table export stays within a flat ~100 MB; the OS page
        # cache still holds the file. A load writes with a large cache (see writer()).
        conn.execute(f"PRAGMA cache_size = {-READ_CACHE_KIB}")
        conn.execute("PRAGMA mmap_size = 0")
        conn.isolation_level = None
        register_functions(conn)
        return conn

    def _connection(self) -> sqlite3.Connection:
        """This thread's read connection (sqlite3 connections are not shared across threads)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            conns = self.__dict__.setdefault("_all", [])
            conns.append(conn)
        return conn

    def close(self) -> None:
        for conn in self.__dict__.get("_all", []):
            try:
                conn.close()
            except sqlite3.ProgrammingError:
                pass
        self.__dict__["_all"] = []
        self._local = threading.local()

    def _refresh_outcome_names(self) -> None:
        rows = self._connection().execute("SELECT code, name FROM outcome_kinds").fetchall()
        self._outcome_names = dict(rows)

    @contextmanager
    def writer(self) -> Iterator[StoreWriter]:
        if self.readonly:
            raise StoreError("this store is open read-only")
        conn = self._connect()
        conn.execute(f"PRAGMA cache_size = {-WRITE_CACHE_KIB}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            w = _SQLiteWriter(conn)
            try:
                yield w
                w.finish()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
        self._refresh_outcome_names()

    # -- police.uk ---------------------------------------------------------------------
    def months(self) -> list[MonthSummary]:
        rows = self._connection().execute(
            "SELECT month, group_concat(force), sum(rows) FROM ("
            " SELECT month, force, rows FROM loads WHERE kind = 'street' ORDER BY month, force"
            ") GROUP BY month ORDER BY month DESC"
        )
        return [
            MonthSummary(format_month(m), tuple(_FORCE_IDS[int(f)] for f in forces.split(",")), n)
            for m, forces, n in rows
        ]

    def _crime(self, row: tuple[Any, ...]) -> Crime:
        return crime_from_row(row, self._outcome_names.get)

    def crimes(self, query: CrimeQuery) -> Iterator[Crime]:
        conn = self._connection()
        filters = _crime_filters(query)
        if filters is None:
            return
        where, params = filters
        sql = f"SELECT {_CRIME_SELECT} FROM crimes WHERE {where}"
        limit = query.limit if query.limit is not None else math.inf
        found = 0
        if not query.located:
            for row in conn.execute(sql + " AND cell = -1", params):
                yield self._crime(row)
                found += 1
                if found >= limit:
                    return
            return
        keep = _area_filter(query.area)
        ranges = _area_ranges(query.area)
        if ranges is None:
            ranges = [(0, 1 << 62)]
        sql += " AND cell BETWEEN ? AND ?"
        tail: tuple[float, ...] = ()
        if isinstance(query.area, Circle) and query.area.radius_m <= _PREFILTER_MAX_RADIUS_M:
            # Cells hold rows outside the circle too: drop most of them in SQL, with plain
            # arithmetic (a flat-earth distance with a margin), before Python sees a row.
            sql += " AND (lng - ?) * (lng - ?) * ? + (lat - ?) * (lat - ?) <= ?"
            tail = _circle_prefilter(query.area)
        for lo, hi in ranges:
            cursor = conn.execute(sql, (*params, lo, hi, *tail))
            while batch := cursor.fetchmany(_BATCH):
                for row in keep(batch) if keep is not None else batch:
                    yield self._crime(row)
                    found += 1
                    if found >= limit:
                        return

    def crimes_exceed(self, query: CrimeQuery, n: int) -> bool:
        """Decided on the grid: a count of the rows in the area's cell ranges (by the primary key,
        stopping at ``n + 1``) bounds the answer; only when that bound passes ``n`` are the
        candidates' coordinates read and tested in batches, stopping at ``n + 1`` inside.

        Neither step builds a :class:`Crime`, so a 1,000,000-crime area is refused after
        reading about ``n`` coordinate pairs.
        """
        if not query.located or query.area is None:
            return super().crimes_exceed(query, n)
        filters = _crime_filters(query)
        if filters is None:
            return False
        where, params = filters
        ranges = _area_ranges(query.area) or []
        conn = self._connection()
        count_sql = f"SELECT count(*) FROM (SELECT 1 FROM crimes WHERE {where} AND cell BETWEEN ? AND ? LIMIT ?)"
        candidates = 0
        for lo, hi in ranges:
            candidates += conn.execute(count_sql, (*params, lo, hi, n + 1 - candidates)).fetchone()[0]
            if candidates > n:
                break
        else:
            return False
        count_inside = _area_counter(query.area)
        point_sql = f"SELECT lng, lat FROM crimes WHERE {where} AND cell BETWEEN ? AND ?"
        found = 0
        for lo, hi in ranges:
            cursor = conn.execute(point_sql, (*params, lo, hi))
            while batch := cursor.fetchmany(4096):
                found += count_inside(batch)
                if found > n:
                    return True
        return False

    def street(self, street_id: int) -> Street | None:
        row = self._connection().execute("SELECT id, name, lng, lat FROM streets WHERE id = ?", (street_id,)).fetchone()
        return Street(*row) if row else None

    def nearest_street(self, lng: float, lat: float) -> Street | None:
        conn = self._connection()
        for radius in (200.0, 1_000.0, 5_000.0, 25_000.0):
            best: tuple[float, Street] | None = None
            for lo, hi in geo.cell_ranges_for_circle(lng, lat, radius):
                for row in conn.execute("SELECT id, name, lng, lat FROM streets WHERE cell BETWEEN ? AND ?", (lo, hi)):
                    d = geo.haversine_m(lng, lat, row[2], row[3])
                    if d <= radius and (best is None or d < best[0]):
                        best = (d, Street(*row))
            if best is not None:
                return best[1]
        return None

    def crime_by_persistent_id(self, persistent_id: str) -> Crime | None:
        try:
            pid = bytes.fromhex(persistent_id)
        except ValueError:
            return None
        if len(pid) != 32:
            return None
        row = (
            self._connection()
            .execute(
                f"SELECT {_CRIME_SELECT} FROM crimes WHERE pid_key = ? AND pid = ? ORDER BY month DESC LIMIT 1",
                (pid_key(pid), pid),
            )
            .fetchone()
        )
        return self._crime(row) if row else None

    def outcome_history(self, persistent_id: str) -> list[OutcomeEvent]:
        try:
            pid = bytes.fromhex(persistent_id)
        except ValueError:
            return []
        if len(pid) != 32:
            return []
        rows = (
            self._connection()
            .execute(
                "SELECT DISTINCT outcome, month FROM outcomes WHERE pid_key = ? AND pid = ? ORDER BY month, outcome",
                (pid_key(pid), pid),
            )
            .fetchall()
        )
        return [OutcomeEvent(self._outcome_names.get(o, ""), format_month(m)) for o, m in rows]

    def outcomes(self, query: CrimeQuery) -> Iterator[OutcomeEvent]:
        conn = self._connection()
        where, params = ["1"], []
        if query.month is not None:
            where.append("o.month = ?")
            params.append(parse_month(query.month))
        if query.street_id is not None:
            where.append("o.street_id = ?")
            params.append(query.street_id)
        inside = _area_test(query.area)
        ranges = _area_ranges(query.area) or [(0, 1 << 62)]
        sql = (
            f"SELECT o.outcome, o.month, o.lng, o.lat, o.street_id, o.street_name, o.pid, "
            f"{', '.join('c.' + c.strip() for c in _CRIME_SELECT.split(','))} "
            f"FROM outcomes o LEFT JOIN crimes c ON c.pid_key = o.pid_key AND c.pid = o.pid "
            f"WHERE {' AND '.join(where)} AND o.cell BETWEEN ? AND ?"
        )
        found = 0
        limit = query.limit if query.limit is not None else math.inf
        for lo, hi in ranges:
            for row in conn.execute(sql, (*params, lo, hi)):
                if inside is not None and not inside(row[2], row[3]):
                    continue
                crime = self._crime(row[7:]) if row[7] is not None else None
                yield OutcomeEvent(self._outcome_names.get(row[0], ""), format_month(row[1]), crime)
                found += 1
                if found >= limit:
                    return

    def generation(self) -> str:
        row = self._connection().execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return row[0] if row else "0"

    def last_updated(self) -> dt.datetime | None:
        row = self._connection().execute("SELECT value FROM meta WHERE key = 'last_updated'").fetchone()
        return dt.datetime.fromisoformat(row[0]) if row else None

    # -- feature tables ------------------------------------------------------------------
    def tables(self) -> list[TableInfo]:
        infos = [self._crimes_table_info()]
        rows = self._connection().execute("SELECT id FROM feature_tables ORDER BY id").fetchall()
        infos.extend(t for (tid,) in rows if (t := self.table(tid)) is not None)
        return infos

    def _crimes_table_info(self) -> TableInfo:
        conn = self._connection()
        count = conn.execute("SELECT coalesce(sum(rows), 0) FROM loads WHERE kind = 'street'").fetchone()[0]
        updated = self.last_updated()
        return TableInfo(
            id=CRIMES_TABLE,
            name="police.uk street-level crimes",
            description="Every stored police.uk street-level crime, one feature per crime.",
            columns=CRIME_COLUMNS,
            feature_count=count,
            bbox=None,
            created=updated,
            modified=updated,
        )

    def table(self, table_id: str) -> TableInfo | None:
        if table_id == CRIMES_TABLE:
            return self._crimes_table_info()
        row = (
            self._connection()
            .execute(
                "SELECT id, name, description, columns, feature_count, bbox, created, modified"
                " FROM feature_tables WHERE id = ?",
                (table_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        tid, name, desc, cols, count, bbox, created, modified = row
        return TableInfo(
            id=tid,
            name=name,
            description=desc,
            columns=tuple(Column(n, t) for n, t in orjson.loads(cols)),
            feature_count=count,
            bbox=tuple(orjson.loads(bbox)) if bbox else None,
            created=dt.datetime.fromisoformat(created),
            modified=dt.datetime.fromisoformat(modified),
        )

    def _table_sql(self, table_id: str) -> tuple[str, dict[str, SqlColumn], str, TableInfo] | None:
        """(from-clause, logical columns, key column, info) of a table, or None if unknown."""
        info = self.table(table_id)
        if info is None:
            return None
        if table_id == CRIMES_TABLE:
            return "crimes", _CRIME_SQL_COLUMNS, "id", info
        physical = (
            self._connection().execute("SELECT physical FROM feature_tables WHERE id = ?", (table_id,)).fetchone()[0]
        )
        columns = {c.name: SqlColumn(f"c{i}") for i, c in enumerate(info.columns)}
        return physical, columns, "gx_id", info

    def _select(self, table_id: str, columns: tuple[str, ...] | None) -> tuple[str, str, dict[str, SqlColumn], str]:
        """(select list, from-clause, logical columns, key column) for reading features."""
        found = self._table_sql(table_id)
        if found is None:
            raise StoreError(f"no table {table_id!r}")
        source, sql_columns, key, info = found
        names = columns if columns is not None else tuple(c.name for c in info.columns)
        select = ", ".join([key, "lng", "lat", *(sql_columns[n].expr for n in names)])
        return select, source, sql_columns, key

    def features(self, query: FeatureQuery) -> Iterator[Feature]:
        select, source, columns, key = self._select(query.table, query.columns)
        params: list[Any] = []
        where = ["1"]
        if query.where is not None:
            where.append(compile_predicate(query.where, columns, params))
        clustered = query.table == CRIMES_TABLE and not query.order_by
        if clustered:
            # Crimes in their clustered order (month, cell, id): a page is one range scan of
            # the table itself, with no lookup through another index. The cursor is still
            # the last crime's id; its place in that order is looked up once per page.
            order = "ORDER BY month, cell, id"
            if query.after is not None:
                where.append("(month, cell, id) > (?, ?, ?)")
                params.extend(self._clustered_key(query.after))
        else:
            order = order_clause(query.order_by, columns, key)
            if query.after is not None:
                where.append(keyset_condition(query.order_by, columns, key, query.after, params))
        sql = f"SELECT {select} FROM {source} WHERE {' AND '.join(where)} {order}"
        if query.limit is not None:
            sql += " LIMIT ?"
            params.append(query.limit)
        for row in self._connection().execute(sql, params):
            yield Feature(row[0], row[1], row[2], row[3:])

    def _clustered_key(self, after: tuple[Any, ...]) -> tuple[int, int, int]:
        if len(after) != 1:
            raise ValueError("page token does not fit this query")
        row = self._connection().execute("SELECT month, cell, id FROM crimes WHERE id = ?", (after[0],)).fetchone()
        if row is None:
            raise PageCursorGone(
                f"crime {after[0]} where the previous page ended is no longer stored (its month was reloaded);"
                " start again from the first page"
            )
        return row[0], row[1], row[2]

    def feature(self, table_id: str, gx_id: int, columns: tuple[str, ...] | None = None) -> Feature | None:
        if self.table(table_id) is None:
            return None
        select, source, _, key = self._select(table_id, columns)
        row = self._connection().execute(f"SELECT {select} FROM {source} WHERE {key} = ?", (gx_id,)).fetchone()
        return Feature(row[0], row[1], row[2], row[3:]) if row else None


# -- the crimes table as a feature table ---------------------------------------------------


def _month_text(expr: str) -> str:
    return f"printf('%04d-%02d', {expr} / 12, {expr} % 12 + 1)"


_CRIME_SQL_COLUMNS: dict[str, SqlColumn] = {
    "id": SqlColumn("id"),
    "crime_id": SqlColumn("coalesce(lower(hex(pid)), '')", "pid", encode_pid),
    "month": SqlColumn(_month_text("month"), "month", parse_month, order_preserving=True),
    "reported_by": SqlColumn("(SELECT name FROM forces WHERE code = crimes.force)", "force", encode_force_name),
    "falls_within": SqlColumn("coalesce(falls_within, (SELECT name FROM forces WHERE code = crimes.force))"),
    "longitude": SqlColumn("lng"),
    "latitude": SqlColumn("lat"),
    "location": SqlColumn("street_name"),
    "lsoa_code": SqlColumn("lsoa_code"),
    "lsoa_name": SqlColumn("lsoa_name"),
    "crime_type": SqlColumn(
        "(SELECT name FROM categories WHERE code = crimes.category)", "category", encode_category_name
    ),
    "category": SqlColumn(
        "(SELECT slug FROM categories WHERE code = crimes.category)", "category", encode_category_slug
    ),
    "last_outcome_category": SqlColumn("(SELECT name FROM outcome_kinds WHERE code = crimes.outcome)"),
    "outcome_month": SqlColumn(
        f"CASE WHEN outcome_month IS NULL THEN NULL ELSE {_month_text('outcome_month')} END",
        "outcome_month",
        parse_month,
        order_preserving=True,
    ),
    "context": SqlColumn("context"),
    "location_type": SqlColumn(f"CASE force WHEN {vocab.BTP.code} THEN 'BTP' ELSE 'Force' END"),
    "location_subtype": SqlColumn("location_subtype"),
    "street_id": SqlColumn("street_id"),
}


# -- areas ------------------------------------------------------------------------------


def _crime_filters(query: CrimeQuery) -> tuple[str, list[Any]] | None:
    """The WHERE clause and parameters of a query's month, category, force and map point.

    ``None`` when a category or force is unknown: nothing can match.
    """
    where, params = ["1"], []
    if query.month is not None:
        where.append("month = ?")
        params.append(parse_month(query.month))
    if query.category is not None:
        cat = vocab.CATEGORY_BY_SLUG.get(query.category)
        if cat is None:
            return None
        where.append("category = ?")
        params.append(cat.code)
    if query.force is not None:
        force = vocab.FORCE_BY_ID.get(query.force)
        if force is None:
            return None
        where.append("force = ?")
        params.append(force.code)
    if query.street_id is not None:
        where.append("street_id = ?")
        params.append(query.street_id)
    return " AND ".join(where), params


def _area_ranges(area: Circle | Polygon | None) -> list[tuple[int, int]] | None:
    if area is None:
        return None
    if isinstance(area, Circle):
        return geo.cell_ranges_for_circle(area.center[0], area.center[1], area.radius_m)
    return _polygon_ranges(area)


def _polygon_ranges(area: Polygon) -> list[tuple[int, int]]:
    """Per grid row, the cells between the polygon's westmost and eastmost point in that row."""
    poly = polygon_of(area.ring)
    min_lng, min_lat, max_lng, max_lat = poly.bounds
    ranges: list[tuple[int, int]] = []
    row0, row1 = geo.grid_row(min_lat), geo.grid_row(max_lat)
    if row1 - row0 > 2000:
        return list(geo.cell_ranges_for_box(min_lng, min_lat, max_lng, max_lat))
    for row in range(row0, row1 + 1):
        south = row * geo.GRID_LAT - 90.0
        band = shapely.box(min_lng - 1, south, max_lng + 1, south + geo.GRID_LAT)
        part = poly.intersection(band)
        if part.is_empty:
            continue
        w, _, e, _ = part.bounds
        ranges.extend(geo.cell_ranges_for_box(w, south + geo.GRID_LAT / 2, e, south + geo.GRID_LAT / 2))
    return ranges


_BATCH = 256
"""Rows read from a cursor at a time, so that a polygon tests a batch of points in one shapely call."""


def _area_filter(area: Circle | Polygon | None) -> Callable[[list[Any]], Iterable[Any]] | None:
    """The rows of a batch (``lng``, ``lat`` at 4 and 5) that lie in ``area``, in order.

    A polygon tests the whole batch in one vectorised shapely call: per point
    that costs a tenth of a scalar ``intersects_xy`` call.
    """
    if area is None:
        return None
    if isinstance(area, Circle):
        in_circle = _area_test(area)
        return lambda rows: [r for r in rows if in_circle(r[4], r[5])]
    poly = polygon_of(area.ring)
    intersects_xy = shapely.intersects_xy

    def in_polygon(rows: list[Any]) -> Iterable[Any]:
        lng = np.fromiter((r[4] for r in rows), np.float64, len(rows))
        lat = np.fromiter((r[5] for r in rows), np.float64, len(rows))
        return itertools.compress(rows, intersects_xy(poly, lng, lat).tolist())

    return in_polygon


_PREFILTER_MAX_RADIUS_M = 20_000.0
"""Beyond this the flat-earth prefilter's error could pass its margin; larger circles skip it."""


def _circle_prefilter(area: Circle) -> tuple[float, ...]:
    """Parameters of the SQL prefilter: squared flat distance in degrees², 1% beyond the radius."""
    clng, clat = area.center
    k = math.pi / 180 * geo.EARTH_RADIUS_M
    coslat2 = math.cos(math.radians(clat)) ** 2
    # The flat distance is within 0.5% of the great circle over a few miles; 1% is a safe margin.
    limit = (area.radius_m * 1.01 / k) ** 2
    return clng, clng, coslat2, clat, clat, limit


def _area_test(area: Circle | Polygon | None) -> Any:
    """A fast exact membership test ``(lng, lat) -> bool`` for rows the cell ranges found."""
    if area is None:
        return None
    if isinstance(area, Circle):
        clng, clat = area.center
        r = area.radius_m
        k = math.pi / 180 * geo.EARTH_RADIUS_M
        coslat = math.cos(math.radians(clat))
        inner, outer = (r * 0.995) ** 2, (r * 1.005) ** 2
        haversine = geo.haversine_m

        def in_circle(lng: float, lat: float) -> bool:
            dx, dy = (lng - clng) * coslat * k, (lat - clat) * k
            d2 = dx * dx + dy * dy
            if d2 < inner:
                return True
            if d2 > outer * 1.01:
                return False
            return haversine(lng, lat, clng, clat) <= r

        return in_circle
    poly = polygon_of(area.ring)
    intersects_xy = shapely.intersects_xy

    def in_polygon(lng: float, lat: float) -> bool:
        return bool(intersects_xy(poly, lng, lat))

    return in_polygon


def _area_counter(area: Circle | Polygon) -> Callable[[list[tuple[float, float]]], int]:
    """How many of a batch of ``(lng, lat)`` rows lie in ``area``, tested with numpy at once."""
    if isinstance(area, Circle):
        clng, clat = (math.radians(v) for v in area.center)
        # haversine: d <= r  <=>  a <= sin^2(r / 2R)
        limit_a = math.sin(min(math.pi / 2, area.radius_m / (2 * geo.EARTH_RADIUS_M))) ** 2

        def count_in_circle(batch: list[tuple[float, float]]) -> int:
            lng, lat = np.radians(np.array(batch, dtype=np.float64)).T
            a = np.sin((lat - clat) / 2) ** 2 + math.cos(clat) * np.cos(lat) * np.sin((lng - clng) / 2) ** 2
            return int(np.count_nonzero(a <= limit_a))

        return count_in_circle
    poly = polygon_of(area.ring)

    def count_in_polygon(batch: list[tuple[float, float]]) -> int:
        lng, lat = np.array(batch, dtype=np.float64).T
        return int(np.count_nonzero(shapely.intersects_xy(poly, lng, lat)))

    return count_in_polygon


# -- writing --------------------------------------------------------------------------------

_CRIME_INSERT = (
    "INSERT INTO crimes (month, cell, id, force, category, lng, lat, street_id, street_name, pid, pid_key,"
    " location_subtype, context, lsoa_code, lsoa_name, falls_within, outcome, outcome_month)"
    " VALUES (" + ",".join("?" * 18) + ")"
)
_OUTCOME_INSERT = "INSERT INTO outcomes VALUES (" + ",".join("?" * 11) + ")"
_STREET_INSERT = "INSERT OR IGNORE INTO streets VALUES (?, ?, ?, ?, ?)"
_KNOWN_OUTCOMES = KNOWN_OUTCOMES


def _prepare_crimes(
    crimes: list[Crime],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[int, str]]:
    """Crime records to insertable rows, sorted by the clustered key; runs in a worker process.

    Outcome names that the vocabulary does not know get negative placeholder
    codes, listed in the third element, for the writing process to number.
    """
    if not crimes:
        return [], [], {}
    month = parse_month(crimes[0].month)
    force = vocab.FORCE_BY_ID[crimes[0].force]
    force_name = force.name
    categories = {c.slug: c.code for c in vocab.CATEGORIES}
    known = _KNOWN_OUTCOMES
    unknown: dict[str, int] = {}
    lat0, lng0, dlat, dlng, span = 90.0, 180.0, geo.GRID_LAT, geo.GRID_LNG, geo.ROW_SPAN
    rows = []
    streets: dict[int, tuple[Any, ...]] = {}
    fromhex = bytes.fromhex
    from_bytes = int.from_bytes
    month_of = functools.lru_cache(maxsize=None)(parse_month)
    for c in crimes:
        lng, lat = c.lng, c.lat
        if lng is None or lat is None:
            cell = geo.NO_CELL
        else:
            cell = int((lat + lat0) / dlat) * span + int((lng + lng0) / dlng)
            sid = c.street_id
            if sid is not None and sid not in streets:
                streets[sid] = (sid, c.street_name, lng, lat, cell)
        outcome: int | None = None
        if c.outcome:
            outcome = known.get(c.outcome.lower())
            if outcome is None:
                outcome = unknown.setdefault(c.outcome, -1 - len(unknown))
        pid = fromhex(c.persistent_id) if c.persistent_id else None
        rows.append(
            (
                month, cell, c.id, force.code, categories[c.category], lng, lat, c.street_id, c.street_name,
                pid, from_bytes(pid[:8], "big") >> 1 if pid else None, c.location_subtype, c.context,
                c.lsoa_code, c.lsoa_name, None if c.falls_within == force_name else c.falls_within, outcome,
                month_of(c.outcome_month) if c.outcome_month else None,
            )
        )  # fmt: skip
    rows.sort(key=lambda r: (r[1], r[2]))
    return rows, list(streets.values()), {code: name for name, code in unknown.items()}


def _prepare_outcomes(
    outcomes: list[OutcomeRecord],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[int, str]]:
    """Outcome records to insertable rows (``seq`` is filled in by the writer)."""
    known = _KNOWN_OUTCOMES
    unknown: dict[str, int] = {}
    rows = []
    month = parse_month(outcomes[0].month) if outcomes else 0
    force = vocab.FORCE_BY_ID[outcomes[0].force].code if outcomes else 0
    for o in outcomes:
        if o.lng is None or o.lat is None:
            cell = geo.NO_CELL
        else:
            cell = geo.cell_of(o.lng, o.lat)
        code = known.get(o.outcome.lower())
        if code is None:
            code = unknown.setdefault(o.outcome, -1 - len(unknown))
        pid = bytes.fromhex(o.persistent_id)
        rows.append(
            (month, force, cell, 0, pid, pid_key(pid), code,
             o.lng, o.lat, o.street_id, o.street_name)
        )  # fmt: skip
    return rows, [], {code: name for name, code in unknown.items()}


class _SQLiteWriter(StoreWriter):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.outcome_codes: dict[str, int] = {
            name.lower(): code for code, name in conn.execute("SELECT code, name FROM outcome_kinds")
        }
        self.loaded: dict[str, list[tuple[int, int]]] = {"street": [], "outcomes": []}
        self.deferred_indexes: list[str] = []

    _BULK_DEFERRED_INDEXES = ("crimes_by_pid", "outcomes_by_pid", "crimes_by_id")
    """Secondary indexes a bulk load builds once at the end, by sorting, instead of row by row.

    The persistent-id keys arrive in random order, the costliest to keep up; ids
    arrive in order, but even appending costs more than one sort at the end.
    """

    def expect(self, rows: int) -> None:
        stored = self.conn.execute("SELECT coalesce(sum(rows), 0) FROM loads").fetchone()[0]
        if rows < max(stored, 200_000) or self.deferred_indexes:
            return
        for name in self._BULK_DEFERRED_INDEXES:
            sql = self.conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,))
            found = sql.fetchone()
            if found:
                self.deferred_indexes.append(found[0])
                self.conn.execute(f"DROP INDEX {name}")

    @staticmethod
    def prepare(kind: str, records: list[Any]) -> Any:
        return _prepare_crimes(records) if kind == "street" else _prepare_outcomes(records)

    def _outcome_code(self, name: str) -> int:
        code = self.outcome_codes.get(name.lower())
        if code is None:
            outcome = vocab.outcome_by_name(name)
            code = 1000 + sum(1 for c in self.outcome_codes.values() if c >= 1000)
            self.conn.execute("INSERT INTO outcome_kinds VALUES (?, ?, ?)", (code, outcome.slug, outcome.name))
            self.outcome_codes[name.lower()] = code
        return code

    def _number_unknown(self, rows: list[tuple[Any, ...]], unknown: dict[int, str], column: int) -> None:
        """Give outcome names new to the store their codes (rare: a new name in an archive)."""
        codes = {placeholder: self._outcome_code(name) for placeholder, name in unknown.items()}
        for i, row in enumerate(rows):
            if row[column] is not None and row[column] < 0:
                rows[i] = row[:column] + (codes[row[column]],) + row[column + 1 :]

    def _record_load(self, month: int, force: int, kind: str, rows: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO loads VALUES (?, ?, ?, ?, ?)",
            (month, force, kind, rows, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
        )

    def replace_prepared(self, kind: str, month: str, force: str, batches: Iterable[Any]) -> int:
        m, f = parse_month(month), _force_code(force)
        conn = self.conn
        table = "crimes" if kind == "street" else "outcomes"
        conn.execute(f"DELETE FROM {table} WHERE month = ? AND force = ?", (m, f))
        count = 0
        for rows, streets, unknown in batches:
            if unknown:
                self._number_unknown(rows, unknown, 16 if kind == "street" else 6)
            if kind == "street":
                try:
                    conn.executemany(_CRIME_INSERT, rows)
                except sqlite3.IntegrityError as e:
                    raise StoreError(f"{month} {force}: a crime id is already stored for another crime ({e})") from None
            else:
                rows = [(r[0], r[1], r[2], count + i, *r[4:]) for i, r in enumerate(rows)]
                conn.executemany(_OUTCOME_INSERT, rows)
            conn.executemany(_STREET_INSERT, streets)
            count += len(rows)
        self._record_load(m, f, kind, count)
        self.loaded[kind].append((m, f))
        return count

    def replace_table(self, info: TableInfo, features: Iterable[Feature]) -> int:
        if info.id == CRIMES_TABLE:
            raise StoreError(f"{CRIMES_TABLE!r} is the police.uk crimes table; load police.uk files instead")
        conn = self.conn
        old = conn.execute("SELECT physical, created FROM feature_tables WHERE id = ?", (info.id,)).fetchone()
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if old is not None:
            conn.execute(f"DROP TABLE {old[0]}")
            conn.execute("DELETE FROM feature_tables WHERE id = ?", (info.id,))
        n = conn.execute("SELECT coalesce(max(CAST(substr(physical, 4) AS INTEGER)), 0) + 1 FROM feature_tables")
        physical = f"ft_{n.fetchone()[0]}"
        types = {
            "integer": "INTEGER",
            "double": "REAL",
            "string": "TEXT",
            "boolean": "INTEGER",
            "datetime": "TEXT",
        }
        cols = ", ".join(f"c{i} {types[c.type]}" for i, c in enumerate(info.columns))
        conn.execute(
            f"CREATE TABLE {physical} (gx_id INTEGER PRIMARY KEY, lng REAL, lat REAL, cell INTEGER"
            + (", " + cols if cols else "")
            + ")"
        )
        insert = f"INSERT INTO {physical} VALUES ({','.join('?' * (4 + len(info.columns)))})"
        count = 0
        bbox = [math.inf, math.inf, -math.inf, -math.inf]
        batch: list[tuple[Any, ...]] = []
        for feat in features:
            if feat.lng is not None and feat.lat is not None:
                cell = geo.cell_of(feat.lng, feat.lat)
                bbox = [
                    min(bbox[0], feat.lng),
                    min(bbox[1], feat.lat),
                    max(bbox[2], feat.lng),
                    max(bbox[3], feat.lat),
                ]
            else:
                cell = None
            props = tuple(int(v) if isinstance(v, bool) else v for v in feat.properties)
            batch.append((feat.gx_id, feat.lng, feat.lat, cell, *props))
            count += 1
            if len(batch) >= 10_000:
                conn.executemany(insert, batch)
                batch.clear()
        conn.executemany(insert, batch)
        conn.execute(f"CREATE INDEX {physical}_cell ON {physical} (cell)")
        conn.execute(
            "INSERT INTO feature_tables VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                info.id,
                physical,
                info.name,
                info.description,
                orjson.dumps([[c.name, c.type] for c in info.columns]).decode(),
                count,
                orjson.dumps(bbox).decode() if count and math.isfinite(bbox[0]) else None,
                old[1] if old is not None else now,
                now,
            ),
        )
        return count

    def finish(self) -> None:
        """Rebuild deferred indexes, complete the outcome dates, stamp the load."""
        conn = self.conn
        for sql in self.deferred_indexes:
            try:
                conn.execute(sql)
            except sqlite3.IntegrityError as e:
                raise StoreError(f"two crimes of this load share an id ({e}); nothing was stored") from None
        self.deferred_indexes.clear()
        self._date_outcomes()
        conn.execute(
            "INSERT INTO meta VALUES ('generation', '1')"
            " ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )
        conn.execute(
            "INSERT OR REPLACE INTO meta VALUES ('last_updated', ?)",
            (dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),),
        )

    def _date_outcomes(self) -> None:
        """A crime's ``outcome_month`` is the newest month of its outcome history.

        Only rows related to this load are touched, never the whole store: the
        crimes whose outcomes arrived now, and, when outcomes were stored before,
        this load's crimes.
        """
        conn = self.conn
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS loaded_sets (kind TEXT, month INTEGER, force INTEGER)")
        conn.execute("DELETE FROM temp.loaded_sets")
        conn.executemany(
            "INSERT INTO temp.loaded_sets VALUES (?, ?, ?)",
            [(kind, m, f) for kind, sets in self.loaded.items() for m, f in sets],
        )
        # Keep a date given with the crime (a harvested one) when no outcome rows are stored for it.
        newest = (
            "coalesce((SELECT max(o.month) FROM outcomes o WHERE o.pid_key = crimes.pid_key AND o.pid = crimes.pid),"
            " outcome_month)"
        )
        this_load = "(month, force) IN (SELECT month, force FROM temp.loaded_sets WHERE kind = ?)"
        if self.loaded["outcomes"]:
            # Set-based: the newest month of every persistent id this load's outcomes name,
            # over all stored outcomes, then one join that rewrites only the crimes it changes.
            conn.execute("DROP TABLE IF EXISTS temp.newest_outcomes")
            conn.execute(
                "CREATE TEMP TABLE newest_outcomes AS SELECT pid_key, pid, max(month) AS month FROM outcomes"
                f" WHERE pid_key IN (SELECT pid_key FROM outcomes WHERE {this_load}) GROUP BY pid_key, pid",
                ("outcomes",),
            )
            conn.execute(
                "UPDATE crimes SET outcome_month = n.month FROM temp.newest_outcomes AS n"
                " WHERE crimes.pid_key = n.pid_key AND crimes.pid = n.pid AND crimes.outcome_month IS NOT n.month"
            )
            conn.execute("DROP TABLE temp.newest_outcomes")
        outcomes_before = conn.execute(
            f"SELECT 1 FROM loads WHERE kind = 'outcomes' AND NOT {this_load} LIMIT 1", ("outcomes",)
        ).fetchone()
        if self.loaded["street"] and outcomes_before:
            conn.execute(
                f"UPDATE crimes SET outcome_month = {newest}"
                f" WHERE {this_load} AND pid_key IS NOT NULL AND outcome_month IS NOT {newest}",
                ("street",),
            )


def _force_code(force: str) -> int:
    found = vocab.FORCE_BY_ID.get(force)
    if found is None:
        raise StoreError(f"unknown force {force!r}; known forces: {', '.join(_FORCE_IDS)}")
    return found.code
