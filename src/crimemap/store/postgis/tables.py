"""Feature tables in the PostGIS store: each loaded GeoJSON/CSV table, and the crimes and stops seen as two.

A loaded table lives in its own ``ft_<n>`` table (``gx_id``, ``lng``, ``lat``, then
one ``c<i>`` column per schema column, and a ``geom`` point with a GiST index);
the police.uk crimes are readable as the table ``policeuk-crimes`` through
:data:`CRIME_COLUMNS_SQL`, which says how each of its columns reads from the
crimes table (codes decoded, month numbers written as ``YYYY-MM``), exactly as
the embedded store's (:mod:`crimemap.store.sqlite.tables`) does, and the stops
and searches as ``policeuk-stops`` (:mod:`crimemap.store.postgis.stops`).
Without an ``orderBy``, the crimes are paged in the clustered order
``(month, cell, id)``, the embedded store's, along the index that keeps it. A
request resolves its table once (:func:`resolve`) and reads through what that
returned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg.errors

from crimemap import vocab
from crimemap.errors import PageCursorGone, StoreError, TableChanged
from crimemap.geometry import areas
from crimemap.months import parse_month
from crimemap.query import And, FeatureQuery, Predicate, Within
from crimemap.records import Feature
from crimemap.store.catalogue import CRIME_COLUMNS, CRIMES_TABLE, STOPS_TABLE, Column, TableInfo
from crimemap.store.compiler import Geometry, compile_predicate, keyset_condition, order_clause
from crimemap.store.geojson_sql import FeaturePlan, GeoJSONPage, JsonColumn, Layout, all_exact
from crimemap.store.postgis import boundaries as shape_tables
from crimemap.store.postgis import stops as stop_store
from crimemap.store.postgis.connection import Database
from crimemap.store.postgis.dialect import POSTGIS, POSTGIS_JSON, PgColumn, text
from crimemap.store.records import (
    FORCE_NAMES,
    encode_category_name,
    encode_category_slug,
    encode_force_name,
    encode_pid,
)


def _month_text(expr: str) -> str:
    return text(f"lpad(({expr} / 12)::text, 4, '0') || '-' || lpad((mod({expr}, 12) + 1)::text, 2, '0')")


def _literal_array(values: Iterable[str]) -> str:
    """A SQL array literal of our own vocabulary (never user text), indexed by code + 1."""
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


_FORCE_NAME_SQL = f"({_literal_array(FORCE_NAMES)})[crimes.force + 1]"

CRIME_COLUMNS_SQL: dict[str, PgColumn] = {
    "id": PgColumn("id"),
    "crime_id": PgColumn(text("coalesce(encode(pid, 'hex'), '')"), "pid", encode_pid),
    "month": PgColumn(_month_text("month"), "month", parse_month, order_preserving=True),
    "reported_by": PgColumn(text(_FORCE_NAME_SQL), "force", encode_force_name),
    "falls_within": PgColumn(text(f"coalesce(falls_within, {_FORCE_NAME_SQL})")),
    "longitude": PgColumn("lng"),
    "latitude": PgColumn("lat"),
    "location": PgColumn(text("street_name")),
    "lsoa_code": PgColumn(text("lsoa_code")),
    "lsoa_name": PgColumn(text("lsoa_name")),
    "crime_type": PgColumn(
        text(f"({_literal_array(c.name for c in vocab.CATEGORIES)})[crimes.category + 1]"),
        "category",
        encode_category_name,
    ),
    "category": PgColumn(
        text(f"({_literal_array(c.slug for c in vocab.CATEGORIES)})[crimes.category + 1]"),
        "category",
        encode_category_slug,
    ),
    # One lookup of all outcome names per statement (an InitPlan), then a jsonb key a row: the correlated
    # subquery it replaces cost about 2 us a crime.
    "last_outcome_category": PgColumn(
        text("((SELECT jsonb_object_agg(code, name) FROM outcome_kinds) ->> crimes.outcome::text)")
    ),
    "outcome_month": PgColumn(
        f"CASE WHEN outcome_month IS NULL THEN NULL ELSE {_month_text('outcome_month')} END",
        "outcome_month",
        parse_month,
        order_preserving=True,
    ),
    "context": PgColumn(text("context")),
    "location_type": PgColumn(text(f"CASE force WHEN {vocab.BTP.code} THEN 'BTP' ELSE 'Force' END")),
    "location_subtype": PgColumn(text("location_subtype")),
    "street_id": PgColumn("street_id"),
}
"""How each column of the crimes table reads in SQL (see the module docstring)."""

CRIME_GEOMETRY = Geometry(unit=("x", "y", "z"))
"""The crimes keep their unit vectors (and no ``geom``): the exact tests run on the stored numbers."""
FEATURE_GEOMETRY = Geometry(geom="geom")
"""A loaded table keeps ``lng``, ``lat`` and a ``geom`` point with a GiST index."""

_PG_TYPES = {
    "integer": "bigint",
    "double": "double precision",
    "string": "text",
    "boolean": "boolean",
    "datetime": "text",
}
COPY_TYPES = {"integer": "int8", "double": "float8", "string": "text", "boolean": "bool", "datetime": "text"}


@dataclass(frozen=True)
class Source:
    """A table resolved for one read: where its rows are and how its columns read."""

    info: TableInfo
    sql: str
    columns: dict[str, PgColumn]
    key: str
    geometry: Geometry

    @property
    def clustered(self) -> bool:
        return self.info.id == CRIMES_TABLE


def crimes_table_info(db: Database) -> TableInfo:
    row = db.one(
        "SELECT coalesce(sum(rows), 0)::bigint, (SELECT value FROM meta WHERE key = 'last_updated')"
        " FROM loads WHERE kind = 'street'"
    )
    assert row is not None
    updated = dt.datetime.fromisoformat(row[1]) if row[1] else None
    return TableInfo(
        id=CRIMES_TABLE,
        name="police.uk street-level crimes",
        description="Every stored police.uk street-level crime, one feature per crime.",
        columns=CRIME_COLUMNS,
        feature_count=row[0],
        bbox=None,
        created=updated,
        modified=updated,
    )


_TABLE_FIELDS = (
    f"id, name, description, columns, feature_count, bbox, created, modified, physical, {shape_tables.SHAPES_FLAG_SQL}"
)


def _table_info(row: tuple[Any, ...]) -> TableInfo:
    tid, name, desc, cols, count, bbox, created, modified = row[:8]
    return TableInfo(
        id=tid,
        name=name,
        description=desc,
        columns=tuple(Column(n, t) for n, t in orjson.loads(cols)),
        feature_count=count,
        bbox=tuple(bbox) if bbox else None,
        created=dt.datetime.fromisoformat(created),
        modified=dt.datetime.fromisoformat(modified),
        shapes=bool(row[9]),
    )


def tables(db: Database) -> list[TableInfo]:
    rows = db.all(f"SELECT {_TABLE_FIELDS} FROM feature_tables ORDER BY id")
    stops = stop_store.table_info(db.one)
    return [crimes_table_info(db), *((stops,) if stops else ()), *(_table_info(r) for r in rows)]


def table(db: Database, table_id: str) -> TableInfo | None:
    found = resolve(db, table_id)
    return found.info if found else None


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _as_bool(value: Any) -> Any:
    return bool(value) if isinstance(value, int | float) else value


def _feature_column(i: int, col: Column) -> PgColumn:
    if col.type in ("string", "datetime"):
        return PgColumn(text(f"c{i}"))
    if col.type == "boolean":
        return PgColumn(f"c{i}", value=_as_bool)
    return PgColumn(f"c{i}")


def resolve(db: Database, table_id: str) -> Source | None:
    """The table ``table_id`` as it is now, or None if there is none."""
    if table_id == CRIMES_TABLE:
        return Source(crimes_table_info(db), "crimes", CRIME_COLUMNS_SQL, "id", CRIME_GEOMETRY)
    if table_id == STOPS_TABLE:
        stops = stop_store.table_info(db.one)
        return Source(stops, "stops", stop_store.COLUMNS_SQL, "id", FEATURE_GEOMETRY) if stops else None
    row = db.one(f"SELECT {_TABLE_FIELDS} FROM feature_tables WHERE id = %s", (table_id,))
    if row is None:
        return None
    info = _table_info(row)
    columns = {c.name: _feature_column(i, c) for i, c in enumerate(info.columns)}
    geometry = shape_tables.SHAPE_GEOMETRY if info.shapes else FEATURE_GEOMETRY
    return Source(info, quote_ident(row[8]), columns, "gx_id", geometry)


def require(db: Database, table_id: str) -> Source:
    found = resolve(db, table_id)
    if found is None:
        raise StoreError(f"no table {table_id!r}")
    return found


def _column(source: Source, name: str) -> PgColumn:
    col = source.columns.get(name)
    if col is None:
        raise TableChanged(
            f"table {source.info.id!r} was replaced while it was being read and has no column {name!r} now; ask again"
        )
    return col


def features(db: Database, source: Source, query: FeatureQuery) -> Iterator[Feature]:
    """Features of one table matching ``query``, in keyset order (see FeatureQuery)."""
    names = query.columns if query.columns is not None else tuple(c.name for c in source.info.columns)
    for name in (*names, *(k.column for k in query.order_by)):
        _column(source, name)
    shapes = source.info.shapes
    select = ", ".join(
        [source.key, "lng", "lat", *(source.columns[n].expr for n in names), *shape_tables.select_shape(shapes)]
    )
    params: list[Any] = []
    sql = _read_sql(db, source, query, select, params)
    started = False
    try:
        for row in db.stream(sql, params):
            started = True
            yield shape_tables.feature(row, shapes)
    except psycopg.errors.UndefinedTable:
        # The table was replaced (and its old rows dropped) between looking it up and reading it.
        if started:
            raise StoreError(f"table {query.table!r} was replaced while being read; try again") from None
        raise TableChanged(f"table {query.table!r} was replaced while it was being read; ask again") from None


def _read_sql(db: Database, source: Source, query: FeatureQuery, select: str, params: list[Any]) -> str:
    """The statement reading ``select`` of ``query``'s rows in keyset order (its parameters appended to ``params``)."""
    where = ["TRUE"]
    if query.where is not None:
        try:
            where.append(compile_predicate(query.where, source.columns, params, POSTGIS, source.geometry))
        except KeyError as e:
            raise TableChanged(
                f"table {source.info.id!r} was replaced while it was being read ({e}); ask again"
            ) from None
    if source.clustered and not query.order_by:
        # Crimes in their clustered order (month, cell, id): a page is one range scan of
        # that index. The cursor is the last crime's id; its place in that order is looked
        # up once per page.
        order = "ORDER BY month, cell, id"
        hint = _cell_ranges(query.where)
        if hint is not None:
            where.append(hint[0])
            params.extend(hint[1])
        if query.after is not None:
            where.append("(month, cell, id) > (%s, %s, %s)")
            params.extend(_clustered_key(db, query.after))
    else:
        order = order_clause(query.order_by, source.columns, source.key, POSTGIS)
        if query.after is not None:
            where.append(keyset_condition(query.order_by, source.columns, source.key, query.after, params, POSTGIS))
    sql = f"SELECT {select} FROM {source.sql} WHERE {' AND '.join(where)} {order}"
    if query.limit is not None:
        sql += " LIMIT %s"
        params.append(query.limit)
    return sql


