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
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple, TypeAlias

from crimemap.query import CrimeQuery, FeatureQuery, Scalar
from crimemap.stats_query import StatsQuery

ColumnType: TypeAlias = Literal["integer", "double", "string", "boolean", "datetime"]

CRIMES_TABLE = "policeuk-crimes"
"""The id under which stored police.uk crimes are readable as a feature table."""

FORCE_BOUNDARIES = "policeuk-force-boundaries"
"""The table of police force areas: ``force``, ``name``, a MultiPolygon each (:mod:`crimemap.load.boundaries`)."""


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
        an :class:`~crimemap.store.batches.OutcomeBatch` (``outcomes``), or a list of records of either.

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

    @abstractmethod
    def replace_table(self, info: TableInfo, features: Iterable[Feature]) -> int:
        """Create or replace a feature table; ``properties`` follow ``info.columns``."""


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

    # -- feature tables --------------------------------------------------------------
    @abstractmethod
    def tables(self) -> list[TableInfo]: ...

    @abstractmethod
    def table(self, table_id: str) -> TableInfo | None: ...

    @abstractmethod
    def features(self, query: FeatureQuery) -> Iterator[Feature]:
        """Features of one table matching ``query``, in keyset order (see FeatureQuery)."""

    @abstractmethod
    def feature(self, table_id: str, gx_id: int, columns: tuple[str, ...] | None = None) -> Feature | None: ...

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
