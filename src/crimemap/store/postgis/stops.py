"""Stops and searches in the PostGIS store: the ``stops-*`` answers, records, the table, and loads.

The same rows as the embedded store's (:mod:`crimemap.store.stop_rows`), each
with its police.uk JSON made at load time, so both stores answer byte for byte
alike: an answer is one ``string_agg`` of ready-made objects in the embedded
store's order (``(cell, id)`` for an area, else id). Areas use the
``(month, geom)`` GiST index and the same exact tests as crimes
(:func:`crimemap.store.postgis.dialect.area_sql`).

A load writes rows with binary ``COPY``. Map points of this load's street files
reach the ``streets`` table only when the load finishes, so stops are named
there (:func:`name_stops`), in one set-based statement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psycopg
import pyarrow as pa

from crimemap import vocab
from crimemap.errors import StoreError
from crimemap.months import format_month, parse_month
from crimemap.query import StopQuery
from crimemap.records import Stop
from crimemap.store.base import JsonList
from crimemap.store.catalogue import STOP_COLUMNS, STOPS_TABLE, MonthSummary, TableInfo
from crimemap.store.compiler import Geometry, SqlColumn
from crimemap.store.postgis.dialect import area_sql, text
from crimemap.store.stop_rows import FORCE_IDS, STOP_FIELDS, STOP_ROW, PreparedStops, compose, stop_from_row

GEOMETRY = Geometry(geom="s.geom", lng="s.lng", lat="s.lat")
_SELECT = ", ".join(f"s.{f}" for f in STOP_FIELDS)

One = Callable[[str, list[Any]], Any]
Stream = Callable[[str, list[Any]], Iterator[tuple[Any, ...]]]


# -- months and reads ------------------------------------------------------------------------------------------


def stop_months(all_rows: Callable[[str], list[tuple[Any, ...]]]) -> list[MonthSummary]:
    rows = all_rows(
        "SELECT month, array_agg(force ORDER BY force), sum(rows)::bigint FROM loads"
        " WHERE kind = 'stops' GROUP BY month ORDER BY month DESC"
    )
    return [MonthSummary(format_month(m), tuple(FORCE_IDS[f] for f in forces), n) for m, forces, n in rows]


def _terms(query: StopQuery) -> tuple[list[str], list[Any]] | None:
    terms, params = ["s.month = %s::integer"], [parse_month(query.month or "")]
    if query.force is not None:
        force = vocab.FORCE_BY_ID.get(query.force)
        if force is None:
            return None
        terms.append("s.force = %s::smallint")
        params.append(force.code)
    if query.street_id is not None:
        if not -(1 << 63) <= query.street_id < 1 << 63:
            return None
        terms.append("s.street_id = %s::bigint")
        params.append(query.street_id)
    if query.located is True or query.area is not None:
        terms.append("s.geom IS NOT NULL")
    elif query.located is False:
        terms.append("s.geom IS NULL")
    if query.area is not None:
        terms.append(area_sql(query.area, GEOMETRY, params))
    return terms, params


def _order(query: StopQuery) -> str:
    return "s.cell, s.id" if query.area is not None else "s.id"


def stops_json(one: One, query: StopQuery, limit: int) -> JsonList:
    """The police.uk JSON of the stops ``query`` selects, at most ``limit`` of them."""
    found = _terms(query)
    if found is None or limit <= 0:
        return JsonList(0, b"[]")
    terms, params = found
    order = _order(query)
    row = one(
        f"SELECT count(*), string_agg(json, ',' ORDER BY {order.replace('s.', 't.')}) FROM"
        f" (SELECT s.cell, s.id, s.json FROM stops s WHERE {' AND '.join(terms)} ORDER BY {order} LIMIT %s) t",
        [*params, limit],
    )
    n, body = row
    return JsonList(n, b"[" + (body or "").encode() + b"]")


def stops(stream: Stream, query: StopQuery) -> Iterator[Stop]:
    """Stop records in the order of the answers (every month, oldest first, when ``query.month`` is None)."""
    found = _terms(query) if query.month is not None else _all_months(query)
    if found is None:
        return
    terms, params = found
    order = _order(query) if query.month is not None else f"s.month, {_order(query)}"
    sql = f"SELECT {_SELECT} FROM stops s WHERE {' AND '.join(terms) or 'TRUE'} ORDER BY {order}"
    if query.limit is not None:
        sql += " LIMIT %s"
        params.append(query.limit)
    for row in stream(sql, params):
        yield stop_from_row(row)


def _all_months(query: StopQuery) -> tuple[list[str], list[Any]] | None:
    found = _terms(_replace_month(query, "2000-01"))
    if found is None:
        return None
    terms, params = found
    return terms[1:], params[1:]


def _replace_month(query: StopQuery, month: str) -> StopQuery:
    from dataclasses import replace

    return replace(query, month=month)


def location_known(one: One, street_id: int) -> bool:
    if not -(1 << 63) <= street_id < 1 << 63:
        return False
    return one("SELECT 1 FROM stops WHERE street_id = %s::bigint LIMIT 1", [street_id]) is not None


# -- the stops as a feature table ------------------------------------------------------------------------------


def _month_text(expr: str) -> str:
    return text(f"lpad(({expr} / 12)::text, 4, '0') || '-' || lpad((mod({expr}, 12) + 1)::text, 2, '0')")


def _encode_force_id(value: Any) -> int:
    return vocab.FORCE_BY_ID[value].code


def _as_bool(value: Any) -> Any:
    return bool(value) if isinstance(value, int | float) else value


_FORCE_ID_SQL = "(ARRAY[" + ", ".join(f"'{f}'" for f in FORCE_IDS) + "]::text[])[stops.force + 1]"

COLUMNS_SQL: dict[str, SqlColumn] = {
    "id": SqlColumn("id"),
    "month": SqlColumn(_month_text("month"), "month", parse_month, order_preserving=True),
    "force": SqlColumn(text(_FORCE_ID_SQL), "force", _encode_force_id),
    "type": SqlColumn(text("type")),
    "date": SqlColumn(text("datetime")),
    "part_of_a_policing_operation": SqlColumn("operation", value=_as_bool),
    "policing_operation": SqlColumn(text("operation_name")),
    "latitude": SqlColumn("lat"),
    "longitude": SqlColumn("lng"),
    "gender": SqlColumn(text("gender")),
    "age_range": SqlColumn(text("age_range")),
    "self_defined_ethnicity": SqlColumn(text("self_defined_ethnicity")),
    "officer_defined_ethnicity": SqlColumn(text("officer_defined_ethnicity")),
    "legislation": SqlColumn(text("legislation")),
    "object_of_search": SqlColumn(text("object_of_search")),
    "outcome": SqlColumn(text("outcome")),
    "outcome_linked_to_object_of_search": SqlColumn("outcome_linked", value=_as_bool),
    "removal_of_more_than_just_outer_clothing": SqlColumn("removal", value=_as_bool),
    "outcome_id": SqlColumn(text("outcome_id")),
    "street_id": SqlColumn("street_id"),
    "location": SqlColumn(text("street_name")),
}
"""How each column of :data:`~crimemap.store.catalogue.STOP_COLUMNS` reads from the stops table."""
assert tuple(COLUMNS_SQL) == tuple(c.name for c in STOP_COLUMNS)


def table_info(one: One) -> TableInfo | None:
    """The ``policeuk-stops`` table's resource, or None while no stop-and-search file is stored."""
    count, files, updated = one(
        "SELECT coalesce(sum(rows), 0)::bigint, count(*), (SELECT value FROM meta WHERE key = 'last_updated')"
        " FROM loads WHERE kind = 'stops'",
        [],
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

_COPIED = tuple(c for c in STOP_ROW if c not in ("x", "y", "z"))
_PICK = [STOP_ROW.index(c) for c in _COPIED]
_COPY = f"COPY {{table}} ({', '.join(_COPIED)}) FROM STDIN (FORMAT BINARY)"
_COPY_TYPES = {
    "month": "int4", "cell": "int8", "id": "int8", "force": "int2", "lng": "float8", "lat": "float8",
    "street_id": "int8", "named": "bool", "operation": "bool", "outcome_linked": "bool", "removal": "bool",
}  # fmt: skip


def _stored_streets(conn: psycopg.Connection[Any], points: pa.Table) -> pa.Table:
    """The map points stored before this load at each of ``points`` (the smallest id where two share one):
    ``lng, lat, id, name``."""
    rows = conn.execute(
        "SELECT DISTINCT ON (p.lng, p.lat) p.lng, p.lat, t.id, t.name"
        " FROM unnest(%s::float8[], %s::float8[]) AS p(lng, lat)"
        " JOIN streets t ON t.geom && ST_SetSRID(ST_MakePoint(p.lng, p.lat), 4326) AND t.lng = p.lng AND t.lat = p.lat"
        " ORDER BY p.lng, p.lat, t.id",
        (points.column("lng").to_pylist(), points.column("lat").to_pylist()),
    ).fetchall()
    columns = list(zip(*rows, strict=True)) or [(), (), (), ()]
    types = (pa.float64(), pa.float64(), pa.int64(), pa.string())
    return pa.table([pa.array(c, t) for c, t in zip(columns, types, strict=True)], names=["lng", "lat", "id", "name"])


def replace_stops(
    conn: psycopg.Connection[Any],
    month: str,
    force: int,
    batches: Iterable[PreparedStops],
    record_load: Callable[[int, int, str, int], None],
    table: str,
) -> int:
    """Copy the stops of ``month`` and ``force`` into ``table``: the month's stage, which holds none of them
    (see :mod:`crimemap.store.postgis.partitions`); in the load's transaction."""
    m = parse_month(month)
    count = 0
    types = [_COPY_TYPES.get(c, "text") for c in _COPIED]
    try:
        for batch in batches:
            rows = compose(batch, lambda points: _stored_streets(conn, points))  # before the COPY holds the line
            with conn.cursor().copy(_COPY.format(table=table)) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row([row[i] for i in _PICK])
            count += len(rows)
    except psycopg.errors.UniqueViolation as e:
        raise StoreError(f"{month} {FORCE_IDS[force]}: a stop id is already stored for another stop ({e})") from None
    record_load(m, force, "stops", count)
    return count


def name_stops(conn: psycopg.Connection[Any]) -> None:
    """Name the stops at map points stored since they were written (see :mod:`crimemap.store.stop_rows`)."""
    conn.execute(
        "UPDATE stops s SET named = true, street_id = m.street, street_name = m.name,"
        ' json = replace(s.json, \'"street":{"id":\' || s.street_id || \',"name":""}\','
        " '\"street\":{\"id\":' || m.street || ',\"name\":' || to_json(m.name)::text || '}')"
        " FROM (SELECT DISTINCT ON (u.id) u.id AS stop, t.id AS street, t.name FROM stops u"
        "  JOIN streets t ON t.geom && u.geom AND t.lng = u.lng AND t.lat = u.lat"
        "  WHERE NOT u.named ORDER BY u.id, t.id) AS m"
        " WHERE s.id = m.stop"
    )
