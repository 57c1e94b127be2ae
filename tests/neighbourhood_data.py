"""Neighbourhood boundaries for tests: KML files in police.uk's zip layout, made from the real answers.

``police_leicestershire_NC04_boundary.json`` is data.police.uk's ``/boundary``
answer for Leicestershire's City Centre; :func:`kml` writes those points back as
the KML file the bulk zip holds (``longitude,latitude,0``, the strings unchanged),
so that loading it must give the same answer back.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from conftest import SHARED_DATA

REAL = SHARED_DATA / "policeuk-api" / "neighbourhoods"
NC04_BOUNDARY = REAL / "police_leicestershire_NC04_boundary.json"
NC04_DETAILS = REAL / "police_leicestershire_NC04.json"
LEICESTERSHIRE_LIST = REAL / "police_leicestershire_neighbourhoods.json"

INSIDE_NC04 = (52.6349, -1.1330)
"""(lat, lng) of a point in the City Centre neighbourhood (Leicester's clock tower is at 52.6356,-1.1334)."""


def real(path: Path) -> Any:
    return json.loads(path.read_text())


def kml(points: list[tuple[str, str]], name: str | None = None) -> str:
    """A neighbourhood's KML file with one polygon of ``(lat, lng)`` strings, as police.uk lays it out."""
    coordinates = " ".join(f"{lng},{lat},0" for lat, lng in points)
    named = f"<name>{name}</name>" if name else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">\n<Document>\n'
        f"<Placemark>{named}<Polygon><outerBoundaryIs><LinearRing><coordinates>{coordinates}"
        "</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>\n</Document>\n</kml>\n"
    )


def nc04_points() -> list[tuple[str, str]]:
    return [(p["latitude"], p["longitude"]) for p in real(NC04_BOUNDARY)]


def square(lat: float, lng: float, size: float = 0.01) -> list[tuple[str, str]]:
    """A closed square ring with its south-west corner at ``(lat, lng)``."""
    corners = [(lat, lng), (lat, lng + size), (lat + size, lng + size), (lat + size, lng), (lat, lng)]
    return [(f"{a:.4f}", f"{b:.4f}") for a, b in corners]


def write_zip(path: Path, files: dict[str, str]) -> Path:
    """A zip of ``{member name: text}``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def leicestershire_zip(path: Path) -> Path:
    """NC04 as published, and NC08 (Westcotes) as a square west of it."""
    return write_zip(
        path,
        {
            "neighbourhoods/leicestershire/NC04.kml": kml(nc04_points()),
            "neighbourhoods/leicestershire/NC08.kml": kml(square(52.62, -1.17), "Westcotes"),
        },
    )
