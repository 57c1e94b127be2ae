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


# The other documents in the shapes data.police.uk's documentation gives them (no real answers are saved for
# these): field names and order as the API sends them, e.g. priorities' hyphenated "issue-date".
NC04_PEOPLE = [
    {"contact_details": {"email": "city.centre@leics.police.uk"}, "name": "Jane Smith", "rank": "Sergeant",
     "bio": "<p>Jane leads the City Centre team.</p>"},
    {"contact_details": {}, "name": "Ravi Patel", "rank": "PCSO", "bio": None},
]  # fmt: skip
NC04_EVENTS = [
    {"contact_details": {}, "description": "Drop in and meet your team.", "title": "Beat surgery",
     "address": "Clock Tower, Leicester", "type": "meeting", "start_date": "2024-03-02T10:00:00",
     "end_date": "2024-03-02T12:00:00"},
]  # fmt: skip
NC04_PRIORITIES = [
    {"action": "<p>Extra patrols at night.</p>", "issue-date": "2024-01-10T00:00:00", "action-date": None,
     "issue": "<p>Anti-social behaviour in the Market.</p>"},
]  # fmt: skip
LEICESTERSHIRE_FORCE = {
    "description": "<p>Leicestershire Police serves Leicester, Leicestershire and Rutland.</p>",
    "url": "http://www.leics.police.uk/",
    "engagement_methods": [{"url": "https://twitter.com/leicspolice", "type": "twitter",
                            "description": None, "title": "twitter"}],
    "telephone": "101",
    "id": "leicestershire",
    "name": "Leicestershire Police",
}  # fmt: skip
LEICESTERSHIRE_PEOPLE = [
    {"bio": "<p>Chief Constable since 2024.</p>", "contact_details": {"twitter": "http://www.twitter.com/leicspolice"},
     "name": "Rob Nixon", "rank": "Chief Constable"},
]  # fmt: skip


def documents() -> list[tuple[str, str, str, bytes]]:
    """What a harvest of Leicestershire stores: the real list and NC04's real details, and the rest."""

    def body(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    return [
        ("leicestershire", "", "neighbourhoods", body(real(LEICESTERSHIRE_LIST))),
        ("leicestershire", "NC04", "details", body(real(NC04_DETAILS))),
        ("leicestershire", "NC04", "people", body(NC04_PEOPLE)),
        ("leicestershire", "NC04", "events", body(NC04_EVENTS)),
        ("leicestershire", "NC04", "priorities", body(NC04_PRIORITIES)),
        ("leicestershire", "", "force", body(LEICESTERSHIRE_FORCE)),
        ("leicestershire", "", "force-people", body(LEICESTERSHIRE_PEOPLE)),
    ]


def store_leicestershire(store: Any, tmp_path: Path) -> None:
    """The zip of :func:`leicestershire_zip` loaded, and :func:`documents` stored as a harvest stores them."""
    from crimemap.load.neighbourhoods import load_neighbourhoods

    with store.writer() as writer:
        writer.put_documents(documents())
    load_neighbourhoods(store, [leicestershire_zip(tmp_path / "neighbourhoods.zip")])
