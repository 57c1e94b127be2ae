"""Whether a polygon sent by a client can be read cheaply: one that crosses itself too often is refused.

A ring that crosses or touches itself is read as its valid parts (GEOS's ``make_valid``), but that repair
grows with the square of its crossings, and cannot be interrupted: a 10,000-point star (millions of
crossings) grew the server by 150 MB a second until the kernel killed it, and a 236-point one took 85 s.
So a ring is first tested (``is_valid``, O(n log n): 20 ms for 10,000 points); only an invalid one has its
proper crossings counted (pairs of edges whose boxes meet, a few edges at a time, tested by the sides
their ends lie on), stopping as soon as either count passes its limit. A ring under both limits is
repaired in milliseconds (a ring traced 30 times over itself crosses nothing, and is read as itself);
any other is refused, with a message that says where it crosses itself. Both steps run under the
request's time budget, and stop when its client hangs up (:func:`crimemap.deadline.check`).

    >>> check_ring(((0, 0), (2, 2), (2, 0), (0, 2), (0, 0)))  # a bow tie: one crossing, repaired
    >>> check_ring(((0, 0), (1, 0), (1, 1), (0, 1), (0, 0)))  # a square
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import shapely

from crimemap import deadline

MAX_CROSSINGS = 100
"""The most pairs of a ring's edges that may cross or touch for it to be repaired (a 16-point star's 96
crossings are repaired in 25 ms; a 40-point star's 760 took 0.17 s, a 100-point one's 4,700 took 3 s)."""

MAX_EDGE_PAIRS = 2_000_000
"""The most pairs of edges whose boxes meet that are tested for crossings (about half a second) before a
ring that crosses itself is refused as too costly to repair."""

_CHUNK = 8
"""Edges whose crossings are looked up at a time, so that a ring crossing itself everywhere stops early."""


class RingError(ValueError):
    """A ring that crosses itself more than can be repaired cheaply; the message is fit for a 400."""


def check_ring(ring: Sequence[tuple[float, float]]) -> None:
    """Raise :class:`RingError` when a closed ring of ``(lng, lat)`` crosses itself too often to repair."""
    deadline.check()
    polygon = shapely.Polygon(ring)
    if polygon.is_valid:
        return
    deadline.check()
    crossings = _crossings_past(np.asarray(ring, dtype=np.float64), MAX_CROSSINGS)
    if crossings is None or crossings > MAX_CROSSINGS:
        how = "too tangled to repair cheaply" if crossings is None else f"more than {MAX_CROSSINGS} times"
        raise RingError(
            f"the polygon crosses itself{_where(polygon)} {how}; an outline that crosses or touches itself"
            " is read as its parts only when that is cheap: draw it without crossing itself, or as several polygons"
        )


def _crossings_past(ring: np.ndarray, limit: int) -> int | None:
    """Pairs of non-adjacent edges that cross or touch, counted until past ``limit``;
    None when more than :data:`MAX_EDGE_PAIRS` pairs would have to be tested."""
    points = ring[:-1] if len(ring) > 1 and (ring[0] == ring[-1]).all() else ring
    n = len(points)
    edges = shapely.linestrings(np.stack([points, np.roll(points, -1, axis=0)], axis=1))
    tree = shapely.STRtree(edges)
    found = tested = 0
    for start in range(0, n, _CHUNK):
        deadline.check()
        mine = np.arange(start, min(n, start + _CHUNK))
        at, other = tree.query(edges[mine])
        first = mine[at]
        apart = (other > first) & (other - first != 1) & ~((first == 0) & (other == n - 1))
        first, other = first[apart], other[apart]
        tested += len(first)
        if tested > MAX_EDGE_PAIRS:
            return None
        found += int(np.count_nonzero(_cross(points, first, other)))
        if found > limit:
            return found
    return found


def _cross(points: np.ndarray, first: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Whether edge ``first[k]`` properly crosses edge ``other[k]`` (each end strictly on either side of the
    other's line): what makes the repair costly. Edges that touch or run along each other (a ring traced
    twice) are cheap to repair, and do not count."""
    n = len(points)
    a, b = points[first], points[(first + 1) % n]
    c, d = points[other], points[(other + 1) % n]

    def side(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
        return np.sign((q[:, 0] - p[:, 0]) * (r[:, 1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (r[:, 0] - p[:, 0]))

    return (side(a, b, c) * side(a, b, d) < 0) & (side(c, d, a) * side(c, d, b) < 0)


def _where(polygon: shapely.Polygon) -> str:
    """`` at lat,lng`` of the first crossing GEOS reports, or nothing."""
    match = re.search(r"\[(\S+) (\S+)\]", shapely.is_valid_reason(polygon))
    if match is None:
        return ""
    return f" (at {float(match.group(2)):.6f},{float(match.group(1)):.6f})"
