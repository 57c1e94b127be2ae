"""The store engines, by the scheme of a store's location: one registry the command line and the harvester ask.

A location is a URL whose scheme names an engine (``postgresql://...`` is a
PostgreSQL/PostGIS database), or else a file path, which the embedded SQLite
engine opens. Everything that decides by location (opening a store, whether a
read-only command may open it read-only, where a harvest keeps its state)
asks :func:`engine_for` instead of looking at the text itself.

    >>> engine_for("postgresql://localhost/crimes").name
    'postgis'
    >>> engine_for("/data/crimes.sqlite").name
    'sqlite'
    >>> is_server_store("postgres://db/crimes"), is_server_store("crimes.sqlite")
    (True, False)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crimemap.errors import StoreError
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore


@dataclass(frozen=True)
class Engine:
    """A kind of store: the URL schemes that select it, and how to open one."""

    name: str
    schemes: tuple[str, ...]
    """URL schemes (before ``://``) that select this engine; none for the engine of plain file paths."""
    server: bool
    """Whether the store is a database server, shared by many processes: it is opened for writing even by
    read-only commands (it takes care of that itself), is upgraded when opened, and has no file beside
    which a harvest could keep its state."""
    open: Callable[[str, bool], Store]
    """``open(location, readonly)``: the store at ``location``."""


def _open_sqlite(location: str, readonly: bool) -> Store:
    return SQLiteStore(location, readonly=readonly)


def _open_postgis(location: str, readonly: bool) -> Store:
    try:  # psycopg is an optional dependency: imported only when a PostGIS store is asked for
        from crimemap.store.postgis import PostGISStore
    except ImportError as e:  # pragma: no cover - without psycopg installed
        raise StoreError(f"the PostGIS store is not available: {e}") from None
    return PostGISStore(location)


SQLITE = Engine("sqlite", (), server=False, open=_open_sqlite)
POSTGIS = Engine("postgis", ("postgresql", "postgres"), server=True, open=_open_postgis)

ENGINES: tuple[Engine, ...] = (POSTGIS, SQLITE)
"""Every engine; a location no engine's scheme matches is a file, for :data:`SQLITE`."""


def engine_for(location: str) -> Engine:
    """The engine that opens the store at ``location``: by its URL scheme, else SQLite for a file path."""
    scheme, sep, _ = location.partition("://")
    if sep:
        for engine in ENGINES:
            if scheme in engine.schemes:
                return engine
    return SQLITE


def is_server_store(location: str) -> bool:
    """Whether ``location`` names a database server rather than a file (see :attr:`Engine.server`)."""
    return engine_for(location).server
