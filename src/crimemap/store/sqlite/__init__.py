"""The embedded store: one SQLite file, standard-library ``sqlite3``, no set-up.

WAL mode lets any number of readers (API worker threads, other processes) read
a consistent snapshot while one load writes; a load is one transaction, so a
failure or a kill -9 halfway leaves the file as it was.

The store is split by job, each module beside the others:

- :mod:`~crimemap.store.sqlite.schema`: the tables, and upgrading older files
  (:mod:`~crimemap.store.sqlite.upgrade`);
- :mod:`~crimemap.store.sqlite.connection`: connections and the read time budget;
- :mod:`~crimemap.store.sqlite.crimes`: police.uk reads;
- :mod:`~crimemap.store.sqlite.stops`: stops and searches, read and written;
- :mod:`~crimemap.store.sqlite.tables`: feature tables, the crimes among them;
- :mod:`~crimemap.store.sqlite.writer`: loads;
- :mod:`~crimemap.store.sqlite.dialect`: how the shared query compiler speaks SQLite.

Example::

    with SQLiteStore("crimes.sqlite") as store:
        store.months()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crimemap import vocab
from crimemap.months import format_month
from crimemap.query import CrimeQuery, FeatureQuery, StopQuery
from crimemap.records import Crime, Feature, FeatureColumns, OutcomeEvent, Stop, Street
from crimemap.stats_query import StatsQuery
from crimemap.stats_stops_query import StopStatsQuery
from crimemap.store import count_reads
from crimemap.store.base import JsonList, MonthSummary, Store, StoreError, StoreWriter, TableInfo
from crimemap.store.columnar import ArrowFeatures
from crimemap.store.documents import DOCUMENTS_TABLE, Documents
from crimemap.store.geojson_sql import GeoJSONPage, Layout
from crimemap.store.records import FORCE_IDS
from crimemap.store.sqlite import columnar as columnar_reads
from crimemap.store.sqlite import crime_table
from crimemap.store.sqlite import crimes as crime_reads
from crimemap.store.sqlite import stats as stat_reads
from crimemap.store.sqlite import stops as stop_store
from crimemap.store.sqlite import tables as table_reads
from crimemap.store.sqlite.connection import Connections, connect_for_writing
from crimemap.store.sqlite.schema import SchemaError, check_readable, ensure_schema
from crimemap.store.sqlite.upgrade import upgrade_from_1
from crimemap.store.sqlite.writer import SQLiteWriter
from crimemap.store.stats_stops import no_stops

__all__ = ["SQLiteStore"]

_DOCUMENTS = Documents("?")


DRIVER_MIN_ROWS = 100_000
"""Loads of this many rows (crimes, outcomes and stops) or more are written through the ADBC driver, in a
process of its own (:mod:`~crimemap.store.sqlite.load_connection`): below it, starting that process costs more
than binding the rows from Python. Stops count since their rows are Arrow tables
(:func:`crimemap.store.stop_rows.compose_table`), as crimes' are."""


