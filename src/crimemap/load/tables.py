"""Load feature tables from GeoJSON FeatureCollections and CSV files, inferring their schema.

A table is a set of point features with typed columns (integer, double,
string, boolean, datetime). The file is read twice, streaming, in constant
memory: the first pass infers each column's type and checks every feature,
the second converts and writes. The whole table is replaced in one store
transaction, so readers see the old table or the new one, never half of it.

Decisions:

- **Types of a GeoJSON table: the JSON types it was given.** A table re-hosted
  from GeoJSON must answer with what it held: JSON integers make an
  ``integer`` column, numbers with a float among them (``2015.0``) ``double``,
  JSON booleans ``boolean``, and strings stay ``string``, numeric-looking or
  not (the 2014 NYC downloads have ``"YR": "2013"``; a ``where`` may still
  compare such a column with a number, see :mod:`crimemap.where`). A string
  column is ``datetime`` only when every value is an ISO 8601 date or time
  written exactly as crimemap writes one back (``2015-03-01``,
  ``2015-03-01T12:00:00Z``), so nothing changes on the way through.
- **Types of a CSV table are inferred**, CSV having only text: a column whose
  values are all numbers becomes ``integer`` when every value is integral and
  none is written as a float, else ``double``; a number with a leading zero
  (``"02134"``) is text. ISO 8601 dates and times (all of a column's values)
  make a ``datetime`` column, stored normalised (``2015-03-01T12:00:00Z``);
  ``true``/``false`` make a ``boolean`` column. Anything else, or a mix, is
  ``string``; in GeoJSON, nested objects and arrays are kept as JSON text.
- **Geometry.** ``Point`` geometries are stored as points. ``Polygon`` and
  ``MultiPolygon`` geometries (Maps Engine tables had them; police force
  boundaries are them) make the table a table of *shapes*
  (:mod:`crimemap.geometry.shapes`): each feature keeps its geometry, and a point
  on its surface as its coordinates. A feature without geometry, with a
  geometry of another type, or with bad coordinates is *stored without
  geometry* and reported in the load's notes (count and the first feature
  numbers), never silently dropped.
- **Feature ids** (``gx_id``): a GeoJSON feature's ``id`` when every feature
  has a distinct integer one; else a ``gx_id`` property/CSV column of distinct
  integers (used as the id, not stored as a column); else the feature's
  1-based position in the file, stable when the same file is loaded again.
  crimemap's own exports write ``id`` (GeoJSON) and ``gx_id`` (CSV), so a
  table exported and loaded again keeps its ids.
- **CSV geometry** comes from the first of these columns present (case
  insensitive): ``gx_longitude``, ``longitude``, ``lng``, ``lon``, ``long``
  and ``gx_latitude``, ``latitude``, ``lat``; they are not stored as columns.
  ``x``/``y`` are not guessed: they are as often projected coordinates (the
  NYC tables' ``X``/``Y`` are State Plane feet) as degrees.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import shapely.errors

from crimemap.geometry.shapes import polygonal, shape_fields
from crimemap.load.errors import LoadError
from crimemap.load.geojson import iter_feature_collection
from crimemap.query import Scalar
from crimemap.records import Feature
from crimemap.store.base import Store
from crimemap.store.catalogue import CRIMES_TABLE, STOPS_TABLE, Column, ColumnType, TableInfo

GEOJSON_SUFFIXES = (".geojson", ".json")
LNG_COLUMNS = ("gx_longitude", "longitude", "lng", "lon", "long")
LAT_COLUMNS = ("gx_latitude", "latitude", "lat")
RESERVED_COLUMNS = ("geometry",)
"""Property names that cannot be columns: ``geometry`` names the features' geometry in queries."""
ID_COLUMN = "gx_id"
MAX_REPORTED = 5
"""How many feature numbers a load note lists for each kind of problem."""

_INT64 = 2**63 - 1


class TableLoad(int):
    """The number of features loaded, with notes on what was not loaded as given.

    An ``int`` so that callers that only count (``crimemap load``'s summary)
    need nothing more; ``notes`` are sentences for the user.
    """

    notes: tuple[str, ...]

    def __new__(cls, count: int, notes: Iterable[str] = ()) -> TableLoad:
        made = super().__new__(cls, count)
        made.notes = tuple(notes)
        return made


