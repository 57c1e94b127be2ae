"""Synthetic police neighbourhoods for the generator's towns, in data.police.uk's KML zip layout.

Each town of :data:`crimemap.load.generate.TOWNS` gets neighbourhoods in
proportion to its weight: seed points around its centre, cut into areas by a
Voronoi diagram of every seed in the country and kept within the town's disk,
so that no two overlap. They are written as the published zip is laid out,
``neighbourhoods/<force>/<id>.kml``, one ``Placemark`` per file named by the
neighbourhood's name, and loaded by ``crimemap load``
(:mod:`crimemap.load.neighbourhoods`).

What police.uk publishes only behind its API (details, team, events,
priorities) travels in the same file, as the JSON documents of those methods
in the Placemark's ``ExtendedData`` (``<Data name="people"><value>[...]</value>``),
which the loader stores beside the boundary; the published KML has none, and
a harvest brings them instead. Same arguments, same bytes.

    crimemap generate out/ --neighbourhoods 4600     # about as many as England and Wales have
    crimemap load out/neighbourhoods.zip
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import orjson
import shapely

from crimemap.geo import EARTH_RADIUS_M
from crimemap.load.generate.world import TOWNS, Town

DEFAULT_COUNT = 400
"""Neighbourhoods the demo makes (England and Wales have about 4,600)."""

_SEED = 0x4E42484400  # "NBHD"
_DISK_SPREADS = 2.5
"""A town's neighbourhoods cover a disk of this many times its spread."""
_DIRECTIONS = ("North", "North East", "East", "South East", "South", "South West", "West", "North West")
_FIRST = ("Jane", "Ravi", "Tom", "Aisha", "Owen", "Grace", "Liam", "Priya", "Sam", "Megan", "Dafydd", "Zara")
_LAST = ("Smith", "Patel", "Jones", "Khan", "Evans", "Brown", "Taylor", "Wilson", "Hughes", "Ali", "Clarke")
_TEAM = (("Sergeant", 1), ("PC", 2), ("PCSO", 2))


@dataclass(frozen=True)
class GeneratedNeighbourhood:
    force: str
    id: str
    name: str
    town: Town
    seed: tuple[float, float]
    """(lng, lat) of the point it grew around: its centre."""
    shape: Any


def _counts(total: int) -> list[int]:
    """Neighbourhoods per town: at least one each, the rest by weight."""
    weight = sum(t.weight for t in TOWNS)
    return [max(1, round(total * t.weight / weight)) for t in TOWNS]


def _disk(town: Town, radius_km: float, points: int = 48) -> Any:
    dlat = math.degrees(radius_km * 1000.0 / EARTH_RADIUS_M)
    dlng = dlat / math.cos(math.radians(town.lat))
    angles = np.linspace(0.0, 2 * math.pi, points, endpoint=False)
    return shapely.Polygon(np.column_stack([town.lng + dlng * np.cos(angles), town.lat + dlat * np.sin(angles)]))


def _seeds(rng: np.random.Generator, town: Town, n: int, radius_km: float) -> np.ndarray:
    """``n`` (lng, lat) seeds: the centre, then normally spread ones kept well inside the disk."""
    sigma = math.degrees(town.spread_km * 1000.0 / EARTH_RADIUS_M)
    limit = math.degrees(0.9 * radius_km * 1000.0 / EARTH_RADIUS_M)
    dlat = np.clip(rng.normal(0.0, sigma, n), -limit, limit) * 0.7
    dlng = np.clip(rng.normal(0.0, sigma, n), -limit, limit) * 0.7 / math.cos(math.radians(town.lat))
    dlat[0] = dlng[0] = 0.0
    return np.column_stack([town.lng + dlng, town.lat + dlat])


def plan(count: int = DEFAULT_COUNT, seed: int = 1) -> list[GeneratedNeighbourhood]:
    """About ``count`` neighbourhoods over the generator's towns, none overlapping another."""
    rng = np.random.default_rng([_SEED, seed & 0xFFFF_FFFF])
    towns, seeds = [], []
    for town, n in zip(TOWNS, _counts(count), strict=True):
        radius = max(3.0, _DISK_SPREADS * town.spread_km)
        for point in _seeds(rng, town, n, radius):
            towns.append((town, radius))
            seeds.append(point)
    points = np.unique(np.round(np.array(seeds), 6), axis=0, return_index=True)[1]
    keep = sorted(points.tolist())
    cells = shapely.voronoi_polygons(shapely.multipoints([seeds[i] for i in keep]), ordered=True)
    # One outline for every cell, snapped to the six decimals written: neighbours then cut their shared
    # edge at the same points, and do not overlap once rounded.
    land = shapely.set_precision(shapely.union_all([_disk(t, r) for t, r in dict(towns).items()]), 1e-6)
    cells = shapely.set_precision(shapely.get_parts(cells), 1e-6)
    made: list[GeneratedNeighbourhood] = []
    used: dict[str, set[str]] = {}
    directions: dict[tuple[str, str], int] = {}
    for cell, i in zip(cells, keep, strict=True):
        town, _ = towns[i]
        lng, lat = float(seeds[i][0]), float(seeds[i][1])
        parts = shapely.get_parts(shapely.intersection(cell, land, grid_size=1e-6))
        shape = next((p for p in parts if p.geom_type == "Polygon" and p.intersects(shapely.Point(lng, lat))), None)
        if shape is None or not shape.is_valid:  # a seed the rounding put outside its cell
            continue
        name = _name(town, lng, lat, directions)
        made.append(GeneratedNeighbourhood(town.force, _id(town, used), name, town, (lng, lat), shape))
    return made