def feature_geojson(db: Database, source: Source, query: FeatureQuery, layout: Layout) -> GeoJSONPage | None:
    """The features of ``query`` as GeoJSON written by PostgreSQL (:mod:`crimemap.store.geojson_sql`), or None.

    None for a table of shapes, and where the engine could not write one of the
    page's features exactly: the caller reads it through ``feature_columns``.
    """
    names = query.columns if query.columns is not None else tuple(c.name for c in source.info.columns)
    for name in (*names, *(k.column for k in query.order_by)):
        _column(source, name)
    if source.info.shapes:
        return None
    # Each value is read once, by a subquery (OFFSET 0 keeps PostgreSQL from folding it into the
    # rendering, which names a value up to four times); the rendering runs over its rows, in its order.
    types = source.info.schema
    values = [f"{source.columns[n].expr} AS v{i}" for i, n in enumerate(names)]
    keys = [f"{source.columns[k.column].expr} AS k{i}" for i, k in enumerate(query.order_by)]
    columns = {n: JsonColumn(f"v{i}", types[n]) for i, n in enumerate(names)}
    render, params = FeaturePlan(layout, "fid", "lng", "lat", columns).sql(POSTGIS_JSON)
    inner = ", ".join([f"{source.key} AS fid", "lng", "lat", *values, *keys])
    cursor = ", ".join([*(f"k{i}" for i in range(len(query.order_by))), "fid"])
    sql = f"SELECT {render}, {cursor} FROM ({_read_sql(db, source, query, inner, params)} OFFSET 0) page"
    try:
        rows = db.all(sql, params)
    except psycopg.errors.UndefinedTable:
        raise TableChanged(f"table {query.table!r} was replaced while it was being read; ask again") from None
    features = [r[0].encode() for r in rows]
    if not all_exact(features):
        return None
    ordered = len(query.order_by)
    return GeoJSONPage(features, [r[1 : ordered + 2] for r in rows])


