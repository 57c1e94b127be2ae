"""A whole table read as Apache Arrow record batches by the engine's own driver, planned once for both stores.

Exports of whole tables (:mod:`crimemap.export`) read here: one SQL statement
per export, run by an ADBC driver (``adbc-driver-sqlite``,
``adbc-driver-postgresql``), which hands back its result as Arrow record batches
made in C. No row becomes a Python object: the stored codes of the crimes
(force, category, month numbers) are decoded a batch at a time by ``take`` from
small arrays of names (:data:`CRIME_READS`), and where an engine keeps a name in
a table of its own (the embedded store's LSOAs, map points, outcomes), that
table is read once, in the same snapshot, and looked up a batch at a time
(:class:`Lookup`).

What is read, in which order and how each column decodes is planned here
(:func:`plan_read`), once; each engine's dialect module says only how it spells
the crimes' stored values (:class:`CrimeValues`), and its ``columnar`` module
how it opens the driver, binds values and reads the lookup tables. A
``where`` is compiled by the store's own compiler and dialect
(:mod:`crimemap.store.compiler`), as for its pages.

**One generation.** The export is one statement, and a statement reads one
snapshot on both engines (SQLite's WAL read transaction, PostgreSQL's MVCC
snapshot): a load that commits while the export streams is not seen by it, and
the export never mixes a month's old crimes with its new ones.

>>> read = plan_read(source, FeatureQuery("policeuk-crimes"), SQLITE, SQLITE_CRIME_VALUES)  # doctest: +SKIP
>>> read.sql  # doctest: +SKIP
'SELECT crimes.id, crimes.lng, crimes.lat, CASE ... FROM crimes WHERE 1 ORDER BY crimes.month, crimes.cell, crimes.id'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crimemap import vocab
from crimemap.months import format_month
from crimemap.query import Compare, FeatureQuery, Predicate, Within, conjuncts
from crimemap.store.catalogue import CRIMES_TABLE, ColumnType, TableInfo
from crimemap.store.compiler import Dialect, Geometry, SqlColumn, compile_predicate
from crimemap.store.records import CATEGORY_SLUGS, FORCE_NAMES, LOCATION_TYPES

BATCH_ROWS = 16_384
"""Rows in each record batch the driver hands back. With the batches read ahead and being written, a whole-table
CSV export of the crimes peaked at 157 MB anonymous memory (208 MB with 32,768 rows, 131 MB with 8,192, at
about the same speed)."""

StoredType = Literal["integer", "double", "string", "blob"]


@dataclass(frozen=True)
class ArrowFeatures:
    """A batch of features column by column as Arrow arrays: ids, points, and each column asked for.

    ``shape`` holds each feature's WKB where the table is one of shapes (else None).
    """

    gx_id: pa.Array
    lng: pa.Array
    lat: pa.Array
    values: tuple[pa.Array, ...]
    shape: pa.Array | None = None

    def __len__(self) -> int:
        return len(self.gx_id)

    def slice(self, start: int, length: int) -> ArrowFeatures:
        """``length`` features from ``start`` (fewer at the end), sharing the arrays' buffers."""
        shape = self.shape.slice(start, length) if self.shape is not None else None
        values = tuple(v.slice(start, length) for v in self.values)
        return ArrowFeatures(self.gx_id.slice(start, length), self.lng.slice(start, length),
                             self.lat.slice(start, length), values, shape)  # fmt: skip


@dataclass(frozen=True)
class Lookup:
    """A stored value named through a small table rather than a join: ``own`` if not NULL, else the name of
    ``code`` in ``table`` (``SELECT code, name ...``, read once per export, in the statement's snapshot),
    else ``default``.

    Joining each crime to its LSOA, map point and outcome measured half the
    embedded store's read; naming the codes of a whole batch at once in Arrow costs little.
    """

    code: str
    table: str
    own: str | None = None
    default: str | None = None


@dataclass(frozen=True)
class Names:
    """A lookup table read: its codes in order and the name of each, to name a batch of codes at once."""

    codes: np.ndarray
    names: pa.Array

    @classmethod
    def of(cls, table: pa.Table) -> Names:
        codes = table.column(0).to_numpy()
        order = np.argsort(codes, kind="stable")
        return cls(codes[order], pc.take(table.column(1).combine_chunks(), pa.array(order)).cast(pa.string()))

    def name(self, codes: pa.Array) -> pa.Array:
        """The name of each code (null where a code is null or unknown)."""
        if not len(self.codes):
            return pa.nulls(len(codes), pa.string())
        wanted = codes.to_numpy(zero_copy_only=False) if codes.null_count == 0 else pc.fill_null(codes, 0).to_numpy()
        at = np.minimum(np.searchsorted(self.codes, wanted), len(self.codes) - 1)
        known = self.codes[at] == wanted
        if codes.null_count:
            known &= codes.is_valid().to_numpy(zero_copy_only=False)
        return pc.take(self.names, pa.array(at, mask=~known))


