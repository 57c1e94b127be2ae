"""Tiled harvests of police.uk's area methods: a box cut into tiles, a tile past the API's limit split in four.

police.uk answers an area holding more than 10,000 crimes (or stops) with a
503, so a harvest cuts its box into tiles (``tile_size`` degrees at most), asks
for each as a ``poly``, and splits a tile answered 503 in four, down to
``min_tile_size``. Tiles overlap by :data:`EDGE_MARGIN`, so a point on a shared
edge is never lost to a server that excludes edges. Crimes
(:mod:`crimemap.harvest.policeuk`) and stops (:mod:`crimemap.harvest.policeuk_stops`)
are harvested this way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from crimemap.harvest.http import RETRY_STATUSES, retry_statuses

DEFAULT_TILE_SIZE = 0.25
"""Degrees: the largest tile asked for (about 28 km by 17 km in England)."""

MIN_TILE_SIZE = 0.002
"""Degrees: tiles are not split below this (about 220 m by 140 m)."""

EDGE_MARGIN = 1e-5
"""Degrees each tile is widened by (about 1 m), so that neighbouring tiles overlap."""

POLICEUK_RETRY = retry_statuses(RETRY_STATUSES - {503})
"""police.uk's 503 means "more than 10,000 crimes": split the tile, do not ask again."""

Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class BBox:
    """A box in WGS 84 degrees; :meth:`contains` includes its edges."""

    min_lng: float
    min_lat: float
    max_lng: float
    max_lat: float

    @classmethod
    def parse(cls, text: str) -> BBox:
        """``minlng,minlat,maxlng,maxlat``.

        >>> BBox.parse("-0.12,51.50,-0.07,51.53")
        BBox(min_lng=-0.12, min_lat=51.5, max_lng=-0.07, max_lat=51.53)
        """
        parts = text.split(",")
        usage = f"--bbox takes minlng,minlat,maxlng,maxlat in degrees, e.g. -0.12,51.50,-0.07,51.53; got {text!r}"
        if len(parts) != 4:
            raise ValueError(usage)
        try:
            a, b, c, d = (float(p) for p in parts)
        except ValueError:
            raise ValueError(usage) from None
        if not all(math.isfinite(v) for v in (a, b, c, d)):
            raise ValueError(usage)
        if not (-180 <= a < c <= 180 and -90 <= b < d <= 90):
            raise ValueError(f"{usage} (minimums below maximums, longitudes in -180..180, latitudes in -90..90)")
        return cls(a, b, c, d)

    def contains(self, lng: float, lat: float) -> bool:
        return self.min_lng <= lng <= self.max_lng and self.min_lat <= lat <= self.max_lat


@dataclass(frozen=True)
class Tile:
    """A part of the box, named by where it is: ``r0c2`` then ``.0``-``.3`` for each split."""

    key: str
    min_lng: float
    min_lat: float
    max_lng: float
    max_lat: float

    @property
    def size(self) -> float:
        return max(self.max_lng - self.min_lng, self.max_lat - self.min_lat)

    def quarters(self) -> tuple[Tile, ...]:
        """South-west, south-east, north-west, north-east."""
        mid_lng = (self.min_lng + self.max_lng) / 2
        mid_lat = (self.min_lat + self.max_lat) / 2
        lngs = ((self.min_lng, mid_lng), (mid_lng, self.max_lng))
        lats = ((self.min_lat, mid_lat), (mid_lat, self.max_lat))
        return tuple(
            Tile(f"{self.key}.{2 * j + i}", lngs[i][0], lats[j][0], lngs[i][1], lats[j][1])
            for j in range(2)
            for i in range(2)
        )

    def poly(self, margin: float = EDGE_MARGIN) -> str:
        """The tile, widened by ``margin``, as police.uk's ``poly``: ``lat,lng:lat,lng:...``."""
        w, s = self.min_lng - margin, self.min_lat - margin
        e, n = self.max_lng + margin, self.max_lat + margin
        return ":".join(f"{lat:.6f},{lng:.6f}" for lng, lat in ((w, s), (e, s), (e, n), (w, n)))


def tiles(bbox: BBox, tile_size: float) -> list[Tile]:
    """The box cut into equal tiles no wider or taller than ``tile_size`` degrees, row by row."""
    cols = max(1, math.ceil((bbox.max_lng - bbox.min_lng) / tile_size - 1e-9))
    rows = max(1, math.ceil((bbox.max_lat - bbox.min_lat) / tile_size - 1e-9))

    def lng(i: int) -> float:
        return bbox.max_lng if i == cols else bbox.min_lng + (bbox.max_lng - bbox.min_lng) * i / cols

    def lat(j: int) -> float:
        return bbox.max_lat if j == rows else bbox.min_lat + (bbox.max_lat - bbox.min_lat) * j / rows

    return [Tile(f"r{j}c{i}", lng(i), lat(j), lng(i + 1), lat(j + 1)) for j in range(rows) for i in range(cols)]


def error_message(response: httpx.Response) -> str:
    """The status and what the server said, briefly."""
    text = response.text.strip()
    try:
        body = response.json()
        if isinstance(body, dict):
            text = str(body.get("error") or body.get("message") or body)
            if body.get("hint"):
                text += f" ({body['hint']})"
    except ValueError:
        pass
    return f"{response.status_code} {response.reason_phrase}" + (f": {text[:300]}" if text else "")
