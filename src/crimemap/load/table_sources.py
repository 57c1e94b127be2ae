"""Reading a table's file, GeoJSON or CSV, twice and streaming: a survey of its columns, then its features.

The first pass (:meth:`Source.survey`) learns each column's kinds of value, the
feature ids to use and what is wrong with the geometry; the second
(:meth:`Source.features`) converts and yields the features. See the decisions
in :mod:`crimemap.load.tables`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
import shapely.errors

from crimemap.geometry.shapes import polygonal, shape_fields
from crimemap.load.errors import LoadError
from crimemap.load.geojson import iter_feature_collection
from crimemap.load.table_values import ColumnStats, IdCheck, text_kind, value_kind
from crimemap.query import Scalar
from crimemap.records import Feature
from crimemap.rings import RingError
from crimemap.store.catalogue import Column

LNG_COLUMNS = ("gx_longitude", "longitude", "lng", "lon", "long")
LAT_COLUMNS = ("gx_latitude", "latitude", "lat")
RESERVED_COLUMNS = ("geometry",)
"""Property names that cannot be columns: ``geometry`` names the features' geometry in queries."""
ID_COLUMN = "gx_id"
MAX_REPORTED = 5
"""How many feature numbers a load note lists for each kind of problem."""

# -- what the first pass learns ----------------------------------------------------------------------


@dataclass
class Problems:
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


class Survey:
    """The first pass over a file: columns and their kinds, ids, and geometry problems."""

    def __init__(self) -> None:
        self.columns: dict[str, ColumnStats] = {}
        self.count = 0
        self.no_geometry = Problems("no geometry")
        self.not_point = Problems("a geometry that is not a Point, Polygon or MultiPolygon")
        self.shapes = False
        self.bad_point = Problems("a Point with bad coordinates")
        self.id_source = "position"
        self.extra_notes: list[str] = []

    def column(self, name: str) -> ColumnStats:
        stats = self.columns.get(name)
        if stats is None:
            stats = self.columns[name] = ColumnStats()
        return stats

    def notes(self) -> list[str]:
        found = [p.note() for p in (self.no_geometry, self.not_point, self.bad_point)]
        return [n for n in found if n] + self.extra_notes


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


class Source:
    def survey(self) -> Survey:
        raise NotImplementedError

    def features(
        self,
        columns: tuple[Column, ...],
        converters: list[Callable[[Any], Scalar]],
        id_source: str,
        shapes_table: bool = False,
    ) -> Iterator[Feature]:
        raise NotImplementedError


class GeoJSONSource(Source):
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

    def _geometry(self, number: int, feature: dict[str, Any]) -> tuple[str, tuple[float, float] | None]:
        geometry = feature.get("geometry")
        if geometry is None:
            return "none", None
        if isinstance(geometry, dict) and geometry.get("type") in SHAPE_TYPES:
            return ("shape", None) if self._shape(number, geometry) is not None else ("bad", None)
        if not isinstance(geometry, dict) or geometry.get("type") != "Point":
            return "not_point", None
        coords = geometry.get("coordinates")
        if not isinstance(coords, list) or len(coords) < 2:
            return "bad", None
        point = _point(coords[0], coords[1])
        return ("ok", point) if point is not None else ("bad", None)

    def _shape(self, number: int, geometry: dict[str, Any]) -> Any:
        """:func:`_shape`, or a load error naming the feature whose polygon is too costly to repair."""
        try:
            return _shape(geometry)
        except RingError as e:
            raise LoadError(f"{self.path}: feature #{number}: {e}") from None

    def survey(self) -> Survey:
        survey = Survey()
        ids, gx_ids = IdCheck(), IdCheck()
        column = survey.column
        for number, feature in self._features():
            survey.count = number
            ids.add(feature.get("id"))
            props = feature.get("properties") or {}
            gx_ids.add(props.get(ID_COLUMN))
            for key, value in props.items():
                column(key).kinds.add(value_kind(value))
            status, _ = self._geometry(number, feature)
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
            status, point = self._geometry(number, feature)
            values = tuple(convert(props.get(name)) for name, convert in pairs)
            if status == "shape":
                lng, lat, wkb, _ = shape_fields(self._shape(number, feature["geometry"]))
                yield Feature(gx_id, lng, lat, values, wkb)
            elif shapes_table and point is not None:
                yield Feature(gx_id, point[0], point[1], values, shape_fields(shapely.Point(point))[2])
            else:
                yield Feature(gx_id, point[0] if point else None, point[1] if point else None, values)


class CSVSource(Source):
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

    def survey(self) -> Survey:
        survey = Survey()
        rows = self._rows()
        _, header = next(rows)
        lng, lat, layout = self._layout(header)
        stats = [(i, survey.column(n)) for i, n in layout]
        id_index = next((i for i, n in layout if n == ID_COLUMN), None)
        gx_ids = IdCheck()
        for number, row in rows:
            survey.count = number
            for i, column in stats:
                column.kinds.add(text_kind(row[i], csv_booleans=True))
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


def _check_column_names(path: Path, columns: dict[str, ColumnStats]) -> None:
    for name in RESERVED_COLUMNS:
        if name in columns:
            raise LoadError(
                f"{path}: a property is called {name!r}, which names the features' geometry in queries;"
                " rename it and load again"
            )
