"""The embedded store's police.uk reads: crimes and outcomes by month, area, map point and id.

The answers of the busy methods are made inside SQLite from what was prepared at
load time (:mod:`crimemap.store.sqlite.schema`): each range of grid cells an area
covers (:mod:`crimemap.geometry.areas`) is one primary-key range scan whose rows
pass the exact area test in the SQL, and whose ready-made JSON objects are joined
by ``group_concat`` into one text handed back as bytes. No crime crosses into
Python on its own. The answers keep the clustered order, ``(cell, id)``.

The record readers (:func:`crimes`, :func:`outcomes`) serve everything else:
harvesting, the tests' independent checks, the conformance suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from crimemap import geo, vocab
from crimemap.geometry import areas
from crimemap.geometry.areas import rectangle
from crimemap.months import format_month, parse_month
from crimemap.policeuk_json import outcome_at_location
from crimemap.query import Circle, CrimeQuery, Polygon
from crimemap.records import Crime, OutcomeEvent, Street
from crimemap.store.base import JsonList
from crimemap.store.compiler import Geometry
from crimemap.store.records import crime_from_row, pid_bytes, pid_key
from crimemap.store.sqlite.connection import Reader
from crimemap.store.sqlite.dialect import circle_sql
from crimemap.store.sqlite.schema import pid_text, street_name

SAME_CRIME = f"c.pid_key = o.pid_key AND {pid_text('c')} = lower(hex(o.pid))"
"""The join of an outcome row to its crime: the same persistent id."""

CRIME_SELECT = (
    f"c.id, c.month, c.force, c.falls_within, c.lng, c.lat, c.street_id, {street_name('c')},"
    " (SELECT lsoa_code FROM lsoas WHERE code = c.lsoa), (SELECT lsoa_name FROM lsoas WHERE code = c.lsoa),"
    f" c.category, {pid_text('c')}, c.location_subtype, c.context, c.outcome, c.outcome_month"
)
"""A crime's columns in the order of :data:`crimemap.store.records.CRIME_FIELDS`."""

CRIME_GEOMETRY = Geometry(lng="c.lng", lat="c.lat")
OUTCOME_GEOMETRY = Geometry(lng="o.lng", lat="o.lat")

ALL_CELLS = areas.CellRange(0, 1 << 62)
"""Every located cell: the range of a query with no area."""

SAME_POINT_M = 1.0
"""Map points closer than this are one point (coordinates have six decimals: 0.1 m)."""


# -- what a query filters on, besides the area ------------------------------------------------------


def _filters(query: CrimeQuery, alias: str) -> tuple[list[str], list[Any]] | None:
    """Terms for the month, category and force; None when a category or force is unknown."""
    terms, params = [f"{alias}.month = ?"], [parse_month(query.month or "")]
    if query.category is not None:
        cat = vocab.CATEGORY_BY_SLUG.get(query.category)
        if cat is None:
            return None
        terms.append(f"{alias}.category = ?")
        params.append(cat.code)
    if query.force is not None:
        force = vocab.FORCE_BY_ID.get(query.force)
        if force is None:
            return None
        terms.append(f"{alias}.force = ?")
        params.append(force.code)
    return terms, params


class _Plan:
    """How one query walks the grid: its cell ranges and, per kind of range, the SQL test of a row.

    ``exact_in_python`` is set for a polygon that is not a rectangle: the rows of
    its boundary cells are tested with shapely, in batches, outside SQLite.
    """

    def __init__(self, db: Reader, query: CrimeQuery, geometry: Geometry) -> None:
        self.ranges: Iterator[areas.CellRange]
        self.edge_sql = ""
        self.edge_params: list[Any] = []
        self.exact_in_python: Polygon | None = None
        area = query.area
        if query.street_id is not None and area is None:
            street = find_street(db, query.street_id)
            area = Circle((street.lng, street.lat), SAME_POINT_M) if street is not None else None
            self.ranges = iter(areas.circle_ranges(area)) if area is not None else iter(())
            self.edge_sql = ""  # the map point's id decides, not the circle
            return
        if area is None:
            self.ranges = iter((ALL_CELLS,))
        elif isinstance(area, Circle):
            self.ranges = iter(areas.circle_ranges(area))
            self.edge_sql = " AND " + circle_sql(area, geometry, self.edge_params)
        else:
            self.ranges = areas.polygon_ranges(area)
            box = rectangle(area.ring)
            if box is not None:
                self.edge_sql = f" AND {geometry.lng} BETWEEN ? AND ? AND {geometry.lat} BETWEEN ? AND ?"
                self.edge_params = [box[0], box[2], box[1], box[3]]
            else:
                self.exact_in_python = area


