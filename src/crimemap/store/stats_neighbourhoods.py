"""Crime counts kept per police neighbourhood: what both stores share.

``group=neighbourhood`` (:mod:`crimemap.neighbourhood_stats`) must answer, for
each stored neighbourhood, what ``neighbourhood=force/id`` counts: the crimes
whose point lies in the polygon of the neighbourhood's ``boundary`` document
or on its edge (:func:`crimemap.geometry.areas.in_polygon`, the stores' exact
test). Counting that per neighbourhood at request time cost seconds for the
4,600 of England and Wales, so both stores keep the answer, made at load time:
``stats_neighbourhoods`` holds crimes per month, force, category and
neighbourhood (``force/id``), and ``meta`` holds, under :data:`KEPT_KEY`, the
:func:`fingerprint` of the boundaries they were counted for.

Each load's ``finish`` calls its store's ``refresh_neighbourhoods``: when the
stored boundaries are those the counts were made for, the (month, force) sets
the load replaced are counted again; when they are not (a load of
neighbourhoods, a store from before the counts), every month is. Counting is
one read of the crimes' points and codes, then, in numpy and shapely, each
point's neighbourhoods: candidates by an STRtree of the boundaries' boxes, then
the exact test (``intersects_xy`` on the prepared polygon, as a request's area
test does). A reader uses the counts only when the fingerprint kept is that
of the boundaries it reads (:func:`usable`), so counts made for other
boundaries are never answered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import shapely

from crimemap import vocab
from crimemap.geometry import areas
from crimemap.stats_query import StatsQuery
from crimemap.store.records import CATEGORY_SLUGS, FORCE_IDS, month_text

BOUNDARY_KIND = "boundary"
"""The documents a neighbourhood's area is read from (``/api/{force}/{id}/boundary``)."""

KEPT_KEY = "stats_neighbourhoods"
"""The ``meta`` key holding the fingerprint of the boundaries the kept counts were made for."""

KEPT_GROUPS = frozenset({"neighbourhood", "month", "category", "force"})
"""What the kept counts can be grouped by; other groups are counted another way."""


@dataclass(frozen=True)
class Boundary:
    """One stored neighbourhood as the counts see it: ``force/id``, the ring of its boundary, its polygon."""

    key: str
    ring: tuple[tuple[float, float], ...]
    shape: Any


def boundaries(documents: Iterable[tuple[str, str, bytes]]) -> list[Boundary]:
    """The counted areas of ``(force, neighbourhood, body)`` boundary documents, in key order.

    A ring of fewer than three points, or one that crosses itself past repair, is no area (no request
    counts it), so it is left out.
    """
    found = []
    for force, nbhd, body in sorted(documents, key=lambda d: (d[0], d[1])):
        points = orjson.loads(body)
        if len(points) < 3:
            continue
        ring = tuple((float(p["longitude"]), float(p["latitude"])) for p in points)
        try:
            shape = areas.polygon_shape(ring)
        except ValueError:  # a ring no area test accepts: no request counts it either
            continue
        found.append(Boundary(f"{force}/{nbhd}", ring, shape))
    return found


