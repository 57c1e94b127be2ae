"""The store interface: what every reader and loader may ask of a store.

crimemap has two stores, the embedded SQLite one (:mod:`crimemap.store.sqlite`)
and PostgreSQL/PostGIS (:mod:`crimemap.store.postgis`). Readers (the APIs, the
exporters) and loaders speak only to :class:`Store` and :class:`StoreWriter`,
never to a driver, and one conformance suite (``tests/test_store_*.py``) runs
against both.

The records it reads and writes are in :mod:`crimemap.records`, the tables and
months it describes in :mod:`crimemap.store.catalogue`, its errors in
:mod:`crimemap.errors` and the writer in :mod:`crimemap.store.writer`.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, ClassVar, NamedTuple

from crimemap.errors import StoreError
from crimemap.policeuk_json import crimes_json, outcomes_at_location_json, stops_json
from crimemap.query import CrimeQuery, FeatureQuery, StopQuery
from crimemap.records import Crime, Feature, FeatureColumns, OutcomeEvent, Stop, Street
from crimemap.stats_query import StatsQuery
from crimemap.stats_stops_query import StopStatsQuery
from crimemap.store.catalogue import FORCE_BOUNDARIES, MonthSummary, TableInfo
from crimemap.store.columnar import ArrowFeatures
from crimemap.store.geojson_sql import GeoJSONPage, Layout
from crimemap.store.writer import StoreWriter


class JsonList(NamedTuple):
    """A JSON array made by the store, and how many items it found (at most the limit asked)."""

    found: int
    body: bytes


class Replication(NamedTuple):
    """Where a store stands in a PostgreSQL replication: a primary, or a hot standby and how far it lags."""

    standby: bool
    lag_s: float | None
    """Seconds the standby's replay has stalled: 0 once it has replayed all it received, else the time
    since its replay last moved (so a long load that replays as it streams is not lag), at most the time
    since the last transaction it replayed; None on a primary, or when unknown."""


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

    writer_type: ClassVar[type[StoreWriter]]
    """The class of :meth:`writer`'s writers: a load reads its ``prepare`` and ``groups_months`` before
    opening one, to start its parsing process beside the writer's start."""

    @abstractmethod
    def writer(self, rows: int = 0) -> AbstractContextManager[StoreWriter]:
        """A transaction for one load (see :class:`StoreWriter`).

        ``rows``: about how many crime, outcome and stop rows it brings (a store may
        choose how to bind them by it).
        """

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
        crimes = list(self.crimes(replace(query, limit=limit)))
        return JsonList(len(crimes), crimes_json(crimes))

    def outcomes_json(self, query: CrimeQuery, limit: int) -> JsonList:
        """The ``outcomes-at-location`` answer: the outcomes of ``query.month`` in the area, each with its crime.

        ``found`` counts outcomes up to ``limit``, including those whose crime
        is not stored (which the answer leaves out). With ``query.street_id``,
        the outcomes at that map point: found by its position, kept by their
        crime's map point (outcomes files spell street names in capitals).
        """
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

    def replication(self) -> Replication | None:
        """A replicated store's place in its replication (``/health`` reports it); None: not replicated."""
        return None

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

    def neighbourhood_stats(self, query: StatsQuery, boundaries: str) -> list[tuple[Any, ...]] | None:
        """Counts of crimes grouped by neighbourhood (and by month, category, force), from the counts kept
        per neighbourhood (:mod:`crimemap.store.stats_neighbourhoods`), answered as :meth:`stats` answers;
        ``None`` when they cannot answer: other groups, or counts kept for other boundaries than those of
        fingerprint ``boundaries``. ``query.group`` names ``neighbourhood``; its area is ignored."""
        return None

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

    def arrow_features(self, query: FeatureQuery) -> Iterator[ArrowFeatures] | None:
        """All of ``query``'s features as Arrow batches, read by the engine's driver in one statement, or None.

        One statement reads one snapshot: a load that commits meanwhile is not
        seen. None where this store cannot read ``query`` so (see
        :mod:`crimemap.store.columnar`); the caller reads :meth:`feature_columns`.
        """
        return None

    def feature_geojson(self, query: FeatureQuery, layout: Layout) -> GeoJSONPage | None:
        """The features of ``query`` as GeoJSON written by the engine (:mod:`crimemap.store.geojson_sql`).

        The same bytes :func:`crimemap.export.geojson.column_bytes` makes of
        :meth:`feature_columns`, or None where the engine does not write this
        read: the caller then renders :meth:`feature_columns` itself.
        """
        return None

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
