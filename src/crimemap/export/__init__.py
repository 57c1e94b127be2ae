"""Whole-table exports as GeoJSON, CSV, GeoPackage, GeoParquet and FlatGeobuf, in constant memory.

The HTTP downloads (:mod:`crimemap.api.downloads.routes`) and ``crimemap export``
share these writers. GeoJSON, CSV and GeoParquet are streamed as they are
written; GeoPackage and FlatGeobuf are files written in place, so they are
written to a file batch by batch and then streamed (:mod:`crimemap.export.gdal`).
The three GIS formats need the optional ``gis`` extra (pyogrio, pyarrow).

A table is read in batches of :data:`~crimemap.export.plan.BATCH_FEATURES`
features by keyset on ``gx_id`` (each batch one short query, no cursor held
open between chunks; :mod:`crimemap.export.plan`), and each writer yields
``bytes`` chunks of about :data:`~crimemap.export.plan.CHUNK_BYTES`, so memory
stays flat however large the table.

Each batch is its own read, so an export runs alongside loads of other tables
without blocking them; if *the same* table is replaced during an export, the
rest of the export comes from the new table.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from crimemap.export import csv as csv_export
from crimemap.export import gdal, geojson, parquet
from crimemap.export.arrow import require
from crimemap.export.plan import FILE_FORMATS, FORMATS, Export, ExportError, Progress
from crimemap.store.base import Store


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


def export_chunks(store: Store, export: Export, fmt: str, progress: Progress | None = None) -> Iterator[bytes]:
    """The export in ``fmt`` (one of :data:`FORMATS`) as a stream of byte chunks."""
    if fmt == "geojson":
        return geojson.geojson_chunks(store, export, progress)
    if fmt == "csv":
        return csv_export.csv_chunks(store, export, progress)
    if fmt == "parquet":
        return parquet.parquet_chunks(store, export, progress)
    if fmt in FILE_FORMATS:
        return gdal.file_chunks(store, export, fmt, progress)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def check_available(fmt: str) -> None:
    """:class:`ExportError` saying how to install the ``gis`` extra when ``fmt`` needs it and it is missing."""
    if fmt in ("gpkg", "fgb", "parquet"):
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
    partial = output.with_name(f".{output.name}.partial.{fmt}")
    partial.unlink(missing_ok=True)
    try:
        gdal.write_file(store, export, fmt, partial, progress)
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return output.stat().st_size


__all__ = ["check_available", "export_chunks", "format_for", "write_chunks", "write_export"]
