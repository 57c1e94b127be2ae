"""GeoJSON features made a column at a time from an Arrow batch, in C++: the bytes ``orjson`` writes.

The GeoJSON export reads a table as Arrow record batches, as the CSV export
does (:func:`crimemap.export.plan.arrow_batches`), and writes each batch's
features here: every column is turned into its JSON text once for the whole
batch by pyarrow's compute functions, and the features are joined by
``binary_join_element_wise``. No feature is a Python object, where the renderer
before it (:func:`crimemap.export.geojson.column_bytes`) made a dict of each
and dumped it with ``orjson``; the bytes are the same (tested over tricky values
and the crimes, on both stores).

What ``orjson`` writes, and how it is matched:

- a string: quoted, with ``"``, ``\\`` and control characters escaped. A
  column's bytes are searched once; only values that need escaping are dumped
  by ``orjson`` itself, the rest are quoted in C++.
- a double: the shortest digits that read back as the same number, which
  pyarrow's cast writes too, but ``2015`` for ``2015.0`` and exponents at other
  magnitudes: a ``.0`` is added to whole numbers, and values outside
  ``[1e-5, 1e12)`` (or where pyarrow chose an exponent) are dumped by ``orjson``.
- integers as digits; booleans ``true``/``false``; a missing value ``null``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from crimemap.export.text_columns import replaced, shortest_doubles, text_bytes
from crimemap.geometry import shapes
from crimemap.store.catalogue import ColumnType
from crimemap.store.columnar import ArrowFeatures

_NULL = pa.scalar("null", pa.string())
_NEEDS_ESCAPING = '["\\\\\\x00-\\x1f]'
"""What JSON escapes in a string (``orjson`` escapes nothing else: it writes UTF-8 as it is)."""
_QUOTE, _BACKSLASH, _CONTROL_BELOW = ord('"'), ord("\\"), 0x20

PLAIN_FROM, PLAIN_TO = 1e-5, 1e12
"""Doubles whose magnitude is in ``[PLAIN_FROM, PLAIN_TO)`` are written by pyarrow and ``orjson`` with the same
digits and no exponent (checked over millions of random doubles at every magnitude)."""


def _needs_escaping(values: pa.Array) -> bool:
    """Whether any value holds a quote, a backslash or a control character: one pass over the column's bytes."""
    raw = text_bytes(values)
    return bool(len(raw)) and bool(((raw < _CONTROL_BELOW) | (raw == _QUOTE) | (raw == _BACKSLASH)).any())


def _by_orjson(value: object) -> str:
    return orjson.dumps(value).decode()


def json_strings(values: pa.Array) -> pa.Array:
    """Text as JSON strings (``null`` where missing)."""
    if values.type != pa.string():
        values = pc.cast(values, pa.string())
    text = pc.binary_join_element_wise('"', values, '"', "")
    if _needs_escaping(values):
        special = pc.fill_null(pc.match_substring_regex(values, _NEEDS_ESCAPING), False)
        text = replaced(text, values, special.to_numpy(zero_copy_only=False), _by_orjson)
    return pc.fill_null(text, _NULL) if text.null_count else text


def json_doubles(values: pa.Array) -> pa.Array:
    """Doubles as ``orjson`` writes them (``2015.0``, ``0.00001``, ``5e-324``, ``1e+16``; ``null`` where missing)."""
    return shortest_doubles(values, (PLAIN_FROM, PLAIN_TO), _by_orjson, _NULL)


def json_values(values: pa.Array, kind: ColumnType) -> pa.Array:
    """A column of any type as JSON values, one text per row."""
    if kind in ("string", "datetime") or pa.types.is_string(values.type):
        return json_strings(values)
    if pa.types.is_boolean(values.type):
        text = pc.if_else(values, "true", "false")
    elif pa.types.is_floating(values.type) or kind == "double":
        return json_doubles(values)
    elif pa.types.is_null(values.type):
        return pa.array(["null"] * len(values), pa.string())
    else:
        text = pc.cast(values, pa.string())
    return pc.fill_null(text, _NULL) if text.null_count else text


def geometries(features: ArrowFeatures) -> pa.Array:
    """Each feature's geometry: its shape's GeoJSON, else its point, else ``null``."""
    lng, lat = json_doubles(features.lng), json_doubles(features.lat)
    points = pc.binary_join_element_wise('{"type":"Point","coordinates":[', lng, ",", lat, "]}", "")
    located = pc.and_(features.lng.is_valid(), features.lat.is_valid())
    points = pc.if_else(located, points, _NULL)
    if features.shape is None or features.shape.null_count == len(features.shape):
        return points
    made = points.to_pylist()
    for i, shape in enumerate(features.shape.to_pylist()):
        if shape is not None:
            made[i] = shapes.geojson(shape).decode()
    return pa.array(made, pa.string())


def feature_texts(
    features: ArrowFeatures, names: Sequence[str], kinds: Sequence[ColumnType], end: str = ""
) -> pa.Array:
    """Each feature of the batch as compact GeoJSON with its ``gx_id`` as ``id``, properties in ``names`` order:
    ``{"type":"Feature","id":..,"geometry":..,"properties":{..}}``, then ``end``, one string per feature."""
    parts: list[pa.Array | str] = ['{"type":"Feature","id":', pc.cast(features.gx_id, pa.string())]
    parts += [',"geometry":', geometries(features), ',"properties":{']
    for i, (name, values, kind) in enumerate(zip(names, features.values, kinds, strict=True)):
        parts += [("," if i else "") + orjson.dumps(name).decode() + ":", json_values(values, kind)]
    parts.append("}}" + end)
    return pc.binary_join_element_wise(*parts, "")


SLICE_ROWS = 4_096
"""Features rendered at once: the strings made on the way (a few per column) stay a few megabytes, whatever the
size of the batch the driver hands over."""


def feature_lines(features: ArrowFeatures, names: Sequence[str], kinds: Sequence[ColumnType]) -> Iterator[memoryview]:
    """The batch's features, one a line, joined by ``,\\n`` (none before the first or after the last), in pieces:
    views of the rendered buffers, copied once, by whoever joins them into chunks."""
    for start in range(0, len(features), SLICE_ROWS):
        part = features.slice(start, SLICE_ROWS)
        texts = feature_texts(part, names, kinds, ",\n")
        last = start + SLICE_ROWS >= len(features)
        yield text_bytes(texts)[: -2 if last else None].data  # a view of the bytes: no copy


__all__ = ["feature_lines", "feature_texts", "geometries", "json_doubles", "json_strings", "json_values"]
