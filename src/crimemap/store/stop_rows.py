"""Stops as both stores keep them: rows made once at load time, with each stop's JSON ready.

A stop's police.uk JSON is made in the process that parses the files
(:func:`prepare_stops`), cut in two where its ``location`` goes
(:func:`crimemap.policeuk_json.stop_json_parts`): only the writing process can
tell which stored map point a stop lies on, so it puts the location in between
(:func:`compose`) without encoding the stop again.

**Which street a stop is shown at.** police.uk places stops on the same
anonymised map points as crimes, and its stop-and-search files give only the
coordinates; the API names the point (``street {id, name}``). A store names a
located stop by the stored map point at exactly its coordinates (the one with
the smallest id, should two names share a point). A stop at a point no street
file has named gets a street id of its own, the loader's hash of the
coordinates with an empty name (:func:`crimemap.load.policeuk_files.street_id`), and
the name ``""``: ``stops-at-location`` finds it by that id. Such a point is not
added to the map points (``crimes-at-location`` by ``lat``/``lng`` never snaps
to it), and a later load that brings a street file naming it names its stops.
Stops harvested from an API keep the street the API gave them.

Rows are in the order of :data:`STOP_ROW`; booleans are Python ``bool`` or
``None`` (each store converts), empty text is ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from crimemap import geo, vocab
from crimemap.geometry.areas import unit_vector
from crimemap.months import format_month, parse_month
from crimemap.policeuk_json import stop_json_parts, stop_location_json
from crimemap.records import Stop
from crimemap.store.stop_columns import StopColumns, outcome_id_of, point_id, prepare_stop_columns

STOP_ROW = (
    "month", "cell", "id", "force", "x", "y", "z", "lng", "lat", "street_id", "named", "street_name", "type",
    "datetime", "operation", "operation_name", "gender", "age_range", "self_defined_ethnicity",
    "officer_defined_ethnicity", "legislation", "object_of_search", "outcome", "outcome_id", "outcome_linked",
    "removal", "json",
)  # fmt: skip
"""The stored columns of a stop, in the order of a prepared row (``json`` last)."""

STREET_AT, NAMED_AT, JSON_AT = STOP_ROW.index("street_id"), STOP_ROW.index("named"), STOP_ROW.index("json")
NAME_AT = STOP_ROW.index("street_name")
LNG_AT, LAT_AT = STOP_ROW.index("lng"), STOP_ROW.index("lat")

UNNAMED = ""
"""The street name of a map point no street file has named."""

FORCE_CODES = {f.id: f.code for f in vocab.FORCES}
FORCE_IDS = [f.id for f in vocab.FORCES]


@dataclass
class PreparedStops:
    """One batch of a stop-and-search file, ready to write (see the module docstring).

    ``rows`` hold everything but the JSON (``json`` is ``None``); ``heads`` and
    ``tails`` the two parts of each stop's JSON, row for row. ``points`` are the
    coordinates whose map point the writer must look up.
    """

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)
    tails: list[bytes] = field(default_factory=list)
    points: set[tuple[float, float]] = field(default_factory=set)


def _text(value: str) -> str | None:
    return value or None


def prepare_stops(stops: list[Stop] | StopColumns) -> PreparedStops:
    """Rows of a batch of stops (a picklable function of its arguments: it runs in the parsing process).

    A file read column by column comes as :class:`~crimemap.store.stop_columns.StopColumns`,
    prepared for whole columns at once into the same rows.
    """
    if isinstance(stops, StopColumns):
        return PreparedStops(*prepare_stop_columns(stops))
    batch = PreparedStops()
    if not stops:
        return batch
    month = parse_month(stops[0].month)
    force = FORCE_CODES[stops[0].force]
    made = []
    for s in stops:
        lng, lat = s.lng, s.lat
        if lng is None or lat is None:
            cell, x, y, z, sid, named = geo.NO_CELL, None, None, None, None, True
        else:
            cell = geo.cell_of(lng, lat)
            x, y, z = unit_vector(lng, lat)
            named = s.street_id is not None
            sid = s.street_id if named else point_id(lng, lat)
            if not named:
                batch.points.add((lng, lat))
        row = (
            month, cell, s.id, force, x, y, z, lng, lat, sid, named, s.street_name if named else None,
            _text(s.type), s.datetime, s.operation,
            _text(s.operation_name), _text(s.gender), _text(s.age_range), _text(s.self_defined_ethnicity),
            _text(s.officer_defined_ethnicity), _text(s.legislation), _text(s.object_of_search),
            _text(s.outcome), outcome_id_of(s.outcome), s.outcome_linked_to_object_of_search,
            s.removal_of_more_than_outer_clothing, None,
        )  # fmt: skip
        made.append((row, *stop_json_parts(s)))
    made.sort(key=lambda m: (m[0][1], m[0][2]))  # the clustered order, (cell, id)
    batch.rows = [m[0] for m in made]
    batch.heads = [m[1] for m in made]
    batch.tails = [m[2] for m in made]
    return batch


Streets = Callable[[Iterable[tuple[float, float]]], dict[tuple[float, float], tuple[int, str]]]
"""Looks up the stored map points at some coordinates: ``(lng, lat) -> (street id, name)``."""


def compose(batch: PreparedStops, streets: Streets) -> list[tuple[Any, ...]]:
    """The batch's rows with their map points and whole JSON, in :data:`STOP_ROW` order.

    ``streets`` finds the stored map points of the batch's unnamed points; the
    rest keep the point of their own (see the module docstring).
    """
    found = streets(batch.points) if batch.points else {}
    locations: dict[tuple[float, float, int], bytes] = {}
    rows = []
    for row, head, tail in zip(batch.rows, batch.heads, batch.tails, strict=True):
        lng, lat = row[LNG_AT], row[LAT_AT]
        if lng is None or lat is None:
            rows.append((*row[:JSON_AT], (head + b"null" + tail).decode()))
            continue
        sid, named, name = row[STREET_AT], row[NAMED_AT], row[NAME_AT]
        if not named:
            hit = found.get((lng, lat))
            if hit is not None:
                sid, name = hit
                named = True
        key = (lng, lat, sid)
        location = locations.get(key)
        if location is None:
            location = locations[key] = stop_location_json(lng, lat, sid, name or UNNAMED)
        json = (head + location + tail).decode()
        rows.append((*row[:STREET_AT], sid, named, name, *row[NAME_AT + 1 : JSON_AT], json))
    return rows


def unnamed_street(street_id: int) -> bytes:
    """What an unnamed point's ``street`` is in a stop's JSON: the text a store replaces once the point is named."""
    return b'"street":{"id":' + str(street_id).encode() + b',"name":""}'


def stop_from_row(row: tuple[Any, ...]) -> Stop:
    """A stored row (:data:`STOP_FIELDS`) as a :class:`Stop`."""
    (sid, month, force, kind, when, operation, operation_name, lng, lat, street, street_name, gender, age,
     self_defined, officer_defined, legislation, target, outcome, linked, removal) = row  # fmt: skip
    return Stop(
        sid, format_month(month), FORCE_IDS[force], kind or "", when, _bool(operation), operation_name or "",
        lng, lat, street, street_name or "", gender or "", age or "", self_defined or "", officer_defined or "",
        legislation or "", target or "", outcome or "", _bool(linked), _bool(removal),
    )  # fmt: skip


STOP_FIELDS = (
    "id", "month", "force", "type", "datetime", "operation", "operation_name", "lng", "lat", "street_id",
    "street_name", "gender", "age_range", "self_defined_ethnicity", "officer_defined_ethnicity", "legislation",
    "object_of_search", "outcome", "outcome_linked", "removal",
)  # fmt: skip
"""The columns a stop record is read from, in :func:`stop_from_row`'s order."""


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


__all__ = [
    "STOP_FIELDS",
    "STOP_ROW",
    "PreparedStops",
    "compose",
    "point_id",
    "prepare_stops",
    "stop_from_row",
    "unnamed_street",
]
