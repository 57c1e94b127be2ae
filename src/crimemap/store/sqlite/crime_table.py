"""The police.uk crimes read as a feature table (``policeuk-crimes``) from the embedded store, fast.

Two things make a page of crimes cheap here:

- **Reading codes, decoding in Python.** Each column is read as the store keeps
  it (a force, category or outcome code, a month number, an LSOA number, the map
  point's name through one join) and turned into its user-visible value by a list
  or dictionary lookup over the whole page, column by column. Reading the same
  values through correlated subqueries and ``printf`` measured three times slower.
- **Walking the clustered key.** Without ``orderBy``, crimes come in their stored
  order, ``(month, cell, id)``. A ``where`` that names months, or an area
  (``ST_INTERSECTS``, ``ST_DISTANCE``, the OGC API's ``bbox``), becomes range scans
  of that key, month by month and cell range by cell range, and a page token
  continues inside them, so page 400 costs what page 1 does. A ``where`` that
  names one category and one force, and no month or area, reads the index of
  (category, force) pairs instead (``crimes_by_kind``), which holds each pair's
  crimes in that same order: the Metropolitan Police's burglaries no longer come
  after every crime of the cells south of London.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from crimemap import vocab
from crimemap.errors import PageCursorGone
from crimemap.geometry import areas
from crimemap.months import format_month, parse_month
from crimemap.query import And, Area, Compare, FeatureQuery, In, Predicate, Within, conjuncts
from crimemap.records import FeatureColumns
from crimemap.store.compiler import Geometry, SqlColumn, compile_predicate
from crimemap.store.geojson_sql import JsonColumn, json_texts
from crimemap.store.sqlite.connection import Reader
from crimemap.store.sqlite.dialect import SQLITE, json_lookup, json_value
from crimemap.store.sqlite.schema import KIND_BASE, kind_sql

month_text = lru_cache(maxsize=4096)(format_month)
_FORCE_NAMES = [f.name for f in vocab.FORCES]
_LOCATION_TYPES = ["BTP" if f is vocab.BTP else "Force" for f in vocab.FORCES]
_CATEGORY_NAMES = [c.name for c in vocab.CATEGORIES]
_CATEGORY_SLUGS = [c.slug for c in vocab.CATEGORIES]

SOURCE = "crimes LEFT JOIN streets s ON s.id = crimes.street_id"
"""The crimes and their map points (for the street name a crime does not spell itself)."""


@dataclass(frozen=True)
class Decoders:
    """What turns stored codes into values that need the store: outcome names and LSOAs."""

    outcome_name: Callable[[int], str | None]
    lsoa: Callable[[int], tuple[str, str]]


@dataclass(frozen=True)
class ReadColumn:
    """How a column is read: ``sql`` (one or more stored values) and ``decode`` (those values to the user's)."""

    sql: str
    decode: Callable[[Decoders], Callable[..., Any]] | None = None


_PID_MARK = b',"persistent_id":"'


def _pid_of(json: bytes, key: int | None) -> str:
    """A crime's persistent id, cut from its JSON (reading it there in SQL cost three times as much)."""
    if key is None:
        return ""
    at = json.find(_PID_MARK) + len(_PID_MARK)
    return json[at : at + 64].decode()


def _nullable_month(value: int | None) -> str | None:
    return month_text(value) if value is not None else None


READS: dict[str, ReadColumn] = {
    "id": ReadColumn("crimes.id"),
    "crime_id": ReadColumn("CAST(crimes.json AS BLOB), crimes.pid_key", lambda d: _pid_of),
    "month": ReadColumn("crimes.month", lambda d: month_text),
    "reported_by": ReadColumn("crimes.force", lambda d: _FORCE_NAMES.__getitem__),
    "falls_within": ReadColumn(
        "crimes.force, crimes.falls_within", lambda d: lambda f, falls: falls if falls is not None else _FORCE_NAMES[f]
    ),
    "longitude": ReadColumn("crimes.lng"),
    "latitude": ReadColumn("crimes.lat"),
    "location": ReadColumn("coalesce(crimes.street_name, s.name, '')"),
    "lsoa_code": ReadColumn("crimes.lsoa", lambda d: lambda code: d.lsoa(code)[0]),
    "lsoa_name": ReadColumn("crimes.lsoa", lambda d: lambda code: d.lsoa(code)[1]),
    "crime_type": ReadColumn("crimes.category", lambda d: _CATEGORY_NAMES.__getitem__),
    "category": ReadColumn("crimes.category", lambda d: _CATEGORY_SLUGS.__getitem__),
    "last_outcome_category": ReadColumn(
        "crimes.outcome", lambda d: lambda code: d.outcome_name(code) if code is not None else None
    ),
    "outcome_month": ReadColumn("crimes.outcome_month", lambda d: _nullable_month),
    "context": ReadColumn("crimes.context"),
    "location_type": ReadColumn("crimes.force", lambda d: _LOCATION_TYPES.__getitem__),
    "location_subtype": ReadColumn("crimes.location_subtype"),
    "street_id": ReadColumn("crimes.street_id"),
}
"""How each column of :data:`crimemap.store.catalogue.CRIME_COLUMNS` is read (see the module docstring)."""


def _json_month(expr: str) -> str:
    return (
        f"CASE WHEN {expr} IS NULL THEN 'null' WHEN {expr} >= 0"
        f" THEN printf('\"%04d-%02d\"', {expr} / 12, {expr} % 12 + 1) END"
    )


def _json_lsoa(column: str) -> str:
    return f"coalesce((SELECT json_quote({column}) FROM lsoas WHERE code = crimes.lsoa), '\"\"')"


_FORCE_JSON = json_lookup("crimes.force", json_texts(_FORCE_NAMES))

GEOJSON: dict[str, JsonColumn] = {
    "id": JsonColumn("crimes.id", "integer"),
    "crime_id": JsonColumn(
        "CASE WHEN crimes.pid_key IS NULL THEN '\"\"' ELSE"
        ' json_quote(substr(crimes.json, instr(crimes.json, \',"persistent_id":"\') + 18, 64)) END',
        "json",
    ),
    "month": JsonColumn(_json_month("crimes.month"), "json"),
    "reported_by": JsonColumn(_FORCE_JSON, "json"),
    "falls_within": JsonColumn(
        f"CASE WHEN crimes.falls_within IS NULL THEN {_FORCE_JSON} ELSE {json_value('crimes.falls_within')} END", "json"
    ),
    "longitude": JsonColumn("crimes.lng", "double"),
    "latitude": JsonColumn("crimes.lat", "double"),
    "location": JsonColumn("coalesce(crimes.street_name, s.name, '')", "string"),
    "lsoa_code": JsonColumn(_json_lsoa("lsoa_code"), "json"),
    "lsoa_name": JsonColumn(_json_lsoa("lsoa_name"), "json"),
    "crime_type": JsonColumn(json_lookup("crimes.category", json_texts(_CATEGORY_NAMES)), "json"),
    "category": JsonColumn(json_lookup("crimes.category", json_texts(_CATEGORY_SLUGS)), "json"),
    "last_outcome_category": JsonColumn(
        "CASE WHEN crimes.outcome IS NULL THEN 'null'"
        " ELSE coalesce((SELECT json_quote(name) FROM outcome_kinds WHERE code = crimes.outcome), 'null') END",
        "json",
    ),
    "outcome_month": JsonColumn(_json_month("crimes.outcome_month"), "json"),
    "context": JsonColumn("crimes.context", "string"),
    "location_type": JsonColumn(json_lookup("crimes.force", json_texts(_LOCATION_TYPES)), "json"),
    "location_subtype": JsonColumn("crimes.location_subtype", "string"),
    "street_id": JsonColumn("crimes.street_id", "integer"),
}
"""Each column of the crimes as JSON written by SQLite, the same text :data:`READS` and orjson make."""


def select_list(names: Sequence[str]) -> tuple[str, list[tuple[int, int, ReadColumn]]]:
    """The select list (key, point, then each column's stored values) and where each column's values are."""
    parts = ["crimes.id", "crimes.lng", "crimes.lat"]
    places = []
    at = 3
    for name in names:
        read = READS[name]
        width = read.sql.count(",") + 1 if read.decode is not None else 1
        places.append((at, width, read))
        parts.append(read.sql)
        at += width
    return ", ".join(parts), places


def columns(rows: list[tuple[Any, ...]], places: list[tuple[int, int, ReadColumn]], d: Decoders) -> FeatureColumns:
    """Features of stored rows, decoded a column at a time (each by a lookup mapped over the column)."""
    if not rows:
        return FeatureColumns((), (), (), tuple(() for _ in places))
    stored = list(zip(*rows, strict=True))
    values: list[Sequence[Any]] = []
    for at, width, read in places:
        if read.decode is None:
            values.append(stored[at])
        else:
            values.append(list(map(read.decode(d), *stored[at : at + width])))
    return FeatureColumns(stored[0], stored[1], stored[2], tuple(values))


# -- the clustered walk ----------------------------------------------------------------------------------


def months_named(pred: Predicate | None) -> set[int] | None:
    """The months a ``where`` confines crimes to (``month = '...'`` or ``month IN (...)``), or None."""
    found: set[int] | None = None
    for p in conjuncts(pred):
        values: tuple[Any, ...]
        if isinstance(p, Compare) and p.column == "month" and p.op == "=":
            values = (p.value,)
        elif isinstance(p, In) and p.column == "month":
            values = p.values
        else:
            continue
        months = set()
        for v in values:
            try:
                months.add(parse_month(str(v)))
            except ValueError:
                continue
        found = months if found is None else found & months
    return found


def areas_named(pred: Predicate | None) -> list[Area]:
    """The areas a ``where`` confines crimes to (each an ``ST_INTERSECTS``/``ST_DISTANCE``/bbox)."""
    return [p.area for p in conjuncts(pred) if isinstance(p, Within)]


def clustered_key(db: Reader, after: tuple[Any, ...]) -> tuple[int, int, int]:
    """Where a page token's crime sits in the clustered order."""
    if len(after) != 1:
        raise ValueError("page token does not fit this query")
    row = db.one("SELECT month, cell, id FROM crimes WHERE id = ?", (after[0],))
    if row is None:
        raise PageCursorGone(
            f"crime {after[0]} where the previous page ended is no longer stored (its month was reloaded);"
            " start again from the first page"
        )
    return row[0], row[1], row[2]


def features(
    db: Reader, query: FeatureQuery, names: Sequence[str], sql_columns: dict[str, SqlColumn], d: Decoders
) -> FeatureColumns:
    """Crimes as features in clustered order (``query`` has no ``order_by``), ``query.limit`` at most."""
    select, places = select_list(names)
    return columns(rows(db, query, select, (), sql_columns), places, d)


def rows(
    db: Reader,
    query: FeatureQuery,
    select: str,
    select_params: Sequence[Any],
    sql_columns: dict[str, SqlColumn],
) -> list[tuple[Any, ...]]:
    """The rows ``select`` (over :data:`SOURCE`, binding ``select_params`` first) makes of ``query``'s crimes.

    In clustered order (``query`` has no ``order_by``), ``query.limit`` at most:
    the columns of :func:`features`, or each crime's GeoJSON (:data:`GEOJSON`).
    """
    params: list[Any] = list(select_params)
    after = clustered_key(db, query.after) if query.after is not None else None
    limit = query.limit if query.limit is not None else -1
    months = months_named(query.where)
    area_list = areas_named(query.where)
    if area_list or months is not None:
        where_params: list[Any] = []
        where = _compiled(query.where, sql_columns, where_params)
        if months is None:
            months = {m for (m,) in db.execute("SELECT DISTINCT month FROM loads WHERE kind = 'street'")}
        ranges: list[areas.CellRange] | None = None
        if area_list:
            ranges = list(areas.area_ranges(_smallest(area_list)))
        return _walk(db, select, params, where, where_params, sorted(months), ranges, after, limit)
    source = SOURCE
    kind = kind_named(query.where, sql_columns)
    if kind is not None and db.one("SELECT 1 FROM sqlite_master WHERE name = 'crimes_by_kind'") is not None:
        # The pair's own comparisons are left out: SQLite would put their values into the
        # index's expression (constant propagation), which then no longer matches the index.
        source = SOURCE.replace("crimes ", "crimes INDEXED BY crimes_by_kind ", 1)
        params.append(kind.code)
        where = f"{kind_sql('crimes')} = ? AND {_compiled(kind.rest, sql_columns, params)}"
    else:
        where = _compiled(query.where, sql_columns, params)
    sql = f"SELECT {select} FROM {source} WHERE {where}"
    if after is not None:
        sql += " AND (crimes.month, crimes.cell, crimes.id) > (?, ?, ?)"
        params.extend(after)
    sql += " ORDER BY crimes.month, crimes.cell, crimes.id LIMIT ?"
    return db.execute(sql, (*params, limit)).fetchall()


def _compiled(pred: Predicate | None, sql_columns: dict[str, SqlColumn], params: list[Any]) -> str:
    if pred is None:
        return "1"
    return compile_predicate(pred, sql_columns, params, SQLITE, Geometry(lng="crimes.lng", lat="crimes.lat"))


@dataclass(frozen=True)
class Kind:
    """A (category, force) pair as ``crimes_by_kind`` holds it, and the rest of the ``where`` beside it."""

    code: int
    rest: Predicate | None


def kind_named(pred: Predicate | None, sql_columns: dict[str, SqlColumn]) -> Kind | None:
    """The (category, force) pair a ``where`` confines crimes to, or None.

    Only an equality the compiler itself turns into a stored code counts (with the
    column's own ``encode``), so the index answers exactly what the comparisons of
    codes would.
    """
    codes: dict[str, set[int]] = {"crimes.category": set(), "crimes.force": set()}
    rest: list[Predicate] = []
    for p in conjuncts(pred):
        stored = _stored_code(p, sql_columns)
        if stored is None:
            rest.append(p)
        else:
            codes[stored[0]].add(stored[1])
    category, force = codes["crimes.category"], codes["crimes.force"]
    if len(category) != 1 or len(force) != 1:
        return None  # none, or two that no crime meets at once: the walk answers (nothing) as before
    code = next(iter(category)) * KIND_BASE + next(iter(force))
    return Kind(code, None if not rest else rest[0] if len(rest) == 1 else And(tuple(rest)))


def _stored_code(p: Predicate, sql_columns: dict[str, SqlColumn]) -> tuple[str, int] | None:
    """``(physical column, code)`` of an equality on a crime's category or force, else None."""
    if not isinstance(p, Compare) or p.op != "=":
        return None
    col = sql_columns.get(p.column)
    if col is None or col.physical not in ("crimes.category", "crimes.force") or col.encode is None:
        return None
    try:
        code = col.encode(p.value)
    except (ValueError, KeyError, TypeError):
        return None
    return None if code is None else (col.physical, code)


def _smallest(found: list[Area]) -> Area:
    """Of several areas a crime must lie in, the one with the fewest cells (each is still tested exactly)."""
    if len(found) == 1:
        return found[0]
    return min(found, key=lambda a: sum(r.hi - r.lo + 1 for r in areas.area_ranges(a)))


_PAGE = 4096


def _walk(
    db: Reader,
    select: str,
    select_params: list[Any],
    where: str,
    params: list[Any],
    months: list[int],
    ranges: list[areas.CellRange] | None,
    after: tuple[int, int, int] | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    """The clustered walk: month by month, cell range by cell range, from the cursor on."""
    base = f"SELECT {select} FROM {SOURCE} WHERE crimes.month = ?"
    cells = " AND crimes.cell BETWEEN ? AND ?"
    order = f" AND {where} ORDER BY crimes.cell, crimes.id LIMIT ?"
    found: list[tuple[Any, ...]] = []
    for month in months:
        if after is not None and month < after[0]:
            continue
        resume = after is not None and month == after[0]
        spans = ranges if ranges is not None else [areas.CellRange(-1, 1 << 62)]
        for span in spans:
            if resume and after is not None and span.hi < after[1]:
                continue
            if resume and after is not None and span.lo <= after[1]:
                # The cursor alone is the lower bound: beside "cell BETWEEN" SQLite bounds the
                # key by the cell range and filters the cursor, re-reading the span (103 ms for
                # page 400 of a month, where the cursor as the bound takes 0.14 ms).
                sql = base + " AND (crimes.cell, crimes.id) > (?, ?) AND crimes.cell <= ?"
                args: list[Any] = [month, after[1], after[2], span.hi]
            else:
                sql = base + cells
                args = [month, span.lo, span.hi]
            left = limit - len(found) if limit >= 0 else -1
            found.extend(db.execute(sql + order, (*select_params, *args, *params, left)).fetchall())
            if 0 <= limit <= len(found):
                return found
    return found
