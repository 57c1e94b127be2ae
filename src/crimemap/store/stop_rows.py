"""Stops as both stores keep them: rows made once at load time, with each stop's JSON ready.

A stop's police.uk JSON is made in the process that parses the files
(:func:`prepare_stops`), cut in two where its map point's ``<id>,"name":<name>``
goes (:func:`crimemap.policeuk_json.stop_json_parts`,
:func:`crimemap.policeuk_json.stop_place_parts`): only the writing process can
tell which stored map point a stop lies on, so it puts the point in between
(:func:`compose_table`) without encoding the stop again. A batch's rows are
Arrow columns, on both sides: the writer joins the points in for the whole
batch, and the embedded store binds the table as it is (through the ADBC driver
for a large load), with no Python per stop.

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

Rows are in the order of :data:`STOP_ROW`, typed as :data:`ROW_SCHEMA` says;
empty text is null. :func:`compose` gives them as Python values (``bool`` or
``None`` for the yes/no columns), for PostGIS's ``COPY``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crimemap import geo, vocab
from crimemap.geometry.areas import unit_vector
from crimemap.months import format_month, parse_month
from crimemap.policeuk_json import stop_json_parts, stop_place_parts
from crimemap.records import Stop
from crimemap.store.stop_columns import StopColumns, json_strings, outcome_id_of, point_id, prepare_stop_columns

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


ROW_SCHEMA = pa.schema([
    ("month", pa.int64()), ("cell", pa.int64()), ("id", pa.int64()), ("force", pa.int64()), ("x", pa.float64()),
    ("y", pa.float64()), ("z", pa.float64()), ("lng", pa.float64()), ("lat", pa.float64()),
    ("street_id", pa.int64()), ("named", pa.bool_()), ("street_name", pa.string()), ("type", pa.string()),
    ("datetime", pa.string()), ("operation", pa.bool_()), ("operation_name", pa.string()), ("gender", pa.string()),
    ("age_range", pa.string()), ("self_defined_ethnicity", pa.string()), ("officer_defined_ethnicity", pa.string()),
    ("legislation", pa.string()), ("object_of_search", pa.string()), ("outcome", pa.string()),
    ("outcome_id", pa.string()), ("outcome_linked", pa.bool_()), ("removal", pa.bool_()), ("json", pa.string()),
])  # fmt: skip
"""The Arrow types of a stop's row, :data:`STOP_ROW`'s columns."""
assert tuple(ROW_SCHEMA.names) == STOP_ROW


@dataclass
class PreparedStops:
    """One batch of a stop-and-search file, ready to write (see the module docstring).

    ``columns`` hold the rows but their JSON, column by column (:data:`ROW_SCHEMA`
    but ``json``), sorted by ``(cell, id)``; ``heads`` and ``tails`` each row's
    JSON but its map point's ``<id>,"name":<name>`` (all of it, ``location``
    ``null``, where it has no location: the tail is then empty). ``point_lng``
    and ``point_lat`` are the coordinates whose map point the writer must look up.
    """

    columns: pa.Table = field(default_factory=lambda: ROW_SCHEMA.remove(JSON_AT).empty_table())
    heads: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    tails: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    point_lng: np.ndarray = field(default_factory=lambda: np.zeros(0))
    point_lat: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return self.columns.num_rows

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        """The rows as Python values, ``json`` ``None``."""
        return [(*row, None) for row in _python_rows(self.columns)]

    @property
    def points(self) -> set[tuple[float, float]]:
        """The coordinates to look up, as a set."""
        return set(zip(self.point_lng.tolist(), self.point_lat.tolist(), strict=True))


def _python_rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    return zip(*(c.to_pylist() for c in table.columns), strict=True)


def _text(value: str) -> str | None:
    return value or None


def prepare_stops(stops: list[Stop] | StopColumns) -> PreparedStops:
    """Rows of a batch of stops (a picklable function of its arguments: it runs in the parsing process).

    A file read column by column comes as :class:`~crimemap.store.stop_columns.StopColumns`,
    prepared for whole columns at once into the same rows.
    """
    if isinstance(stops, StopColumns):
        columns, heads, tails, point_lng, point_lat = prepare_stop_columns(stops)
        return PreparedStops(_table(columns), heads, tails, point_lng, point_lat)
    if not stops:
        return PreparedStops()
    month = parse_month(stops[0].month)
    force = FORCE_CODES[stops[0].force]
    made = []
    points: set[tuple[float, float]] = set()
    for s in stops:
        lng, lat = s.lng, s.lat
        head, tail = stop_json_parts(s)
        if lng is None or lat is None:
            cell, x, y, z, sid, named = geo.NO_CELL, None, None, None, None, True
            head += b"null"
        else:
            cell = geo.cell_of(lng, lat)
            x, y, z = unit_vector(lng, lat)
            named = s.street_id is not None
            sid = s.street_id if named else point_id(lng, lat)
            if not named:
                points.add((lng, lat))
            place_head, place_tail = stop_place_parts(lng, lat)
            head, tail = head + place_head.encode(), place_tail.encode() + tail
        row = (
            month, cell, s.id, force, x, y, z, lng, lat, sid, named, s.street_name if named else None,
            _text(s.type), s.datetime, s.operation,
            _text(s.operation_name), _text(s.gender), _text(s.age_range), _text(s.self_defined_ethnicity),
            _text(s.officer_defined_ethnicity), _text(s.legislation), _text(s.object_of_search),
            _text(s.outcome), outcome_id_of(s.outcome), s.outcome_linked_to_object_of_search,
            s.removal_of_more_than_outer_clothing,
        )  # fmt: skip
        made.append((row, head.decode(), tail.decode()))
    made.sort(key=lambda m: (m[0][1], m[0][2]))  # the clustered order, (cell, id)
    values = zip(*(m[0] for m in made), strict=True)
    columns = [pa.array(list(c), t) for c, t in zip(values, ROW_SCHEMA.types[:JSON_AT], strict=True)]
    return PreparedStops(
        _table(columns),
        pa.array([m[1] for m in made], pa.string()),
        pa.array([m[2] for m in made], pa.string()),
        np.fromiter((p[0] for p in points), np.float64, len(points)),
        np.fromiter((p[1] for p in points), np.float64, len(points)),
    )


def _table(columns: list[pa.Array]) -> pa.Table:
    schema = ROW_SCHEMA.remove(JSON_AT)
    return pa.Table.from_arrays([c.cast(t) for c, t in zip(columns, schema.types, strict=True)], schema=schema)


Streets = Callable[[pa.Table], pa.Table]
"""Looks up the stored map points at some coordinates: a table of ``lng, lat`` to one of ``lng, lat, id, name``
(the points found, each once)."""


def _found_at(lng: np.ndarray, lat: np.ndarray, wanted: np.ndarray, found: pa.Table) -> np.ndarray:
    """For each row, where its point is in ``found`` (-1 where it is not, or not ``wanted``)."""
    at = np.full(len(lng), -1, dtype=np.int64)
    keys = np.empty(found.num_rows, np.complex128)
    keys.real, keys.imag = found.column("lng").to_numpy(), found.column("lat").to_numpy()
    order = np.argsort(keys)  # complex numbers sort by their real part, then their imaginary one
    keys = keys[order]
    rows = np.flatnonzero(wanted)
    mine = np.empty(len(rows), np.complex128)
    mine.real, mine.imag = lng[rows], lat[rows]
    place = np.minimum(np.searchsorted(keys, mine), len(keys) - 1)
    hit = keys[place] == mine
    at[rows[hit]] = order[place[hit]]
    return at


def compose_table(batch: PreparedStops, streets: Streets) -> pa.Table:
    """The batch's rows with their map points and whole JSON, :data:`ROW_SCHEMA`'s columns.

    ``streets`` finds the stored map points of the batch's unnamed points; the
    rest keep the point of their own (see the module docstring). Column by
    column: no Python per stop.
    """
    t = batch.columns
    street_id, named, name = (t.column(c).combine_chunks() for c in ("street_id", "named", "street_name"))
    if len(batch.point_lng):
        found = streets(pa.table({"lng": batch.point_lng, "lat": batch.point_lat})).combine_chunks()
        if found.num_rows:
            lng = t.column("lng").to_numpy(zero_copy_only=False)
            lat = t.column("lat").to_numpy(zero_copy_only=False)
            wanted = ~named.to_numpy(zero_copy_only=False)
            at = _found_at(lng, lat, wanted, found)
            hit = pa.array(at >= 0)
            index = pa.array(at, mask=at < 0)
            street_id = pc.if_else(hit, found.column("id").chunk(0).take(index), street_id)
            name = pc.if_else(hit, found.column("name").chunk(0).take(index), name)
            named = pc.or_(named, hit)
    located = pc.is_valid(t.column("lng"))
    point = pc.binary_join_element_wise(
        pc.cast(street_id, pa.string()), ',"name":', json_strings(pc.fill_null(name, UNNAMED)), ""
    )
    json = pc.binary_join_element_wise(batch.heads, pc.if_else(located, point, ""), batch.tails, "")
    columns = t.columns
    columns[STREET_AT], columns[NAMED_AT], columns[NAME_AT] = street_id, named, name
    return pa.Table.from_arrays([*columns, json], schema=ROW_SCHEMA)


def compose(batch: PreparedStops, streets: Streets) -> list[tuple[Any, ...]]:
    """:func:`compose_table`'s rows as Python values, in :data:`STOP_ROW` order."""
    return list(_python_rows(compose_table(batch, streets)))


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
    "ROW_SCHEMA",
    "PreparedStops",
    "compose",
    "compose_table",
    "point_id",
    "prepare_stops",
    "stop_from_row",
    "unnamed_street",
]
