"""The ADBC driver reads the embedded store in a process of its own (crimemap.store.sqlite.driver_process).

The driver bundles its own copy of SQLite; two copies in one process release
each other's POSIX locks. An export read through the driver in the server's
process must leave the locks of the server's own ``sqlite3`` readers alone, so
that a load's checkpoint in another process still waits for them.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import POLICEUK
from crimemap.errors import StoreError, TableChanged
from crimemap.export import export_chunks
from crimemap.export.plan import plan_export
from crimemap.load.policeuk import load_policeuk
from crimemap.store.catalogue import CRIMES_TABLE
from crimemap.store.sqlite import SQLiteStore
from crimemap.store.sqlite.driver_process import driver_read

_CHECKPOINT = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
print(db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
"""


def _checkpoint_is_held_back(path: Path) -> bool:
    """Whether another process's ``wal_checkpoint(TRUNCATE)`` reports a reader in its way (busy)."""
    run = subprocess.run([sys.executable, "-c", _CHECKPOINT, str(path)], capture_output=True, text=True, check=True)
    return run.stdout.strip() == "1"


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    st = SQLiteStore(tmp_path / "s.sqlite")
    load_policeuk(st, [POLICEUK / "2016-01"])
    return st


def test_an_export_through_the_driver_keeps_the_processs_own_readers_locks(store: SQLiteStore) -> None:
    path = store.path
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE scratch (x)")  # frames in the WAL that a checkpoint would move
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    crimes = reader.execute("SELECT count(*) FROM crimes").fetchone()[0]
    writer.execute("INSERT INTO scratch VALUES (1)")  # after the reader's snapshot: the reader holds it back
    assert _checkpoint_is_held_back(path)
    exported = b"".join(export_chunks(store, plan_export(store, CRIMES_TABLE), "csv"))
    assert exported.count(b"\r\n") == crimes + 1
    assert _checkpoint_is_held_back(path), "the driver dropped the reader's lock: a checkpoint ran under it"
    assert reader.execute("SELECT count(*) FROM crimes").fetchone()[0] == crimes
    reader.execute("COMMIT")
    assert not _checkpoint_is_held_back(path)
    for db in (reader, writer):
        db.close()
    store.close()


def test_what_sqlite_refuses_comes_back_as_the_stores_errors(store: SQLiteStore) -> None:
    uri = f"file:{store.path}?mode=ro"
    with pytest.raises(TableChanged):
        driver_read(uri, ["SELECT code, name FROM no_such_table"], "SELECT 1", [], 100)
    _, batches = driver_read(uri, [], "SELECT no_such_column FROM crimes", [], 100)
    with pytest.raises(TableChanged):
        list(batches)
    _, batches = driver_read(uri, [], "SELECT * FROM crimes WHERE", [], 100)
    with pytest.raises(StoreError, match="cannot read the store"):
        list(batches)
    store.close()


def test_a_reader_that_stops_early_stops_the_drivers_process(store: SQLiteStore) -> None:
    _, batches = driver_read(f"file:{store.path}?mode=ro", [], "SELECT id FROM crimes", [], 10)
    assert next(batches).num_rows == 10
    assert len(_driver_processes()) == 1
    batches.close()  # a client that hung up: the child is killed and collected, not left running
    assert _driver_processes() == []
    store.close()


def _driver_processes() -> list[int]:
    """This process's children that run the driver's script (the suite may have other children: servers)."""
    children = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split()
    found = []
    for pid in children:
        try:
            if b"adbc_driver_sqlite" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except FileNotFoundError:
            continue
    return found