# -- crimes-street, crimes-at-location, crimes-no-location ---------------------------------------------


def crimes_json(db: Reader, query: CrimeQuery, limit: int) -> JsonList:
    """The police.uk JSON of the crimes of one month (see :meth:`crimemap.store.base.Store.crimes_json`).

    Each range of cells is one aggregate over a primary-key range scan. Ranges
    are read until ``limit`` crimes are found; the last range is read whole, so
    ``found`` may pass ``limit`` (an aggregate cut short by a ``LIMIT`` measured
    a third slower, for the rare answer that is refused anyway).
    """
    filters = _filters(query, "c")
    if filters is None or limit <= 0:
        return JsonList(0, b"[]")
    terms, params = filters
    if query.street_id is not None:
        terms.append("c.street_id = ?")
        params.append(query.street_id)
    where = " AND ".join(terms)
    joined = "SELECT count(*), CAST(group_concat(c.json, ',') AS BLOB) FROM crimes c WHERE "
    if not query.located:
        found, body = db.one(f"{joined}{where} AND c.cell = -1", params)
        return JsonList(found, b"[" + (body or b"") + b"]")
    plan = _Plan(db, query, CRIME_GEOMETRY)
    inside_sql = f"{joined}{where} AND c.cell BETWEEN ? AND ?"
    edge_sql = inside_sql + plan.edge_sql
    parts: list[bytes] = []  # pieces and commas: the body is made with one copy
    found = 0
    for cells in plan.ranges:
        if plan.exact_in_python is not None and not cells.inside:
            n, piece = _tested_in_python(
                db,
                f"SELECT c.lng, c.lat, c.json FROM crimes c WHERE {where} AND c.cell BETWEEN ? AND ?",
                (*params, cells.lo, cells.hi),
                plan.exact_in_python,
                limit - found,
            )
        elif cells.inside:
            n, piece = db.one(inside_sql, (*params, cells.lo, cells.hi))
        else:
            n, piece = db.one(edge_sql, (*params, cells.lo, cells.hi, *plan.edge_params))
        if n:
            found += n
            parts.append(piece)
            parts.append(b",")
            if found >= limit:
                break
    if parts:
        parts[0:0] = [b"["]
        parts[-1] = b"]"
        return JsonList(found, b"".join(parts))
    return JsonList(0, b"[]")


_PYTHON_BATCH = 4096


def _tested_in_python(db: Reader, sql: str, params: tuple[Any, ...], polygon: Polygon, limit: int) -> tuple[int, bytes]:
    """Rows ``(lng, lat, json)`` of ``sql`` in a polygon (tested with shapely): how many, at most ``limit``,
    and their JSON objects joined by commas (a row whose JSON is NULL counts, but is not shown)."""
    count = 0
    kept: list[str] = []
    for batch in _batches(db.rows(sql, params)):
        lng = np.fromiter((r[0] for r in batch), np.float64, len(batch))
        lat = np.fromiter((r[1] for r in batch), np.float64, len(batch))
        for row, inside in zip(batch, areas.in_polygon(polygon, lng, lat).tolist(), strict=True):
            if inside:
                count += 1
                if row[2] is not None:
                    kept.append(row[2])
                if count >= limit:
                    return count, ",".join(kept).encode()
    return count, ",".join(kept).encode()


