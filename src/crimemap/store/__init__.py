"""Stores: where crimemap keeps crimes and feature tables (see :mod:`crimemap.store.base`)."""

from __future__ import annotations

import os
from pathlib import Path

from crimemap.errors import StoreError
from crimemap.store.base import Store
from crimemap.store.engines import engine_for

DEFAULT_STORE_ENV = "CRIMEMAP_STORE"


def default_store_location() -> str:
    """``$CRIMEMAP_STORE``, else ``crimemap.sqlite`` under the user's data folder."""
    env = os.environ.get(DEFAULT_STORE_ENV)
    if env:
        return env
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return str(base / "crimemap" / "crimemap.sqlite")


def open_store(location: str | None = None, *, readonly: bool = False) -> Store:
    """Open the store at ``location`` with the engine its URL scheme names (:mod:`crimemap.store.engines`):
    a ``postgresql://`` URL selects PostGIS, anything else is a SQLite file."""
    location = location or default_store_location()
    return engine_for(location).open(location, readonly)


__all__ = ["DEFAULT_STORE_ENV", "Store", "StoreError", "default_store_location", "open_store"]
