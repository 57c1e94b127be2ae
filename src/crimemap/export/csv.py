"""A table as CSV (RFC 4180, UTF-8, CRLF line ends), written as a stream of chunks.

The header is ``gx_id``, the columns in order, then ``longitude`` and
``latitude`` of the geometry (``gx_longitude``/``gx_latitude`` when the table
has columns of those names, as the police.uk crimes table does), so that
``crimemap load`` reads the file back as the same table. A missing value or
geometry is an empty field; booleans are ``true``/``false``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence

from crimemap.export import CHUNK_BYTES, Export, Progress, feature_batches
from crimemap.store.base import Store

MEDIA_TYPE = "text/csv; charset=utf-8"
_ROWS_PER_WRITE = 256


def header(names: tuple[str, ...]) -> list[str]:
    """``gx_id``, the column names, and the two geometry columns."""
    lng, lat = "longitude", "latitude"
    if lng in names or lat in names:
        lng, lat = "gx_longitude", "gx_latitude"
    return ["gx_id", *names, lng, lat]


def _cell(value: object) -> object:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


def csv_chunks(store: Store, export: Export, progress: Progress | None = None) -> Iterator[bytes]:
    """The CSV file in chunks of about :data:`~crimemap.export.CHUNK_BYTES` bytes."""
    names = export.names
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header(names))
    booleans = [i for i, n in enumerate(names) if export.table.schema.get(n) == "boolean"]
    for batch in feature_batches(store, export, progress=progress):
        values: list[Sequence[object]] = list(batch.values)
        for i in booleans:
            values[i] = list(map(_cell, values[i]))
        writer.writerows(zip(batch.gx_id, *values, batch.lng, batch.lat, strict=True))
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
