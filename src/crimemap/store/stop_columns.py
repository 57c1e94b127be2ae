"""Stops column by column: a stop-and-search file's batch, prepared for both stores without Python per stop.

:func:`crimemap.store.stop_rows.prepare_stops` makes each stop's row and JSON
from a :class:`~crimemap.records.Stop`, one object at a time. A file read
column by column (:mod:`crimemap.load.stop_columns`) is a :class:`StopColumns`
instead, and :func:`prepare_stop_columns` makes the same
:class:`~crimemap.store.stop_rows.PreparedStops` from it: each column's distinct
values are encoded once (a file repeats the same few genders, age ranges,
outcomes, even date-times), and the JSON parts are joined by pyarrow for the
whole column. Only the map point work (cell, unit vector, street id) is done per
distinct point, as the crimes reader does it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from crimemap import vocab
from crimemap.geometry.areas import unit_vector
from crimemap.months import parse_month
from crimemap.policeuk_json import stop_place_parts
from crimemap.store.batches import cells
from crimemap.vocab_stops import involved_person, stop_outcome_id

PreparedColumns = tuple[list[pa.Array], pa.Array, pa.Array, np.ndarray, np.ndarray]
"""What :class:`crimemap.store.stop_rows.PreparedStops` holds: the columns of its rows but ``json`` (in
:data:`~crimemap.store.stop_rows.STOP_ROW` order), the JSON heads and tails, and the unnamed points'
longitudes and latitudes."""


def point_id(lng: float, lat: float) -> int:
    """The street id of a point no street file names: :func:`crimemap.load.policeuk_files.street_id` with no name.

    >>> point_id(-0.08162, 51.516814) == point_id(-0.081620, 51.5168140)
    True
    """
    key = f"{lat:.6f},{lng:.6f},"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 12


def outcome_id_of(outcome: str | None) -> str | None:
    """The ``outcome_id`` column of the stops table (null for an empty outcome)."""
    return stop_outcome_id(outcome) if outcome else None


@dataclass
class StopColumns:
    """The stops of one file (or a slice of it), column by column, as :class:`~crimemap.records.Stop` holds them.

    Text is a pyarrow string array (``""`` where the file leaves it empty);
    ``operation``, ``linked`` and ``removal`` are pyarrow booleans, null where
    the file leaves them empty; ``lng``/``lat`` are NaN where ``located`` is False.
    """

    month: str
    force: str
    id: np.ndarray
    type: pa.Array
    datetime: pa.Array
    operation: pa.Array
    operation_name: pa.Array
    located: np.ndarray
    lng: np.ndarray
    lat: np.ndarray
    gender: pa.Array
    age_range: pa.Array
    self_defined_ethnicity: pa.Array
    officer_defined_ethnicity: pa.Array
    legislation: pa.Array
    object_of_search: pa.Array
    outcome: pa.Array
    linked: pa.Array
    removal: pa.Array

    def __len__(self) -> int:
        return len(self.id)

    def slice(self, start: int, stop: int) -> StopColumns:
        """Rows ``start`` to ``stop`` (a chunk of a large file)."""
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value[start:stop] if isinstance(value, np.ndarray | pa.Array) else value
        return StopColumns(**values)


def _each_distinct(column: pa.Array, make: Callable[[Any], Any], kind: pa.DataType) -> pa.Array:
    """``make`` of every value of ``column`` (None for null), called once per distinct value."""
    encoded = column.dictionary_encode(null_encoding="encode")
    made = pa.array([make(v) for v in encoded.dictionary.to_pylist()], kind)
    return made.take(encoded.indices)


def _json(column: pa.Array, shown: Callable[[Any], Any]) -> pa.Array:
    """Each value's JSON text (of ``shown(value)``), encoded once per distinct value."""
    return _each_distinct(column, lambda v: orjson.dumps(shown(v)).decode(), pa.string())


_NEEDS_ESCAPING = r'["\\\x00-\x1f]'
"""What JSON escapes in a string (orjson escapes nothing else: it writes UTF-8 as it is)."""


def json_strings(column: pa.Array) -> pa.Array:
    """Each text value as a JSON string: quoted for the whole column at once when nothing in it needs escaping.

    For columns of mostly distinct values, such as the date-times.
    """
    if len(column) and pc.any(pc.match_substring_regex(column, _NEEDS_ESCAPING)).as_py():
        return _json(column, _same)
    return pc.binary_join_element_wise(pa.scalar('"'), column, pa.scalar('"'), "")


def _text_or_null(value: str) -> str | None:
    return value or None


def _same(value: Any) -> Any:
    return value


def _outcome_object(outcome: str) -> dict[str, str]:
    return {"id": stop_outcome_id(outcome), "name": outcome}


def _involved(kind: str) -> bool | None:
    return involved_person(kind)


def _join(parts: list[pa.Array | str]) -> pa.Array:
    """Concatenate literal text and columns, row by row, into each row's text."""
    columns = [p if isinstance(p, pa.Array) else pa.scalar(p, pa.string()) for p in parts]
    return pc.binary_join_element_wise(*columns, "")


