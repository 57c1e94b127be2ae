"""Police neighbourhoods: what is stored of them, and which one holds a point.

police.uk divides each force's area into neighbourhoods, each with a team,
events and priorities. crimemap keeps them as documents
(:mod:`crimemap.store.documents`), each the JSON the police.uk API serves, and
their areas as the table of shapes :data:`~crimemap.store.base.NEIGHBOURHOODS_TABLE`.

Documents of a force (``neighbourhood`` ``''``):

- ``neighbourhoods``: ``/api/{force}/neighbourhoods``, the list as published;
- ``force``: ``/api/forces/{force}``; ``force-people``: ``/api/forces/{force}/people``.

Documents of a neighbourhood:

- ``details``: ``/api/{force}/{neighbourhood}``; ``boundary``: ``/api/{force}/{neighbourhood}/boundary``
  (from the KML files, :mod:`crimemap.load.neighbourhoods`);
- ``people``, ``events``, ``priorities``: the methods of those names.

Boundaries come in bulk from the KML zip; the other documents exist only
behind the API, and ``crimemap harvest policeuk --data neighbourhoods`` copies
them. A neighbourhood is known once either is stored; what is missing is
answered as police.uk answers an empty one (``[]``), and details that were
never harvested are made from the boundary (see :func:`details_json`).

    >>> locator = NeighbourhoodLocator.of(store)  # doctest: +SKIP
    >>> locator.at(-1.136, 52.636)  # doctest: +SKIP
    ('leicestershire', 'NC04')
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import replace
from typing import Any

import numpy as np
import orjson
import shapely

from crimemap import vocab
from crimemap.query import And, Compare, FeatureQuery, Polygon, Predicate
from crimemap.stats_query import StatsError, StatsQuery
from crimemap.stats_stops_query import StopStatsQuery
from crimemap.store.base import Store
from crimemap.store.catalogue import NEIGHBOURHOODS_TABLE

LIST = "neighbourhoods"
FORCE = "force"
FORCE_PEOPLE = "force-people"
DETAILS = "details"
BOUNDARY = "boundary"
PEOPLE = "people"
EVENTS = "events"
PRIORITIES = "priorities"

NEIGHBOURHOOD_KINDS = (DETAILS, BOUNDARY, PEOPLE, EVENTS, PRIORITIES)
"""The documents of one neighbourhood."""


def stored_neighbourhoods(
    store: Store, force: str | None = None, nbhd: str | None = None
) -> list[tuple[str, str, str, bytes]]:
    """``(force, neighbourhood, name, WKB)`` of every stored neighbourhood shape (of ``force``, and ``nbhd``)."""
    if store.table(NEIGHBOURHOODS_TABLE) is None:
        return []
    where: list[Predicate] = [Compare("force", "=", force)] if force is not None else []
    where += [Compare("neighbourhood", "=", nbhd)] if nbhd is not None else []
    query = FeatureQuery(
        NEIGHBOURHOODS_TABLE,
        where=And(tuple(where)) if len(where) > 1 else (where[0] if where else None),
        columns=("force", "neighbourhood", "name"),
    )
    return [
        (str(f.properties[0]), str(f.properties[1]), str(f.properties[2]), f.shape)
        for f in store.features(query)
        if f.shape is not None
    ]


def stored_names(store: Store, force: str) -> dict[str, str]:
    """Neighbourhood id -> name, as the force's published list (else the details harvested) names them."""
    names: dict[str, str] = {}
    for _, nbhd, body in store.documents(DETAILS, force):
        name = orjson.loads(body).get("name")
        if isinstance(name, str):
            names[nbhd] = name
    listed = store.document(force, "", LIST)
    if listed is not None:
        names.update({str(n["id"]): str(n["name"]) for n in orjson.loads(listed) if isinstance(n, dict)})
    return names


def _shapes_of_force(store: Store, force: str, nbhd: str | None = None) -> list[tuple[str, str, bytes]]:
    """``(id, name, WKB)`` of the force's stored neighbourhood shapes (or of one of them), by id."""
    return sorted((n, name, wkb) for _, n, name, wkb in stored_neighbourhoods(store, force, nbhd))


def list_json(store: Store, force: str) -> bytes:
    """``/api/{force}/neighbourhoods``: the list as published, else the stored neighbourhoods by id."""
    listed = store.document(force, "", LIST)
    if listed is not None:
        return listed
    names = stored_names(store, force)
    for nbhd, name, _ in _shapes_of_force(store, force):
        names.setdefault(nbhd, name)
    return orjson.dumps([{"id": nbhd, "name": names[nbhd]} for nbhd in sorted(names)])


def is_known(store: Store, force: str, nbhd: str) -> bool:
    """Whether anything is stored of the neighbourhood."""
    return any(store.document(force, nbhd, kind) is not None for kind in (DETAILS, BOUNDARY))