MAX_HINT_RANGES = 512
"""An area of more cell ranges than this is read without them (a wide area is most of the month anyway)."""


def _cell_ranges(pred: Predicate | None) -> tuple[str, list[int]] | None:
    """``cell BETWEEN`` ranges a crime must lie in for ``pred``'s areas to hold, as SQL and parameters.

    The crimes are indexed on ``(month, cell, id)``, not on a geometry: without
    the cells an area lies in, a bounding box is tested on every crime of the
    month in key order until the page is full (108 ms for a small town's first
    page of ten). The area's own exact test stays in the ``where``.
    """
    found: list[list[areas.CellRange]] = []
    stack = [pred] if pred is not None else []
    while stack:
        p = stack.pop()
        if isinstance(p, And):
            stack.extend(p.operands)
        elif isinstance(p, Within):
            found.append(list(areas.area_ranges(p.area)))
    if not found:
        return None
    ranges = min(found, key=lambda rs: sum(r.hi - r.lo + 1 for r in rs))
    merged: list[list[int]] = []
    for r in sorted(ranges):
        if merged and r.lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], r.hi)
        else:
            merged.append([r.lo, r.hi])
    if len(merged) > MAX_HINT_RANGES:
        return None
    if not merged:
        return "FALSE", []
    return "(" + " OR ".join(["cell BETWEEN %s AND %s"] * len(merged)) + ")", [v for r in merged for v in r]


def _clustered_key(db: Database, after: tuple[Any, ...]) -> tuple[int, int, int]:
    if len(after) != 1:
        raise ValueError("page token does not fit this query")
    row = db.one("SELECT month, cell, id FROM crimes WHERE id = %s", (after[0],))
    if row is None:
        raise PageCursorGone(
            f"crime {after[0]} where the previous page ended is no longer stored (its month was reloaded);"
            " start again from the first page"
        )
    return row[0], row[1], row[2]


def feature(db: Database, source: Source, gx_id: int, columns: tuple[str, ...] | None) -> Feature | None:
    names = columns if columns is not None else tuple(c.name for c in source.info.columns)
    shapes = source.info.shapes
    select = ", ".join(
        [source.key, "lng", "lat", *(_column(source, n).expr for n in names), *shape_tables.select_shape(shapes)]
    )
    if not -(1 << 63) <= gx_id < 1 << 63:
        return None
    row = db.one(f"SELECT {select} FROM {source.sql} WHERE {source.key} = %s", (gx_id,))
    return shape_tables.feature(row, shapes) if row else None


def pg_type(column: Column) -> str:
    """The PostgreSQL type a feature table keeps a column of this type in."""
    return _PG_TYPES[column.type]