def json_parts(s: StopColumns) -> tuple[pa.Array, pa.Array]:
    """Each stop's JSON cut where its ``location`` goes, as :func:`crimemap.policeuk_json.stop_json_parts` cuts it."""
    heads = _join([
        '{"age_range":', _json(s.age_range, _text_or_null),
        ',"outcome":', _json(s.outcome, _same),
        ',"involved_person":', _json(s.type, _involved),
        ',"self_defined_ethnicity":', _json(s.self_defined_ethnicity, _text_or_null),
        ',"gender":', _json(s.gender, _text_or_null),
        ',"legislation":', _json(s.legislation, _text_or_null),
        ',"outcome_linked_to_object_of_search":', _json(s.linked, _same),
        ',"datetime":', json_strings(s.datetime),
        ',"removal_of_more_than_outer_clothing":', _json(s.removal, _same),
        ',"outcome_object":', _json(s.outcome, _outcome_object),
        ',"location":',
    ])  # fmt: skip
    tails = _join([
        ',"operation":', _json(s.operation, _same),
        ',"officer_defined_ethnicity":', _json(s.officer_defined_ethnicity, _text_or_null),
        ',"type":', _json(s.type, _text_or_null),
        ',"operation_name":', _json(s.operation_name, _text_or_null),
        ',"object_of_search":', _json(s.object_of_search, _text_or_null),
        "}",
    ])  # fmt: skip
    return heads, tails


@dataclass
class _Points:
    """What each located stop's point is, made once per distinct point and taken for every row."""

    street: pa.Array
    """The point's own street id (:func:`point_id`); null without a location, as are the others."""
    x: pa.Array
    y: pa.Array
    z: pa.Array
    place_head: pa.Array
    """The ``location`` JSON before the map point's id (:func:`~crimemap.policeuk_json.stop_place_parts`);
    ``null`` without a location."""
    place_tail: pa.Array
    """The ``location`` JSON after the map point's name; empty without a location."""
    lng: np.ndarray
    lat: np.ndarray
    """The distinct points' coordinates (every located stop of a file is unnamed: the store names it). -0.0
    and 0.0 are two here, one to the lookup (SQL compares them equal)."""


def _points(s: StopColumns) -> _Points:
    n = len(s)
    where = np.flatnonzero(s.located)
    bits = np.stack([s.lng[where], s.lat[where]], axis=1).view(np.int64)  # -0.0 is not 0.0 in a street id
    unique, inverse = np.unique(bits, axis=0, return_inverse=True)
    distinct = unique.view(np.float64).reshape(-1, 2)
    made = [(point_id(a, b), *unit_vector(a, b), *stop_place_parts(a, b)) for a, b in distinct.tolist()]
    street, x, y, z, head, tail = (list(c) for c in zip(*made, strict=True)) if made else ([], [], [], [], [], [])
    index = np.full(n, -1, dtype=np.int64)
    index[where] = inverse.reshape(-1)
    at = pa.array(index, mask=index < 0)
    return _Points(
        street=pa.array(street, pa.int64()).take(at),
        x=pa.array(x, pa.float64()).take(at),
        y=pa.array(y, pa.float64()).take(at),
        z=pa.array(z, pa.float64()).take(at),
        place_head=pc.fill_null(pa.array(head, pa.string()).take(at), "null"),
        place_tail=pc.fill_null(pa.array(tail, pa.string()).take(at), ""),
        lng=np.ascontiguousarray(distinct[:, 0]),
        lat=np.ascontiguousarray(distinct[:, 1]),
    )


def _nullable_text(column: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)


def prepare_stop_columns(s: StopColumns) -> PreparedColumns:
    """The batch's columns and JSON parts, sorted by ``(cell, id)``, as
    :func:`crimemap.store.stop_rows.prepare_stops` makes them of its stops, and its unnamed points."""
    n = len(s)
    month, force = parse_month(s.month), vocab.FORCE_BY_ID[s.force].code
    cell = cells(s.lng, s.lat, s.located)
    p = _points(s)
    unlocated = ~s.located
    heads, tails = json_parts(s)
    columns = [
        pa.array(np.full(n, month, np.int64)), pa.array(cell), pa.array(s.id, pa.int64()),
        pa.array(np.full(n, force, np.int64)), p.x, p.y, p.z, pa.array(s.lng, mask=unlocated),
        pa.array(s.lat, mask=unlocated), p.street, pa.array(unlocated),
        pc.if_else(pa.array(unlocated), pa.scalar("", pa.string()), pa.scalar(None, pa.string())),
        _nullable_text(s.type), s.datetime, s.operation, _nullable_text(s.operation_name),
        _nullable_text(s.gender), _nullable_text(s.age_range), _nullable_text(s.self_defined_ethnicity),
        _nullable_text(s.officer_defined_ethnicity), _nullable_text(s.legislation),
        _nullable_text(s.object_of_search), _nullable_text(s.outcome),
        _each_distinct(s.outcome, outcome_id_of, pa.string()), s.linked, s.removal,
    ]  # fmt: skip
    order = pa.array(np.lexsort((s.id, cell)))  # the clustered order, (cell, id)
    heads = _join([heads, p.place_head])
    tails = _join([p.place_tail, tails])
    return [c.take(order) for c in columns], heads.take(order), tails.take(order), p.lng, p.lat


__all__ = [
    "PreparedColumns",
    "StopColumns",
    "json_parts",
    "json_strings",
    "outcome_id_of",
    "point_id",
    "prepare_stop_columns",
]
