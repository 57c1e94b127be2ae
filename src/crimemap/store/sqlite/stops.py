"""Stops and searches in the embedded store: the ``stops-*`` answers, records, the table, and loads.

Stops are kept as crimes are (:mod:`crimemap.store.sqlite.crimes`): clustered
on ``(month, cell, id)`` in a ``WITHOUT ROWID`` table, each with its police.uk
JSON object made at load time (:mod:`crimemap.store.stop_rows`) and its unit
vector. A ``stops-street`` answer is one ``group_concat`` per range of grid
cells the area covers, tested exactly inside the SQL, handed back as bytes: no
stop becomes a Python object. The other methods read by id (file order)
through the ``(month, force, id)`` and ``(street_id, month, id)`` indexes.

A file opened read-only that an older crimemap wrote has no ``stops`` table
(a writable open adds it): it simply holds no stops.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from crimemap import vocab
from crimemap.errors import StoreError
from crimemap.geometry import areas
from crimemap.geometry.areas import rectangle
from crimemap.months import format_month, parse_month
from crimemap.query import Circle, StopQuery
from crimemap.records import Stop
from crimemap.store.base import JsonList
from crimemap.store.batches import cells as grid_cells
from crimemap.store.catalogue import STOP_COLUMNS, STOPS_TABLE, MonthSummary, TableInfo
from crimemap.store.compiler import Geometry, SqlColumn
from crimemap.store.sqlite.connection import Reader
from crimemap.store.sqlite.dialect import circle_sql
from crimemap.store.sqlite.load_connection import LoadConnection, SqlConnection
from crimemap.store.stop_rows import FORCE_IDS, STOP_FIELDS, STOP_ROW, PreparedStops, compose_table, stop_from_row

GEOMETRY = Geometry(unit=("s.x", "s.y", "s.z"), lng="s.lng", lat="s.lat")
_SELECT = ", ".join(f"s.{f}" for f in STOP_FIELDS)
_AGGREGATE = "SELECT count(*), CAST(group_concat(json, ',') AS BLOB) FROM "
_BATCH = 4096


def has_stops_table(db: Reader) -> bool:
    return db.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stops'") is not None


# -- months ----------------------------------------------------------------------------------------------


def stop_months(db: Reader) -> list[MonthSummary]:
    """Months with stop-and-search files loaded, newest first, with their forces and stops."""
    rows = db.execute(
        "SELECT month, group_concat(force), sum(rows) FROM ("
        " SELECT month, force, rows FROM loads WHERE kind = 'stops' ORDER BY month, force"
        ") GROUP BY month ORDER BY month DESC"
    )
    return [
        MonthSummary(format_month(m), tuple(FORCE_IDS[int(f)] for f in forces.split(",")), n) for m, forces, n in rows
    ]


# -- what a query selects, besides its area ----------------------------------------------------------------


def _terms(query: StopQuery) -> tuple[list[str], list[Any]] | None:
    """WHERE terms for the month, force, map point and whether located; None when the force is unknown."""
    terms, params = ["s.month = ?"], [parse_month(query.month or "")]
    if query.force is not None:
        force = vocab.FORCE_BY_ID.get(query.force)
        if force is None:
            return None
        terms.append("s.force = ?")
        params.append(force.code)
    if query.street_id is not None:
        if not -(1 << 63) <= query.street_id < 1 << 63:
            return None
        terms.append("s.street_id = ?")
        params.append(query.street_id)
    if query.located is True:
        terms.append("s.cell >= 0")
    elif query.located is False:
        terms.append("s.cell = -1")
    return terms, params


def _ranges(query: StopQuery) -> tuple[Iterable[areas.CellRange], str, list[Any], Any]:
    """The cell ranges of the query's area, the SQL test of a row in a range not wholly inside,
    and a polygon to test in Python instead (one that is not a rectangle)."""
    area = query.area
    assert area is not None
    if isinstance(area, Circle):
        params: list[Any] = []
        return areas.circle_ranges(area), " AND " + circle_sql(area, GEOMETRY, params), params, None
    box = rectangle(area.ring)
    if box is not None:
        return areas.polygon_ranges(area), " AND s.lng BETWEEN ? AND ? AND s.lat BETWEEN ? AND ?", [
            box[0], box[2], box[1], box[3]
        ], None  # fmt: skip
    return areas.polygon_ranges(area), "", [], area


# -- the stops-* answers ------------------------------------------------------------------------------------


def stops_json(db: Reader, query: StopQuery, limit: int) -> JsonList:
    """The police.uk JSON of the stops ``query`` selects (see :meth:`crimemap.store.base.Store.stops_json`).

    For an area, each range of cells is one aggregate over a primary-key range
    scan, read until ``limit`` stops are found (the last range whole, so
    ``found`` may pass ``limit``, as for crimes); otherwise one ordered read of
    at most ``limit`` stops by id.
    """
    found = _terms(query)
    if found is None or limit <= 0:
        return JsonList(0, b"[]")
    terms, params = found
    where = " AND ".join(terms)
    if query.area is None:
        sql = f"{_AGGREGATE}(SELECT json FROM stops s WHERE {where} ORDER BY s.id LIMIT ?)"
        n, body = db.one(sql, (*params, limit))
        return JsonList(n, b"[" + (body or b"") + b"]")
    ranges, edge_sql, edge_params, polygon = _ranges(query)
    inside_sql = f"{_AGGREGATE}stops s WHERE {where} AND s.cell BETWEEN ? AND ?"
    parts: list[bytes] = []
    count = 0
    for cells in ranges:
        if polygon is not None and not cells.inside:
            n, piece = _in_polygon_json(db, where, (*params, cells.lo, cells.hi), polygon, limit - count)
        elif cells.inside:
            n, piece = db.one(inside_sql, (*params, cells.lo, cells.hi))
        else:
            n, piece = db.one(inside_sql + edge_sql, (*params, cells.lo, cells.hi, *edge_params))
        if n:
            count += n
            parts += (piece, b",")
            if count >= limit:
                break
    if not parts:
        return JsonList(0, b"[]")
    parts[0:0] = [b"["]
    parts[-1] = b"]"
    return JsonList(count, b"".join(parts))


def _in_polygon_json(db: Reader, where: str, params: tuple[Any, ...], polygon: Any, limit: int) -> tuple[int, bytes]:
    """The JSON of a boundary range's stops that lie in a polygon (tested with shapely, in batches)."""
    sql = f"SELECT s.lng, s.lat, s.json FROM stops s WHERE {where} AND s.cell BETWEEN ? AND ?"
    kept: list[str] = []
    for batch in _batches(db.rows(sql, params)):
        for row in _keep_in_polygon(batch, polygon, 0, 1):
            kept.append(row[2])
            if len(kept) >= limit:
                return len(kept), ",".join(kept).encode()
    return len(kept), ",".join(kept).encode()


