"""Build the app from the environment, for ``uvicorn`` workers started by ``crimemap serve``.

Each worker process opens its own store; the command line passes its options
through these variables (documented in the README's configuration table).
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from crimemap.api.app import Settings, create_app
from crimemap.store import open_store


def _split(name: str) -> frozenset[str]:
    return frozenset(v for v in os.environ.get(name, "").split(",") if v)


def settings_from_environment() -> Settings:
    return Settings(
        rate_limit=os.environ.get("CRIMEMAP_RATE_LIMIT", "0") == "1",
        rate_per_second=float(os.environ.get("CRIMEMAP_RATE_PER_SECOND", "15")),
        rate_burst=int(os.environ.get("CRIMEMAP_RATE_BURST", "30")),
        rate_state=os.environ.get("CRIMEMAP_RATE_STATE") or None,
        api_keys=_split("CRIMEMAP_API_KEYS"),
        bearer_tokens=_split("CRIMEMAP_BEARER_TOKENS"),
        cache_mb=int(os.environ.get("CRIMEMAP_CACHE_MB", "64")),
        public_policeuk=os.environ.get("CRIMEMAP_PUBLIC_POLICEUK", "0") == "1",
        basemap=os.environ.get("CRIMEMAP_BASEMAP") or None,
    )


def app_from_environment() -> FastAPI:
    """The app over ``$CRIMEMAP_STORE`` with settings from ``CRIMEMAP_*`` variables."""
    store = open_store(os.environ.get("CRIMEMAP_STORE"))
    app = create_app(store, settings_from_environment())
    app.router.on_shutdown.append(store.close)
    return app