def load_table(
    store: Store,
    path: str | Path,
    *,
    table_id: str | None = None,
    name: str | None = None,
    lng_column: str | None = None,
    lat_column: str | None = None,
) -> TableLoad:
    """Create or replace the table ``table_id`` (default: the file name's stem) from ``path``.

    Raises :class:`LoadError` for a file that is not a FeatureCollection or a
    CSV with coordinate columns; nothing is stored then.

    >>> load_table(store, "nyc.geojson", table_id="nyc")  # doctest: +SKIP
    17710
    """
    path = Path(path)
    table_id = table_id or path.stem
    if table_id == CRIMES_TABLE:
        raise LoadError(f"{CRIMES_TABLE!r} is the police.uk crimes table; choose another --table id")
    if table_id == STOPS_TABLE:
        raise LoadError(f"{STOPS_TABLE!r} is the police.uk stop-and-search table; choose another --table id")
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    source: _Source
    if path.suffix.lower() in GEOJSON_SUFFIXES:
        source = _GeoJSONSource(path)
    else:
        source = _CSVSource(path, lng_column, lat_column)
    try:
        survey = source.survey()
    except UnicodeDecodeError as e:
        raise LoadError(f"{path}: not UTF-8 text (byte {e.start + 1} is {e.object[e.start : e.start + 1]!r})") from None
    columns = tuple(Column(n, stats.column_type()) for n, stats in survey.columns.items())
    notes = survey.notes()
    info = TableInfo(
        id=table_id,
        name=name or path.stem,
        columns=columns,
        description=" ".join([f"Loaded from {path.name}.", *notes]),
        shapes=survey.shapes,
    )
    converters = [_CONVERTERS[c.type] for c in columns]
    with store.writer() as writer:
        count = writer.replace_table(info, source.features(columns, converters, survey.id_source, survey.shapes))
    if count != survey.count:
        raise LoadError(f"{path}: the file changed while it was being loaded; load it again")
    return TableLoad(count, notes)


# -- what the first pass learns ----------------------------------------------------------------------


@dataclass
class _ColumnStats:
    """Which kinds of value a column holds (kinds as :func:`_kind` names them)."""

    kinds: set[str] = field(default_factory=set)

    def column_type(self) -> ColumnType:
        kinds = self.kinds - {"null"}
        if not kinds:
            return "string"
        if kinds <= {"int", "numstr_int"}:
            return "integer"
        if kinds <= {"int", "float", "numstr_int", "numstr_float"}:
            return "double"
        if kinds == {"bool"}:
            return "boolean"
        if kinds == {"datetime"}:
            return "datetime"
        return "string"


@dataclass
class _Problems:
    """Features with a problem of one kind: how many, and the first few feature numbers."""

    what: str
    count: int = 0
    first: list[int] = field(default_factory=list)

    def add(self, number: int) -> None:
        self.count += 1
        if len(self.first) < MAX_REPORTED:
            self.first.append(number)

    def note(self) -> str | None:
        if not self.count:
            return None
        shown = ", ".join(f"#{n}" for n in self.first) + (", ..." if self.count > len(self.first) else "")
        subject = "feature has" if self.count == 1 else "features have"
        return f"{self.count:,} {subject} {self.what} ({shown}); stored without geometry."


class _Survey:
    """The first pass over a file: columns and their kinds, ids, and geometry problems."""

    def __init__(self) -> None:
        self.columns: dict[str, _ColumnStats] = {}
        self.count = 0
        self.no_geometry = _Problems("no geometry")
        self.not_point = _Problems("a geometry that is not a Point, Polygon or MultiPolygon")
        self.shapes = False
        self.bad_point = _Problems("a Point with bad coordinates")
        self.id_source = "position"
        self.extra_notes: list[str] = []

    def column(self, name: str) -> _ColumnStats:
        stats = self.columns.get(name)
        if stats is None:
            stats = self.columns[name] = _ColumnStats()
        return stats

    def notes(self) -> list[str]:
        found = [p.note() for p in (self.no_geometry, self.not_point, self.bad_point)]
        return [n for n in found if n] + self.extra_notes


