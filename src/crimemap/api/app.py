"""The HTTP application: one FastAPI app over one store, with every API mounted.

``/api/...`` is the police.uk API (:mod:`crimemap.api.policeuk.crimes`, its stop-and-search
methods in :mod:`crimemap.api.policeuk.stops`, its neighbourhoods in
:mod:`crimemap.api.policeuk.neighbourhoods`),
``/mapsengine/v1/...`` the Maps Engine tables API (:mod:`crimemap.api.mapsengine.routes`),
``/ogc/...`` OGC API - Features over every table (:mod:`crimemap.api.ogc.routes`),
``/download/...`` whole-table downloads (:mod:`crimemap.api.downloads.routes`),
``/stats/...`` crime counts (:mod:`crimemap.api.stats.routes`), ``/boundaries/...`` force
outlines for maps (:mod:`crimemap.api.stats.boundaries`).
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from crimemap import __version__
from crimemap.api import compression, envelopes, openapi
from crimemap.api.access import credentials_configured, has_credential
from crimemap.api.cache import ResponseCache
from crimemap.api.deadlines import RequestDeadlines
from crimemap.api.downloads import routes as downloads
from crimemap.api.mapsengine import routes as mapsengine
from crimemap.api.ogc import routes as ogc
from crimemap.api.policeuk import crimes as policeuk
from crimemap.api.policeuk import neighbourhoods as policeuk_neighbourhoods
from crimemap.api.policeuk import stops as policeuk_stops
from crimemap.api.responses import JSONResponse
from crimemap.api.stats import boundaries
from crimemap.api.stats import routes as stats
from crimemap.api.web import docs
from crimemap.api.web import routes as web
from crimemap.settings import Settings
from crimemap.store import Store
from crimemap.store.base import Replication

__all__ = ["Settings", "create_app"]


def _lagging(replica: Replication | None, bound: float | None) -> bool:
    """Whether a standby's replay is further behind than ``bound`` seconds (or by how much is unknown)."""
    if replica is None or not replica.standby or bound is None:
        return False
    return replica.lag_s is None or replica.lag_s > bound


def create_app(store: Store, settings: Settings | None = None) -> FastAPI:
    """The application serving ``store``; the store is closed by the caller."""
    app = FastAPI(
        title="crimemap",
        version=__version__,
        description="Police-recorded crime data through the police.uk, Maps Engine and OGC API - Features APIs."
        " This document describes every API but OGC API - Features, which has its own, as the standard asks:"
        " [/ogc/api](/ogc/api).",
        default_response_class=JSONResponse,
        docs_url=None,  # served by crimemap.api.web.docs from node_modules, not from a CDN
        redoc_url=None,
    )
    app.state.store = store
    app.state.settings = settings or Settings()
    app.state.cache = ResponseCache(app.state.settings.cache_mb << 20)

    @app.get("/health", tags=["server"])
    def health(request: Request, response: Response) -> dict[str, object]:
        """Liveness and what is stored: months, forces and tables (those with a credential, when keys are set).

        On a PostgreSQL hot standby, also how far its replay lags; past ``CRIMEMAP_MAX_REPLICA_LAG``
        seconds the status is ``lagging`` and the answer a 503, so that a load balancer takes the node out.
        """
        st: Store = request.app.state.store
        settings: Settings = request.app.state.settings
        replica = st.replication()
        status = "lagging" if _lagging(replica, settings.max_replica_lag) else "ok"
        if status != "ok":
            response.status_code = 503
        if credentials_configured(settings) and not has_credential(request):
            return {"status": status, "version": __version__}
        months = st.months()
        answer: dict[str, object] = {
            "status": status,
            "version": __version__,
            "store": type(st).__name__,
            "latest_month": months[0].month if months else None,
            "months": [{"month": m.month, "forces": list(m.forces), "crimes": m.crimes} for m in months],
            # bbox (west, south, east, north; null without one): where the web map flies when a table is picked
            "tables": [
                {"id": t.id, "name": t.name, "features": t.feature_count, "bbox": list(t.bbox) if t.bbox else None}
                for t in st.tables()
            ],
        }
        if replica is not None:
            answer["replication"] = {"standby": replica.standby, "lag_s": replica.lag_s}
        return answer

    for module in (
        policeuk,
        policeuk_stops,
        policeuk_neighbourhoods,  # after every other /api router: its /api/{force}/{neighbourhood} matches any path
        mapsengine,
        ogc,
        downloads,
        stats,
        boundaries,
        web,
        docs,
        envelopes,
        openapi,
    ):
        module.install(app)
    compression.install(app)  # the outermost layer but one, so every answer can be compressed
    app.add_middleware(RequestDeadlines, store=store)  # outermost: hears the client hang up at any time
    return app
