"""The store interface: what every reader and loader may ask of a store.

crimemap has two stores, the embedded SQLite one (:mod:`crimemap.store.sqlite`)
and PostgreSQL/PostGIS (:mod:`crimemap.store.postgis`). Readers (the APIs, the
exporters) and loaders speak only to :class:`Store` and :class:`StoreWriter`,
never to a driver, and one conformance suite (``tests/test_store_*.py``) runs
against both.

Records are plain named tuples so that rows flow from a cursor to a socket
without per-row objects beyond the tuple itself.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple, TypeAlias

from crimemap.query import CrimeQuery, FeatureQuery, Scalar, StopQuery
from crimemap.stats_query import StatsQuery
from crimemap.stats_stops_query import StopStatsQuery

ColumnType: TypeAlias = Literal["integer", "double", "string", "boolean", "datetime"]

CRIMES_TABLE = "policeuk-crimes"
"""The id under which stored police.uk crimes are readable as a feature table."""

STOPS_TABLE = "policeuk-stops"
"""The id under which stored stops and searches are readable as a feature table (once any are stored)."""

FORCE_BOUNDARIES = "policeuk-force-boundaries"
"""The table of police force areas: ``force``, ``name``, a MultiPolygon each (:mod:`crimemap.load.boundaries`)."""

NEIGHBOURHOODS_TABLE = "policeuk-neighbourhoods"
"""The table of police neighbourhoods: ``force``, ``neighbourhood``, ``name``, a (Multi)Polygon each
(:mod:`crimemap.load.neighbourhoods`)."""


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
class Column:
    name: str
    type: ColumnType


@dataclass(frozen=True)
class TableInfo:
    """A feature table's resource: what ``/mapsengine/v1/tables/{id}`` describes."""

    id: str
    name: str
    columns: tuple[Column, ...]
    description: str = ""
    feature_count: int = 0
    bbox: tuple[float, float, float, float] | None = None
    created: dt.datetime | None = None
    modified: dt.datetime | None = None
    tags: tuple[str, ...] = field(default=())
    shapes: bool = False
    """Whether features carry a ``shape`` (polygons) rather than points only."""

    @property
    def schema(self) -> dict[str, ColumnType]:
        return {c.name: c.type for c in self.columns}


@dataclass(frozen=True)
class MonthSummary:
    """What is stored for one month: the forces that published it and its crime count."""

    month: str
    forces: tuple[str, ...]
    crimes: int


@dataclass(frozen=True)
class OutcomeEvent:
    """An outcome in a crime's history (``outcomes-for-crime``, ``outcomes-at-location``)."""

    outcome: str
    month: str
    crime: Crime | None = None


class StoreError(Exception):
    """A store could not do what was asked (bad location, schema too new, ...)."""


class PageCursorGone(StoreError):
    """A keyset cursor points at a feature that is no longer stored (its data was reloaded)."""


class ReadTimeout(StoreError):
    """A read ran past the store's time budget and was stopped; the APIs answer 503."""


class ClientGone(ReadTimeout):
    """The client hung up, and the work for it was stopped (:mod:`crimemap.deadline`); answered as a
    stopped read, to nobody."""


class TableChanged(StoreError):
    """A table was replaced between reading its schema and reading its rows; asking again will do."""


class JsonList(NamedTuple):
    """A JSON array made by the store, and how many items it found (at most the limit asked)."""

    found: int
    body: bytes