def _id(town: Town, used: dict[str, set[str]]) -> str:
    """A police.uk-like id, unique in the force: the town's first letters and a number (``LEI03``)."""
    taken = used.setdefault(town.force, set())
    stem = "".join(c for c in town.name.upper() if c.isalpha())[:3]
    n = 1
    while f"{stem}{n:02d}" in taken:
        n += 1
    taken.add(f"{stem}{n:02d}")
    return f"{stem}{n:02d}"


def _name(town: Town, lng: float, lat: float, seen: dict[tuple[str, str], int]) -> str:
    if (lng, lat) == (town.lng, town.lat):
        label = "Town Centre"
    else:
        bearing = math.degrees(math.atan2((lng - town.lng) * math.cos(math.radians(lat)), lat - town.lat)) % 360
        label = _DIRECTIONS[int((bearing + 22.5) // 45) % 8]
    seen[town.name, label] = seen.get((town.name, label), 0) + 1
    n = seen[town.name, label]
    return f"{town.name} {label}" + (f" {n}" if n > 1 else "")


def _coordinate(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def documents(n: GeneratedNeighbourhood) -> dict[str, Any]:
    """The API's documents of a generated neighbourhood: details, people, events, priorities."""
    rng = np.random.default_rng([_SEED, sum(n.id.encode()), len(n.name)])
    slug = n.name.lower().replace(" ", "-")
    people: list[dict[str, Any]] = []
    for rank, many in _TEAM:
        for _ in range(many):
            name = f"{_FIRST[rng.integers(len(_FIRST))]} {_LAST[rng.integers(len(_LAST))]}"
            bio = f"<p>{name} is a {rank} in the {n.name} team.</p>" if rank == "Sergeant" else None
            people.append({"contact_details": {}, "name": name, "rank": rank, "bio": bio})
    area_km2 = (
        shapely.area(n.shape) * (EARTH_RADIUS_M / 1000.0 * math.pi / 180) ** 2 * math.cos(math.radians(n.seed[1]))
    )
    details = {
        "id": n.id,
        "name": n.name,
        "url_force": f"https://www.police.uk/{n.force}/{n.id}/",
        "centre": {"latitude": _coordinate(n.seed[1]), "longitude": _coordinate(n.seed[0])},
        "population": str(int(area_km2 * 8000)),
        "contact_details": {"email": f"{slug}@{n.force}.police.example", "telephone": "101"},
        "links": [],
        "locations": [],
        "description": f"<p>The {n.name} neighbourhood of {n.town.name}.</p>",
    }
    events = [
        {
            "contact_details": {},
            "description": f"Meet the {n.name} team and tell them what matters to you.",
            "title": "Beat surgery",
            "address": f"{n.town.name} Library",
            "type": "meeting",
            "start_date": "2024-06-15T10:00:00",
            "end_date": "2024-06-15T12:00:00",
        }
    ]
    priorities = [
        {
            "action": "<p>Extra patrols on Friday and Saturday evenings.</p>",
            "issue-date": "2024-04-01T00:00:00",
            "action-date": None,
            "issue": f"<p>Anti-social behaviour in {n.name}.</p>",
        }
    ]
    return {"details": details, "people": people, "events": events, "priorities": priorities}


def kml(n: GeneratedNeighbourhood) -> str:
    """The neighbourhood's KML file: its polygon, named, with its documents as ExtendedData."""
    ring = " ".join(f"{_coordinate(x)},{_coordinate(y)},0" for x, y in n.shape.exterior.coords)
    data = "".join(
        f'<Data name="{kind}"><value>{escape(orjson.dumps(doc).decode())}</value></Data>'
        for kind, doc in documents(n).items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">\n<Document>\n'
        f"<Placemark><name>{escape(n.name)}</name><ExtendedData>{data}</ExtendedData>"
        f"<Polygon><outerBoundaryIs><LinearRing><coordinates>{ring}</coordinates></LinearRing></outerBoundaryIs>"
        "</Polygon></Placemark>\n</Document>\n</kml>\n"
    )


def _members(made: list[GeneratedNeighbourhood]) -> Iterator[tuple[str, str]]:
    for n in made:
        yield f"neighbourhoods/{n.force}/{n.id}.kml", kml(n)


def write_neighbourhoods(path: Path, count: int = DEFAULT_COUNT, seed: int = 1) -> int:
    """Write about ``count`` neighbourhoods as the zip ``path``; how many."""
    made = plan(count, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in _members(made):
            info = zipfile.ZipInfo(name, date_time=(2024, 6, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)
    return len(made)
