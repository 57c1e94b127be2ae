"""What an export is, checked before it starts, and how a table is read for it.

GeoJSON (:mod:`crimemap.export.geojson`) reads the table through
:func:`feature_batches`, in batches by keyset. CSV, GeoParquet, GeoPackage and
FlatGeobuf (:mod:`~crimemap.export.csv`, :mod:`~crimemap.export.parquet`,
:mod:`~crimemap.export.gdal`) read it through :func:`arrow_batches`: one
statement, its rows as Arrow record batches made by the engine's driver in C
(:mod:`crimemap.store.columnar`), from one snapshot of the store; where a store
cannot read a selection so, from :func:`feature_batches` turned into Arrow.
:mod:`crimemap.export` chooses the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa

from crimemap.export.ahead import read_ahead
from crimemap.query import FeatureQuery, Predicate, Scalar
from crimemap.records import FeatureColumns
from crimemap.store.base import Store
from crimemap.store.catalogue import ColumnType, TableInfo
from crimemap.store.columnar import ArrowFeatures
from crimemap.where import parse_where
from crimemap.where_columns import parse_select
from crimemap.where_syntax import GEOMETRY, WhereError

BATCH_FEATURES = 10_000
"""Features read from the store per query while exporting."""

CHUNK_BYTES = 64 * 1024
"""About how many bytes each yielded chunk holds."""

FORMATS = ("geojson", "csv", "gpkg", "parquet", "fgb")
FILE_FORMATS = ("gpkg", "fgb")
"""Formats written in place into a file (then streamed from it), not as a stream."""

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Export:
    """What to export: a table, an optional predicate and the columns, in order (all by default)."""

    table: TableInfo
    where: Predicate | None = None
    columns: tuple[str, ...] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return self.columns if self.columns is not None else tuple(c.name for c in self.table.columns)


class ExportError(ValueError):
    """An export that cannot start: unknown table, bad ``where`` or ``select``, unknown format."""


def plan_export(store: Store, table_id: str, where: str | None = None, select: str | None = None) -> Export:
    """Check what ``crimemap export`` was asked for; :class:`ExportError` says what is wrong.

    ``where`` is a Maps Engine where clause and ``select`` a comma-separated
    column list, both checked against the table's schema (geometry is always
    written, so selecting it changes nothing).
    """
    table = store.table(table_id)
    if table is None:
        known = ", ".join(t.id for t in store.tables())
        raise ExportError(f"no table {table_id!r}; the tables are: {known}")
    try:
        predicate = parse_where(where, table.schema) if where and where.strip() else None
        columns = None
        if select and select.strip():
            columns = tuple(n for n in parse_select(select, table.schema) if n != GEOMETRY)
    except WhereError as e:
        raise ExportError(f"--{e.parameter.lower()}: {e.message}") from None
    return Export(table, predicate, columns)


def in_chunks(parts: Iterable[bytes | memoryview]) -> Iterator[bytes]:
    """``parts`` joined and cut again into chunks of :data:`CHUNK_BYTES` (the last one shorter)."""
    pending: list[bytes | memoryview] = []
    size = 0
    for part in parts:
        at = 0
        while at < len(part):
            piece = part[at : at + CHUNK_BYTES - size]
            pending.append(piece)
            size += len(piece)
            at += len(piece)
            if size == CHUNK_BYTES:
                yield b"".join(pending)
                pending, size = [], 0
    yield b"".join(pending)


def feature_batches(
    store: Store, export: Export, batch: int | None = None, progress: Progress | None = None
) -> Iterator[FeatureColumns]:
    """The table's features in the store's order for it, ``batch`` at a time, column by column, typed.

    >>> for features in feature_batches(store, Export(store.table("nyc"))):  # doctest: +SKIP
    ...     print(len(features))
    10000
    7710
    """
    batch = batch or BATCH_FEATURES
    after: tuple[Scalar, ...] | None = None
    while True:
        query = FeatureQuery(export.table.id, export.where, export.names, (), after, batch)
        cols = store.feature_columns(query)
        if not len(cols):
            return
        if progress is not None:
            progress(len(cols))
        yield cols
        if len(cols) < batch:
            return
        after = (cols.gx_id[-1],)


def arrow_batches(store: Store, export: Export, progress: Progress | None = None) -> Iterator[ArrowFeatures]:
    """The table's features in the store's order for it, as Arrow arrays, a batch at a time.

    Read in one statement by the store's driver where it can
    (:meth:`~crimemap.store.base.Store.arrow_features`), a batch ahead in a
    thread of its own (:mod:`crimemap.export.ahead`), else by
    :func:`feature_batches`, each batch turned into Arrow arrays of the columns' types.
    """
    found = store.arrow_features(FeatureQuery(export.table.id, export.where, export.names))
    if found is not None:
        found = read_ahead(found)
    else:
        kinds = [export.table.schema[n] for n in export.names]
        found = (_as_arrow(batch, kinds) for batch in feature_batches(store, export))
    for features in found:
        if progress is not None:
            progress(len(features))
        yield features


_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "integer": pa.int64(),
    "double": pa.float64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "datetime": pa.string(),
}


def _as_arrow(features: FeatureColumns, kinds: list[ColumnType]) -> ArrowFeatures:
    shape = pa.array(features.shape, pa.binary()) if features.shape is not None else None
    return ArrowFeatures(
        pa.array(features.gx_id, pa.int64()),
        pa.array(features.lng, pa.float64()),
        pa.array(features.lat, pa.float64()),
        tuple(pa.array(v, _ARROW_TYPES[k]) for v, k in zip(features.values, kinds, strict=True)),
        shape,
    )


def value_fixer(
    schema: Mapping[str, ColumnType], names: tuple[str, ...]
) -> Callable[[tuple[Scalar, ...]], tuple[Scalar, ...]] | None:
    """A function turning stored booleans (0/1 in SQLite) back into ``bool``, or None if none are selected."""
    flags = tuple(schema.get(n) == "boolean" for n in names)
    if not any(flags):
        return None

    def fix(values: tuple[Scalar, ...]) -> tuple[Scalar, ...]:
        return tuple(bool(v) if flag and v is not None else v for v, flag in zip(values, flags, strict=True))

    return fix
