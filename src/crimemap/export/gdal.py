"""A table as GeoPackage (``.gpkg``) or FlatGeobuf (``.fgb``), written by GDAL (pyogrio) in batches.

Both formats are files that are written in place (GeoPackage is a SQLite
database; FlatGeobuf's header comes first), so they are written to a file,
batch by batch through pyogrio's Arrow writer (a ``RecordBatchReader`` over
the store's keyset batches: memory holds one batch), and a download then
streams the finished file.

- GeoPackage: layer named after the table, feature ids are the ``gx_id``s,
  points (a table of shapes: its polygons, in a layer of any geometry type) in
  EPSG:4326 with GeoPackage's R-tree spatial index. QGIS's own format.
- FlatGeobuf: written without its packed spatial index, which GDAL builds in
  memory (about 40 bytes a feature); readers scan it instead.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from crimemap.export.arrow import FID, GEOMETRY, arrow_schema, record_batches, require
from crimemap.export.plan import CHUNK_BYTES, Export, Progress
from crimemap.store.base import Store

DRIVERS = {"gpkg": "GPKG", "fgb": "FlatGeobuf"}
MEDIA_TYPES = {"gpkg": "application/geopackage+sqlite3", "fgb": "application/flatgeobuf"}
_LAYER_OPTIONS = {"gpkg": {"FID": FID}, "fgb": {"SPATIAL_INDEX": "NO"}}


def write_file(store: Store, export: Export, fmt: str, path: Path, progress: Progress | None = None) -> None:
    """Write the export to ``path`` (which must not exist) as ``fmt`` (``gpkg`` or ``fgb``)."""
    require("pyogrio", "pyarrow")
    import pyarrow as pa
    import pyogrio

    schema = arrow_schema(export)
    reader = pa.RecordBatchReader.from_batches(schema, record_batches(store, export, schema, progress))
    pyogrio.write_arrow(
        reader,
        str(path),
        layer=export.table.id,
        driver=DRIVERS[fmt],
        geometry_name=GEOMETRY,
        geometry_type="Unknown" if export.table.shapes else "Point",  # see arrow.geometry_types
        crs="EPSG:4326",
        layer_options=_LAYER_OPTIONS[fmt],
    )


def file_chunks(store: Store, export: Export, fmt: str, progress: Progress | None = None) -> Iterator[bytes]:
    """The file, written to a temporary file first and then read out in chunks (and deleted)."""
    require("pyogrio", "pyarrow")
    folder = tempfile.mkdtemp(prefix="crimemap-export-")
    path = Path(folder) / f"export.{fmt}"
    try:
        write_file(store, export, fmt, path, progress)
        with path.open("rb") as f:
            while chunk := f.read(CHUNK_BYTES * 4):
                yield chunk
    finally:
        for leftover in Path(folder).iterdir():
            leftover.unlink()
        os.rmdir(folder)