class SQLiteStore(Store):
    """The embedded store (see the module docstring)."""

    writer_type = SQLiteWriter

    def __init__(
        self, path: str | Path, *, readonly: bool = False, on_upgrade: Callable[[int, int], None] | None = None
    ) -> None:
        self.path = Path(path)
        self.url = str(self.path)
        self.readonly = readonly
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise StoreError(f"no store at {self.path}")
        self._db = Connections(self.path, readonly=readonly)
        try:
            if readonly:
                check_readable(self._db.reader().conn, str(self.path))
            else:
                with self._db.writing() as conn:
                    ensure_schema(conn, lambda c: upgrade_from_1(c, on_upgrade))
                    stat_reads.ensure_built(conn)
                    stat_reads.ensure_neighbourhoods_kept(conn)
        except SchemaError as e:
            self._db.close()
            raise StoreError(str(e)) from None
        self._outcome_names: dict[int, str] = {}
        self._outcome_jsons: dict[int, bytes] = {}
        self._refresh_outcome_names()
        self._lsoas: dict[int, tuple[str, str]] = {}
        self._decoders = crime_table.Decoders(self._outcome_name, self._lsoa)

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def _refresh_outcome_names(self) -> None:
        rows = self._db.reader().execute("SELECT code, name, json FROM outcome_kinds").fetchall()
        self._outcome_names = {code: name for code, name, _ in rows}
        self._outcome_jsons = {code: json.encode() for code, _, json in rows}

    def _outcome_json(self, code: int) -> bytes:
        """An outcome code's ``{"code", "name"}`` object."""
        found = self._outcome_jsons.get(code)
        if found is None:
            self._refresh_outcome_names()
            found = self._outcome_jsons.get(code, b"null")
        return found

    def _outcome_name(self, code: int) -> str | None:
        name = self._outcome_names.get(code)
        if name is None:  # a code another process's load added
            self._refresh_outcome_names()
            name = self._outcome_names.get(code)
        return name

    @contextmanager
    def writer(self, rows: int = 0) -> Iterator[StoreWriter]:
        """A load's transaction; one of :data:`DRIVER_MIN_ROWS` rows or more goes through the driver."""
        if self.readonly:
            raise StoreError("this store is open read-only")
        with self._db.loading(through_driver=rows >= DRIVER_MIN_ROWS) as conn:
            conn.execute("BEGIN IMMEDIATE")
            w = SQLiteWriter(conn)
            try:
                yield w
                w.finish()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self._refresh_outcome_names()

    # -- police.uk ----------------------------------------------------------------------------
    def map_points_bbox(self) -> tuple[float, float, float, float] | None:
        row = self._db.reader().one("SELECT min(lng), min(lat), max(lng), max(lat) FROM streets")
        return None if row is None or row[0] is None else (row[0], row[1], row[2], row[3])

    def months(self) -> list[MonthSummary]:
        rows = self._db.reader().execute(
            "SELECT month, group_concat(force), sum(rows) FROM ("
            " SELECT month, force, rows FROM loads WHERE kind = 'street' ORDER BY month, force"
            ") GROUP BY month ORDER BY month DESC"
        )
        return [
            MonthSummary(format_month(m), tuple(FORCE_IDS[int(f)] for f in forces.split(",")), n)
            for m, forces, n in rows
        ]

    def crimes(self, query: CrimeQuery) -> Iterator[Crime]:
        return crime_reads.crimes(self._db.reader(), query, self._outcome_name)

    def crimes_json(self, query: CrimeQuery, limit: int) -> JsonList:
        if query.month is None:
            return super().crimes_json(query, limit)
        with self._db.reader().snapshot() as db:
            return crime_reads.crimes_json(db, query, limit)

    def outcomes_json(self, query: CrimeQuery, limit: int) -> JsonList:
        if query.month is None:
            return super().outcomes_json(query, limit)
        with self._db.reader().snapshot() as db:
            return crime_reads.outcomes_json(db, query, limit, self._outcome_json)

    def crimes_exceed(self, query: CrimeQuery, n: int) -> bool:
        if query.month is None:
            return super().crimes_exceed(query, n)
        return self.crimes_json(query, n + 1).found > n

    def street(self, street_id: int) -> Street | None:
        return crime_reads.find_street(self._db.reader(), street_id)

    def nearest_street(self, lng: float, lat: float) -> Street | None:
        return crime_reads.nearest_street(self._db.reader(), lng, lat)

    def crime_by_persistent_id(self, persistent_id: str) -> Crime | None:
        return crime_reads.crime_by_persistent_id(self._db.reader(), persistent_id, self._outcome_name)

    def outcome_history(self, persistent_id: str) -> list[OutcomeEvent]:
        return crime_reads.outcome_history(self._db.reader(), persistent_id, self._outcome_name)

    def outcomes(self, query: CrimeQuery) -> Iterator[OutcomeEvent]:
        return crime_reads.outcomes(self._db.reader(), query, self._outcome_name)

    # -- stop and search: crimemap.store.sqlite.stops ------------------------------------------
    def stop_months(self) -> list[MonthSummary]:
        db = self._db.reader()
        return stop_store.stop_months(db) if self._has_stops() else []

    def stops(self, query: StopQuery) -> Iterator[Stop]:
        db = self._db.reader()
        return stop_store.stops(db, query) if self._has_stops() else iter(())

    def stops_json(self, query: StopQuery, limit: int) -> JsonList:
        if query.month is None:
            return super().stops_json(query, limit)
        if not self._has_stops():
            return JsonList(0, b"[]")
        with self._db.reader().snapshot() as db:
            return stop_store.stops_json(db, query, limit)

    def stop_location_known(self, street_id: int) -> bool:
        if self.street(street_id) is not None:
            return True
        return self._has_stops() and stop_store.location_known(self._db.reader(), street_id)

    # -- police.uk documents: crimemap.store.documents -----------------------------------------
    def document(self, force: str, neighbourhood: str, kind: str) -> bytes | None:
        if not self._has_documents():
            return None
        return _DOCUMENTS.one(self._db.reader().execute(_DOCUMENTS.select_one, (force, neighbourhood, kind)).fetchall())

    def documents(self, kind: str, force: str | None = None) -> list[tuple[str, str, bytes]]:
        if not self._has_documents():
            return []
        sql, params = _DOCUMENTS.kind_query(kind, force)
        return _DOCUMENTS.many(self._db.reader().execute(sql, params).fetchall())

    def _has_documents(self) -> bool:
        """A read-only open of a file an older crimemap wrote has no documents table."""
        return not self.readonly or (
            self._db.reader().one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (DOCUMENTS_TABLE,))
            is not None
        )

    def _has_stops(self) -> bool:
        """A read-only open of a file an older crimemap wrote has no stops table (see the stops module)."""
        return not self.readonly or stop_store.has_stops_table(self._db.reader())

    def generation(self) -> str:
        row = self._db.reader().one("SELECT value FROM meta WHERE key = 'generation'")
        return row[0] if row else "0"

    def last_updated(self) -> dt.datetime | None:
        row = self._db.reader().one("SELECT value FROM meta WHERE key = 'last_updated'")
        return dt.datetime.fromisoformat(row[0]) if row else None

    def stats(self, query: StatsQuery) -> list[tuple[Any, ...]]:
        with self._db.reader().snapshot() as db:
            return count_reads.crime_stats(stat_reads.SqliteCounts(db), query, self._outcome_slug)

    def _outcome_slug(self, code: int) -> str | None:
        name = self._outcome_name(code)
        return vocab.outcome_by_name(name).slug if name is not None else None

    def neighbourhood_stats(self, query: StatsQuery, boundaries: str) -> list[tuple[Any, ...]] | None:
        with self._db.reader().snapshot() as db:
            return count_reads.neighbourhood_stats(stat_reads.SqliteCounts(db), query, boundaries)

    def stop_stats(self, query: StopStatsQuery) -> list[tuple[Any, ...]]:
        if not self._has_stops():
            return no_stops(query)
        with self._db.reader().snapshot() as db:
            return count_reads.stop_stats(stat_reads.SqliteCounts(db), query)

    # -- feature tables -----------------------------------------------------------------------
    def tables(self) -> list[TableInfo]:
        return table_reads.tables(self._db.reader())

    def table(self, table_id: str) -> TableInfo | None:
        return table_reads.table(self._db.reader(), table_id)

    def features(self, query: FeatureQuery) -> Iterator[Feature]:
        """Features as records; the SQLite store keeps booleans as 0 and 1 here (see :meth:`feature_columns`)."""
        db = self._db.reader()
        source = table_reads.require(db, query.table)
        if source.clustered:
            return table_reads.feature_columns(db, source, query, self._decoders).features()
        return table_reads.features(db, source, query)

    def arrow_features(self, query: FeatureQuery) -> Iterator[ArrowFeatures] | None:
        read = columnar_reads.plan(table_reads.require(self._db.reader(), query.table), query)
        return columnar_reads.features(self.path, read) if read is not None else None

    def feature_columns(self, query: FeatureQuery) -> FeatureColumns:
        with self._db.reader().snapshot() as db:
            return table_reads.feature_columns(db, table_reads.require(db, query.table), query, self._decoders)

    engine_geojson = False
    """Whether SQLite writes pages of GeoJSON itself (:func:`crimemap.store.sqlite.tables.feature_geojson`).

    Off, by measurement: written column by column in SQL, a crime costs SQLite more
    than the columnar Python path costs (CPU time, densest mile of
    ``bench-data``, 850 crimes: 7.3 ms against 5.7 ms; a 10,000-feature page of
    the NYC table, whose 17-digit coordinates ``printf`` cannot write exactly:
    65 ms against 27 ms). Most of it is doubles: ``printf('%!.15g')`` and the
    check that it is exact cost about 0.4 us each. The spelling is kept, and
    tested byte for byte against Python, for when stored fragments make it win.
    """

    def feature_geojson(self, query: FeatureQuery, layout: Layout) -> GeoJSONPage | None:
        if not self.engine_geojson:
            return None
        db = self._db.reader()
        return table_reads.feature_geojson(db, table_reads.require(db, query.table), query, layout)

    def feature(self, table_id: str, gx_id: int, columns: tuple[str, ...] | None = None) -> Feature | None:
        db = self._db.reader()
        source = table_reads.resolve(db, table_id)
        return table_reads.feature(db, source, gx_id, columns, self._decoders) if source is not None else None

    def _lsoa(self, code: int) -> tuple[str, str]:
        found = self._lsoas.get(code)
        if found is None:  # one this process has not seen yet: read them all again
            rows = self._db.reader().execute("SELECT code, lsoa_code, lsoa_name FROM lsoas").fetchall()
            self._lsoas = {c: (lc, ln) for c, lc, ln in rows}
            found = self._lsoas.get(code, ("", ""))
        return found


def upgrade(path: str | Path, progress: Callable[[int, int], None] | None = None) -> bool:
    """Upgrade the store file at ``path`` in place; whether there was anything to do."""
    conn = connect_for_writing(Path(path))
    try:
        return ensure_schema(conn, lambda c: upgrade_from_1(c, progress))
    except SchemaError as e:
        raise StoreError(str(e)) from None
    finally:
        conn.close()
