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
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from crimemap.harvest.http import RETRY_STATUSES, HarvestClient, HarvestError, retry_statuses
from crimemap.harvest.state import HarvestState
from crimemap.wire import MAX_GET_LENGTH

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


def answer_list(response: httpx.Response, things: str) -> list[Any]:
    """The JSON list a successful answer holds; :class:`HarvestError` for an error, non-JSON or anything else."""
    if response.status_code != 200:
        raise HarvestError(f"{response.request.method} {response.request.url}: {error_message(response)}")
    try:
        body = response.json()
    except ValueError:
        raise HarvestError(f"{response.request.url}: the answer is not JSON: {response.text[:200]!r}") from None
    if not isinstance(body, list):
        raise HarvestError(f"{response.request.url}: expected a list of {things}, got {response.text[:200]!r}")
    return body


class Tally(Protocol):
    """What a run counts, in the summary the command line reports."""

    splits: int
    resumed: int
    skipped: list[str]


class TiledRun(ABC):
    """One run of a tiled harvest: month by month, its tiles, then its calls for what has no location, then a write.

    Every tile is a unit of work in the state file (:mod:`crimemap.harvest.state`),
    committed with what it found; a tile past the API's limit is committed as
    split and its quarters harvested in turn, depth first. A month is written to
    the store once all its units are done, and a month written is not asked for
    again. A harvest says what it asks for (:attr:`path`), what a tile's answer
    keeps (:meth:`tile_records`), which months to skip (:meth:`unpublished`),
    what it asks beside the tiles (:meth:`no_location_units`, :meth:`no_location`)
    and how it writes a month (:meth:`write`).
    """

    limit_note: str = ""
    """What a 503 of a tile too small to split may mean, added to the error."""

    def __init__(
        self,
        client: HarvestClient,
        state: HarvestState,
        bbox: BBox,
        months: tuple[str, ...],
        tile_size: float,
        min_tile_size: float,
        progress: Progress,
        tally: Tally,
    ) -> None:
        self.client = client
        self.state = state
        self.bbox = bbox
        self.months = months
        self.tile_size = tile_size
        self.min_tile_size = min_tile_size
        self.progress = progress
        self.tally = tally

    @property
    @abstractmethod
    def path(self) -> str:
        """The area method each tile is asked of, e.g. ``/stops-street``."""

    @abstractmethod
    def tile_records(self, month: str, tile: Tile, response: httpx.Response) -> Iterable[tuple[str, bytes]]:
        """What to keep of a tile's answer, as (key, record) pairs for the state file."""

    @abstractmethod
    def unpublished(self, month: str) -> str | None:
        """A note saying why ``month`` is skipped, or ``None`` to harvest it."""

    @abstractmethod
    def no_location_units(self) -> Sequence[str]:
        """The calls each month takes beside its tiles (for what has no location): one name each."""

    @abstractmethod
    def no_location(self, month: str, unit: str) -> None:
        """Make one of :meth:`no_location_units`' calls for ``month``, and commit it to the state file."""

    @abstractmethod
    def write(self, month: str) -> None:
        """Write the month's harvest to the store, all or nothing, and commit ``{month}/written``."""

    def run(self) -> None:
        top = tiles(self.bbox, self.tile_size)
        extra = self.no_location_units()
        per_month = len(top) + len(extra)
        for month in self.months:
            if self.state.status(f"{month}/written"):
                self.tally.resumed += per_month
                self.progress(per_month, f"{month} (done before)")
                continue
            note = self.unpublished(month)
            if note is not None:
                self.tally.skipped.append(note)
                self.progress(per_month, f"{month} not published")
                continue
            for n, tile in enumerate(top, 1):
                self.harvest_tile(month, tile)
                self.progress(1, f"{month} tile {n}/{len(top)}")
            for unit in extra:
                self.no_location(month, unit)
                self.progress(1, f"{month} no location ({unit})")
            self.write(month)

    def harvest_tile(self, month: str, tile: Tile) -> None:
        """Harvest one tile, depth first through its quarters when it holds too much."""
        unit = f"{month}/{tile.key}"
        status = self.state.status(unit)
        if status == "done":
            self.tally.resumed += 1
            return
        if status != "split":
            response = self.fetch(month, tile)
            if response is not None:
                self.state.commit(unit, group=month, records=self.tile_records(month, tile, response))
                return
            self.state.commit(unit, status="split")
            self.tally.splits += 1
        for quarter in tile.quarters():
            self.harvest_tile(month, quarter)

    def fetch(self, month: str, tile: Tile) -> httpx.Response | None:
        """The tile's answer, or ``None`` when it holds more than the API's limit and can be split.

        A ``poly`` too long for a GET is sent by POST, as police.uk asks. A
        503 of a tile that cannot be split is tried again (the server may be
        overloaded), then an error.
        """
        params = {"poly": tile.poly(), "date": month}
        smallest = tile.size / 2 < self.min_tile_size
        long_get = len(httpx.URL(self.client.url(self.path), params=params).raw_path) > MAX_GET_LENGTH
        response = self.client.request(
            "POST" if long_get else "GET",
            self.path,
            params=None if long_get else params,
            data=params if long_get else None,
            retry=retry_statuses(RETRY_STATUSES) if smallest else POLICEUK_RETRY,
        )
        if response.status_code == 503 and not smallest:
            return None
        if response.status_code == 503:
            raise HarvestError(
                f"{month}, tile {tile.key} ({tile.poly(0)}): {error_message(response)}; the tile cannot be"
                f" split below {self.min_tile_size}° (--min-tile-size){self.limit_note}"
            )
        return response
