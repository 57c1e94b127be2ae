"""What a harvest has done so far, in a small SQLite file, so that a rerun continues it.

A harvest is a list of units of work (a police.uk tile of one month, a Maps
Engine page). Each finished unit is committed to the state file *together
with what it fetched*, in one SQLite transaction: after a crash, a Ctrl-C or a
server that stopped answering, the same command reads the file, skips every
finished unit and fetches only the rest. Nothing is written to the store until
a whole store write (a police.uk month, a whole table) can be made from the
file, so the store never holds half a harvest.

The file also records the harvest it belongs to (:attr:`HarvestState.job`: API,
URL and parameters, never API keys): a different command pointed at the same
file is refused instead of mixing two harvests. A finished harvest deletes its
file; ``--restart`` discards an unfinished one.

Tables::

    meta(key, value)                 job, and progress values (e.g. the next page token)
    units(key, status, items)        finished units: status 'done' (or 'split': done by its parts)
    records(grp, key, payload)       what finished units fetched, by group (a month, a table)
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from crimemap.harvest.http import HarvestError
from crimemap.store.engines import is_server_store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units (key TEXT PRIMARY KEY, status TEXT NOT NULL, items INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    grp TEXT NOT NULL, key TEXT NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (grp, key)
) WITHOUT ROWID;
"""

STATE_SUFFIX = ".harvest.sqlite"


def default_state_path(store_location: str) -> Path:
    """``<store>.harvest.sqlite`` beside a SQLite store; in the working folder for a PostGIS URL.

    >>> default_state_path("/data/crimes.sqlite")
    PosixPath('/data/crimes.sqlite.harvest.sqlite')
    """
    if is_server_store(store_location):
        digest = hashlib.sha256(store_location.encode()).hexdigest()[:12]
        return Path(f"crimemap-{digest}{STATE_SUFFIX}")
    return Path(store_location + STATE_SUFFIX)


class StateMismatch(HarvestError):
    """The state file belongs to another harvest."""


class HarvestState:
    """The state file of one harvest (see the module docstring).

    ``job`` describes the harvest; an existing file for another job raises
    :class:`HarvestError`, unless ``restart`` discards it.
    """

    def __init__(self, path: str | Path, job: dict[str, Any], *, restart: bool = False) -> None:
        self.path = Path(path)
        self.job = job
        if restart:
            self.discard()
        self.resumed = self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.executescript(_SCHEMA)
        saved = self.get("job")
        if saved is None:
            self.set("job", job)
        elif saved != json.loads(json.dumps(job)):
            self.conn.close()
            raise StateMismatch(
                f"{self.path} holds an unfinished harvest of another request ({_describe(saved)});"
                " run that command again to finish it, give --restart to discard it,"
                " or --state to keep a separate state file"
            )

    # -- lifecycle -------------------------------------------------------------------------------------
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> HarvestState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def discard(self) -> None:
        """Delete the file (and SQLite's journal beside it)."""
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    def finish(self) -> None:
        """The harvest is complete: close and delete the file."""
        self.close()
        self.discard()

    # -- values ------------------------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # -- units -------------------------------------------------------------------------------------------
    def status(self, unit: str) -> str | None:
        """``'done'``, ``'split'`` or None for a unit not finished yet."""
        row = self.conn.execute("SELECT status FROM units WHERE key = ?", (unit,)).fetchone()
        return row[0] if row else None

    def units(self, status: str = "done") -> int:
        return int(self.conn.execute("SELECT count(*) FROM units WHERE status = ?", (status,)).fetchone()[0])

    def commit(
        self,
        unit: str | None = None,
        *,
        status: str = "done",
        group: str = "",
        records: Iterable[tuple[str, bytes]] = (),
        meta: dict[str, Any] | None = None,
        drop: str | None = None,
    ) -> int:
        """Record a finished unit, the records it fetched and new meta values, all or nothing.

        A record whose key is already in ``group`` replaces it (a crime seen
        by two tiles is kept once). ``drop`` forgets a group's records (once
        they are in the store). Returns the number of records given.
        """
        rows = [(group, key, payload) for key, payload in records]
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if drop is not None:
                conn.execute("DELETE FROM records WHERE grp = ?", (drop,))
            conn.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", rows)
            count = len(rows)
            for key, value in (meta or {}).items():
                self.set(key, value)
            if unit is not None:
                conn.execute("INSERT OR REPLACE INTO units VALUES (?, ?, ?)", (unit, status, count))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return count

    # -- records -----------------------------------------------------------------------------------------
    def records(self, group: str) -> Iterator[bytes]:
        """The payloads of a group, in key order."""
        for (payload,) in self.conn.execute("SELECT payload FROM records WHERE grp = ? ORDER BY key", (group,)):
            yield payload

    def keyed_records(self, group: str) -> Iterator[tuple[str, bytes]]:
        """``(key, payload)`` of a group, in key order."""
        for key, payload in self.conn.execute("SELECT key, payload FROM records WHERE grp = ? ORDER BY key", (group,)):
            yield str(key), bytes(payload)

    def count(self, group: str) -> int:
        return int(self.conn.execute("SELECT count(*) FROM records WHERE grp = ?", (group,)).fetchone()[0])


def _describe(job: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in job.items() if v not in (None, "", [], ()))


__all__ = ["STATE_SUFFIX", "HarvestState", "StateMismatch", "default_state_path"]
