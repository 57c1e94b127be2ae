"""Harvest street-level crimes from a police.uk-style API into the store.

For each month, the bounding box is cut into tiles (``tile_size`` degrees at
most) and each tile is asked for as a ``poly`` of ``/crimes-street/{category}``.
A tile holding more than 10,000 crimes is answered 503; it is split in four
and each quarter asked for in turn, down to ``min_tile_size``
(:mod:`crimemap.harvest.tiling`). Crimes seen by two tiles (tiles overlap, so a
crime on a shared edge is never lost to a server that excludes edges) are kept once, by their id; crimes
outside the box are dropped, so the result is exactly the box, edges included.
``crimes-no-location`` adds the force's crimes published without a location.

Decisions:

- **Force.** The street-level response has no force (police.uk has no method
  saying which force a crime belongs to), while the store keeps crimes by
  month *and force*. When the store holds the police force boundaries
  (``crimemap load .../boundaries/forces/``), each crime is stored under the
  force whose area holds its map point (:mod:`crimemap.boundaries`), and
  ``crimes-no-location`` is asked of every force whose area meets the box.
  Without boundaries, ``force`` is given by the user and crimes are stored
  under it. Either way a crime the response places at a ``BTP`` location was
  recorded by British Transport Police and is stored under ``btp``.
- **Ids** are the remote's: ``id``, ``persistent_id`` and the street ``id``
  are stored as given, so a harvested crime has the same URLs here as there.
- **What the API does not say** is stored empty: LSOA code and name. A crime
  without a location gets the street name the bulk files give it, "No Location".
  ``outcome_status`` gives the outcome's name and month (``Crime.outcome``,
  ``Crime.outcome_month``).
- **Merging.** A store write replaces one (month, force). Crimes of that
  month and force already stored *outside what was harvested* (outside the
  box, of another category, or without location when those were not asked
  for) are kept, so harvesting two neighbouring boxes adds up.
- **Resume.** Every tile is a unit of work in the state file
  (:mod:`crimemap.harvest.state`) together with its crimes; a month is written
  to the store, in one transaction, once all its tiles are done.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import numpy as np
import orjson

from crimemap import vocab
from crimemap.boundaries import ForceLocator
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
from crimemap.months import format_month, parse_month
from crimemap.query import CrimeQuery
from crimemap.records import Crime
from crimemap.store.base import Store
from crimemap.wire import MAX_CRIMES

NO_LOCATION = "No Location"
"""The street name of a crime without a location, as police.uk's bulk files write it."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


def parse_months(text: str) -> tuple[str, ...]:
    """``2017-01..2017-06`` (inclusive), ``2017-01,2017-03`` or ``2017-01``.

    >>> parse_months("2016-11..2017-02")
    ('2016-11', '2016-12', '2017-01', '2017-02')
    """
    found: list[str] = []
    for part in text.split(","):
        first, sep, last = part.strip().partition("..")
        start = parse_month(first)
        end = parse_month(last) if sep else start
        if end < start:
            raise ValueError(f"months run from the first to the last: {part.strip()!r} runs backwards")
        found.extend(format_month(m) for m in range(start, end + 1) if format_month(m) not in found)
    return tuple(found)


@dataclass(frozen=True)
class PoliceUKHarvest:
    """What to harvest (see the module docstring); :meth:`job` identifies it in the state file."""

    bbox: BBox
    months: tuple[str, ...]
    force: str | None = None
    """Store every crime under this force; ``None``: under the force whose boundary holds it."""
    category: str = vocab.ALL_CRIME
    tile_size: float = DEFAULT_TILE_SIZE
    min_tile_size: float = MIN_TILE_SIZE
    no_location: bool = True

    def __post_init__(self) -> None:
        if self.force is not None and self.force not in vocab.FORCE_BY_ID:
            raise ValueError(f"unknown force {self.force!r}; forces: {', '.join(vocab.FORCE_BY_ID)}")
        if self.category != vocab.ALL_CRIME and self.category not in vocab.CATEGORY_BY_SLUG:
            raise ValueError(
                f"unknown category {self.category!r}; categories: all-crime, {', '.join(vocab.CATEGORY_BY_SLUG)}"
            )
        if not self.months:
            raise ValueError("no months to harvest")
        if not 0 < self.min_tile_size <= self.tile_size:
            raise ValueError("tile sizes must be positive, the minimum no larger than the tile size")

    def job(self, base_url: str) -> dict[str, Any]:
        return {"api": "police.uk", "url": base_url, **asdict(self)}

    def in_scope(self, crime: Crime, asked: Iterable[str] = ()) -> bool:
        """Whether this harvest answers for a stored crime (else it is kept as it is).

        The area's answer holds every force's crimes; crimes without a location
        are asked for of the forces in ``asked`` only.
        """
        if self.category != vocab.ALL_CRIME and crime.category != self.category:
            return False
        if crime.lng is None or crime.lat is None:
            return self.no_location and crime.force in asked
        return self.bbox.contains(crime.lng, crime.lat)


