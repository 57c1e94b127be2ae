"""PostgreSQL's binary ``COPY`` format, made for whole columns at once: no Python per row.

A load sends each crime to the server as one row of ``COPY ... FROM STDIN (FORMAT
BINARY)``: a 16-bit field count, then per field a 32-bit length (``-1`` for NULL)
and the value in network byte order. psycopg's ``write_row`` builds that row by row
in Python (a few microseconds a crime); here the parsing process builds a whole
batch with numpy and pyarrow: the fixed-width fields of every row are laid out in
one byte matrix, each text column stays the pyarrow buffer it already is, and
pyarrow joins the pieces row by row in C++. The writing process only passes the
bytes on.

    >>> import numpy as np, pyarrow as pa
    >>> rows = CopyRows(2)
    >>> rows.fixed("int4", np.array([1, 2]))
    >>> rows.text(pa.array(["a", None]))
    >>> rows.encode()[:16].hex()
    '0002000000040000000100000001610002'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
"""What a binary COPY stream starts with: the signature, no flags, no header extension."""
TRAILER = b"\xff\xff"
"""What a binary COPY stream ends with."""

_WIDTHS = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8", "bool": "u1"}


@dataclass
class _Fixed:
    dtype: str
    values: np.ndarray
    present: np.ndarray | None

    @property
    def width(self) -> int:
        return np.dtype(self.dtype).itemsize if self.values.ndim == 1 else self.values.shape[1]


@dataclass
class _Text:
    values: pa.Array


class CopyRows:
    """The rows of a binary COPY, column by column, in the order the ``COPY`` statement lists them.

    Fixed-width columns are numpy arrays (``present`` False where a row's value is
    NULL); ``raw`` columns are ``(n, k)`` byte matrices (a ``bytea`` of k bytes);
    text columns are pyarrow string arrays, whose nulls are NULL.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.fields: list[_Fixed | _Text] = []

    def fixed(self, pg_type: str, values: np.ndarray, present: np.ndarray | None = None) -> None:
        """A column of ``int2``, ``int4``, ``int8``, ``float8`` or ``bool``."""
        self.fields.append(_Fixed(_WIDTHS[pg_type], np.asarray(values), _mask(present)))

    def raw(self, values: np.ndarray, present: np.ndarray | None = None) -> None:
        """A ``bytea`` column whose values all have the same length (a row of ``values`` each)."""
        self.fields.append(_Fixed("u1", np.ascontiguousarray(values, dtype=np.uint8), _mask(present)))

    def text(self, values: pa.Array) -> None:
        """A ``text`` (or ``bytea``) column; its UTF-8 bytes are sent as they are."""
        self.fields.append(_Text(values))

    def encode(self) -> bytes:
        """The rows, without the stream's signature and trailer (see :data:`SIGNATURE`)."""
        if self.n == 0:
            return b""
        header = np.full(self.n, len(self.fields), dtype=">i2").view(np.uint8).reshape(self.n, 2)
        pieces: list[pa.Array] = []
        block: list[tuple[np.ndarray, np.ndarray | None]] = [(header, None)]
        for f in self.fields:
            if isinstance(f, _Fixed):
                width = np.where(f.present, f.width, -1) if f.present is not None else f.width
                block.append(_length_prefix(width, self.n))
                block.append((_bytes_of(f), f.present))
            else:
                data = f.values.cast(pa.binary()) if f.values.type != pa.binary() else f.values
                lengths = pc.binary_length(data).to_numpy(zero_copy_only=False)
                valid = np.asarray(data.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
                block.append(_length_prefix(np.where(valid, lengths, -1), self.n))
                pieces.append(_binary_rows(block, self.n))
                pieces.append(pc.fill_null(data, b""))
                block = []
        if block:
            pieces.append(_binary_rows(block, self.n))
        joined = pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, b"")
        offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)[joined.offset : joined.offset + self.n + 1]
        return joined.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


def _mask(present: np.ndarray | None) -> np.ndarray | None:
    if present is None:
        return None
    present = np.asarray(present, dtype=bool)
    return None if present.all() else present


def _length_prefix(lengths: np.ndarray | int, n: int) -> tuple[np.ndarray, None]:
    column = np.broadcast_to(np.asarray(lengths, dtype=">i4"), (n,))
    return np.ascontiguousarray(column).view(np.uint8).reshape(n, 4), None


def _bytes_of(f: _Fixed) -> np.ndarray:
    if f.values.ndim == 2:
        return f.values
    n = len(f.values)
    return np.ascontiguousarray(f.values.astype(f.dtype, copy=False)).view(np.uint8).reshape(n, -1)


def _binary_rows(block: list[tuple[np.ndarray, np.ndarray | None]], n: int) -> pa.Array:
    """One binary value per row: the block's byte columns side by side, a NULL field's value bytes left out."""
    matrix = np.concatenate([b for b, _ in block], axis=1) if len(block) > 1 else block[0][0]
    width = matrix.shape[1]
    keep: np.ndarray | None = None
    at = 0
    for b, present in block:
        if present is not None:
            if keep is None:
                keep = np.ones(matrix.shape, dtype=bool)
            keep[~present, at : at + b.shape[1]] = False
        at += b.shape[1]
    if keep is None:
        data = np.ascontiguousarray(matrix).reshape(-1)
        offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    else:
        data = matrix[keep]
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(keep.sum(axis=1, dtype=np.int32), out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
