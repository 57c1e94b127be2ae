"""Arrow columns written as text a whole column at a time, as a Python writer would write each value.

The CSV and GeoJSON exports (:mod:`crimemap.export.csv`,
:mod:`crimemap.export.geojson_columns`) turn each batch's columns into text in
C++ with pyarrow's compute functions, and must give the bytes Python's own
writers give (``repr`` for CSV, ``orjson`` for GeoJSON). Both meet the same
two facts, kept here once:

- a column's bytes can be searched in one pass (:func:`text_bytes`), so only a
  column that holds a special character is looked at value by value;
- pyarrow's cast of a double writes the shortest digits that read back as the
  same number, as ``repr`` and ``orjson`` do, but ``2015`` for ``2015.0`` and an
  exponent at other magnitudes than either (:func:`shortest_doubles`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def text_bytes(values: pa.Array) -> np.ndarray:
    """All of a text column's bytes, end to end, as a numpy view (no copy)."""
    data = values.buffers()[2]
    if data is None or not len(values):
        return np.zeros(0, np.uint8)
    offsets = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, values.offset * 4)
    return np.frombuffer(data, np.uint8)[int(offsets[0]) : int(offsets[-1])]


def holds_any(values: pa.Array, special: bytes) -> bool:
    """Whether any value of a text column holds one of the bytes of ``special`` (one pass over its bytes)."""
    raw = text_bytes(values)
    return bool(len(raw)) and bool(np.isin(raw, np.frombuffer(special, np.uint8)).any())


def replaced(text: pa.Array, values: pa.Array, wanted: np.ndarray, write: Callable[[object], str]) -> pa.Array:
    """``text`` with the rows where ``wanted`` is True written by ``write`` from ``values`` instead."""
    at = np.flatnonzero(wanted)
    if not len(at):
        return text
    fixed = text.to_pylist()
    for i, value in zip(at.tolist(), pc.take(values, pa.array(at)).to_pylist(), strict=True):
        fixed[i] = write(value)
    return pa.array(fixed, pa.string())


def shortest_doubles(
    values: pa.Array, plain: tuple[float, float], write: Callable[[object], str], missing: pa.Scalar
) -> pa.Array:
    """Doubles as text, as ``write`` (``repr``, ``orjson``) writes them; ``missing`` where a value is missing.

    ``plain`` is the range of magnitudes where pyarrow and ``write`` give the
    same digits without an exponent (checked over millions of random doubles at
    every magnitude): there pyarrow's text is kept, with ``.0`` added to whole
    numbers; the few values outside it, infinities, NaN, or where pyarrow chose
    an exponent anyway, are written by ``write`` itself.
    """
    if values.type != pa.float64():
        values = pc.cast(values, pa.float64())
    text = pc.cast(values, pa.string())
    number = values.to_numpy(zero_copy_only=False)  # NaN where missing
    present = values.is_valid().to_numpy(zero_copy_only=False) if values.null_count else np.ones(len(values), bool)
    with np.errstate(invalid="ignore"):
        size = np.abs(number)
        odd = present & (~np.isfinite(number) | ((size != 0) & ((size < plain[0]) | (size >= plain[1]))))
        whole = present & np.isfinite(number) & (np.floor(number) == number) & ~odd
    if holds_any(text, b"e"):
        odd |= pc.fill_null(pc.match_substring(text, "e"), False).to_numpy(zero_copy_only=False)
        whole &= ~odd
    if whole.any():
        text = pc.if_else(pa.array(whole), pc.binary_join_element_wise(text, ".0", ""), text)
    text = replaced(text, values, odd, write)
    return pc.fill_null(text, missing) if text.null_count else text


__all__ = ["holds_any", "replaced", "shortest_doubles", "text_bytes"]
