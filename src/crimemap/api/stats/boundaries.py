"""Police force outlines for maps: ``GET /boundaries/forces.geojson?zoom=Z``.

The stored boundaries (:mod:`crimemap.load.boundaries`) are about 15 MB of
coordinates, far more than a map at national zoom can show. This answers them
simplified to about a pixel at the map's zoom (``zoom`` 0-22, default 6;
Douglas-Peucker, which measured 18 times faster here than the topology-keeping
kind: outlines are only drawn), as a GeoJSON FeatureCollection with the
properties ``force`` and ``name``, cached per store generation and zoom. The
full shapes stay downloadable as ``/download/policeuk-force-boundaries.geojson``.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import shapely
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response

from crimemap import numerals
from crimemap.api import compression
from crimemap.api.access import require_policeuk_access
from crimemap.api.policeuk.errors import bad_request
from crimemap.api.stats.routes import ERRORS
from crimemap.store.base import Store

router = APIRouter(
    prefix="/boundaries", tags=["statistics"], dependencies=[Depends(require_policeuk_access)], responses=ERRORS
)

_OUTLINES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A GeoJSON FeatureCollection: one feature per force, properties `force` and `name`.",
        "content": {"application/geo+json": {"schema": {"type": "object", "required": ["type", "features"]}}},
    }
}

DEFAULT_ZOOM = 6
MAX_ZOOM = 22


def install(app: FastAPI) -> None:
    """Mount the outlines on ``app`` (called by :func:`crimemap.api.app.create_app`)."""
    app.include_router(router)


def tolerance(zoom: int) -> float:
    """Degrees of one pixel of a 256-pixel web map tile at ``zoom``."""
    return 360.0 / (256 * 2**zoom)


def outlines(store: Store, zoom: int) -> bytes:
    """The force boundaries simplified for ``zoom``, as a GeoJSON FeatureCollection."""
    features = []
    for force, (name, wkb) in sorted(store.force_boundaries().items()):
        shape = shapely.simplify(shapely.from_wkb(wkb), tolerance(zoom), preserve_topology=False)
        shape = shapely.set_precision(shape, 1e-6, mode="pointwise")
        geometry = orjson.loads(shapely.to_geojson(shape))
        features.append(
            {"type": "Feature", "id": force, "properties": {"force": force, "name": name}, "geometry": geometry}
        )
    return orjson.dumps({"type": "FeatureCollection", "features": features})


@router.get(
    "/forces.geojson",
    response_class=Response,
    responses=_OUTLINES,
    summary="Police force outlines",
    description="The stored police force boundaries, simplified to about a pixel at `zoom`, as GeoJSON"
    " (properties `force`, `name`); an empty FeatureCollection when none are loaded (`crimemap load` their KML).",
)
def forces(
    request: Request,
    zoom: Annotated[str | None, Query(description="The web map zoom to simplify for, 0-22 (default 6).")] = None,
    key: Annotated[str | None, Query(description="An API key, where the server has them.")] = None,
) -> Response:
    try:
        z = DEFAULT_ZOOM if zoom is None else numerals.whole(zoom)
    except ValueError:
        z = -1
    if not 0 <= z <= MAX_ZOOM:
        raise bad_request(f"zoom must be a whole number from 0 to {MAX_ZOOM}, got {zoom!r}")
    store: Store = request.app.state.store
    return compression.cached_answer(
        request, (store.generation(), "outlines", z), lambda: outlines(store, z), "application/geo+json"
    )