class StoreWriter(ABC):
    """Writes of one load: all of them commit together, or none does.

    Obtained from :meth:`Store.writer`; leaving the ``with`` block by an
    exception rolls everything back, so a failed load leaves the store as it was.

    Loading is split in two so that it can use two cores: :meth:`prepare`, a
    pure function a worker process runs on each batch of parsed records
    (turning them into whatever the store inserts fastest), and
    :meth:`replace_prepared`, which the writing process runs on those batches.
    """

    @staticmethod
    def prepare(kind: str, records: Any) -> Any:
        """Turn a batch for insertion: a :class:`~crimemap.store.batches.CrimeBatch` (kind ``street``),
        an :class:`~crimemap.store.batches.OutcomeBatch` (``outcomes``), or a list of records of either;
        or a list of :class:`Stop` (``stops``, see :mod:`crimemap.store.stop_rows`).

        Runs in a worker process: it must be a picklable function of its
        arguments. The default passes the batch through unchanged.
        """
        return records

    def expect(self, rows: int) -> None:
        """A hint, before the first write: about how many rows this load brings.

        A store may switch to a bulk strategy for a load that is large beside
        what it holds (build an index once at the end instead of row by row).
        """
        return None

    groups_months: bool = False
    """Whether this store wants a month's street files together (see :meth:`replace_group`)."""

    @abstractmethod
    def replace_prepared(self, kind: str, month: str, force: str, batches: Iterable[Any]) -> int:
        """Replace what is stored of ``kind`` for ``month`` and ``force`` by the prepared batches."""

    def replace_group(self, kind: str, month: str, forces: tuple[str, ...], batches: Iterable[Any]) -> dict[str, int]:
        """Replace ``kind`` of ``month`` for each of ``forces`` at once; rows stored per force.

        The loader groups a month's street files only for stores that set
        :attr:`groups_months`; others get one force at a time.
        """
        if len(forces) != 1:
            raise NotImplementedError("this store replaces one force at a time")
        return {forces[0]: self.replace_prepared(kind, month, forces[0], batches)}

    def replace_crimes(self, month: str, force: str, crimes: Iterable[Crime]) -> int:
        """Replace every crime of ``month`` reported by ``force``; returns rows written."""
        return self.replace_prepared("street", month, force, [self.prepare("street", list(crimes))])

    def replace_outcomes(self, month: str, force: str, outcomes: Iterable[OutcomeRecord]) -> int:
        """Replace the outcomes file of ``month`` and ``force``; returns rows written."""
        return self.replace_prepared("outcomes", month, force, [self.prepare("outcomes", list(outcomes))])

    def replace_stops(self, month: str, force: str, stops: Iterable[Stop]) -> int:
        """Replace the stop-and-search file of ``month`` and ``force``; returns rows written."""
        return self.replace_prepared("stops", month, force, [self.prepare("stops", list(stops))])

    @abstractmethod
    def replace_table(self, info: TableInfo, features: Iterable[Feature]) -> int:
        """Create or replace a feature table; ``properties`` follow ``info.columns``."""

    def put_documents(self, documents: Iterable[tuple[str, str, str, bytes]]) -> int:
        """Store police.uk documents ``(force, neighbourhood, kind, body)``, replacing those of the same key.

        See :mod:`crimemap.store.documents`; ``neighbourhood`` is ``''`` for a force's own documents.
        """
        raise NotImplementedError("this store keeps no police.uk documents")

    def delete_documents(self, force: str, kind: str) -> None:
        """Forget every document of ``kind`` of ``force`` (before a reload puts the new ones)."""
        raise NotImplementedError("this store keeps no police.uk documents")


