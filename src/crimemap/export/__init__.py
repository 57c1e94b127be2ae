"""Whole-table exports as GeoJSON, CSV, GeoPackage, GeoParquet and FlatGeobuf, in constant memory.

The HTTP downloads (:mod:`crimemap.api.downloads`) and ``crimemap export``
share these writers. GeoJSON, CSV and GeoParquet are streamed as they are
written; GeoPackage and FlatGeobuf are files written in place, so they are
written to a file batch by batch and then streamed (:mod:`crimemap.export.gdal`).
The three GIS formats need the optional ``gis`` extra (pyogrio, pyarrow).

A table is read in batches of :data:`BATCH_FEATURES` features by keyset on
``gx_id`` (each batch one short query, no cursor held open between chunks),
and each writer yields ``bytes`` chunks of about :data:`CHUNK_BYTES`, so memory stays flat however large the table.

Each batch is its own read, so an export runs alongside loads of other tables
without blocking them; if *the same* table is replaced during an export, the
rest of the export comes from the new table.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from crimemap.query import FeatureQuery, Predicate, Scalar
from crimemap.records import FeatureColumns
from crimemap.store.base import Store
from crimemap.store.catalogue import ColumnType, TableInfo
from crimemap.where import GEOMETRY, WhereError, parse_select, parse_where

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


def format_for(output: Path | None, fmt: str | None) -> str:
    """The format asked for, else the output file's suffix (``.csv``, ``.gpkg``...), else ``geojson``."""
    if fmt is None:
        suffix = output.suffix.lower().lstrip(".") if output is not None else ""
        suffix = {"geoparquet": "parquet", "json": "geojson"}.get(suffix, suffix)
        fmt = suffix if suffix in FORMATS else "geojson"
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def write_chunks(chunks: Iterable[bytes], output: Path | None) -> int:
    """Write chunks to ``output`` (standard output for ``None`` or ``-``); returns bytes written.

    A file is written beside its final name and renamed into place at the end,
    so a failed or interrupted export never leaves a truncated file behind.
    """
    written = 0
    if output is None or str(output) == "-":
        sink = sys.stdout.buffer
        for chunk in chunks:
            sink.write(chunk)
            written += len(chunk)
        sink.flush()
        return written
    partial = output.with_name(f".{output.name}.partial")
    try:
        with partial.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
                written += len(chunk)
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written


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


def export_chunks(store: Store, export: Export, fmt: str, progress: Progress | None = None) -> Iterator[bytes]:
    """The export in ``fmt`` (one of :data:`FORMATS`) as a stream of byte chunks."""
    from crimemap.export import csv as csv_export
    from crimemap.export import geojson

    if fmt == "geojson":
        return geojson.geojson_chunks(store, export, progress)
    if fmt == "csv":
        return csv_export.csv_chunks(store, export, progress)
    if fmt == "parquet":
        from crimemap.export import parquet

        return parquet.parquet_chunks(store, export, progress)
    if fmt in FILE_FORMATS:
        from crimemap.export import gdal

        return gdal.file_chunks(store, export, fmt, progress)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def check_available(fmt: str) -> None:
    """:class:`ExportError` saying how to install the ``gis`` extra when ``fmt`` needs it and it is missing."""
    if fmt in ("gpkg", "fgb", "parquet"):
        from crimemap.export.arrow import require

        if fmt == "parquet":
            require("pyarrow")
        else:
            require("pyogrio", "pyarrow")


def write_export(store: Store, export: Export, fmt: str, output: Path | None, progress: Progress | None = None) -> int:
    """Write the export to ``output`` (standard output for None or ``-``), replaced only when complete; bytes written.

    GeoPackage and FlatGeobuf go straight into a file beside ``output``; the
    streamed formats through :func:`write_chunks`.
    """
    check_available(fmt)
    if fmt not in FILE_FORMATS or output is None or str(output) == "-":
        return write_chunks(export_chunks(store, export, fmt, progress), output)
    from crimemap.export import gdal

    partial = output.with_name(f".{output.name}.partial.{fmt}")
    partial.unlink(missing_ok=True)
    try:
        gdal.write_file(store, export, fmt, partial, progress)
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return output.stat().st_size


__all__ = [
    "BATCH_FEATURES",
    "CHUNK_BYTES",
    "FILE_FORMATS",
    "FORMATS",
    "Export",
    "ExportError",
    "export_chunks",
    "feature_batches",
    "format_for",
    "plan_export",
    "value_fixer",
    "write_chunks",
    "write_export",
    "check_available",
]