@dataclass
class PoliceUKSummary:
    """What a harvest did, for the command line's report."""

    url: str
    force: str | None
    crimes: dict[str, int] = field(default_factory=dict)
    """Crimes harvested, by month written."""
    btp: int = 0
    """Of which at British Transport Police locations, stored under ``btp``."""
    kept: int = 0
    """Crimes already stored for those months and the force, outside the harvest, kept."""
    skipped: list[str] = field(default_factory=list)
    splits: int = 0
    resumed: int = 0
    """Units found done in the state file (not fetched again)."""
    http: HttpStats = field(default_factory=HttpStats)
    forces: dict[str, int] = field(default_factory=dict)
    """Crimes stored under each force, when boundaries decided."""
    outside: int = 0
    """Crimes in no force's area, given to the nearest."""

    def describe(self, elapsed: float) -> str:
        months = sorted(self.crimes)
        span = f"{months[0]}..{months[-1]}" if len(months) > 1 else "".join(months) or "no month"
        whose = self.force or f"{len(self.forces)} forces (by their boundaries)"
        lines = [
            f"harvested {sum(self.crimes.values()):,} crimes of {whose} in {len(months)} months ({span})"
            f" from {self.url} in {elapsed:.1f} s",
            f"  {self.http.requests:,} requests, {self.splits} tiles split at the {MAX_CRIMES:,}-crime limit,"
            f" {self.http.throttled} answered 429, {self.http.retries} retried,"
            f" {self.http.waited:.1f} s spent waiting",
        ]
        if self.btp and self.force != vocab.BTP.id:
            lines.append(f"  {self.btp:,} of them at British Transport Police locations, stored under btp")
        if self.forces:
            lines.append("  by force: " + ", ".join(f"{f} {n:,}" for f, n in sorted(self.forces.items())))
        if self.outside:
            lines.append(f"  {self.outside:,} crimes lay in no force's area and were given to the nearest")
        if self.kept:
            lines.append(f"  kept {self.kept:,} crimes already stored outside the harvested area")
        if self.resumed:
            lines.append(f"  resumed: {self.resumed:,} units were done before and not fetched again")
        lines.extend(f"  {note}" for note in self.skipped)
        return "\n".join(lines)