class Store(ABC):
    """A store of police.uk crimes and feature tables. See the module docstring."""

    url: str

    # -- lifecycle -----------------------------------------------------------------
    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def writer(self) -> AbstractContextManager[StoreWriter]:
        """A transaction for one load (see :class:`StoreWriter`)."""

    # -- police.uk -----------------------------------------------------------------
    @abstractmethod
    def months(self) -> list[MonthSummary]:
        """Every stored month, newest first."""

    def latest_month(self) -> str | None:
        months = self.months()
        return months[0].month if months else None

    def map_points_bbox(self) -> tuple[float, float, float, float] | None:
        """``(west, south, east, north)`` of the stored map points, which every located crime is at.

        A cheap extent of the crimes table (the map points are thousands where
        the crimes are millions); ``None`` when this store cannot say cheaply.
        """
        return None

    @abstractmethod
    def crimes(self, query: CrimeQuery) -> Iterator[Crime]:
        """Crimes matching ``query``, in no particular order, stopping at ``query.limit``."""

    def crimes_exceed(self, query: CrimeQuery, n: int) -> bool:
        """Whether more than ``n`` crimes match ``query`` (its ``limit`` aside), without counting them all.

        The police.uk API's 10,000-crime rule asks this before fetching an
        area's crimes. This default reads up to ``n + 1`` crimes; stores
        override it with a cheaper test (an index count stopping at ``n + 1``).
        """
        return sum(1 for _ in self.crimes(replace(query, limit=n + 1))) > n

    def crimes_json(self, query: CrimeQuery, limit: int) -> JsonList:
        """The ``crimes-street`` answer for ``query``: its crimes' police.uk JSON, at most ``limit`` of them.

        ``found`` equal to ``limit`` means there may be more: the police.uk
        API asks for 10,001 and answers 503 when it gets them. Stores keep each
        crime's JSON ready (see :mod:`crimemap.store.sqlite.schema`); this
        default builds it from records.
        """
        from crimemap.policeuk_json import crimes_json

        crimes = list(self.crimes(replace(query, limit=limit)))
        return JsonList(len(crimes), crimes_json(crimes))

    def outcomes_json(self, query: CrimeQuery, limit: int) -> JsonList:
        """The ``outcomes-at-location`` answer: the outcomes of ``query.month`` in the area, each with its crime.

        ``found`` counts outcomes up to ``limit``, including those whose crime
        is not stored (which the answer leaves out). With ``query.street_id``,
        the outcomes at that map point: found by its position, kept by their
        crime's map point (outcomes files spell street names in capitals).
        """
        from crimemap.policeuk_json import outcomes_at_location_json

        events = list(self.outcomes(replace(query, street_id=None, limit=limit)))
        count = len(events)
        if query.street_id is not None:
            events = [e for e in events if e.crime is not None and e.crime.street_id == query.street_id]
        return JsonList(count, outcomes_at_location_json(events))

    @abstractmethod
    def street(self, street_id: int) -> Street | None: ...

    @abstractmethod
    def nearest_street(self, lng: float, lat: float) -> Street | None:
        """The map point nearest to a point (``crimes-at-location`` by lat/lng)."""

    @abstractmethod
    def crime_by_persistent_id(self, persistent_id: str) -> Crime | None: ...

    @abstractmethod
    def outcome_history(self, persistent_id: str) -> list[OutcomeEvent]:
        """A crime's outcomes, oldest first."""

    @abstractmethod
    def outcomes(self, query: CrimeQuery) -> Iterator[OutcomeEvent]:
        """Outcomes recorded in ``query.month`` in ``query.area`` or at ``query.street_id``."""

    # -- stop and search -----------------------------------------------------------
    @abstractmethod
    def stop_months(self) -> list[MonthSummary]:
        """Every month with stop-and-search data, newest first: its forces and its count of stops."""

    def latest_stop_month(self) -> str | None:
        months = self.stop_months()
        return months[0].month if months else None

    @abstractmethod
    def stops(self, query: StopQuery) -> Iterator[Stop]:
        """Stops matching ``query``: by ``(cell, id)`` for an area, else by id (file order); up to ``limit``."""

    def stops_json(self, query: StopQuery, limit: int) -> JsonList:
        """The police.uk JSON of the stops ``query`` selects, at most ``limit`` of them (see :meth:`crimes_json`).

        Stores keep each stop's JSON ready; this default builds it from records.
        """
        from crimemap.policeuk_json import stops_json

        stops = list(self.stops(replace(query, limit=limit)))
        return JsonList(len(stops), stops_json(stops))

    def stop_location_known(self, street_id: int) -> bool:
        """Whether ``street_id`` is a map point: a stored one, or one that stops were placed at."""
        if self.street(street_id) is not None:
            return True
        return any(True for _ in self.stops(StopQuery(street_id=street_id, located=None, limit=1)))

    @abstractmethod
    def last_updated(self) -> dt.datetime | None:
        """When the last load committed."""

    def generation(self) -> str:
        """Changes whenever a load commits: what response caches key on."""
        return str(self.last_updated())

    @abstractmethod
    def stats(self, query: StatsQuery) -> list[tuple[Any, ...]]:
        """Counts of crimes: one row per group, its values in ``query.group`` order then the count.

        Values are ``YYYY-MM`` months, category slugs, force ids, outcome slugs
        (``None``: no outcome), LSOA codes (``""``: none given) and cells as
        ``(row, col)`` at ``query.level`` (:mod:`crimemap.stats_query`). Rows
        are in order of their values, ``None`` first; a group with no crimes
        has no row, except that a query without groups always answers one
        row, the total. Both stores answer every query identically
        (:mod:`crimemap.store.stats_plan`).
        """

    @abstractmethod
    def stop_stats(self, query: StopStatsQuery) -> list[tuple[Any, ...]]:
        """Counts of stops and searches, answered as :meth:`stats` answers crimes.

        Values are ``YYYY-MM`` months, force ids, the stop's ``type`` and
        ``object_of_search`` (``None``: none given), its ``outcome`` as its
        JSON gives it (``""``: none given) and cells as ``(row, col)``. An area
        holds the stops ``stops-street`` answers for it. Counted from the stops
        themselves (:mod:`crimemap.store.stats_stops`), alike in both stores.
        """

    # -- feature tables --------------------------------------------------------------
    @abstractmethod
    def tables(self) -> list[TableInfo]: ...

    @abstractmethod
    def table(self, table_id: str) -> TableInfo | None: ...

    @abstractmethod
    def features(self, query: FeatureQuery) -> Iterator[Feature]:
        """Features of one table matching ``query``, in keyset order (see FeatureQuery)."""

    def feature_columns(self, query: FeatureQuery) -> FeatureColumns:
        """The features of ``query`` column by column (see :class:`FeatureColumns`), booleans as ``bool``.

        This default reads :meth:`features`; stores give a faster one.
        """
        table = self.table(query.table)
        if table is None:
            raise StoreError(f"no table {query.table!r}")
        names = query.columns if query.columns is not None else tuple(c.name for c in table.columns)
        cols = FeatureColumns.from_features(list(self.features(query)), len(names))
        booleans = [i for i, n in enumerate(names) if table.schema.get(n) == "boolean"]
        if not booleans or not len(cols):
            return cols
        values = list(cols.values)
        for i in booleans:
            values[i] = [None if v is None else bool(v) for v in values[i]]
        return cols.with_values(tuple(values))

    @abstractmethod
    def feature(self, table_id: str, gx_id: int, columns: tuple[str, ...] | None = None) -> Feature | None: ...

    # -- police.uk documents (crimemap.store.documents) ---------------------------------------
    def document(self, force: str, neighbourhood: str, kind: str) -> bytes | None:
        """The stored JSON of one police.uk document, or None."""
        return None

    def documents(self, kind: str, force: str | None = None) -> list[tuple[str, str, bytes]]:
        """``(force, neighbourhood, body)`` of every stored document of ``kind`` (of ``force``), in key order."""
        return []

    def force_boundaries(self) -> dict[str, tuple[str, bytes]]:
        """Force id -> (name, WKB of its area) for each stored force boundary; empty when none are loaded."""
        if self.table(FORCE_BOUNDARIES) is None:
            return {}
        found = {}
        for f in self.features(FeatureQuery(FORCE_BOUNDARIES, columns=("force", "name"))):
            if f.shape is not None:
                found[str(f.properties[0])] = (str(f.properties[1]), f.shape)
        return found