@dataclass(frozen=True)
class CrimeValues:
    """How an engine spells the crimes' stored values (its dialect module holds one).

    ``values`` maps each name of :data:`CRIME_VALUE_TYPES` to SQL over ``source``, or to a :class:`Lookup`;
    ``order`` is the clustered order, ``(month, cell, id)``, in which every read of
    the crimes table without ``orderBy`` answers.
    """

    source: str
    order: str
    values: Mapping[str, str | Lookup]


CRIME_VALUE_TYPES: dict[str, StoredType] = {
    "id": "integer",
    "lng": "double",
    "lat": "double",
    "pid": "string",  # the persistent id's 64 hex digits, or ''
    "month": "integer",
    "force": "integer",
    "falls_within": "string",  # NULL: the reporting force
    "street": "string",
    "lsoa_code": "string",
    "lsoa_name": "string",
    "category": "integer",
    "outcome_name": "string",
    "outcome_month": "integer",
    "context": "string",
    "location_subtype": "string",
    "street_id": "integer",
}
"""The crimes' stored values a columnar read may select, and their types."""


def _months(codes: pa.Array) -> pa.Array:
    """Month numbers (months since year 0) as ``YYYY-MM``, each distinct month formatted once."""
    distinct = pc.unique(codes).drop_null()
    texts = pa.array([format_month(m) for m in distinct.to_pylist()], pa.string())
    return pc.take(texts, pc.index_in(codes, distinct))


def _named(names: Sequence[str]) -> Callable[[pa.Array], pa.Array]:
    """A decoder of codes into ``names[code]``."""
    table = pa.array(names, pa.string())
    return lambda codes: pc.take(table, codes)


_FORCE_NAME = _named(FORCE_NAMES)


def _same(values: pa.Array) -> pa.Array:
    return values


@dataclass(frozen=True)
class CrimeRead:
    """How one column of the crimes table decodes from stored values (all of a batch at once)."""

    values: tuple[str, ...]
    decode: Callable[..., pa.Array] = _same


CRIME_READS: dict[str, CrimeRead] = {
    "id": CrimeRead(("id",)),
    "crime_id": CrimeRead(("pid",)),
    "month": CrimeRead(("month",), _months),
    "reported_by": CrimeRead(("force",), _FORCE_NAME),
    "falls_within": CrimeRead(("force", "falls_within"), lambda f, falls: pc.coalesce(falls, _FORCE_NAME(f))),
    "longitude": CrimeRead(("lng",)),
    "latitude": CrimeRead(("lat",)),
    "location": CrimeRead(("street",)),
    "lsoa_code": CrimeRead(("lsoa_code",)),
    "lsoa_name": CrimeRead(("lsoa_name",)),
    "crime_type": CrimeRead(("category",), _named([c.name for c in vocab.CATEGORIES])),
    "category": CrimeRead(("category",), _named(CATEGORY_SLUGS)),
    "last_outcome_category": CrimeRead(("outcome_name",)),
    "outcome_month": CrimeRead(("outcome_month",), _months),
    "context": CrimeRead(("context",)),
    "location_type": CrimeRead(("force",), _named(LOCATION_TYPES)),
    "location_subtype": CrimeRead(("location_subtype",)),
    "street_id": CrimeRead(("street_id",)),
}
"""How each column of :data:`~crimemap.store.catalogue.CRIME_COLUMNS` decodes from stored values."""


class Source(Protocol):
    """A table resolved for one read, as both stores' ``tables`` modules resolve one."""

    @property
    def info(self) -> TableInfo: ...
    @property
    def sql(self) -> str: ...
    @property
    def columns(self) -> Mapping[str, SqlColumn]: ...
    @property
    def key(self) -> str: ...
    @property
    def geometry(self) -> Geometry: ...


_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "integer": pa.int64(),
    "double": pa.float64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "datetime": pa.string(),
}
_STORED: dict[ColumnType, StoredType] = {
    "integer": "integer",
    "double": "double",
    "string": "string",
    "boolean": "integer",
    "datetime": "string",
}


@dataclass(frozen=True)
class ColumnarRead:
    """One statement that reads a table for an export, and how its record batches become features.

    ``types`` are those of the selected values, in order (an engine whose driver
    guesses types from the values, as SQLite's does, needs them); ``lookups``
    are the statements of the lookup tables to read first, in the same snapshot;
    ``decode`` turns one record batch of the statement into :class:`ArrowFeatures`,
    given the lookup tables read.
    """

    sql: str
    params: list[Any]
    types: tuple[StoredType, ...]
    decode: Callable[[pa.RecordBatch, Sequence[Names]], ArrowFeatures]
    lookups: tuple[str, ...] = ()


