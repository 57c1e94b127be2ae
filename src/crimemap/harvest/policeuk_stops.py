"""Harvest stops and searches from a police.uk-style API into the store.

The way crimes are harvested (:mod:`crimemap.harvest.policeuk`): for each month
the box is cut into tiles, each asked for as a ``poly`` of ``/stops-street``; a
tile answered 503 (more than 10,000 stops) is split in four, down to the
minimum tile size; ``/stops-no-location`` adds the force's stops published
without a location.

Decisions, beside those of the crime harvest (force given by the user,
resumable state, stops already stored outside the harvest kept):

- **No ids.** The API gives a stop no id, and two real stops can be identical
  field for field (a person and a vehicle searched together, written twice), so
  stops cannot be told apart by their content. Tiles overlap by a metre so that
  a server that leaves out edges loses nothing, and each stop is kept by the one
  tile that owns its point: tiles own their south-west edges, and the box's
  north and east edges belong to the tiles along them. A stop is stored with an
  id made as a loaded file's are (month, force and its place in the harvest).
- **Months.** A month whose ``crimes-street-dates`` entry does not list the
  force among those with stop-and-search data is skipped with a note.
- **Streets.** A stop keeps the map point the API gave it (its id and name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import orjson

from crimemap import vocab
from crimemap.harvest.http import HarvestClient, HarvestError, HttpStats
from crimemap.harvest.state import HarvestState
from crimemap.harvest.tiling import (
    DEFAULT_TILE_SIZE,
    MIN_TILE_SIZE,
    POLICEUK_RETRY,
    BBox,
    Progress,
    Tile,
    TiledRun,
    answer_list,
    tiles,
)
from crimemap.load.policeuk_files import crime_id
from crimemap.query import StopQuery
from crimemap.records import Stop
from crimemap.store.base import Store
from crimemap.vocab_stops import STOP_TYPES
from crimemap.wire import MAX_CRIMES


@dataclass(frozen=True)
class StopsHarvest:
    """What to harvest (see the module docstring); :meth:`job` identifies it in the state file."""

    bbox: BBox
    months: tuple[str, ...]
    force: str
    tile_size: float = DEFAULT_TILE_SIZE
    min_tile_size: float = MIN_TILE_SIZE
    no_location: bool = True

    def __post_init__(self) -> None:
        if self.force not in vocab.FORCE_BY_ID:
            raise ValueError(f"unknown force {self.force!r}; forces: {', '.join(vocab.FORCE_BY_ID)}")
        if not self.months:
            raise ValueError("no months to harvest")
        if not 0 < self.min_tile_size <= self.tile_size:
            raise ValueError("tile sizes must be positive, the minimum no larger than the tile size")

    def job(self, base_url: str) -> dict[str, Any]:
        return {"api": "police.uk stop and search", "url": base_url, **asdict(self)}

    def in_scope(self, stop: Stop) -> bool:
        """Whether this harvest answers for a stored stop of its force (else it is kept as it is)."""
        if stop.lng is None or stop.lat is None:
            return self.no_location
        return self.bbox.contains(stop.lng, stop.lat)


@dataclass
class StopsSummary:
    """What a harvest of stops did, for the command line's report."""

    url: str
    force: str
    stops: dict[str, int] = field(default_factory=dict)
    kept: int = 0
    skipped: list[str] = field(default_factory=list)
    splits: int = 0
    resumed: int = 0
    http: HttpStats = field(default_factory=HttpStats)

    def describe(self, elapsed: float) -> str:
        months = sorted(self.stops)
        span = f"{months[0]}..{months[-1]}" if len(months) > 1 else "".join(months) or "no month"
        lines = [
            f"harvested {sum(self.stops.values()):,} stops and searches of {self.force} in {len(months)} months"
            f" ({span}) from {self.url} in {elapsed:.1f} s",
            f"  {self.http.requests:,} requests, {self.splits} tiles split at the {MAX_CRIMES:,}-stop limit,"
            f" {self.http.throttled} answered 429, {self.http.retries} retried",
        ]
        if self.kept:
            lines.append(f"  kept {self.kept:,} stops already stored outside the harvested area")
        if self.resumed:
            lines.append(f"  resumed: {self.resumed:,} units were done before and not fetched again")
        lines.extend(f"  {note}" for note in self.skipped)
        return "\n".join(lines)


_YES_NO = {True: True, False: False, None: None}


