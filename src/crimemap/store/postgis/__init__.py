"""The PostgreSQL/PostGIS store: the same interface as the embedded one, for bigger deployments.

Several API processes (``crimemap serve --workers N``, or several machines behind a
load balancer) share one database. It answers every police.uk request byte for
byte as the embedded store does, from the same work done once at load time.

The store is split by job, as the embedded one is (:mod:`crimemap.store.sqlite`):

- :mod:`~crimemap.store.postgis.schema`: the tables, and upgrading older stores
  (:mod:`~crimemap.store.postgis.upgrade`);
- :mod:`~crimemap.store.postgis.connection`: the connection pool and the read time budget;
- :mod:`~crimemap.store.postgis.crimes`: police.uk reads;
- :mod:`~crimemap.store.postgis.stops`: stop and search;
- :mod:`~crimemap.store.postgis.tables`: feature tables, the crimes among them;
- :mod:`~crimemap.store.postgis.writer`: loads (binary ``COPY`` made by
  :mod:`~crimemap.store.postgis.copy_binary`);
- :mod:`~crimemap.store.postgis.dialect`: how the shared query compiler speaks PostgreSQL.

Example::

    with PostGISStore("postgresql://crimemap@localhost/crimemap") as store:
        store.months()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg

from crimemap import vocab
from crimemap.errors import StoreError, TableChanged
from crimemap.policeuk_json import outcome_category
from crimemap.query import CrimeQuery, FeatureQuery, StopQuery
from crimemap.records import Crime, Feature, OutcomeEvent, Stop, Street
from crimemap.stats_query import StatsQuery
from crimemap.stats_stops_query import StopStatsQuery
from crimemap.store import count_reads
from crimemap.store.base import JsonList, MonthSummary, Replication, Store, StoreWriter, TableInfo
from crimemap.store.columnar import ArrowFeatures
from crimemap.store.documents import Documents
from crimemap.store.geojson_sql import GeoJSONPage, Layout
from crimemap.store.postgis import columnar as columnar_reads
from crimemap.store.postgis import crimes as crime_reads
from crimemap.store.postgis import stats as stat_reads
from crimemap.store.postgis import stops as stop_store
from crimemap.store.postgis import tables as table_reads
from crimemap.store.postgis.connection import (
    DEFAULT_POOL_SIZE,
    DEFAULT_STATEMENT_TIMEOUT_S,
    POOL_SIZE_ENV,
    POOLER_ENV,
    STATEMENT_TIMEOUT_ENV,
    Database,
    redact,
)
from crimemap.store.postgis.replay import ReplayClock, lsn
from crimemap.store.postgis.schema import ensure_schema, is_read_only, outdated
from crimemap.store.postgis.upgrade import upgrade
from crimemap.store.postgis.writer import PostGISWriter, drop_retired

__all__ = [
    "DEFAULT_POOL_SIZE",
    "DEFAULT_STATEMENT_TIMEOUT_S",
    "POOLER_ENV",
    "POOL_SIZE_ENV",
    "STATEMENT_TIMEOUT_ENV",
    "PostGISStore",
    "redact",
]


_DOCUMENTS = Documents("%s")


class PostGISStore(Store):
    """The PostgreSQL/PostGIS store (see the module docstring). A store of an older schema is upgraded on first open.

    On a hot standby (or a read-only session) the store is opened read-only: it
    writes nothing, and refuses a store that would need an upgrade, naming the
    command to run on the primary. ``pooler`` is ``CRIMEMAP_PG_POOLER``'s mode
    (see :mod:`~crimemap.store.postgis.connection`).
    """

    writer_type = PostGISWriter

    def __init__(
        self,
        url: str,
        *,
        pool_size: int | None = None,
        statement_timeout_s: float | None = None,
        pooler: str | None = None,
    ) -> None:
        self._db = Database(url, pool_size=pool_size, statement_timeout_s=statement_timeout_s, pooler=pooler)
        self._replay_clock = ReplayClock()
        self.url = self._db.url
        self.statement_timeout_s = self._db.statement_timeout_s
        with self._db.connect() as conn:
            self.read_only = is_read_only(conn)
            if self.read_only:
                problem = outdated(conn) or (None if stat_reads.built(conn) else "has no counts built yet")
                if problem:
                    raise StoreError(
                        f"{self.url} is read-only (a hot standby) and this store {problem}: run"
                        " `crimemap upgrade --store <the primary's URL>` once, and the standby follows"
                    )
            else:
                ensure_schema(conn, upgrade)
                stat_reads.ensure_built(conn)
                stat_reads.ensure_neighbourhoods_kept(conn)
        self._db.open_pool()
        self._outcome_names: dict[int, str] = {}
        self._outcome_jsons: dict[int, bytes] = {}
        self._refresh_outcome_names()

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def _refresh_outcome_names(self) -> None:
        rows = self._db.all("SELECT code, name FROM outcome_kinds")
        self._outcome_names = {code: name for code, name in rows}
        self._outcome_jsons = {code: orjson.dumps(outcome_category(name)) for code, name in rows}

    def _outcome_name(self, code: int) -> str | None:
        name = self._outcome_names.get(code)
        if name is None:  # a code another process's load added
            self._refresh_outcome_names()
            name = self._outcome_names.get(code)
        return name

    def _outcome_json(self, code: int) -> bytes:
        """An outcome code's ``{"code", "name"}`` object."""
        found = self._outcome_jsons.get(code)
        if found is None:
            self._refresh_outcome_names()
            found = self._outcome_jsons.get(code, b"null")
        return found

    @contextmanager
    def writer(self, rows: int = 0) -> Iterator[StoreWriter]:
        """A load's connection, in one transaction: a load is committed whole or not at all.

        A connection lost before the commit (the primary died, or was failed over) is a
        :class:`StoreError` that says so: the transaction died with it, and the same load
        may simply be run again (against a multi-host URL, on the new primary); a load
        replaces what it loads, so a second run is safe even in the rare case that the
        connection died during the commit itself. Lost after the commit, while dropping the
        tables the load retired, it is no error: those wait for the next load.
        """
        conn = self._db.connect()
        committed = False
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('crimemap load ' || current_schema()))")
                w = PostGISWriter(conn)
                yield w
                w.finish()
            committed = True
            drop_retired(conn)
        except psycopg.OperationalError as e:
            if not conn.broken:
                raise
            if not committed:
                raise StoreError(
                    f"the connection to {self.url} was lost during the load ({str(e).strip()}), and the load with"
                    " it: run it again once the database answers (with a multi-host URL, on the new primary)"
                ) from None
        finally:
            conn.close()
        self._refresh_outcome_names()

    # -- police.uk ----------------------------------------------------------------------------
    def map_points_bbox(self) -> tuple[float, float, float, float] | None:
        rows = self._db.all("SELECT min(lng), min(lat), max(lng), max(lat) FROM streets")
        return None if not rows or rows[0][0] is None else (rows[0][0], rows[0][1], rows[0][2], rows[0][3])

    def months(self) -> list[MonthSummary]:
        return crime_reads.months(self._db)

    def crimes(self, query: CrimeQuery) -> Iterator[Crime]:
        return crime_reads.crimes(self._db, query, self._outcome_name)

    def crimes_json(self, query: CrimeQuery, limit: int) -> JsonList:
        if query.month is None:
            return super().crimes_json(query, limit)
        return crime_reads.crimes_json(self._db, query, limit)

    def crimes_exceed(self, query: CrimeQuery, n: int) -> bool:
        if query.month is None:
            return super().crimes_exceed(query, n)
        return crime_reads.crimes_exceed(self._db, query, n)

    def outcomes_json(self, query: CrimeQuery, limit: int) -> JsonList:
        if query.month is None:
            return super().outcomes_json(query, limit)
        return crime_reads.outcomes_json(self._db, query, limit, self._outcome_json)

    def street(self, street_id: int) -> Street | None:
        return crime_reads.find_street(self._db, street_id)

    def nearest_street(self, lng: float, lat: float) -> Street | None:
        return crime_reads.nearest_street(self._db, lng, lat)

    def crime_by_persistent_id(self, persistent_id: str) -> Crime | None:
        return crime_reads.crime_by_persistent_id(self._db, persistent_id, self._outcome_name)

    def outcome_history(self, persistent_id: str) -> list[OutcomeEvent]:
        return crime_reads.outcome_history(self._db, persistent_id, self._outcome_name)

    def outcomes(self, query: CrimeQuery) -> Iterator[OutcomeEvent]:
        return crime_reads.outcomes(self._db, query, self._outcome_name)

    # -- stop and search: crimemap.store.postgis.stops -----------------------------------
    def stop_months(self) -> list[MonthSummary]:
        return stop_store.stop_months(self._all)

    def stops(self, query: StopQuery) -> Iterator[Stop]:
        return stop_store.stops(self._stream, query)

    def stops_json(self, query: StopQuery, limit: int) -> JsonList:
        if query.month is None:
            return super().stops_json(query, limit)
        return stop_store.stops_json(self._one, query, limit)

    def stop_location_known(self, street_id: int) -> bool:
        return self.street(street_id) is not None or stop_store.location_known(self._one, street_id)

    def generation(self) -> str:
        row = self._db.one("SELECT value FROM meta WHERE key = 'generation'")
        return row[0] if row else "0"

    def replication(self) -> Replication:
        row = self._db.one(
            "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,"
            " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
        )
        assert row is not None
        standby, received, replayed, since_last_commit = row
        if not standby:
            return Replication(False, None)
        if received is None or replayed is None:  # not streaming: PostgreSQL's own measure is all there is
            return Replication(True, since_last_commit)
        return Replication(True, self._replay_clock.lag(lsn(received), lsn(replayed), since_last_commit))

    def last_updated(self) -> dt.datetime | None:
        row = self._db.one("SELECT value FROM meta WHERE key = 'last_updated'")
        return dt.datetime.fromisoformat(row[0]) if row else None

    def stats(self, query: StatsQuery) -> list[tuple[Any, ...]]:
        return count_reads.crime_stats(stat_reads.PostgisCounts(self._db.all), query, self._outcome_slug)

    def _outcome_slug(self, code: int) -> str | None:
        name = self._outcome_name(code)
        return vocab.outcome_by_name(name).slug if name else None

    def neighbourhood_stats(self, query: StatsQuery, boundaries: str) -> list[tuple[Any, ...]] | None:
        return count_reads.neighbourhood_stats(stat_reads.PostgisCounts(self._db.all), query, boundaries)

    def stop_stats(self, query: StopStatsQuery) -> list[tuple[Any, ...]]:
        return count_reads.stop_stats(stat_reads.PostgisCounts(self._db.all), query)

    # -- feature tables -----------------------------------------------------------------------
    def tables(self) -> list[TableInfo]:
        return table_reads.tables(self._db)

    def table(self, table_id: str) -> TableInfo | None:
        return table_reads.table(self._db, table_id)

    def features(self, query: FeatureQuery) -> Iterator[Feature]:
        for attempt in (1, 2):
            source = table_reads.require(self._db, query.table)
            try:
                yield from table_reads.features(self._db, source, query)
                return
            except TableChanged:
                if attempt == 2:  # replaced twice while being looked up: let the caller ask again
                    raise

    def arrow_features(self, query: FeatureQuery) -> Iterator[ArrowFeatures] | None:
        read = columnar_reads.plan(table_reads.require(self._db, query.table), query)
        return columnar_reads.features(self._db, read) if read is not None else None

    def feature_geojson(self, query: FeatureQuery, layout: Layout) -> GeoJSONPage | None:
        for attempt in (1, 2):
            source = table_reads.require(self._db, query.table)
            try:
                return table_reads.feature_geojson(self._db, source, query, layout)
            except TableChanged:
                if attempt == 2:
                    raise
        return None

    def feature(self, table_id: str, gx_id: int, columns: tuple[str, ...] | None = None) -> Feature | None:
        source = table_reads.resolve(self._db, table_id)
        return table_reads.feature(self._db, source, gx_id, columns) if source is not None else None

    # -- police.uk documents: crimemap.store.documents -----------------------------------------
    def document(self, force: str, neighbourhood: str, kind: str) -> bytes | None:
        return _DOCUMENTS.one(self._db.all(_DOCUMENTS.select_one, (force, neighbourhood, kind)))

    def documents(self, kind: str, force: str | None = None) -> list[tuple[str, str, bytes]]:
        sql, params = _DOCUMENTS.kind_query(kind, force)
        return _DOCUMENTS.many(self._db.all(sql, params))

    # -- for the modules beside this one ----------------------------------------------------------
    def _all(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return self._db.all(sql, params)

    def _one(self, sql: str, params: Any = ()) -> tuple[Any, ...] | None:
        return self._db.one(sql, params)

    def _stream(self, sql: str, params: Any = ()) -> Iterator[tuple[Any, ...]]:
        return self._db.stream(sql, params)
