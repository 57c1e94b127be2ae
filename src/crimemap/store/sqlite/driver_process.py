"""The ADBC SQLite driver's reads of a store file, run in a process of its own and streamed back as Arrow IPC.

**Why a process of its own.** The driver (``adbc-driver-sqlite``) bundles its
own copy of SQLite beside the one Python's ``sqlite3`` is built on. SQLite
coordinates connections through POSIX advisory locks, which belong to the
process, not to the connection, and a process never conflicts with itself: when
the driver's connection ends a read or closes its files, the kernel drops the
locks the process's ``sqlite3`` connections hold on the same file, and neither
copy of SQLite knows it ("How To Corrupt An SQLite Database File", section
2.2.1). Measured: a ``sqlite3`` read transaction open while the driver read and
closed its connection in the same process no longer held the WAL back, and
another process's ``PRAGMA wal_checkpoint(TRUNCATE)`` ran under it (busy 0,
where it reports busy 1 without the driver). So a server answering requests
through ``sqlite3`` while it exports through the driver could read pages a
load's checkpoint had just overwritten. In a child that holds no other
connection to the file, the driver is one more reader like any other (a large
load writes through the driver the same way, :mod:`crimemap.store.sqlite.load_connection`).

The child is a small script (``python -c``: the driver and pyarrow, not
crimemap), started per read. It gets the request (URI, lookup statements,
statement, parameters, batch size) pickled on its standard input and answers
on its standard output in frames: a kind byte and a length, then an Arrow IPC
stream of one lookup table (``L``) or one record batch (``B``), then ``E`` at
the end or ``X`` and SQLite's message. The lookups and the rows come from one
read transaction of the driver's (autocommit off), so from one snapshot. It
ends when the read is done, when the reader stops early (it is killed), or
when the parent dies (its next write finds the pipe closed).
"""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa

from crimemap.errors import StoreError, TableChanged

_HEAD = struct.Struct("<cQ")

_CHILD = r"""
import pickle, struct, sys
import adbc_driver_sqlite.dbapi as adbc
import pyarrow as pa

out = sys.stdout.buffer
head = struct.Struct("<cQ")

def send(kind, payload=b""):
    out.write(head.pack(kind, len(payload)))
    out.write(payload)

def ipc(schema, parts):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        for part in parts:
            writer.write(part)
    return sink.getvalue()

uri, lookups, sql, params, batch_rows = pickle.load(sys.stdin.buffer)
try:
    with adbc.connect(uri) as conn, conn.cursor() as cur:
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
        for lookup in lookups:
            cur.execute(lookup)
            table = cur.fetch_arrow_table()
            send(b"L", ipc(table.schema, [table]))
        cur.execute(sql, params or None)
        for batch in cur.fetch_record_batch():
            send(b"B", ipc(batch.schema, [batch]))
except adbc.Error as e:
    send(b"X", str(e).encode())
else:
    send(b"E")
out.flush()
"""


class DriverReadError(StoreError):
    """The driver's process failed to read (SQLite's message), or died."""


def _frames(stream: IO[bytes]) -> Iterator[tuple[bytes, bytes]]:
    while True:
        head = stream.read(_HEAD.size)
        if len(head) < _HEAD.size:
            raise DriverReadError("the driver's reading process ended before its answer did")
        kind, size = _HEAD.unpack(head)
        payload = stream.read(size) if size else b""
        if len(payload) < size:
            raise DriverReadError("the driver's reading process ended in the middle of a batch")
        yield kind, payload


def _error(message: str) -> StoreError:
    if "no such table" in message or "no such column" in message:
        return TableChanged(f"the table was replaced while it was being read ({message}); ask again")
    return StoreError(f"cannot read the store: {message}")


def driver_read(
    uri: str, lookups: list[str], sql: str, params: list[Any], batch_rows: int
) -> tuple[list[pa.Table], Iterator[pa.RecordBatch]]:
    """The lookup tables, read at once, and the statement's record batches, read as they are consumed.

    :class:`~crimemap.errors.TableChanged` or :class:`~crimemap.errors.StoreError`
    for what SQLite refuses, raised where it comes (the lookups here, the
    statement's errors by the batches).
    """
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(pickle.dumps((uri, lookups, sql, params, batch_rows)))
        child.stdin.close()
        frames = _frames(child.stdout)
        tables: list[pa.Table] = []
        for _ in lookups:
            kind, payload = _next(child, frames)
            tables.append(pa.ipc.open_stream(payload).read_all())
    except BaseException:
        _end(child)
        raise
    return tables, _batches(child, frames)


def _next(child: subprocess.Popen[bytes], frames: Iterator[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    try:
        kind, payload = next(frames)
    except DriverReadError as e:
        child.wait()
        stderr = child.stderr.read().decode(errors="replace").strip() if child.stderr else ""
        raise DriverReadError(f"{e} (exit code {child.returncode}){': ' + stderr if stderr else ''}") from None
    if kind == b"X":
        raise _error(payload.decode(errors="replace"))
    return kind, payload


def _batches(child: subprocess.Popen[bytes], frames: Iterator[tuple[bytes, bytes]]) -> Iterator[pa.RecordBatch]:
    try:
        while True:
            kind, payload = _next(child, frames)
            if kind == b"E":
                return
            yield pa.ipc.open_stream(payload).read_next_batch()
    finally:
        _end(child)


def _end(child: subprocess.Popen[bytes]) -> None:
    """Stop the child if it still runs (a reader that stopped early) and collect it."""
    if child.poll() is None:
        child.kill()
    child.wait()
    for stream in (child.stdout, child.stderr):
        if stream is not None:
            stream.close()


__all__ = ["DriverReadError", "driver_read"]
