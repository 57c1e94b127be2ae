"""A table as CSV (RFC 4180, UTF-8, CRLF line ends), written as a stream of chunks.

The header is ``gx_id``, the columns in order, then ``longitude`` and
``latitude`` of the geometry (``gx_longitude``/``gx_latitude`` when the table
has columns of those names, as the police.uk crimes table does), so that
``crimemap load`` reads the file back as the same table. A missing value or
geometry is an empty field; booleans are ``true``/``false``.

The bytes are those Python's ``csv`` module writes (``QUOTE_MINIMAL``, numbers
as ``repr`` writes them), made a column at a time by pyarrow's compute
functions in C++ over each Arrow batch the store's driver reads
(:func:`crimemap.export.plan.arrow_batches`): no row is a Python object.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from crimemap.export.plan import Export, Progress, arrow_batches, in_chunks
from crimemap.export.text_columns import holds_any, shortest_doubles, text_bytes
from crimemap.store.base import Store
from crimemap.store.catalogue import ColumnType
from crimemap.store.columnar import ArrowFeatures

MEDIA_TYPE = "text/csv; charset=utf-8"


def header(names: tuple[str, ...]) -> list[str]:
    """``gx_id``, the column names, and the two geometry columns."""
    lng, lat = "longitude", "latitude"
    if lng in names or lat in names:
        lng, lat = "gx_longitude", "gx_latitude"
    return ["gx_id", *names, lng, lat]


_SPECIAL = b',"\r\n'
_EMPTY = pa.scalar("", pa.string())


def needs_quotes(values: pa.Array) -> bool:
    """Whether any value of a text column holds a comma, quote or line end (one search of its bytes)."""
    return holds_any(values, _SPECIAL)


def text_field(values: pa.Array) -> tuple[pa.Array, bool]:
    """Text as CSV fields, and whether any was quoted: quoted (quotes doubled) only where it holds a comma,
    quote or line end.

    Most columns hold none of those anywhere: the column's bytes are searched
    once, and only a column that holds one is searched value by value.
    """
    if values.type != pa.string():
        values = pc.cast(values, pa.string())
    quoted = needs_quotes(values)
    if quoted:
        special = pc.fill_null(pc.match_substring_regex(values, '[,"\r\n]'), False)
        marked = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
        values = pc.if_else(special, marked, values)
    return (pc.fill_null(values, "") if values.null_count else values), quoted


def float_field(values: pa.Array) -> pa.Array:
    """Doubles as Python's ``repr`` writes them (``2015.0``, ``-0.12``, ``1e-05``, ``1e+16``), empty where missing.

    pyarrow writes the same digits as ``repr`` for magnitudes in ``[1e-4, 1e16)``
    (:func:`crimemap.export.text_columns.shortest_doubles`).
    """
    return shortest_doubles(values, (1e-4, 1e16), repr, _EMPTY)


def number_field(values: pa.Array, kind: ColumnType) -> pa.Array:
    """An integer, double or boolean column as CSV fields (empty where missing)."""
    if pa.types.is_boolean(values.type):
        text = pc.if_else(values, "true", "false")
    elif pa.types.is_floating(values.type):
        return float_field(values)
    else:
        text = pc.cast(values, pa.string())
    return pc.fill_null(text, "") if text.null_count else text


def csv_lines(features: ArrowFeatures, kinds: list[ColumnType]) -> bytes:
    """The CSV lines (CRLF after each) of a batch, each column formatted at once and the rows joined in C++.

    The fields are joined by pyarrow's CSV writer, told to quote nothing (the
    fields are already CSV); a batch with a field that had to be quoted is
    joined by ``binary_join_element_wise`` instead, since that writer refuses
    quotes it did not write itself.
    """
    fields = [number_field(features.gx_id, "integer")]
    quoted = False
    for kind, values in zip(kinds, features.values, strict=True):
        if kind in ("string", "datetime"):
            field, special = text_field(values)
            quoted = quoted or special
            fields.append(field)
        else:
            fields.append(number_field(values, kind))
    fields += [float_field(features.lng), float_field(features.lat)]
    if not len(features):
        return b""
    if quoted:
        rows = pc.binary_join_element_wise(*fields, ",")
        lines = pc.binary_join_element_wise(rows, "\r\n", "")
        return text_bytes(lines).tobytes()
    sink = pa.BufferOutputStream()
    table = pa.Table.from_arrays(fields, [str(i) for i in range(len(fields))])
    pa_csv.write_csv(table, sink, _WRITE)
    return sink.getvalue().to_pybytes()


_WRITE = pa_csv.WriteOptions(include_header=False, quoting_style="none", eol="\r\n")


def csv_chunks(store: Store, export: Export, progress: Progress | None = None) -> Iterator[bytes]:
    """The CSV file in chunks of about :data:`~crimemap.export.plan.CHUNK_BYTES` bytes."""
    names = export.names
    buffer = io.StringIO()
    csv.writer(buffer).writerow(header(names))
    kinds = [export.table.schema.get(n, "string") for n in names]

    def parts() -> Iterator[bytes]:
        yield buffer.getvalue().encode()
        for batch in arrow_batches(store, export, progress):
            yield csv_lines(batch, kinds)

    return in_chunks(parts())