class _IdCheck:
    """Whether a sequence of values are distinct integers that fit the store, in constant-ish memory.

    Values are kept in a compact ``array('q')`` (8 bytes each) only to check
    distinctness at the end, and only while they are not already increasing.
    """

    def __init__(self) -> None:
        self.usable = True
        self.seen = False
        self.increasing = True
        self.last: int | None = None
        self.values = array("q")

    def add(self, value: Any) -> None:
        if value is not None:
            self.seen = True
        if not self.usable:
            return
        if isinstance(value, str) and _INT_TEXT.fullmatch(value):
            value = int(value)
        if type(value) is not int or not -_INT64 <= value <= _INT64:
            self.usable = False
            self.values = array("q")
            return
        if self.last is not None and value <= self.last:
            self.increasing = False
        self.last = value
        self.values.append(value)

    def distinct(self) -> bool:
        if not self.usable or self.last is None:
            return False
        if self.increasing:
            return True
        ids = np.frombuffer(self.values, dtype=np.int64)
        return bool(np.unique(ids).size == ids.size)


# -- values: kinds and conversions --------------------------------------------------------------------

_INT_TEXT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_FLOAT_TEXT = re.compile(r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATETIME_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)


def _text_kind(text: str, csv_booleans: bool) -> str:
    stripped = text.strip()
    if not stripped:
        return "null"
    if _INT_TEXT.fullmatch(stripped):
        return "numstr_int" if abs(int(stripped)) <= _INT64 else "numstr_float"
    if _FLOAT_TEXT.fullmatch(stripped):
        return "numstr_float"
    if _DATETIME_TEXT.fullmatch(stripped) and _parse_datetime(stripped) is not None:
        return "datetime"
    if csv_booleans and stripped.lower() in ("true", "false"):
        return "bool"
    return "string"


def _kind(value: Any) -> str:
    """A JSON value's kind: null, bool, int, float, datetime, string or nested.

    Strings are never numbers here (a GeoJSON table keeps its JSON types), and
    ``datetime`` only when crimemap would write the value back unchanged.
    """
    t = type(value)
    if value is None:
        return "null"
    if t is bool:
        return "bool"
    if t is int:
        return "int" if abs(value) <= _INT64 else "float"
    if t is float:
        return "float" if math.isfinite(value) else "null"
    if t is str:
        return "datetime" if _is_stored_as_given(value) else "string"
    return "nested"


def _is_stored_as_given(text: str) -> bool:
    """Whether ``text`` is an ISO 8601 date or time that a ``datetime`` column stores and serves unchanged."""
    if not _DATETIME_TEXT.fullmatch(text):
        return False
    try:
        return _to_datetime(text) == text
    except ValueError:
        return False


