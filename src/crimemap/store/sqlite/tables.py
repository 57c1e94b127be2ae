"""Feature tables in the embedded store: each loaded GeoJSON/CSV table, and the crimes seen as one.

A loaded table lives in its own ``ft_<n>`` table (``gx_id``, ``lng``, ``lat``,
``cell``, then one ``c<i>`` column per schema column); the police.uk crimes are
readable as the table ``policeuk-crimes`` through :data:`CRIME_COLUMNS`, which
says how each of its columns reads from the crimes table (codes decoded, month
numbers written as ``YYYY-MM``). A request resolves its table once
(:func:`resolve`) and reads through what that returned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from crimemap import vocab
from crimemap.errors import StoreError, TableChanged
from crimemap.months import parse_month
from crimemap.query import FeatureQuery
from crimemap.records import Feature, FeatureColumns
from crimemap.store.catalogue import CRIME_COLUMNS, CRIMES_TABLE, STOPS_TABLE, Column, TableInfo
from crimemap.store.compiler import Geometry, SqlColumn, compile_predicate, keyset_condition, order_clause
from crimemap.store.geojson_sql import FeaturePlan, GeoJSONPage, JsonColumn, Layout, all_exact
from crimemap.store.records import encode_category_name, encode_category_slug, encode_force_name
from crimemap.store.sqlite import crime_table
from crimemap.store.sqlite import stops as stop_store
from crimemap.store.sqlite.connection import Reader
from crimemap.store.sqlite.dialect import SQLITE, SQLITE_JSON
from crimemap.store.sqlite.schema import pid_text, street_name


def _month_text(expr: str) -> str:
    return f"printf('%04d-%02d', {expr} / 12, {expr} % 12 + 1)"


CRIME_COLUMNS_SQL: dict[str, SqlColumn] = {
    "id": SqlColumn("crimes.id"),
    "crime_id": SqlColumn(pid_text("crimes")),
    "month": SqlColumn(_month_text("crimes.month"), "crimes.month", parse_month, order_preserving=True),
    "reported_by": SqlColumn("(SELECT name FROM forces WHERE code = crimes.force)", "crimes.force", encode_force_name),
    "falls_within": SqlColumn("coalesce(crimes.falls_within, (SELECT name FROM forces WHERE code = crimes.force))"),
    "longitude": SqlColumn("crimes.lng"),
    "latitude": SqlColumn("crimes.lat"),
    "location": SqlColumn(street_name("crimes")),
    "lsoa_code": SqlColumn("(SELECT lsoa_code FROM lsoas WHERE code = crimes.lsoa)"),
    "lsoa_name": SqlColumn("(SELECT lsoa_name FROM lsoas WHERE code = crimes.lsoa)"),
    "crime_type": SqlColumn(
        "(SELECT name FROM categories WHERE code = crimes.category)", "crimes.category", encode_category_name
    ),
    "category": SqlColumn(
        "(SELECT slug FROM categories WHERE code = crimes.category)", "crimes.category", encode_category_slug
    ),
    "last_outcome_category": SqlColumn("(SELECT name FROM outcome_kinds WHERE code = crimes.outcome)"),
    "outcome_month": SqlColumn(
        f"CASE WHEN crimes.outcome_month IS NULL THEN NULL ELSE {_month_text('crimes.outcome_month')} END",
        "crimes.outcome_month",
        parse_month,
        order_preserving=True,
    ),
    "context": SqlColumn("crimes.context"),
    "location_type": SqlColumn(f"CASE crimes.force WHEN {vocab.BTP.code} THEN 'BTP' ELSE 'Force' END"),
    "location_subtype": SqlColumn("crimes.location_subtype"),
    "street_id": SqlColumn("crimes.street_id"),
}
"""How each column of the crimes table reads in SQL (see the module docstring)."""

CRIME_GEOMETRY = Geometry(lng="crimes.lng", lat="crimes.lat")
FEATURE_GEOMETRY = Geometry()
SHAPE_GEOMETRY = Geometry(shape="shape")
"""A table of shapes (:mod:`crimemap.store.sqlite.boundaries`): area tests ask whether each shape intersects."""


@dataclass(frozen=True)
class Source:
    """A table resolved for one read: where its rows are and how its columns read."""

    info: TableInfo
    sql: str
    columns: dict[str, SqlColumn]
    key: str
    geometry: Geometry

    @property
    def clustered(self) -> bool:
        return self.info.id == CRIMES_TABLE

    def select(self, names: tuple[str, ...]) -> str:
        """The key, the point, the columns ``names`` and, for a table of shapes, the shape."""
        shape = ["shape"] if self.info.shapes else []
        return ", ".join([self.key, "lng", "lat", *(self.columns[n].expr for n in names), *shape])

    def feature(self, row: tuple[Any, ...]) -> Feature:
        if self.info.shapes:
            return Feature(row[0], row[1], row[2], row[3:-1], row[-1])
        return Feature(row[0], row[1], row[2], row[3:])


def crimes_table_info(db: Reader) -> TableInfo:
    count, updated = db.one(
        "SELECT coalesce(sum(rows), 0), (SELECT value FROM meta WHERE key = 'last_updated')"
        " FROM loads WHERE kind = 'street'"
    )
    when = dt.datetime.fromisoformat(updated) if updated else None
    return TableInfo(
        id=CRIMES_TABLE,
        name="police.uk street-level crimes",
        description="Every stored police.uk street-level crime, one feature per crime.",
        columns=CRIME_COLUMNS,
        feature_count=count,
        bbox=None,
        created=when,
        modified=when,
    )


_TABLE_FIELDS = (
    "id, name, description, columns, feature_count, bbox, created, modified, physical,"
    " (SELECT kind FROM feature_geometry WHERE feature_geometry.physical = feature_tables.physical)"
)


def _table_info(row: tuple[Any, ...]) -> TableInfo:
    tid, name, desc, cols, count, bbox, created, modified = row[:8]
    return TableInfo(
        id=tid,
        name=name,
        description=desc,
        columns=tuple(Column(n, t) for n, t in orjson.loads(cols)),
        feature_count=count,
        bbox=tuple(orjson.loads(bbox)) if bbox else None,
        created=dt.datetime.fromisoformat(created),
        modified=dt.datetime.fromisoformat(modified),
        shapes=len(row) > 9 and row[9] is not None,
    )


def table(db: Reader, table_id: str) -> TableInfo | None:
    found = resolve(db, table_id)
    return found.info if found else None


def tables(db: Reader) -> list[TableInfo]:
    rows = db.execute(f"SELECT {_TABLE_FIELDS} FROM feature_tables ORDER BY id").fetchall()
    stops = stop_store.table_info(db)
    return [crimes_table_info(db), *((stops,) if stops else ()), *(_table_info(r) for r in rows)]


def resolve(db: Reader, table_id: str) -> Source | None:
    """The table ``table_id`` as it is now, or None if there is none."""
    if table_id == CRIMES_TABLE:
        return Source(crimes_table_info(db), "crimes", CRIME_COLUMNS_SQL, "crimes.id", CRIME_GEOMETRY)
    if table_id == STOPS_TABLE:
        stops = stop_store.table_info(db)
        return Source(stops, "stops", stop_store.COLUMNS_SQL, "id", stop_store.TABLE_GEOMETRY) if stops else None
    row = db.one(f"SELECT {_TABLE_FIELDS} FROM feature_tables WHERE id = ?", (table_id,))
    if row is None:
        return None
    info = _table_info(row)
    columns = {c.name: SqlColumn(f"c{i}") for i, c in enumerate(info.columns)}
    return Source(info, row[8], columns, "gx_id", SHAPE_GEOMETRY if info.shapes else FEATURE_GEOMETRY)


def _column(source: Source, name: str) -> SqlColumn:
    col = source.columns.get(name)
    if col is None:
        raise TableChanged(
            f"table {source.info.id!r} was replaced while it was being read and has no column {name!r} now; ask again"
        )
    return col


def feature_columns(db: Reader, source: Source, query: FeatureQuery, decoders: crime_table.Decoders) -> FeatureColumns:
    """Features of one table matching ``query``, in keyset order (see FeatureQuery), column by column.

    The crimes are read by :mod:`crimemap.store.sqlite.crime_table` (codes decoded
    a column at a time, the clustered key walked when there is no ``order_by``);
    booleans, which SQLite keeps as 0 and 1, come back as ``bool``.
    """
    names = query.columns if query.columns is not None else tuple(c.name for c in source.info.columns)
    for name in (*names, *(k.column for k in query.order_by)):
        _column(source, name)
    try:
        if source.clustered and not query.order_by:
            return crime_table.features(db, query, names, source.columns, decoders)
        params: list[Any] = []
        where = ["1"]
        if query.where is not None:
            where.append(compile_predicate(query.where, source.columns, params, SQLITE, source.geometry))
    except KeyError as e:
        raise _changed(source, e) from None
    order = order_clause(query.order_by, source.columns, source.key, SQLITE)
    if query.after is not None:
        where.append(keyset_condition(query.order_by, source.columns, source.key, query.after, params, SQLITE))
    limit = ""
    if query.limit is not None:
        limit = " LIMIT ?"
    if source.clustered:
        select, places = crime_table.select_list(names)
        sql = f"SELECT {select} FROM {crime_table.SOURCE} WHERE {' AND '.join(where)} {order}{limit}"
        rows = db.execute(sql, (*params, *([query.limit] if limit else []))).fetchall()
        return crime_table.columns(rows, places, decoders)
    sql = f"SELECT {source.select(names)} FROM {source.sql} WHERE {' AND '.join(where)} {order}{limit}"
    rows = db.execute(sql, (*params, *([query.limit] if limit else []))).fetchall()
    if not rows:
        return FeatureColumns((), (), (), tuple(() for _ in names), () if source.info.shapes else None)
    stored = list(zip(*rows, strict=True))
    if source.info.shapes:
        cols = FeatureColumns(stored[0], stored[1], stored[2], tuple(stored[3:-1]), stored[-1])
    else:
        cols = FeatureColumns(stored[0], stored[1], stored[2], tuple(stored[3:]))
    booleans = [i for i, n in enumerate(names) if source.info.schema[n] == "boolean"]
    if booleans and len(cols):
        values = list(cols.values)
        for i in booleans:
            values[i] = [None if v is None else bool(v) for v in values[i]]
        cols = cols.with_values(tuple(values))
    return cols


def feature_geojson(db: Reader, source: Source, query: FeatureQuery, layout: Layout) -> GeoJSONPage | None:
    """The features of ``query`` as GeoJSON written by SQLite (:mod:`crimemap.store.geojson_sql`), or None.

    None where the engine does not write this read (a table of shapes, the crimes
    in an ``orderBy``) or could not write one of its features exactly: the caller
    reads the page through :meth:`~crimemap.store.base.Store.feature_columns`.
    """
    names = query.columns if query.columns is not None else tuple(c.name for c in source.info.columns)
    for name in (*names, *(k.column for k in query.order_by)):
        _column(source, name)
    if source.info.shapes or (source.clustered and query.order_by) or source.info.id == STOPS_TABLE:
        return None
    if source.clustered:
        plan = FeaturePlan(layout, "crimes.id", "crimes.lng", "crimes.lat", crime_table.GEOJSON)
        render, render_params = plan.sql(SQLITE_JSON)
        rows = crime_table.rows(db, query, f"CAST({render} AS BLOB), crimes.id", render_params, source.columns)
        return _page(rows, 0)
    columns = {n: JsonColumn(source.columns[n].expr, source.info.schema[n]) for n in names}
    plan = FeaturePlan(layout, source.key, "lng", "lat", columns)
    render, params = plan.sql(SQLITE_JSON)
    where = ["1"]
    try:
        if query.where is not None:
            where.append(compile_predicate(query.where, source.columns, params, SQLITE, source.geometry))
    except KeyError as e:
        raise _changed(source, e) from None
    if query.after is not None:
        where.append(keyset_condition(query.order_by, source.columns, source.key, query.after, params, SQLITE))
    order = order_clause(query.order_by, source.columns, source.key, SQLITE)
    keys = ", ".join([*(source.columns[k.column].expr for k in query.order_by), source.key])
    sql = f"SELECT CAST({render} AS BLOB), {keys} FROM {source.sql} WHERE {' AND '.join(where)} {order}"
    if query.limit is not None:
        sql += " LIMIT ?"
        params.append(query.limit)
    page = _page(db.execute(sql, params).fetchall(), len(query.order_by))
    booleans = [i for i, k in enumerate(query.order_by) if source.info.schema[k.column] == "boolean"]
    if page is not None and booleans:
        cursors = page.cursors
        fixed = [tuple(bool(v) if i in booleans and v is not None else v for i, v in enumerate(c)) for c in cursors]
        page = GeoJSONPage(page.features, fixed)
    return page


def _page(rows: list[tuple[Any, ...]], keys: int) -> GeoJSONPage | None:
    features = [r[0] for r in rows]
    if not all_exact(features):
        return None
    return GeoJSONPage(features, [r[1 : keys + 2] for r in rows])


def features(db: Reader, source: Source, query: FeatureQuery) -> Iterator[Feature]:
    """Features of a loaded table as records, streamed (booleans as SQLite keeps them, 0 and 1)."""
    names = query.columns if query.columns is not None else tuple(c.name for c in source.info.columns)
    for name in (*names, *(k.column for k in query.order_by)):
        _column(source, name)
    params: list[Any] = []
    where = ["1"]
    if query.where is not None:
        try:
            where.append(compile_predicate(query.where, source.columns, params, SQLITE, source.geometry))
        except KeyError as e:
            raise _changed(source, e) from None
    if query.after is not None:
        where.append(keyset_condition(query.order_by, source.columns, source.key, query.after, params, SQLITE))
    order = order_clause(query.order_by, source.columns, source.key, SQLITE)
    sql = f"SELECT {source.select(names)} FROM {source.sql} WHERE {' AND '.join(where)} {order}"
    if query.limit is not None:
        sql += " LIMIT ?"
        params.append(query.limit)
    for row in db.rows(sql, params):
        yield source.feature(row)


def _changed(source: Source, e: KeyError) -> TableChanged:
    return TableChanged(f"table {source.info.id!r} was replaced while it was being read ({e}); ask again")


def feature(
    db: Reader,
    source: Source,
    gx_id: int,
    columns: tuple[str, ...] | None,
    decoders: crime_table.Decoders | None = None,
) -> Feature | None:
    names = columns if columns is not None else tuple(c.name for c in source.info.columns)
    for name in names:
        _column(source, name)
    if not -(1 << 63) <= gx_id < 1 << 63:
        return None
    if source.clustered and decoders is not None:
        select, places = crime_table.select_list(names)
        rows = db.execute(f"SELECT {select} FROM {crime_table.SOURCE} WHERE crimes.id = ?", (gx_id,)).fetchall()
        found = crime_table.columns(rows, places, decoders)
        return found.row(0) if len(found) else None
    row = db.one(f"SELECT {source.select(names)} FROM {source.sql} WHERE {source.key} = ?", (gx_id,))
    return source.feature(row) if row else None


def require(db: Reader, table_id: str) -> Source:
    found = resolve(db, table_id)
    if found is None:
        raise StoreError(f"no table {table_id!r}")
    return found
