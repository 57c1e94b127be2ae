"""A store file written by crimemap's first release is upgraded in place, or refused with what to run.

``tests/fixtures/store-v1.sqlite`` was written by the first release (schema 1).
The wire record replays thousands of requests on an upgraded copy of it
(``test_wire_golden.py``, data set ``upgraded``); here, the ways to upgrade
it, and that a failed upgrade leaves it as it was.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import POLICEUK
from crimemap.errors import StoreError
from crimemap.load.policeuk import load_policeuk
from crimemap.query import And, Compare, CrimeQuery, FeatureQuery
from crimemap.store.catalogue import CRIMES_TABLE
from crimemap.store.sqlite import SQLiteStore, upgrade
from wire_datasets import V1_STORE


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    copy = tmp_path / "old.sqlite"
    shutil.copyfile(V1_STORE, copy)
    return copy


def _version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_a_read_only_open_refuses_an_old_store_and_names_the_command(old_store: Path) -> None:
    with pytest.raises(StoreError, match=rf"crimemap upgrade --store {old_store}"):
        SQLiteStore(old_store, readonly=True)
    assert _version(old_store) == 1


def test_the_upgrade_command_upgrades_in_place_and_then_info_reads_it(old_store: Path) -> None:
    run = [sys.executable, "-m", "crimemap"]
    refused = subprocess.run([*run, "info", "--store", str(old_store)], capture_output=True, text=True)
    assert refused.returncode == 1 and "crimemap upgrade --store" in refused.stderr
    done = subprocess.run([*run, "upgrade", "--store", str(old_store)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "upgraded" in done.stdout and _version(old_store) == 2
    again = subprocess.run([*run, "upgrade", "--store", str(old_store)], capture_output=True, text=True)
    assert "already up to date" in again.stdout
    info = subprocess.run([*run, "info", "--store", str(old_store)], capture_output=True, text=True)
    assert info.returncode == 0 and "police.uk crimes: 3,000 in 2 months" in info.stdout


def test_a_writable_open_upgrades_and_keeps_every_crime(old_store: Path) -> None:
    with sqlite3.connect(old_store) as conn:
        before = conn.execute("SELECT count(*), sum(id) FROM crimes").fetchone()
    with SQLiteStore(old_store) as store:
        month = store.latest_month()
        crimes = list(store.crimes(CrimeQuery(month=month)))
        assert len(crimes) + len(list(store.crimes(CrimeQuery(month=month, located=False)))) == 1_500
    with sqlite3.connect(old_store) as conn:
        assert conn.execute("SELECT count(*), sum(id) FROM crimes").fetchone() == before


def test_an_upgrade_that_fails_halfway_leaves_the_old_store_as_it_was(old_store: Path) -> None:
    original = old_store.read_bytes()

    def interrupted(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upgrade(old_store, interrupted)
    assert _version(old_store) == 1
    with sqlite3.connect(old_store) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert conn.execute("SELECT count(*) FROM crimes").fetchone()[0] == 3_000
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "crimes_v2" not in tables and "lsoas" not in tables
    assert len(old_store.read_bytes()) >= len(original) // 2


def test_a_store_made_before_the_index_of_category_and_force_pairs_gains_it_when_opened_for_writing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite"
    with SQLiteStore(path) as store:
        load_policeuk(store, [POLICEUK / "2016-03"])
    where = And((Compare("category", "=", "burglary"), Compare("reported_by", "=", "City of London Police")))
    query = FeatureQuery(CRIMES_TABLE, where=where)
    with SQLiteStore(path, readonly=True) as store:
        with_index = list(store.features(query))
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX crimes_by_kind")
    with SQLiteStore(path, readonly=True) as store:  # read-only, it is read as before the index: the same pages
        assert list(store.features(query)) == with_index and with_index
    assert not _has_index(path, "crimes_by_kind")
    SQLiteStore(path).close()
    assert _has_index(path, "crimes_by_kind")


def _has_index(path: Path, name: str) -> bool:
    with sqlite3.connect(path) as conn:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone()
    return found is not None