def crime_from_json(obj: Any, force: str) -> Crime:
    """A crime of a ``crimes-street``/``crimes-no-location`` answer as a :class:`Crime` of ``force``.

    A crime at a ``BTP`` location belongs to British Transport Police (``btp``).

    >>> c = crime_from_json({"category": "drugs", "location_type": "Force", "context": "", "id": 7,
    ...     "location": {"latitude": "51.5", "street": {"id": 9, "name": "On or near X"}, "longitude": "-0.1"},
    ...     "outcome_status": {"category": "Under investigation", "date": "2017-02"},
    ...     "persistent_id": "", "location_subtype": "", "month": "2017-01"}, "city-of-london")
    >>> (c.id, c.lng, c.street_id, c.outcome, c.outcome_month)
    (7, -0.1, 9, 'Under investigation', '2017-02')
    """
    try:
        location = obj.get("location")
        lng = lat = street_id = None
        street_name = NO_LOCATION
        if location:
            lng, lat = float(location["longitude"]), float(location["latitude"])
            if not (-180 <= lng <= 180 and -90 <= lat <= 90):
                raise ValueError(f"coordinates out of range: {lng}, {lat}")
            street = location.get("street") or {}
            street_id = int(street["id"]) if street.get("id") is not None else None
            street_name = street.get("name") or ""
        status = obj.get("outcome_status") or {}
        category = obj["category"]
        if category not in vocab.CATEGORY_BY_SLUG:
            raise ValueError(f"unknown category {category!r}")
        pid = (obj.get("persistent_id") or "").lower()
        if pid and not _HEX64.fullmatch(pid):
            raise ValueError(f"persistent_id is not 64 hexadecimal characters: {pid!r}")
        location_type = obj.get("location_type") or "Force"
        owner = vocab.BTP if location_type == "BTP" else vocab.FORCE_BY_ID[force]
        return Crime(
            int(obj["id"]), str(obj["month"]), owner.id, owner.name, lng, lat, street_id,
            street_name, "", "", category, pid, location_type,
            obj.get("location_subtype") or "", obj.get("context") or "",
            status.get("category") or None, status.get("date") or None,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise HarvestError(f"a crime in the answer is not as police.uk describes it ({e}): {obj!r:.300}") from None


class _Run(TiledRun):
    """One run of a harvest of crimes: the client, the store, the state file and the tally."""

    def __init__(
        self, client: HarvestClient, store: Store, state: HarvestState, what: PoliceUKHarvest, progress: Progress
    ) -> None:
        summary = PoliceUKSummary(client.base_url, what.force, http=client.stats)
        super().__init__(client, state, what.bbox, what.months, what.tile_size, what.min_tile_size, progress, summary)
        self.store = store
        self.what = what
        self.summary = summary
        self.locator = locator_for(store, what)
        self.no_location_forces = no_location_forces(what, self.locator)

    limit_note = f": either it holds more than {MAX_CRIMES:,} crimes or the server is overloaded"

    @property
    def path(self) -> str:
        return f"/crimes-street/{self.what.category}"

    def unpublished(self, month: str) -> str | None:
        """A note when the remote's ``crimes-street-dates`` does not list ``month`` (none if it cannot say)."""
        known = self.state.get("published")
        if known is None:
            response = self.client.request("GET", "/crimes-street-dates", retry=POLICEUK_RETRY)
            try:
                known = [d["date"] for d in response.json()] if response.status_code == 200 else []
            except (ValueError, TypeError, KeyError):
                known = []
            self.state.set("published", known)
        if not known or month in known:
            return None
        return f"{month}: not published by {self.client.base_url}; skipped"

    def tile_records(self, month: str, tile: Tile, response: httpx.Response) -> Iterable[tuple[str, bytes]]:
        return _records(self._inside(self._crimes(response, month)))

    def _inside(self, crimes: list[Crime]) -> Iterator[Crime]:
        box = self.what.bbox
        for c in crimes:
            if c.lng is not None and c.lat is not None and box.contains(c.lng, c.lat):
                yield c

    def no_location_units(self) -> list[str]:
        return self.no_location_forces

    def no_location(self, month: str, force: str) -> None:
        unit = f"{month}/no-location" if self.what.force is not None else f"{month}/no-location/{force}"
        if self.state.status(unit):
            self.summary.resumed += 1
            return
        params = {"category": self.what.category, "force": force, "date": month}
        response = self.client.request("GET", "/crimes-no-location", params=params, retry=POLICEUK_RETRY)
        crimes = [c for c in self._crimes(response, month, force) if c.lng is None or c.lat is None]
        self.state.commit(unit, group=month, records=_records(crimes))

    def _crimes(self, response: httpx.Response, month: str, force: str | None = None) -> list[Crime]:
        body = answer_list(response, "crimes")
        owner = force or self.what.force or vocab.FORCES[0].id  # located crimes are placed below
        crimes = [crime_from_json(obj, owner) for obj in body]
        if force is None and self.locator is not None:
            crimes = self._placed(crimes)
        for c in crimes:
            if c.month != month:
                raise HarvestError(f"{response.request.url}: asked for {month}, got a crime of {c.month} (id {c.id})")
        return crimes

    def _placed(self, crimes: list[Crime]) -> list[Crime]:
        """Located crimes (but BTP's) under the force whose boundary holds them (see the module docstring)."""
        assert self.locator is not None
        at = [i for i, c in enumerate(crimes) if c.lng is not None and c.lat is not None and c.force != vocab.BTP.id]
        if not at:
            return crimes
        lngs = np.array([crimes[i].lng for i in at], dtype=np.float64)
        lats = np.array([crimes[i].lat for i in at], dtype=np.float64)
        placed = list(crimes)
        for i, force in zip(at, self.locator.forces_at(lngs, lats), strict=True):
            placed[i] = placed[i]._replace(force=force, falls_within=vocab.FORCE_BY_ID[force].name)
        self.summary.outside += self.locator.last_outside
        return placed

    def _stored(self, month: str, force: str) -> Iterator[Crime]:
        yield from self.store.crimes(CrimeQuery(month=month, force=force))
        yield from self.store.crimes(CrimeQuery(month=month, force=force, located=False))

    def write(self, month: str) -> None:
        """Write the month's harvest (and the stored crimes it does not answer for), all or nothing."""
        harvested = {c.id: c for c in (Crime(*orjson.loads(p)) for p in self.state.records(month))}
        by_force: dict[str, list[Crime]] = {f: [] for f in self.no_location_forces}
        if self.what.force is not None:
            by_force.setdefault(self.what.force, [])
        for c in harvested.values():
            by_force.setdefault(c.force, []).append(c)
        with self.store.writer() as writer:
            for force, crimes in by_force.items():
                stored = list(self._stored(month, force))
                kept = [
                    c for c in stored if not self.what.in_scope(c, self.no_location_forces) and c.id not in harvested
                ]
                if crimes or stored:
                    writer.replace_crimes(month, force, [*kept, *crimes])
                self.summary.kept += len(kept)
        self.state.commit(f"{month}/written", drop=month)
        self.summary.crimes[month] = len(harvested)
        if self.what.force != vocab.BTP.id:
            self.summary.btp += len(by_force.get(vocab.BTP.id, ()))
        if self.what.force is None:
            for force, crimes in by_force.items():
                if crimes:
                    self.summary.forces[force] = self.summary.forces.get(force, 0) + len(crimes)


def _records(crimes: Iterable[Crime]) -> Iterator[tuple[str, bytes]]:
    for c in crimes:
        yield str(c.id), orjson.dumps(list(c))


def harvest_policeuk(
    store: Store,
    client: HarvestClient,
    what: PoliceUKHarvest,
    state: HarvestState,
    progress: Progress | None = None,
) -> PoliceUKSummary:
    """Harvest ``what`` from the police.uk API at ``client.base_url`` (``.../api``) into ``store``.

    ``state`` must be opened with ``what.job(client.base_url)``; units it
    records as done are not fetched again. ``progress(n, note)`` is called as
    tiles finish (``n`` counts top-level tiles and no-location calls).
    Raises :class:`HarvestError`; what was done stays in ``state``.
    """
    run = _Run(client, store, state, what, progress or (lambda n, note: None))
    run.run()
    return run.summary


def api_root(url: str) -> str:
    """The API's root from a server's address: ``https://data.police.uk`` -> ``https://data.police.uk/api``.

    >>> api_root("http://127.0.0.1:8000/api/")
    'http://127.0.0.1:8000/api'
    """
    url = url.rstrip("/")
    return url if url.endswith("/api") else url + "/api"


def locator_for(store: Store, what: PoliceUKHarvest) -> ForceLocator | None:
    """The stored boundaries, when they decide the forces (no ``force`` given); an error without them."""
    if what.force is not None:
        return None
    locator = ForceLocator.from_store(store)
    if locator is None:
        raise HarvestError(
            "police.uk's crimes do not say which force recorded them: load the force boundaries first"
            " (crimemap load path/to/boundaries/forces/, or the zip data.police.uk publishes) or give --force"
        )
    return locator


def no_location_forces(what: PoliceUKHarvest, locator: ForceLocator | None) -> list[str]:
    """The forces whose crimes without a location are asked for: ``force``, or those whose areas meet the box."""
    if not what.no_location:
        return []
    if what.force is not None or locator is None:
        return [what.force] if what.force is not None else []
    box = what.bbox
    return locator.forces_in_box(box.min_lng, box.min_lat, box.max_lng, box.max_lat)


def units_per_month(what: PoliceUKHarvest, store: Store | None = None) -> int:
    """Progress steps of one month: its top-level tiles and the no-location calls."""
    forces = no_location_forces(what, locator_for(store, what) if store is not None else None)
    return len(tiles(what.bbox, what.tile_size)) + (len(forces) if what.force is None else int(what.no_location))


__all__ = [
    "PoliceUKHarvest",
    "PoliceUKSummary",
    "api_root",
    "crime_from_json",
    "harvest_policeuk",
    "parse_months",
    "units_per_month",
]