def _batches(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _keep_in_polygon(batch: list[tuple[Any, ...]], polygon: Any, lng_at: int, lat_at: int) -> list[Any]:
    lng = np.fromiter((r[lng_at] for r in batch), np.float64, len(batch))
    lat = np.fromiter((r[lat_at] for r in batch), np.float64, len(batch))
    return [r for r, inside in zip(batch, areas.in_polygon(polygon, lng, lat).tolist(), strict=True) if inside]


# -- records -------------------------------------------------------------------------------------------------


def stops(db: Reader, query: StopQuery) -> Iterator[Stop]:
    """Stop records matching ``query``, in the order of the answers, stopping at ``query.limit``."""
    limit = query.limit if query.limit is not None else -1
    if query.month is None:
        months = [m for (m,) in db.execute("SELECT DISTINCT month FROM loads WHERE kind = 'stops' ORDER BY month")]
        for m in months:
            for stop in stops(db, _with(query, format_month(m), limit)):
                yield stop
                limit -= 1
                if limit == 0:
                    return
        return
    found = _terms(query)
    if found is None:
        return
    terms, params = found
    where = " AND ".join(terms)
    if query.area is None:
        for row in db.rows(f"SELECT {_SELECT} FROM stops s WHERE {where} ORDER BY s.id LIMIT ?", (*params, limit)):
            yield stop_from_row(row)
        return
    ranges, edge_sql, edge_params, polygon = _ranges(query)
    count = 0
    for cells in ranges:
        sql = f"SELECT {_SELECT} FROM stops s WHERE {where} AND s.cell BETWEEN ? AND ?"
        test, extra = ("", ()) if cells.inside or polygon is not None else (edge_sql, tuple(edge_params))
        rows: Iterator[Any] = db.rows(sql + test, (*params, cells.lo, cells.hi, *extra))
        if polygon is not None and not cells.inside:
            lng_at, lat_at = STOP_FIELDS.index("lng"), STOP_FIELDS.index("lat")
            rows = (r for batch in _batches(rows) for r in _keep_in_polygon(batch, polygon, lng_at, lat_at))
        for row in rows:
            yield stop_from_row(row)
            count += 1
            if count == limit:
                return


def _with(query: StopQuery, month: str, limit: int) -> StopQuery:
    from dataclasses import replace

    return replace(query, month=month, limit=limit if limit >= 0 else None)


def location_known(db: Reader, street_id: int) -> bool:
    """Whether some stop was placed at ``street_id`` (a map point of the stops' own, see stop_rows)."""
    if not -(1 << 63) <= street_id < 1 << 63:
        return False
    return db.one("SELECT 1 FROM stops WHERE street_id = ? LIMIT 1", (street_id,)) is not None


# -- the stops as a feature table ------------------------------------------------------------------------------


def _month_text(expr: str) -> str:
    return f"printf('%04d-%02d', {expr} / 12, {expr} % 12 + 1)"


def _encode_force_id(value: Any) -> int:
    return vocab.FORCE_BY_ID[value].code


COLUMNS_SQL: dict[str, SqlColumn] = {
    "id": SqlColumn("id"),
    "month": SqlColumn(_month_text("month"), "month", parse_month, order_preserving=True),
    "force": SqlColumn("(SELECT id FROM forces WHERE code = stops.force)", "force", _encode_force_id),
    "type": SqlColumn("type"),
    "date": SqlColumn("datetime"),
    "part_of_a_policing_operation": SqlColumn("operation"),
    "policing_operation": SqlColumn("operation_name"),
    "latitude": SqlColumn("lat"),
    "longitude": SqlColumn("lng"),
    "gender": SqlColumn("gender"),
    "age_range": SqlColumn("age_range"),
    "self_defined_ethnicity": SqlColumn("self_defined_ethnicity"),
    "officer_defined_ethnicity": SqlColumn("officer_defined_ethnicity"),
    "legislation": SqlColumn("legislation"),
    "object_of_search": SqlColumn("object_of_search"),
    "outcome": SqlColumn("outcome"),
    "outcome_linked_to_object_of_search": SqlColumn("outcome_linked"),
    "removal_of_more_than_just_outer_clothing": SqlColumn("removal"),
    "outcome_id": SqlColumn("outcome_id"),
    "street_id": SqlColumn("street_id"),
    "location": SqlColumn("street_name"),
}
"""How each column of :data:`~crimemap.store.catalogue.STOP_COLUMNS` reads from the stops table."""
assert tuple(COLUMNS_SQL) == tuple(c.name for c in STOP_COLUMNS)

TABLE_GEOMETRY = Geometry(unit=("x", "y", "z"))


def table_info(db: Reader) -> TableInfo | None:
    """The ``policeuk-stops`` table's resource, or None while no stop-and-search file is stored."""
    if not has_stops_table(db):
        return None
    count, files, updated = db.one(
        "SELECT coalesce(sum(rows), 0), count(*), (SELECT value FROM meta WHERE key = 'last_updated')"
        " FROM loads WHERE kind = 'stops'"
    )
    if not files:
        return None
    when = dt.datetime.fromisoformat(updated) if updated else None
    return TableInfo(
        id=STOPS_TABLE,
        name="police.uk stop and search",
        description="Every stored police.uk stop and search, one feature per stop.",
        columns=STOP_COLUMNS,
        feature_count=count,
        bbox=None,
        created=when,
        modified=when,
    )


# -- loads -------------------------------------------------------------------------------------------------------

INSERT = f"INSERT INTO stops ({', '.join(STOP_ROW)}) VALUES ({', '.join('?' * len(STOP_ROW))})"


def _stored_streets(conn: LoadConnection, points: pa.Table) -> pa.Table:
    """The stored map point at each of ``points`` (the smallest id where two share one): ``lng, lat, id, name``.

    The points go into a staging table, and one join looks each up by its cell
    (the streets index is on ``cell``) and its exact coordinates: a query per
    point cost four times as much, and reading whole cells back to compare them
    here moved every map point of those cells out of SQLite.
    """
    lng, lat = points.column("lng").to_numpy(), points.column("lat").to_numpy()
    wanted = points.append_column("cell", pa.array(grid_cells(lng, lat, np.ones(len(lng), bool))))
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS stop_points (lng REAL, lat REAL, cell INTEGER)")
    conn.execute("DELETE FROM temp.stop_points")
    conn.executemany("INSERT INTO temp.stop_points VALUES (?, ?, ?)", wanted)
    return conn.arrow(
        "SELECT p.lng, p.lat, s.id, s.name FROM temp.stop_points p JOIN streets s ON s.id = ("
        "SELECT id FROM streets WHERE cell = p.cell AND lng = p.lng AND lat = p.lat ORDER BY id LIMIT 1)"
    )


def replace_stops(
    conn: LoadConnection,
    month: str,
    force: int,
    batches: Iterable[PreparedStops],
    record_load: Callable[[int, int, str, int], None],
) -> int:
    """Replace the stops of ``month`` and ``force`` by the prepared batches (in the load's transaction)."""
    m = parse_month(month)
    # Stops are only ever stored with their file's load record: without one there is nothing to delete (the
    # planner read the whole month stored so far for each file's delete).
    if conn.execute("SELECT 1 FROM loads WHERE month = ? AND force = ? AND kind = 'stops'", (m, force)).fetchone():
        conn.execute("DELETE FROM stops WHERE month = ? AND force = ?", (m, force))
    count = 0
    try:
        for batch in batches:
            rows = compose_table(batch, lambda points: _stored_streets(conn, points))
            conn.executemany(INSERT, rows)
            count += rows.num_rows
        conn.sync()  # a batch's insert runs on while the next is composed: its error shows by here
    except sqlite3.IntegrityError as e:
        clash = f"{month} {FORCE_IDS[force]}: a stop id is already stored for another stop ({e})"
        raise StoreError(clash) from None
    record_load(m, force, "stops", count)
    return count


def name_stops(conn: SqlConnection) -> None:
    """Name the stops at points a street file of this load brought (see :mod:`crimemap.store.stop_rows`).

    Only stops stored unnamed are looked at (a partial index holds them); the
    point's id and name are put into each one's JSON in place of its own.
    """
    if conn.execute("SELECT 1 FROM stops WHERE named = 0 LIMIT 1").fetchone() is None:
        return
    point = "(SELECT id FROM streets WHERE cell = s.cell AND lng = s.lng AND lat = s.lat ORDER BY id LIMIT 1)"
    names = conn.execute(
        f"SELECT DISTINCT t.id, t.name FROM stops s JOIN streets t ON t.id = {point} WHERE s.named = 0"
    ).fetchall()
    # The names as JSON text, made here by orjson as every stop's JSON is (the load's connection has no
    # Python functions to call from SQL).
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS stop_names (street INTEGER PRIMARY KEY, json TEXT NOT NULL)")
    conn.execute("DELETE FROM temp.stop_names")
    conn.executemany(
        "INSERT INTO temp.stop_names VALUES (?, ?)", [(sid, orjson.dumps(name).decode()) for sid, name in names]
    )
    conn.execute(
        "UPDATE stops SET named = 1, street_id = m.street, street_name = m.name,"
        ' json = replace(json, \'"street":{"id":\' || stops.street_id || \',"name":""}\','
        " '\"street\":{\"id\":' || m.street || ',\"name\":' || m.name_json || '}')"
        " FROM (SELECT s.month, s.cell, s.id, t.id AS street, t.name, n.json AS name_json FROM stops s JOIN streets t"
        f"  ON t.id = {point} JOIN temp.stop_names n ON n.street = t.id"
        "  WHERE s.named = 0) AS m"
        " WHERE stops.month = m.month AND stops.cell = m.cell AND stops.id = m.id"
    )


__all__ = [
    "COLUMNS_SQL",
    "TABLE_GEOMETRY",
    "has_stops_table",
    "location_known",
    "name_stops",
    "replace_stops",
    "stop_months",
    "stops",
    "stops_json",
    "table_info",
]