def plan_read(source: Source, query: FeatureQuery, dialect: Dialect, crimes: CrimeValues) -> ColumnarRead | None:
    """The statement reading ``query``'s features (its ``where`` and columns; all of them, in the
    store's order), or None where this read does not apply (a table of shapes, an ``orderBy``, a page).

    ``crimes`` is how ``dialect``'s engine spells the crimes' stored values.
    """
    info = source.info
    if info.shapes or query.order_by or query.after is not None or query.limit is not None:
        return None
    names = query.columns if query.columns is not None else tuple(c.name for c in info.columns)
    if any(n not in source.columns for n in names):
        return None
    params: list[Any] = []
    where = dialect.true
    if query.where is not None:
        try:
            where = compile_predicate(query.where, dict(source.columns), params, dialect, source.geometry)
        except KeyError:
            return None
    if info.id == CRIMES_TABLE:
        if _walked_faster(query.where, source.columns):
            return None
        return _plan_crimes(names, where, params, crimes)
    kinds = [info.schema[n] for n in names]
    select = [source.key, "lng", "lat", *(source.columns[n].expr for n in names)]
    types: tuple[StoredType, ...] = ("integer", "double", "double", *(_STORED[k] for k in kinds))
    sql = f"SELECT {', '.join(select)} FROM {source.sql} WHERE {where} ORDER BY {source.key}"

    def decode(batch: pa.RecordBatch, names: Sequence[Names] = ()) -> ArrowFeatures:
        cols = batch.columns
        values = tuple(_typed(cols[3 + i], kind) for i, kind in enumerate(kinds))
        return ArrowFeatures(cols[0], _typed(cols[1], "double"), _typed(cols[2], "double"), values)

    return ColumnarRead(sql, params, types, decode)


def _walked_faster(where: Predicate | None, columns: Mapping[str, SqlColumn]) -> bool:
    """Whether the store's keyset read finds ``where``'s crimes faster than one scan in stored order.

    It does when ``where`` names an area (a walk of the area's grid cells) or one category and one
    force (the index of those pairs): a scan would read every crime of every month for a few.
    """
    named: set[str] = set()
    for p in conjuncts(where):
        if isinstance(p, Within):
            return True
        if isinstance(p, Compare) and p.op == "=" and p.column in columns:
            named.add((columns[p.column].physical or "").rpartition(".")[2])
    return {"category", "force"} <= named


def _plan_crimes(names: tuple[str, ...], where: str, params: list[Any], crimes: CrimeValues) -> ColumnarRead:
    wanted = ["id", "lng", "lat"]
    for n in names:
        wanted += [v for v in CRIME_READS[n].values if v not in wanted]
    select: list[str] = []
    types: list[StoredType] = []
    tables: list[str] = []
    reads: list[Callable[[list[pa.Array], Sequence[Names]], pa.Array]] = []
    for v in wanted:
        spelt = crimes.values[v]
        if isinstance(spelt, str):
            reads.append(_column_at(len(select)))
            select.append(spelt)
            types.append(CRIME_VALUE_TYPES[v])
            continue
        if spelt.table not in tables:
            tables.append(spelt.table)
        reads.append(_looked_up(spelt, len(select), tables.index(spelt.table)))
        select += [spelt.code, *([spelt.own] if spelt.own is not None else [])]
        types += ["integer", *(["string"] if spelt.own is not None else [])]  # type: ignore[list-item]
    sql = f"SELECT {', '.join(select)} FROM {crimes.source} WHERE {where} ORDER BY {crimes.order}"
    at = {v: i for i, v in enumerate(wanted)}
    columns = [CRIME_READS[n] for n in names]

    def decode(batch: pa.RecordBatch, looked_up: Sequence[Names] = ()) -> ArrowFeatures:
        cols = batch.columns
        stored = [read(cols, looked_up) for read in reads]
        values = tuple(c.decode(*(stored[at[v]] for v in c.values)) for c in columns)
        return ArrowFeatures(stored[0], _typed(stored[1], "double"), _typed(stored[2], "double"), values)

    return ColumnarRead(sql, params, tuple(types), decode, tuple(tables))


def _column_at(i: int) -> Callable[[list[pa.Array], Sequence[Names]], pa.Array]:
    return lambda cols, looked_up: cols[i]


def _looked_up(lookup: Lookup, i: int, table: int) -> Callable[[list[pa.Array], Sequence[Names]], pa.Array]:
    def read(cols: list[pa.Array], looked_up: Sequence[Names]) -> pa.Array:
        found = looked_up[table].name(cols[i])
        if lookup.own is not None:
            found = pc.coalesce(_typed(cols[i + 1], "string"), found)
        return pc.fill_null(found, lookup.default) if lookup.default is not None and found.null_count else found

    return read


def _typed(values: pa.Array, kind: ColumnType) -> pa.Array:
    """A column as its type says (SQLite's booleans are 0 and 1; a column of NULLs has no type of its own)."""
    want = _ARROW_TYPES[kind]
    return values if values.type == want else pc.cast(values, want)