CRIME_COLUMNS: tuple[Column, ...] = (
    Column("id", "integer"),
    Column("crime_id", "string"),
    Column("month", "string"),
    Column("reported_by", "string"),
    Column("falls_within", "string"),
    Column("longitude", "double"),
    Column("latitude", "double"),
    Column("location", "string"),
    Column("lsoa_code", "string"),
    Column("lsoa_name", "string"),
    Column("crime_type", "string"),
    Column("category", "string"),
    Column("last_outcome_category", "string"),
    Column("outcome_month", "string"),
    Column("context", "string"),
    Column("location_type", "string"),
    Column("location_subtype", "string"),
    Column("street_id", "integer"),
)
"""The police.uk crimes seen as a feature table (:data:`CRIMES_TABLE`).

Names follow the bulk CSV's headers in snake case (``crime_id`` is police.uk's
``Crime ID``, the ``persistent_id``), plus the API's ``id``, ``category`` slug
and ``street_id``. ``reported_by`` and ``falls_within`` hold force names.
"""


STOP_COLUMNS: tuple[Column, ...] = (
    Column("id", "integer"),
    Column("month", "string"),
    Column("force", "string"),
    Column("type", "string"),
    Column("date", "datetime"),
    Column("part_of_a_policing_operation", "boolean"),
    Column("policing_operation", "string"),
    Column("latitude", "double"),
    Column("longitude", "double"),
    Column("gender", "string"),
    Column("age_range", "string"),
    Column("self_defined_ethnicity", "string"),
    Column("officer_defined_ethnicity", "string"),
    Column("legislation", "string"),
    Column("object_of_search", "string"),
    Column("outcome", "string"),
    Column("outcome_linked_to_object_of_search", "boolean"),
    Column("removal_of_more_than_just_outer_clothing", "boolean"),
    Column("outcome_id", "string"),
    Column("street_id", "integer"),
    Column("location", "string"),
)
"""The stored stops seen as a feature table (:data:`STOPS_TABLE`).

Names follow the stop-and-search CSV's headers in snake case; empty text and
empty yes/no cells are null. Added: the stop's ``id`` (month, force and row, as
a crime's), the file's ``month`` and ``force`` id, the API's ``outcome_id``,
and the map point it was placed at (``street_id``, and ``location``, its
"On or near ..." name, null for a point no street file named).
"""
