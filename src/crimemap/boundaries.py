"""Which police force's area a point lies in: the stored force boundaries (:mod:`crimemap.load.boundaries`).

police.uk's street-level API never says which force recorded a crime; its
boundaries do say whose area the crime's map point lies in. A harvest uses
that to store each crime under that force (British Transport Police crimes,
at BTP locations, stay BTP's). A point in no area (at sea, across the
Scottish border) goes to the nearest area: police.uk snaps crimes to map
points, and a coastal one can lie just off the drawn coast.

    >>> locator = ForceLocator.from_store(store)  # doctest: +SKIP
    >>> locator.force_at(-0.09, 51.515)  # doctest: +SKIP
    'city-of-london'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from crimemap import vocab
from crimemap.store.base import Store


class ForceLocator:
    """Force ids by location, over the boundaries given (force id -> shapely geometry)."""

    def __init__(self, areas: dict[str, Any]) -> None:
        # Smaller areas first: where two overlap (the City inside London's outline), the smaller decides.
        self.forces = sorted(areas, key=lambda f: (areas[f].area, vocab.FORCE_BY_ID[f].code))
        self.shapes = [areas[f] for f in self.forces]
        for shape in self.shapes:
            shapely.prepare(shape)
        self.tree = shapely.STRtree(self.shapes)
        self.last_outside = 0
        """How many points of the last :meth:`forces_at` lay in no area."""

    @classmethod
    def from_store(cls, store: Store) -> ForceLocator | None:
        """The locator of the boundaries stored, or None when none are loaded."""
        found = store.force_boundaries()
        if not found:
            return None
        return cls({force: shapely.from_wkb(wkb) for force, (_, wkb) in found.items()})

    def forces_at(self, lngs: np.ndarray, lats: np.ndarray) -> list[str]:
        """The force of each point: the smallest area holding it, else the nearest area."""
        points = shapely.points(lngs, lats)
        best = np.full(len(points), len(self.forces), dtype=np.int64)
        hits = self.tree.query(points, predicate="intersects")
        np.minimum.at(best, hits[0], hits[1])
        missing = np.flatnonzero(best == len(self.forces))
        self.last_outside = int(missing.size)
        if missing.size:
            nearest = self.tree.query_nearest(points[missing], all_matches=False)
            best[missing[nearest[0]]] = nearest[1]
        return [self.forces[i] for i in best.tolist()]

    def force_at(self, lng: float, lat: float) -> str:
        return self.forces_at(np.array([lng]), np.array([lat]))[0]

    def forces_in_box(self, west: float, south: float, east: float, north: float) -> list[str]:
        """The forces whose areas meet a box, by force code."""
        hits = self.tree.query(shapely.box(west, south, east, north), predicate="intersects")
        return sorted({self.forces[i] for i in hits.tolist()}, key=lambda f: vocab.FORCE_BY_ID[f].code)
