"""Batches of features as Apache Arrow record batches: what the GeoPackage, FlatGeobuf and GeoParquet writers eat.

Each batch read from the store (:func:`crimemap.export.plan.arrow_batches`,
Arrow arrays already) becomes one ``pyarrow.RecordBatch``: ``gx_id`` (int64), the columns with their
types (``integer`` int64, ``double`` float64, ``string`` string, ``boolean``
bool, ``datetime`` a UTC timestamp), and ``geometry``, the point as ISO WKB
(21 bytes, written with numpy over the whole batch rather than one shapely object per feature;
null without a location). A table of shapes (:mod:`crimemap.geometry.shapes`)
writes each feature's shape, its Polygon or MultiPolygon, as the store keeps
it (WKB). Nothing is collected: memory holds one batch.

pyarrow (and pyogrio, for the GDAL formats) are the optional ``gis`` extra;
:func:`require` says how to install them when they are missing.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from crimemap.export.plan import Export, ExportError, Progress, arrow_batches
from crimemap.store.base import Store
from crimemap.store.catalogue import ColumnType, TableInfo
from crimemap.store.columnar import ArrowFeatures

if TYPE_CHECKING:
    import pyarrow as pa

GEOMETRY = "geometry"
FID = "gx_id"

_WKB_POINT = np.dtype([("order", "u1"), ("kind", "<u4"), ("x", "<f8"), ("y", "<f8")])  # packed: 21 bytes


def require(*modules: str) -> None:
    """Fail with how to install the ``gis`` extra when ``modules`` are missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(
            f"this format needs {', '.join(missing)}, which are not installed:"
            " pip install 'crimemap[gis]' (pyogrio and pyarrow)"
        )


def _arrow_type(kind: ColumnType) -> pa.DataType:
    import pyarrow as pa

    return {
        "integer": pa.int64(),
        "double": pa.float64(),
        "string": pa.string(),
        "boolean": pa.bool_(),
        "datetime": pa.timestamp("us", tz="UTC"),
    }[kind]


def geometry_types(table: TableInfo) -> list[str]:
    """The geometry types a table's features may have: ``["Point"]``, or, for a table of shapes, ``[]`` (any).

    A table of shapes holds Polygons and MultiPolygons, and may hold Points
    too (see :mod:`crimemap.load.tables`); which of them is only known once
    every feature has been read, so the writers declare any geometry (GeoParquet's
    empty list, GDAL's ``Unknown`` layer type).
    """
    return [] if table.shapes else ["Point"]


def arrow_schema(export: Export, metadata: dict[bytes, bytes] | None = None) -> pa.Schema:
    """``gx_id``, the exported columns, and ``geometry`` (WKB)."""
    import pyarrow as pa

    schema = export.table.schema
    fields = [pa.field(FID, pa.int64(), nullable=False)]
    fields += [pa.field(n, _arrow_type(schema[n])) for n in export.names]
    fields.append(pa.field(GEOMETRY, pa.binary()))
    return pa.schema(fields, metadata=metadata)


def record_batches(
    store: Store, export: Export, schema: pa.Schema, progress: Progress | None = None
) -> Iterator[pa.RecordBatch]:
    """The export as record batches of ``schema`` (see :func:`arrow_schema`), one per store batch."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kinds = [export.table.schema[n] for n in export.names]
    for features in arrow_batches(store, export, progress):
        columns: list[Any] = [features.gx_id]
        for i, kind in enumerate(kinds):
            values = features.values[i]
            if kind == "datetime":
                values = pa.array([_timestamp(v) for v in values.to_pylist()], schema.field(i + 1).type)
            elif values.type != schema.field(i + 1).type:
                values = pc.cast(values, schema.field(i + 1).type)
            columns.append(values)
        columns.append(wkb_geometries(features))
        yield pa.RecordBatch.from_arrays(columns, schema=schema)


def wkb_geometries(features: ArrowFeatures) -> pa.Array:
    """The features' geometries as WKB: each shape where the table keeps one, else the point."""
    import pyarrow.compute as pc

    points = wkb_points(features.lng, features.lat)
    if features.shape is None:
        return points
    return pc.coalesce(features.shape, points)


def wkb_points(lng: pa.Array, lat: pa.Array) -> pa.Array:
    """Points as ISO WKB, null where a feature has no location, built with numpy (no object per point)."""
    import pyarrow as pa

    n = len(lng)
    missing = lng.is_null().to_numpy(zero_copy_only=False)
    points = np.zeros(n, _WKB_POINT)
    points["order"] = 1  # little-endian
    points["kind"] = 1  # Point
    points["x"] = lng.to_numpy(zero_copy_only=False)
    points["y"] = lat.to_numpy(zero_copy_only=False)
    offsets = np.arange(n + 1, dtype=np.int32) * _WKB_POINT.itemsize
    validity = pa.array(~missing).buffers()[1] if missing.any() else None
    return pa.Array.from_buffers(
        pa.binary(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(points.tobytes())], int(missing.sum())
    )


def _timestamp(value: Any) -> dt.datetime | None:
    """A stored ISO 8601 date or time as a UTC datetime (a date is its midnight; no offset means UTC)."""
    if value is None:
        return None
    text = str(value)
    moment = dt.datetime.fromisoformat(text) if len(text) != 10 else dt.datetime.fromisoformat(text + "T00:00:00")
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
