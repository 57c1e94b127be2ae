"""What the stop-and-search answers must hold, computed from the real files without crimemap.

The real stop-and-search CSVs (``../shared/data/policeuk-stops``) are read with
the csv module, and each row is turned into the object the police.uk API
answers, by the rules read from the real answer
(``../shared/data/policeuk-api/stops-force-metropolitan-2024-09.json``):
empty text is null, an empty outcome is ``""``, ``involved_person`` is false
only for a vehicle search. The test modules of stop and search import these.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from conftest import SHARED_DATA

STOPS = SHARED_DATA / "policeuk-stops"
REAL_ANSWER = SHARED_DATA / "policeuk-api" / "stops-force-metropolitan-2024-09.json"

_YES_NO = {"True": True, "False": False, "": None}


@dataclass(frozen=True)
class StopRow:
    """One row of a stop-and-search file, as published, and the file it came from."""

    month: str
    force: str
    line: int
    fields: dict[str, str]

    @property
    def located(self) -> bool:
        return bool(self.fields["Latitude"])

    @property
    def lat(self) -> float:
        return float(self.fields["Latitude"])

    @property
    def lng(self) -> float:
        return float(self.fields["Longitude"])

    def expected(self) -> dict[str, Any]:
        """The stop's object in an answer, but for ``location.street`` (the store's map point)."""
        f = self.fields
        text = lambda name: f[name] or None  # noqa: E731
        return {
            "age_range": text("Age range"),
            "outcome": f["Outcome"],
            "involved_person": (f["Type"] != "Vehicle search") if f["Type"] else None,
            "self_defined_ethnicity": text("Self-defined ethnicity"),
            "gender": text("Gender"),
            "legislation": text("Legislation"),
            "outcome_linked_to_object_of_search": _YES_NO[f["Outcome linked to object of search"]],
            "datetime": f["Date"],
            "removal_of_more_than_outer_clothing": _YES_NO[f["Removal of more than just outer clothing"]],
            "outcome_name": f["Outcome"],
            "latitude": f"{self.lat:.6f}" if self.located else None,
            "longitude": f"{self.lng:.6f}" if self.located else None,
            "operation": _YES_NO[f["Part of a policing operation"]],
            "officer_defined_ethnicity": text("Officer-defined ethnicity"),
            "type": text("Type"),
            "operation_name": text("Policing operation"),
            "object_of_search": text("Object of search"),
        }


COMPARED = (
    "age_range", "outcome", "involved_person", "self_defined_ethnicity", "gender", "legislation",
    "outcome_linked_to_object_of_search", "datetime", "removal_of_more_than_outer_clothing", "outcome_name",
    "latitude", "longitude", "operation", "officer_defined_ethnicity", "type", "operation_name", "object_of_search",
)  # fmt: skip
"""The fields :meth:`StopRow.expected` gives."""


def as_compared(stop: dict[str, Any]) -> dict[str, Any]:
    """An answered stop in the shape of :meth:`StopRow.expected`."""
    out = {k: v for k, v in stop.items() if k not in ("location", "outcome_object")}
    out["outcome_name"] = stop["outcome_object"]["name"]
    location = stop["location"]
    out["latitude"] = location["latitude"] if location else None
    out["longitude"] = location["longitude"] if location else None
    return {k: out[k] for k in COMPARED}


def key(stop: dict[str, Any]) -> str:
    """A stop's comparable identity (everything but its map point), for multisets of answers."""
    return json.dumps(as_compared(stop), sort_keys=True)


def keys(stops: list[dict[str, Any]]) -> Counter[str]:
    return Counter(key(s) for s in stops)


def expected_keys(rows: list[StopRow]) -> Counter[str]:
    return Counter(json.dumps(r.expected(), sort_keys=True) for r in rows)


@cache
def stop_rows() -> tuple[StopRow, ...]:
    rows = []
    for path in sorted(STOPS.glob("*/*-stop-and-search.csv")):
        month, force = path.name[:7], path.name[8 : -len("-stop-and-search.csv")]
        with path.open(newline="", encoding="utf-8-sig") as f:
            for line, raw in enumerate(csv.DictReader(f), start=2):
                rows.append(StopRow(month, force, line, dict(raw)))
    return tuple(rows)


def files() -> list[tuple[str, str]]:
    """Every (month, force) with a stop-and-search file."""
    return sorted({(r.month, r.force) for r in stop_rows()})


def rows_of(month: str, force: str | None = None) -> list[StopRow]:
    return [r for r in stop_rows() if r.month == month and (force is None or r.force == force)]


@cache
def real_answer() -> list[dict[str, Any]]:
    return json.loads(Path(REAL_ANSWER).read_text())
