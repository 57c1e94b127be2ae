"""Read stop-and-search files column by column, fast: pyarrow's CSV reader and checks on whole columns.

The careful reader (:func:`crimemap.load.stops.read_stops`) checks every row and
names the file and line of the first bad one, at the cost of Python per row.
A file is first read here, as police.uk street files are
(:mod:`crimemap.load.columns`): parsed by pyarrow, each column checked once per
distinct value (types, date-times, yes/no columns) or as a whole (coordinates),
into a :class:`~crimemap.store.stop_columns.StopColumns`. Anything this reader
does not accept as it is raises :class:`~crimemap.load.columns.ReadCarefully`,
and the loader reads the file with the careful reader instead: its answer, or
its error, is the loader's. Both give the same rows (tested on the real files).
"""

from __future__ import annotations

import datetime as dt
import io
from typing import IO

import numpy as np
import pyarrow as pa

from crimemap.load.columns import ReadCarefully, coordinates, read_table
from crimemap.load.policeuk_files import MAX_ROWS_PER_FILE, Source, crime_id
from crimemap.load.stops import STOPS_HEADER
from crimemap.store.stop_columns import StopColumns
from crimemap.vocab_stops import STOP_TYPES

_YES_NO = {"": None, "True": True, "False": False, "true": True, "false": False}
_TYPES = frozenset(STOP_TYPES) | {""}


def _text(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _yes_no(column: pa.Array) -> pa.Array:
    """``True``/``False``/empty as booleans (null for empty), or :class:`ReadCarefully`."""
    encoded = column.dictionary_encode()
    values = encoded.dictionary.to_pylist()
    if any(v not in _YES_NO for v in values):
        raise ReadCarefully("yes/no")
    return pa.array([_YES_NO[v] for v in values], pa.bool_()).take(encoded.indices)


def _check_dates(column: pa.Array) -> None:
    for text in column.unique().to_pylist():
        try:
            dt.datetime.fromisoformat(text)
        except ValueError:
            raise ReadCarefully("date") from None


def read_stop_columns(stream: IO[bytes], source: Source) -> StopColumns:
    """A stop-and-search file as columns, or :class:`ReadCarefully` (see the module docstring)."""
    data = stream.read()
    if b"\n\n" in data or b"\n\r\n" in data:
        raise ReadCarefully("an empty line")  # the careful reader counts it in the stops' ids
    table = read_table(io.BytesIO(data), STOPS_HEADER)
    n = table.num_rows
    if n > MAX_ROWS_PER_FILE:
        raise ReadCarefully("too many rows")
    kind = _text(table, "Type")
    if any(k not in _TYPES for k in kind.unique().to_pylist()):
        raise ReadCarefully("type")
    when = _text(table, "Date")
    _check_dates(when)
    located, lng, lat = coordinates(_text(table, "Longitude"), _text(table, "Latitude"))
    return StopColumns(
        month=source.month,
        force=source.force,
        id=crime_id(source.month, source.force, 0) | np.arange(n, dtype=np.int64),
        type=kind,
        datetime=when,
        operation=_yes_no(_text(table, "Part of a policing operation")),
        operation_name=_text(table, "Policing operation"),
        located=located,
        lng=lng,
        lat=lat,
        gender=_text(table, "Gender"),
        age_range=_text(table, "Age range"),
        self_defined_ethnicity=_text(table, "Self-defined ethnicity"),
        officer_defined_ethnicity=_text(table, "Officer-defined ethnicity"),
        legislation=_text(table, "Legislation"),
        object_of_search=_text(table, "Object of search"),
        outcome=_text(table, "Outcome"),
        linked=_yes_no(_text(table, "Outcome linked to object of search")),
        removal=_yes_no(_text(table, "Removal of more than just outer clothing")),
    )


__all__ = ["read_stop_columns"]