def stop_from_json(obj: Any, month: str, force: str, stop_id: int) -> Stop:
    """A stop of a ``stops-*`` answer as a :class:`Stop` of ``force`` and ``month``.

    >>> s = stop_from_json({"type": "Person search", "datetime": "2020-01-05T10:00:00+00:00", "outcome": "Arrest",
    ...     "location": {"latitude": "51.5", "street": {"id": 9, "name": "On or near X"}, "longitude": "-0.1"},
    ...     "removal_of_more_than_outer_clothing": None}, "2020-01", "city-of-london", 1)
    >>> (s.lng, s.street_id, s.outcome, s.removal_of_more_than_outer_clothing)
    (-0.1, 9, 'Arrest', None)
    """
    try:
        lng = lat = street_id = None
        street_name = ""
        location = obj.get("location")
        if location:
            lng, lat = float(location["longitude"]), float(location["latitude"])
            if not (-180 <= lng <= 180 and -90 <= lat <= 90):
                raise ValueError(f"coordinates out of range: {lng}, {lat}")
            street = location.get("street") or {}
            street_id = int(street["id"]) if street.get("id") is not None else None
            street_name = street.get("name") or ""
        kind = obj.get("type") or ""
        if kind and kind not in STOP_TYPES:
            raise ValueError(f"unknown type {kind!r}")
        when = obj["datetime"]
        if not isinstance(when, str) or not when:
            raise ValueError(f"datetime is not a date and time: {when!r}")

        def text(name: str) -> str:
            value = obj.get(name)
            return "" if value is None else str(value)

        def flag(name: str) -> bool | None:
            return _YES_NO[obj.get(name)]

        return Stop(
            stop_id, month, force, kind, when, flag("operation"), text("operation_name"), lng, lat, street_id,
            street_name, text("gender"), text("age_range"), text("self_defined_ethnicity"),
            text("officer_defined_ethnicity"), text("legislation"), text("object_of_search"), text("outcome"),
            flag("outcome_linked_to_object_of_search"), flag("removal_of_more_than_outer_clothing"),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise HarvestError(f"a stop in the answer is not as police.uk describes it ({e}): {obj!r:.300}") from None


def owns(tile: Tile, bbox: BBox, lng: float, lat: float) -> bool:
    """Whether a point is the tile's: its south-west edges, and the box's north and east edges where it has them."""
    east = lng < tile.max_lng or (tile.max_lng == bbox.max_lng and lng == tile.max_lng)
    north = lat < tile.max_lat or (tile.max_lat == bbox.max_lat and lat == tile.max_lat)
    return tile.min_lng <= lng and tile.min_lat <= lat and east and north


class _Run(TiledRun):
    """One run of a harvest of stops: the client, the store, the state file and the tally."""

    def __init__(
        self, client: HarvestClient, store: Store, state: HarvestState, what: StopsHarvest, progress: Progress
    ) -> None:
        summary = StopsSummary(client.base_url, what.force, http=client.stats)
        super().__init__(client, state, what.bbox, what.months, what.tile_size, what.min_tile_size, progress, summary)
        self.store = store
        self.what = what
        self.summary = summary

    path = "/stops-street"

    def unpublished(self, month: str) -> str | None:
        """A note when ``month``'s ``crimes-street-dates`` entry does not list the force (none if it cannot say)."""
        known = self.state.get("stop-forces")
        if known is None:
            response = self.client.request("GET", "/crimes-street-dates", retry=POLICEUK_RETRY)
            try:
                body = response.json() if response.status_code == 200 else []
                known = {d["date"]: list(d.get("stop-and-search") or []) for d in body}
            except (ValueError, TypeError, KeyError, AttributeError):
                known = {}
            self.state.set("stop-forces", known)
        if not known or self.what.force in known.get(month, []):
            return None
        return f"{month}: {self.client.base_url} has no stop-and-search data of {self.what.force}; skipped"

    def tile_records(self, month: str, tile: Tile, response: httpx.Response) -> Iterable[tuple[str, bytes]]:
        """The stops of the answer the tile owns (see the module docstring), as the API gave them."""
        box = self.what.bbox
        mine = [
            s
            for s in answer_list(response, "stops")
            if s.get("location")
            and owns(tile, box, float(s["location"]["longitude"]), float(s["location"]["latitude"]))
            and box.contains(float(s["location"]["longitude"]), float(s["location"]["latitude"]))
        ]
        return ((f"{tile.key}/{i:07d}", orjson.dumps(s)) for i, s in enumerate(mine))

    def no_location_units(self) -> list[str]:
        return [self.what.force] if self.what.no_location else []

    def no_location(self, month: str, force: str) -> None:
        unit = f"{month}/no-location"
        if self.state.status(unit):
            self.summary.resumed += 1
            return
        params = {"force": force, "date": month}
        response = self.client.request("GET", "/stops-no-location", params=params, retry=POLICEUK_RETRY)
        nowhere = [s for s in answer_list(response, "stops") if not s.get("location")]
        self.state.commit(unit, group=month, records=((f"~{i:07d}", orjson.dumps(s)) for i, s in enumerate(nowhere)))

    def write(self, month: str) -> None:
        """Write the month's harvest, and the stored stops it does not answer for, all or nothing."""
        force = self.what.force
        stored = list(self.store.stops(StopQuery(month=month, force=force, located=None)))
        kept = [s for s in stored if not self.what.in_scope(s)]
        harvested = [orjson.loads(p) for p in self.state.records(month)]
        stops = [s._replace(id=crime_id(month, force, i)) for i, s in enumerate(kept)]
        first = len(kept)
        stops += [
            stop_from_json(obj, month, force, crime_id(month, force, first + i)) for i, obj in enumerate(harvested)
        ]
        with self.store.writer() as writer:
            if stops or stored:
                writer.replace_stops(month, force, stops)
        self.state.commit(f"{month}/written", drop=month)
        self.summary.stops[month] = len(harvested)
        self.summary.kept += len(kept)


def harvest_stops(
    store: Store, client: HarvestClient, what: StopsHarvest, state: HarvestState, progress: Progress | None = None
) -> StopsSummary:
    """Harvest ``what`` from the police.uk API at ``client.base_url`` (``.../api``) into ``store``.

    ``state`` must be opened with ``what.job(client.base_url)``; units it records
    as done are not fetched again. Raises :class:`HarvestError`; what was done
    stays in ``state``.
    """
    run = _Run(client, store, state, what, progress or (lambda n, note: None))
    run.run()
    return run.summary


def units_per_month(what: StopsHarvest) -> int:
    return len(tiles(what.bbox, what.tile_size)) + (1 if what.no_location else 0)


__all__ = ["StopsHarvest", "StopsSummary", "harvest_stops", "owns", "stop_from_json", "units_per_month"]