def _coordinate(value: float) -> str:
    """A coordinate as police.uk spells a centre's: a decimal string, at most six places."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def details_json(store: Store, force: str, nbhd: str) -> bytes | None:
    """``/api/{force}/{neighbourhood}``: as harvested, else made from the stored boundary; None when unknown.

    Made from the boundary, it has the fields of a published one, in their
    order: the name (its id when none is known), the centre (a point inside the
    area), population ``"0"`` and empty contact details, links and locations.
    """
    found = store.document(force, nbhd, DETAILS)
    if found is not None:
        return found
    if store.document(force, nbhd, BOUNDARY) is None:
        return None
    stored = next(((name, wkb) for n, name, wkb in _shapes_of_force(store, force, nbhd)), None)
    centre = None
    if stored is not None:
        point = shapely.from_wkb(stored[1]).representative_point()
        centre = {"latitude": _coordinate(point.y), "longitude": _coordinate(point.x)}
    return orjson.dumps(
        {
            "id": nbhd,
            "name": stored_names(store, force).get(nbhd) or (stored[0] if stored is not None else nbhd),
            "url_force": None,
            "centre": centre,
            "population": "0",
            "contact_details": {},
            "links": [],
            "locations": [],
            "description": None,
        }
    )


def document_json(store: Store, force: str, nbhd: str, kind: str) -> bytes | None:
    """A neighbourhood's ``boundary``, ``people``, ``events`` or ``priorities``: ``[]`` when none is stored,
    None when the neighbourhood is unknown."""
    found = store.document(force, nbhd, kind)
    if found is not None:
        return found
    return b"[]" if is_known(store, force, nbhd) else None


def force_json(store: Store, force: str) -> bytes:
    """``/api/forces/{force}``: as harvested, else its id and name with the other fields null or empty."""
    found = store.document(force, "", FORCE)
    if found is not None:
        return found
    known = vocab.FORCE_BY_ID[force]
    return orjson.dumps(
        {
            "id": known.id,
            "name": known.name,
            "description": None,
            "url": None,
            "telephone": None,
            "engagement_methods": [],
        }
    )


def force_people_json(store: Store, force: str) -> bytes:
    """``/api/forces/{force}/people``: the senior officers as harvested, else ``[]``."""
    return store.document(force, "", FORCE_PEOPLE) or b"[]"


def counted_area(store: Store, text: str) -> Polygon:
    """The area of ``neighbourhood=force/id`` in the counts (``/stats``, ``crimemap stats``): its boundary.

    The ring is the published points, so that a neighbourhood's counts hold the
    crimes ``crimes-street`` answers with that boundary as its ``poly``.
    """
    force, _, nbhd = text.strip().partition("/")
    if force not in vocab.FORCE_BY_ID or not nbhd:
        raise StatsError("neighbourhood", f"neighbourhood is force/id, e.g. leicestershire/NC04; got {text[:100]!r}")
    boundary = store.document(force, nbhd, BOUNDARY)
    points = orjson.loads(boundary) if boundary is not None else []
    if len(points) < 3:
        raise StatsError("neighbourhood", f"no boundary is stored for {text[:100]!r}")
    return Polygon(tuple((float(p["longitude"]), float(p["latitude"])) for p in points))


def in_neighbourhood(store: Store, query: StatsQuery | StopStatsQuery, text: str) -> StatsQuery | StopStatsQuery:
    """``query`` counting only inside the neighbourhood ``force/id`` (see :func:`counted_area`)."""
    if query.area is not None:
        raise StatsError("neighbourhood", "give one area: bbox, poly or neighbourhood")
    return replace(query, area=counted_area(store, text))


class NeighbourhoodLocator:
    """Neighbourhoods by location: ``(force, id)`` of the area holding a point.

    An STRtree over the stored shapes finds the few whose boxes hold the point;
    their prepared shapes decide. Where areas overlap, the smaller one holds
    the point. Made once per store generation (:meth:`of`).
    """

    def __init__(self, rows: list[tuple[str, str, Any]]) -> None:
        rows = sorted(rows, key=lambda r: (shapely.area(r[2]), r[0], r[1]))
        self.keys = [(force, nbhd) for force, nbhd, _ in rows]
        self.shapes = np.array([shape for _, _, shape in rows], dtype=object)
        shapely.prepare(self.shapes)
        self.tree = shapely.STRtree(self.shapes)
        self._lock = threading.Lock()  # prepared geometries must not be used by two threads at once

    def __len__(self) -> int:
        return len(self.keys)

    def at(self, lng: float, lat: float) -> tuple[str, str] | None:
        """The neighbourhood holding the point (on its edge counts), or None."""
        point = shapely.Point(lng, lat)
        with self._lock:
            candidates = np.sort(self.tree.query(point))
            if not candidates.size:
                return None
            inside = shapely.intersects_xy(self.shapes[candidates], lng, lat)
        hits = candidates[inside]
        return self.keys[int(hits[0])] if hits.size else None

    _made: weakref.WeakKeyDictionary[Store, tuple[str, NeighbourhoodLocator]] = weakref.WeakKeyDictionary()
    _making = threading.Lock()

    @classmethod
    def of(cls, store: Store) -> NeighbourhoodLocator:
        """The locator of the store's neighbourhoods as they are now (made again after each load)."""
        generation = store.generation()
        made = cls._made.get(store)
        if made is not None and made[0] == generation:
            return made[1]
        with cls._making:
            made = cls._made.get(store)
            if made is not None and made[0] == generation:
                return made[1]
            rows = [(force, nbhd, shapely.from_wkb(wkb)) for force, nbhd, _, wkb in stored_neighbourhoods(store)]
            locator = cls(rows)
            cls._made[store] = (generation, locator)
            return locator
