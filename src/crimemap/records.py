"""police.uk records and features: the plain values that files, stores and renderers pass along.

Loaders parse files into these, stores keep and return them, and the JSON
renderers (:mod:`crimemap.policeuk_json`) and exporters write them out; all
import them from here, below each of them.

Records are plain named tuples so that rows flow from a cursor to a socket
without per-row objects beyond the tuple itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from crimemap.query import Scalar


class Crime(NamedTuple):
    """One street-level crime, as the police.uk bulk CSV and API describe it.

    ``lng``/``lat``/``street_id`` are ``None`` for crimes published without a
    location (served by ``crimes-no-location``). ``persistent_id`` is ``""`` for
    anti-social behaviour. ``outcome`` is the latest outcome's display name.
    """

    id: int
    month: str
    force: str
    falls_within: str
    lng: float | None
    lat: float | None
    street_id: int | None
    street_name: str
    lsoa_code: str
    lsoa_name: str
    category: str
    persistent_id: str
    location_type: str
    location_subtype: str
    context: str
    outcome: str | None
    outcome_month: str | None


class Stop(NamedTuple):
    """One stop and search, as a police.uk stop-and-search file and the API describe it.

    ``month`` is the file's month (a ``datetime`` may fall in the month before:
    midnight BST is 23:00 UTC). Text the file leaves empty is ``""``, and yes/no
    columns left empty are ``None``. ``lng``/``lat`` are ``None`` for a stop
    published without a location. ``street_id``/``street_name`` are the map
    point a store found at the stop's coordinates (``None``/``""`` as read from
    a file: the store decides, see :mod:`crimemap.store.stop_rows`).
    """

    id: int
    month: str
    force: str
    type: str
    datetime: str
    operation: bool | None
    operation_name: str
    lng: float | None
    lat: float | None
    street_id: int | None
    street_name: str
    gender: str
    age_range: str
    self_defined_ethnicity: str
    officer_defined_ethnicity: str
    legislation: str
    object_of_search: str
    outcome: str
    outcome_linked_to_object_of_search: bool | None
    removal_of_more_than_outer_clothing: bool | None


class OutcomeRecord(NamedTuple):
    """One row of an outcomes file: an outcome recorded for a crime in ``month``."""

    persistent_id: str
    month: str
    force: str
    outcome: str
    lng: float | None
    lat: float | None
    street_id: int | None
    street_name: str
    lsoa_code: str
    lsoa_name: str


class Street(NamedTuple):
    """An anonymised map point: crimes are snapped to these before publication."""

    id: int
    name: str
    lng: float
    lat: float


class Feature(NamedTuple):
    """One feature of a feature table: a point and its properties in schema order.

    ``properties`` holds the values of the query's columns (or every column),
    in that order; ``lng``/``lat`` are ``None`` for a feature without geometry.
    ``shape`` is the WKB of a geometry that is not only a point (a Polygon or
    MultiPolygon, such as a police force's boundary); its feature's
    ``lng``/``lat`` are then a point on its surface.
    """

    gx_id: int
    lng: float | None
    lat: float | None
    properties: tuple[Scalar, ...]
    shape: bytes | None = None


@dataclass(frozen=True)
class FeatureColumns:
    """A page of features column by column: what readers render from, with no object per feature.

    ``values`` holds one sequence per column asked for, in that order, with
    typed values (booleans as ``bool``). Pages, downloads and exports read
    features this way (:meth:`Store.feature_columns`). ``shape`` is the WKB of
    each feature's shape (see :attr:`Feature.shape`) when the table is a table
    of shapes (:attr:`TableInfo.shapes`), and ``None`` for a table of points,
    whose geometry is its ``lng``/``lat``.
    """

    gx_id: Sequence[int]
    lng: Sequence[float | None]
    lat: Sequence[float | None]
    values: tuple[Sequence[Scalar], ...]
    shape: Sequence[bytes | None] | None = None

    def __len__(self) -> int:
        return len(self.gx_id)

    def with_values(self, values: tuple[Sequence[Scalar], ...]) -> FeatureColumns:
        """The same features with other property columns."""
        return FeatureColumns(self.gx_id, self.lng, self.lat, values, self.shape)

    def head(self, n: int) -> FeatureColumns:
        """The first ``n`` features."""
        if n >= len(self.gx_id):
            return self
        shape = self.shape[:n] if self.shape is not None else None
        return FeatureColumns(self.gx_id[:n], self.lng[:n], self.lat[:n], tuple(v[:n] for v in self.values), shape)

    def row(self, i: int) -> Feature:
        shape = self.shape[i] if self.shape is not None else None
        return Feature(self.gx_id[i], self.lng[i], self.lat[i], tuple(v[i] for v in self.values), shape)

    def features(self) -> Iterator[Feature]:
        for i in range(len(self.gx_id)):
            yield self.row(i)

    @classmethod
    def from_features(cls, features: Sequence[Feature], width: int) -> FeatureColumns:
        """Columns of a list of features with ``width`` properties each (with ``shape`` if any has one)."""
        if not features:
            return cls((), (), (), tuple(() for _ in range(width)))
        gx, lng, lat, props, shapes = zip(*features, strict=True)
        values = tuple(zip(*props, strict=True)) if width else ()
        return cls(gx, lng, lat, values, shapes if any(s is not None for s in shapes) else None)


@dataclass(frozen=True)
class OutcomeEvent:
    """An outcome in a crime's history (``outcomes-for-crime``, ``outcomes-at-location``)."""

    outcome: str
    month: str
    crime: Crime | None = None