def fingerprint(documents: Iterable[tuple[str, str, bytes]]) -> str:
    """A digest of the boundary documents (in key order): what the kept counts were made for."""
    digest = hashlib.sha256()
    for force, nbhd, body in sorted(documents, key=lambda d: (d[0], d[1])):
        for part in (force.encode(), nbhd.encode(), body):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def located_in(shapes: list[Any], lng: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(point index, shape index)`` of every point lying in a shape or on its edge, vectorised."""
    if not shapes or len(lng) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    tree = shapely.STRtree(shapes)
    pairs = tree.query(shapely.points(lng, lat))  # boxes only: the exact test follows
    point, shape = pairs[0], pairs[1]
    held = np.asarray(shapely.intersects_xy(np.asarray(shapes, dtype=object)[shape], lng[point], lat[point]))
    return point[held], shape[held]


Row = tuple[int, int, int, str, int]
"""``(month, force, category, neighbourhood, crimes)``: one row of ``stats_neighbourhoods``."""


def count(known: list[Boundary], crimes: Iterable[tuple[Any, ...]]) -> list[Row]:
    """Crimes ``(month, force, category, lng, lat)`` counted by month, force, category and neighbourhood."""
    rows = np.array(list(crimes), dtype=np.float64).reshape(-1, 5)
    if not known or len(rows) == 0:
        return []
    point, shape = located_in([b.shape for b in known], rows[:, 3], rows[:, 4])
    codes = rows[point, :3].astype(np.int64)
    key = ((codes[:, 0] * 256 + codes[:, 1]) * 256 + codes[:, 2]) * len(known) + shape
    found, n = np.unique(key, return_counts=True)
    shape_of, rest = found % len(known), found // len(known)
    category, rest = rest % 256, rest // 256
    force, month = rest % 256, rest // 256
    return [
        (int(m), int(f), int(c), known[s].key, int(k))
        for m, f, c, s, k in zip(month.tolist(), force.tolist(), category.tolist(), shape_of.tolist(), n.tolist(),
                                 strict=True)
    ]  # fmt: skip


CRIMES_SQL = "SELECT month, force, category, lng, lat FROM {crimes} WHERE cell >= 0 AND {where}"
"""The crimes' points and codes, read for counting (``{crimes}``: the table; ``{where}``: which)."""


@dataclass(frozen=True)
class Kept:
    """How one store keeps the counts: its statements (placeholders its own), run through ``execute``."""

    execute: Callable[[str, list[Any]], list[tuple[Any, ...]]]
    insert: Callable[[list[Row]], None]
    placeholder: str
    crimes: str = "crimes"

    def refresh(self, documents: list[tuple[str, str, bytes]], replaced: Iterable[tuple[int, int]]) -> None:
        """Count the sets a load replaced again, or every month when the boundaries are not those counted for."""
        p = self.placeholder
        known = boundaries(documents)
        made = fingerprint(documents)
        kept = self.execute(f"SELECT value FROM meta WHERE key = {p}", [KEPT_KEY])
        if kept and kept[0][0] == made:
            by_month: dict[int, set[int]] = {}
            for month, force in replaced:
                by_month.setdefault(month, set()).add(force)
            for month, forces in sorted(by_month.items()):
                marks = ", ".join(p for _ in forces)
                where, params = f"month = {p} AND force IN ({marks})", [month, *sorted(forces)]
                self.execute(f"DELETE FROM stats_neighbourhoods WHERE {where}", params)
                self._count(known, where, params)
            return
        self.execute("DELETE FROM stats_neighbourhoods", [])
        if known:
            months = [m for (m,) in self.execute(f"SELECT DISTINCT month FROM {self.crimes} ORDER BY month", [])]
            for month in months:
                self._count(known, f"month = {p}", [month])
        self.execute(f"DELETE FROM meta WHERE key = {p}", [KEPT_KEY])
        self.execute(f"INSERT INTO meta VALUES ({p}, {p})", [KEPT_KEY, made])

    def _count(self, known: list[Boundary], where: str, params: list[Any]) -> None:
        if not known:
            return
        rows = count(known, self.execute(CRIMES_SQL.format(crimes=self.crimes, where=where), params))
        if rows:
            self.insert(rows)


# -- reading ---------------------------------------------------------------------------------------


def answers(query: StatsQuery) -> bool:
    """Whether the kept counts can answer ``query`` (its groups among :data:`KEPT_GROUPS`)."""
    return set(query.group) <= KEPT_GROUPS


def read_sql(
    query: StatsQuery, placeholder: str, codes_in: Callable[[str, list[int]], tuple[str, list[Any]]]
) -> tuple[str, list[Any]]:
    """The statement summing the kept counts for ``query`` (grouped as it asks) and its parameters.

    ``codes_in(column, codes)`` is how the store writes "column is one of codes" and its parameters.
    """
    p = placeholder
    where: list[str] = []
    params: list[Any] = []
    if query.month_numbers is not None and query.month_numbers[0] == query.month_numbers[1]:
        where.append(f"month = {p}")  # the rows of one month come in neighbourhood then category order
        params.append(query.month_numbers[0])
    elif query.month_numbers is not None:
        where.append(f"month BETWEEN {p} AND {p}")
        params.extend(query.month_numbers)
    for column, codes in (
        ("category", [vocab.CATEGORY_BY_SLUG[c].code for c in query.categories]),
        ("force", [vocab.FORCE_BY_ID[f].code for f in query.forces]),
    ):
        if codes:
            sql, values = codes_in(column, codes)
            where.append(sql)
            params.extend(values)
    columns = ", ".join([*query.group, "sum(crimes)"])
    group = ", ".join(str(i + 1) for i in range(len(query.group)))
    filtered = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {columns} FROM stats_neighbourhoods{filtered} GROUP BY {group}", params


def decoded(query: StatsQuery, rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The kept rows as :meth:`Store.stats` answers them: months ``YYYY-MM``, slugs, ids; in value order.

    Converted a column at a time (a month of England and Wales grouped by category is 60,000 rows)."""
    found = [row for row in rows if row[-1]]
    if not found:
        return []
    columns = list(zip(*found, strict=True))
    converted: list[list[Any]] = []
    for name, values in zip(query.group, columns, strict=False):
        if name == "month":
            converted.append([month_text(v) for v in values])
        elif name == "category":
            converted.append([CATEGORY_SLUGS[v] for v in values])
        elif name == "force":
            converted.append([FORCE_IDS[v] for v in values])
        else:
            converted.append([str(v) for v in values])
    converted.append([int(n) for n in columns[-1]])
    answered = list(zip(*converted, strict=True))
    answered.sort()  # no two rows share their group values, so the counts never decide
    return answered


def usable(kept: list[tuple[Any, ...]], made: str) -> bool:
    """Whether the fingerprint kept (the rows of its ``meta`` read) is ``made``, that of the boundaries read."""
    return bool(kept) and kept[0][0] == made