def _batches(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _PYTHON_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


# -- outcomes-at-location --------------------------------------------------------------------------------


def outcomes_json(db: Reader, query: CrimeQuery, limit: int, kind_json: Callable[[int], bytes]) -> JsonList:
    """The ``outcomes-at-location`` answer (see :meth:`crimemap.store.base.Store.outcomes_json`).

    Outcomes are counted whether or not their crime is stored (the 10,000 rule
    counts them all), and only those with a stored crime are shown. An outcome
    row meets its crime by the indexed 63-bit key in SQL; the whole persistent id
    is then compared here, in the crime's JSON (the same comparison in SQL
    measured three times the cost of the join).
    """
    if query.month is None or limit <= 0:
        return JsonList(0, b"[]")
    month = parse_month(query.month)
    mtext = format_month(month).encode()
    plan = _Plan(db, CrimeQuery(month=query.month, area=query.area), OUTCOME_GEOMETRY)
    columns = "o.seq * 64 + o.force, o.outcome, o.pid, CAST(c.json AS BLOB), c.street_id"
    source = " FROM outcomes o LEFT JOIN crimes c ON c.pid_key = o.pid_key WHERE o.month = ? AND o.cell BETWEEN ? AND ?"
    street_id = query.street_id
    shown: list[bytes] = []
    count = 0
    for cells in plan.ranges:
        if plan.exact_in_python is not None and not cells.inside:
            assert plan.exact_in_python is not None
            found = db.execute(f"SELECT o.lng, o.lat, {columns}{source}", (month, cells.lo, cells.hi)).fetchall()
            rows = [r[2:] for r in _keep_in_polygon(found, plan.exact_in_python, 0, 1)]
        else:
            test, extra = ("", ()) if cells.inside else (plan.edge_sql, tuple(plan.edge_params))
            rows = db.execute(f"SELECT {columns}{source}{test}", (month, cells.lo, cells.hi, *extra)).fetchall()
        last_row, matched = None, True
        for row_key, kind, pid, crime, crime_street in rows:
            if row_key != last_row:
                if not matched:
                    count += 1  # the outcome row before had no crime stored
                last_row, matched = row_key, False
            if crime is None:
                continue
            at = crime.find(_PID_MARK) + 18
            if crime[at : at + 64] != pid.hex().encode():
                continue
            matched = True
            count += 1
            if street_id is None or crime_street == street_id:
                shown.append(outcome_at_location(kind_json(kind), mtext, crime))
        if not matched:
            count += 1
        if count >= limit:
            return JsonList(count, b"")
    return JsonList(count, b"[" + b",".join(shown) + b"]")


_PID_MARK = b',"persistent_id":"'


# -- records ---------------------------------------------------------------------------------------------


def crimes(db: Reader, query: CrimeQuery, outcome_name: Callable[[int], str | None]) -> Iterator[Crime]:
    """Crime records matching ``query``, in clustered order, stopping at ``query.limit``."""
    limit = query.limit if query.limit is not None else -1
    if query.month is None:
        months = [m for (m,) in db.execute("SELECT DISTINCT month FROM loads WHERE kind = 'street' ORDER BY month")]
        for m in months:
            for crime in crimes(db, _with_month(query, format_month(m), limit), outcome_name):
                yield crime
                limit -= 1
                if limit == 0:
                    return
        return
    filters = _filters(query, "c")
    if filters is None:
        return
    terms, params = filters
    if query.street_id is not None:
        terms.append("c.street_id = ?")
        params.append(query.street_id)
    where = " AND ".join(terms)
    if not query.located:
        sql = f"SELECT {CRIME_SELECT} FROM crimes c WHERE {where} AND c.cell = -1 LIMIT ?"
        for row in db.rows(sql, (*params, limit)):
            yield crime_from_row(row, outcome_name)
        return
    plan = _Plan(db, query, CRIME_GEOMETRY)
    found = 0
    for cells in plan.ranges:
        test, extra = ("", ()) if cells.inside else (plan.edge_sql, tuple(plan.edge_params))
        sql = f"SELECT {CRIME_SELECT} FROM crimes c WHERE {where} AND c.cell BETWEEN ? AND ?{test}"
        rows = db.rows(sql, (*params, cells.lo, cells.hi, *extra))
        if plan.exact_in_python is not None and not cells.inside:
            rows = _rows_in_polygon(rows, plan.exact_in_python, lng_at=4, lat_at=5)
        for row in rows:
            yield crime_from_row(row, outcome_name)
            found += 1
            if found == limit:
                return


def _with_month(query: CrimeQuery, month: str, limit: int) -> CrimeQuery:
    from dataclasses import replace

    return replace(query, month=month, limit=limit if limit >= 0 else None)


def _rows_in_polygon(rows: Iterator[tuple[Any, ...]], polygon: Polygon, lng_at: int, lat_at: int) -> Iterator[Any]:
    for batch in _batches(rows):
        yield from _keep_in_polygon(batch, polygon, lng_at, lat_at)


def _keep_in_polygon(batch: list[tuple[Any, ...]], polygon: Polygon, lng_at: int, lat_at: int) -> list[Any]:
    if not batch:
        return []
    lng = np.fromiter((r[lng_at] for r in batch), np.float64, len(batch))
    lat = np.fromiter((r[lat_at] for r in batch), np.float64, len(batch))
    return [r for r, inside in zip(batch, areas.in_polygon(polygon, lng, lat).tolist(), strict=True) if inside]


def outcomes(db: Reader, query: CrimeQuery, outcome_name: Callable[[int], str | None]) -> Iterator[OutcomeEvent]:
    """Outcome events of ``query.month`` in ``query.area`` (or at the outcome rows' map point ``street_id``)."""
    if query.month is None:
        return
    month = parse_month(query.month)
    limit = query.limit if query.limit is not None else -1
    plan = _Plan(db, CrimeQuery(month=query.month, area=query.area), OUTCOME_GEOMETRY)
    select = f"SELECT o.outcome, o.month, o.lng, o.lat, {CRIME_SELECT}"
    source = f"{select} FROM outcomes o LEFT JOIN crimes c ON {SAME_CRIME} WHERE o.month = ? AND o.cell BETWEEN ? AND ?"
    found = 0
    for cells in plan.ranges:
        test, extra = ("", ()) if cells.inside else (plan.edge_sql, tuple(plan.edge_params))
        rows = db.rows(source + test, (month, cells.lo, cells.hi, *extra))
        if plan.exact_in_python is not None and not cells.inside:
            rows = _rows_in_polygon(rows, plan.exact_in_python, lng_at=2, lat_at=3)
        for row in rows:
            crime = crime_from_row(row[4:], outcome_name) if row[4] is not None else None
            if query.street_id is not None and (crime is None or crime.street_id != query.street_id):
                continue
            yield OutcomeEvent(outcome_name(row[0]) or "", format_month(row[1]), crime)
            found += 1
            if found == limit:
                return


# -- map points and single crimes --------------------------------------------------------------------------


def find_street(db: Reader, street_id: int) -> Street | None:
    if not -(1 << 63) <= street_id < 1 << 63:
        return None
    row = db.one("SELECT id, name, lng, lat FROM streets WHERE id = ?", (street_id,))
    return Street(*row) if row else None


def nearest_street(db: Reader, lng: float, lat: float) -> Street | None:
    """The map point nearest to a point, searching growing circles (by great-circle distance, then id)."""
    for radius in (200.0, 1_000.0, 5_000.0, 25_000.0):
        best: tuple[float, int, Street] | None = None
        for cells in areas.circle_ranges(Circle((lng, lat), radius)):
            sql = "SELECT id, name, lng, lat FROM streets WHERE cell BETWEEN ? AND ?"
            for row in db.rows(sql, (cells.lo, cells.hi)):
                d = geo.haversine_m(lng, lat, row[2], row[3])
                if d <= radius and (best is None or (d, row[0]) < best[:2]):
                    best = (d, row[0], Street(*row))
        if best is not None:
            return best[2]
    return None


def crime_by_persistent_id(db: Reader, persistent_id: str, outcome_name: Callable[[int], str | None]) -> Crime | None:
    pid = pid_bytes(persistent_id)
    if pid is None:
        return None
    row = db.one(
        f"SELECT {CRIME_SELECT} FROM crimes c WHERE c.pid_key = ? AND {pid_text('c')} = ?"
        " ORDER BY c.month DESC LIMIT 1",
        (pid_key(pid), pid.hex()),
    )
    return crime_from_row(row, outcome_name) if row else None


def outcome_history(db: Reader, persistent_id: str, outcome_name: Callable[[int], str | None]) -> list[OutcomeEvent]:
    pid = pid_bytes(persistent_id)
    if pid is None:
        return []
    rows = db.execute(
        "SELECT DISTINCT outcome, month FROM outcomes WHERE pid_key = ? AND pid = ? ORDER BY month, outcome",
        (pid_key(pid), pid),
    ).fetchall()
    return [OutcomeEvent(outcome_name(o) or "", format_month(m)) for o, m in rows]
