"""A table as GeoParquet 1.1 (``.parquet``), streamed: DuckDB, geopandas, QGIS and GDAL read it.

Written with pyarrow's ``ParquetWriter`` into a sink that hands each written
row group on as a chunk, so the file goes out (to a socket or a file) while
it is being made, and memory holds at most :data:`ROW_GROUP_ROWS` features.
The geometry is the ``geometry`` column (WKB points, or a table's shapes;
CRS84, as GeoParquet assumes when no ``crs`` is given), described in the
``geo`` metadata; the feature id is ``gx_id``. Values are typed (see :mod:`crimemap.export.arrow`).
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from crimemap import __version__
from crimemap.export.arrow import GEOMETRY, arrow_schema, geometry_types, record_batches, require
from crimemap.export.plan import Export, Progress
from crimemap.store.base import Store

MEDIA_TYPE = "application/vnd.apache.parquet"
ROW_GROUP_ROWS = 20_000
"""Features gathered into one row group before it is written (about 10 MB of Arrow data)."""


def geo_metadata(types: list[str]) -> bytes:
    """The GeoParquet ``geo`` file metadata; ``types`` as :func:`~crimemap.export.arrow.geometry_types` says."""
    return orjson.dumps(
        {
            "version": "1.1.0",
            "primary_column": GEOMETRY,
            "columns": {GEOMETRY: {"encoding": "WKB", "geometry_types": types}},
            "creator": {"library": "crimemap", "version": __version__},
        }
    )


class _Chunks:
    """A write-only file that keeps what is written until it is taken."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data


def parquet_chunks(store: Store, export: Export, progress: Progress | None = None) -> Iterator[bytes]:
    """The GeoParquet file in chunks, one or more row groups at a time."""
    require("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(export, {b"geo": geo_metadata(geometry_types(export.table))})
    sink = _Chunks()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    pending: list[pa.RecordBatch] = []
    rows = 0
    try:
        for batch in record_batches(store, export, schema, progress):
            pending.append(batch)
            rows += batch.num_rows
            if rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=rows)
                pending, rows = [], 0
                yield sink.take()
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=rows)
    finally:
        writer.close()
    yield sink.take()
