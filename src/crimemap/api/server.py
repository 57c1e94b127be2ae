"""Build the app from the environment, for ``uvicorn`` workers started by ``crimemap serve``.

Each worker process opens its own store; the command line hands its
:class:`~crimemap.settings.Settings` over as ``CRIMEMAP_*`` variables
(:meth:`~crimemap.settings.Settings.environment`), which ``Settings()`` reads back here.
"""

from __future__ import annotations

from fastapi import FastAPI

from crimemap.api.app import create_app
from crimemap.settings import Settings
from crimemap.store import open_store


def app_from_environment() -> FastAPI:
    """The app over the settings' store (``$CRIMEMAP_STORE``) with the settings of ``CRIMEMAP_*`` variables."""
    settings = Settings()
    store = open_store(settings.store)
    app = create_app(store, settings)
    app.router.on_shutdown.append(store.close)
    return app