def _parse_datetime(text: str) -> dt.datetime | dt.date | None:
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _to_datetime(value: Any) -> str | None:
    """ISO 8601 text that sorts as time does: ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+hh:mm]``."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    parsed = _parse_datetime(text)
    if parsed is None:
        raise ValueError(f"not an ISO 8601 date or time: {text!r}")
    if not isinstance(parsed, dt.datetime):
        return parsed.isoformat()
    out = parsed.isoformat()
    return out[:-6] + "Z" if out.endswith("+00:00") else out


def _to_integer(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return int(value.strip()) if isinstance(value, str) else int(value)


def _to_double(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = float(value.strip()) if isinstance(value, str) else float(value)
    return number if math.isfinite(number) else None


def _to_boolean(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return None if not text else text == "true"


def _to_string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_CONVERTERS: dict[ColumnType, Callable[[Any], Scalar]] = {
    "integer": _to_integer,
    "double": _to_double,
    "boolean": _to_boolean,
    "datetime": _to_datetime,
    "string": _to_string,
}


SHAPE_TYPES = ("Polygon", "MultiPolygon")


def _shape(geometry: dict[str, Any]) -> Any:
    """A GeoJSON Polygon or MultiPolygon as a valid shapely geometry, or None if its coordinates are bad."""
    try:
        shape = shapely.from_geojson(json.dumps(geometry))
    except (shapely.errors.GEOSException, ValueError, TypeError):
        return None
    if shape.is_empty:
        return None
    west, south, east, north = shape.bounds
    if not (-180.0 <= west <= east <= 180.0 and -90.0 <= south <= north <= 90.0):
        return None
    shape = polygonal(shape)
    return None if shape.is_empty else shape


def _point(lng: Any, lat: Any) -> tuple[float, float] | None:
    """``(lng, lat)`` if both are finite numbers in range, else ``None``."""
    if type(lng) not in (int, float) or type(lat) not in (int, float):
        return None
    if not (-180.0 <= lng <= 180.0 and -90.0 <= lat <= 90.0):  # NaN fails too
        return None
    return float(lng), float(lat)


# -- sources -------------------------------------------------------------------------------------------


class _Source:
    def survey(self) -> _Survey:
        raise NotImplementedError

    def features(
        self,
        columns: tuple[Column, ...],
        converters: list[Callable[[Any], Scalar]],
        id_source: str,
        shapes_table: bool = False,
    ) -> Iterator[Feature]:
        raise NotImplementedError


class _GeoJSONSource(_Source):
    def __init__(self, path: Path) -> None:
        self.path = path

    def _features(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for number, feature in enumerate(iter_feature_collection(self.path), start=1):
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise LoadError(f"{self.path}: feature #{number} is not a GeoJSON Feature object")
            props = feature.get("properties")
            if props is not None and not isinstance(props, dict):
                raise LoadError(f"{self.path}: feature #{number} has properties that are not an object")
            yield number, feature

    def _geometry(self, feature: dict[str, Any]) -> tuple[str, tuple[float, float] | None]:
        geometry = feature.get("geometry")
        if geometry is None:
            return "none", None
        if isinstance(geometry, dict) and geometry.get("type") in SHAPE_TYPES:
            return ("shape", None) if _shape(geometry) is not None else ("bad", None)
        if not isinstance(geometry, dict) or geometry.get("type") != "Point":
            return "not_point", None
        coords = geometry.get("coordinates")
        if not isinstance(coords, list) or len(coords) < 2:
            return "bad", None
        point = _point(coords[0], coords[1])
        return ("ok", point) if point is not None else ("bad", None)

    def survey(self) -> _Survey:
        survey = _Survey()
        ids, gx_ids = _IdCheck(), _IdCheck()
        column = survey.column
        for number, feature in self._features():
            survey.count = number
            ids.add(feature.get("id"))
            props = feature.get("properties") or {}
            gx_ids.add(props.get(ID_COLUMN))
            for key, value in props.items():
                column(key).kinds.add(_kind(value))
            status, _ = self._geometry(feature)
            if status == "shape":
                survey.shapes = True
            elif status == "none":
                survey.no_geometry.add(number)
            elif status == "not_point":
                survey.not_point.add(number)
            elif status == "bad":
                survey.bad_point.add(number)
        _check_column_names(self.path, survey.columns)
        if ids.distinct():
            survey.id_source = "id"
        elif ID_COLUMN in survey.columns and gx_ids.distinct():
            survey.id_source = ID_COLUMN
            del survey.columns[ID_COLUMN]
        elif ids.seen:
            survey.extra_notes.append(
                "Feature ids are not distinct integers: features are numbered by their position in the file."
            )
        return survey

    def features(
        self,
        columns: tuple[Column, ...],
        converters: list[Callable[[Any], Scalar]],
        id_source: str,
        shapes_table: bool = False,
    ) -> Iterator[Feature]:
        names = [c.name for c in columns]
        pairs = list(zip(names, converters, strict=True))
        for number, feature in self._features():
            props = feature.get("properties") or {}
            if id_source == "id":
                gx_id = int(feature["id"])
            elif id_source == ID_COLUMN:
                gx_id = int(props[ID_COLUMN])
            else:
                gx_id = number
            status, point = self._geometry(feature)
            values = tuple(convert(props.get(name)) for name, convert in pairs)
            if status == "shape":
                lng, lat, wkb, _ = shape_fields(_shape(feature["geometry"]))
                yield Feature(gx_id, lng, lat, values, wkb)
            elif shapes_table and point is not None:
                yield Feature(gx_id, point[0], point[1], values, shape_fields(shapely.Point(point))[2])
            else:
                yield Feature(gx_id, point[0] if point else None, point[1] if point else None, values)


class _CSVSource(_Source):
    def __init__(self, path: Path, lng_column: str | None, lat_column: str | None) -> None:
        self.path = path
        self.lng_column = lng_column
        self.lat_column = lat_column

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        with self.path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise LoadError(f"{self.path}: the file is empty")
            yield 0, header
            number = 0
            for row in reader:
                if not row:
                    continue
                number += 1
                if len(row) != len(header):
                    raise LoadError(
                        f"{self.path}, line {reader.line_num}: {len(row)} fields where the header has {len(header)}"
                    )
                yield number, row

    def _layout(self, header: list[str]) -> tuple[int, int, list[tuple[int, str]]]:
        """(longitude index, latitude index, [(index, column name)]) of a header."""
        names = [h.strip() for h in header]
        if len(set(names)) != len(names):
            raise LoadError(f"{self.path}: the header names a column twice")
        if any(not n for n in names):
            raise LoadError(f"{self.path}: the header has a column without a name")
        lower = {n.lower(): i for i, n in enumerate(names)}

        def find(given: str | None, candidates: tuple[str, ...], what: str) -> int:
            wanted = (given,) if given else candidates
            for name in wanted:
                if name.lower() in lower:
                    return lower[name.lower()]
            raise LoadError(
                f"{self.path}: no {what} column (looked for {', '.join(wanted)}); a CSV table needs"
                " longitude and latitude columns in WGS 84 degrees"
            )

        lng = find(self.lng_column, LNG_COLUMNS, "longitude")
        lat = find(self.lat_column, LAT_COLUMNS, "latitude")
        return lng, lat, [(i, n) for i, n in enumerate(names) if i not in (lng, lat)]

    @staticmethod
    def _geometry(lng_text: str, lat_text: str) -> tuple[str, tuple[float, float] | None]:
        if not lng_text.strip() and not lat_text.strip():
            return "none", None
        try:
            point = _point(float(lng_text), float(lat_text))
        except ValueError:
            point = None
        return ("ok", point) if point is not None else ("bad", None)

    def survey(self) -> _Survey:
        survey = _Survey()
        rows = self._rows()
        _, header = next(rows)
        lng, lat, layout = self._layout(header)
        stats = [(i, survey.column(n)) for i, n in layout]
        id_index = next((i for i, n in layout if n == ID_COLUMN), None)
        gx_ids = _IdCheck()
        for number, row in rows:
            survey.count = number
            for i, column in stats:
                column.kinds.add(_text_kind(row[i], csv_booleans=True))
            if id_index is not None:
                gx_ids.add(row[id_index].strip())
            status, _ = self._geometry(row[lng], row[lat])
            if status == "none":
                survey.no_geometry.add(number)
            elif status == "bad":
                survey.bad_point.add(number)
        _check_column_names(self.path, survey.columns)
        if id_index is not None and gx_ids.distinct():
            survey.id_source = ID_COLUMN
            del survey.columns[ID_COLUMN]
        return survey

    def features(
        self,
        columns: tuple[Column, ...],
        converters: list[Callable[[Any], Scalar]],
        id_source: str,
        shapes_table: bool = False,
    ) -> Iterator[Feature]:
        rows = self._rows()
        _, header = next(rows)
        lng, lat, layout = self._layout(header)
        index = {n: i for i, n in layout}
        pairs = [(index[c.name], convert) for c, convert in zip(columns, converters, strict=True)]
        id_index = index.get(ID_COLUMN) if id_source == ID_COLUMN else None
        for number, row in rows:
            gx_id = int(row[id_index]) if id_index is not None else number
            _, point = self._geometry(row[lng], row[lat])
            values = tuple(convert(row[i]) for i, convert in pairs)
            yield Feature(gx_id, point[0] if point else None, point[1] if point else None, values)


def _check_column_names(path: Path, columns: dict[str, _ColumnStats]) -> None:
    for name in RESERVED_COLUMNS:
        if name in columns:
            raise LoadError(
                f"{path}: a property is called {name!r}, which names the features' geometry in queries;"
                " rename it and load again"
            )
