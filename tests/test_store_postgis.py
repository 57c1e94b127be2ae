"""What the PostGIS store does beyond the conformance suite: its schema's upgrade, its two ways to load, its
outcome dating, its time budget and its binary COPY rows.

A store written by crimemap's first release is a real one: the dump of
``tests/fixtures/store-v1-postgis.sql.gz``, made by the first release's own code
from the same inputs as the embedded store's first-release file (see
``tests/make_postgis_v1.py``).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from conftest import POLICEUK
from crimemap import geo
from crimemap.errors import ReadTimeout, StoreError
from crimemap.load.policeuk import load_policeuk
from crimemap.load.policeuk_files import find_sources
from crimemap.load.policeuk_reader import read_outcomes, read_street
from crimemap.query import And, Circle, Compare, CrimeQuery, FeatureQuery
from crimemap.store.catalogue import CRIMES_TABLE
from crimemap.store.postgis import PostGISStore
from crimemap.store.postgis.copy_binary import SIGNATURE, TRAILER, CopyRows
from crimemap.store.postgis.schema import INDEXES, SCHEMA_VERSION, ensure_schema
from crimemap.store.postgis.upgrade import upgrade
from crimemap.store.sqlite import SQLiteStore
from pg_server import fresh_store_url
from wire_datasets import V1_STORE, postgis_v1_url

CITY = "city-of-london"
ST_PAULS = (-0.0983, 51.5138)


def sql(url: str, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def v1_url() -> str:
    """A fresh schema holding the store the first release wrote (schema 1)."""
    return postgis_v1_url()


@pytest.fixture
def url() -> str:
    return fresh_store_url()


@pytest.fixture
def stores() -> Iterator[list[PostGISStore]]:
    opened: list[PostGISStore] = []
    yield opened
    for s in opened:
        s.close()


# -- schema 2, and the upgrade of a first-release store --------------------------------------------


def test_a_first_release_store_is_upgraded_in_place_and_answers_as_the_embedded_one(
    v1_url: str, tmp_path: Path, stores: list[PostGISStore]
) -> None:
    assert sql(v1_url, "SELECT version FROM crimemap_schema") == [(1,)]
    stores.append(pg := PostGISStore(v1_url))
    assert sql(v1_url, "SELECT version FROM crimemap_schema") == [(SCHEMA_VERSION,)]
    assert sql(v1_url, "SELECT count(*), count(json), count(*) FILTER (WHERE cell >= 0) FROM crimes") == [
        (3000, 3000, sql(v1_url, "SELECT count(*) FROM crime_points")[0][0])
    ]
    assert sql(v1_url, "SELECT count(*) FROM outcomes") == [(2137,)]
    assert sql(v1_url, "SELECT to_regclass('crimes_v1')") == [(None,)]
    shutil.copyfile(V1_STORE, tmp_path / "v1.sqlite")
    with SQLiteStore(tmp_path / "v1.sqlite") as lite:  # the embedded first-release file, upgraded in its turn
        assert pg.months() == lite.months()
        for month in ("2024-02", "2024-03"):
            for radius in (200.0, geo.ONE_MILE_M, 20_000.0):
                query = CrimeQuery(month=month, area=Circle((-0.1276, 51.5073), radius))
                assert pg.crimes_json(query, 10_001) == lite.crimes_json(query, 10_001)
                assert pg.outcomes_json(query, 10_001) == lite.outcomes_json(query, 10_001)
        some = [c for c in lite.crimes(CrimeQuery(month="2024-02")) if c.persistent_id][:40]
        for crime in some:
            assert pg.crime_by_persistent_id(crime.persistent_id) == crime
            assert pg.outcome_history(crime.persistent_id) == lite.outcome_history(crime.persistent_id)
        assert list(pg.features(FeatureQuery("places"))) == list(lite.features(FeatureQuery("places")))


def test_an_upgrade_that_fails_leaves_the_first_release_store_as_it_was(v1_url: str, stores: list[Any]) -> None:
    before = sql(v1_url, "SELECT count(*), sum(id), sum(length(street_name)) FROM crimes")

    def fails_at_the_end(conn: psycopg.Connection[Any], version: int) -> None:
        upgrade(conn, version)
        raise RuntimeError("the upgrade was stopped")

    with psycopg.connect(v1_url, autocommit=True) as conn, pytest.raises(RuntimeError):
        ensure_schema(conn, fails_at_the_end)
    assert sql(v1_url, "SELECT version FROM crimemap_schema") == [(1,)]
    assert sql(v1_url, "SELECT count(*), sum(id), sum(length(street_name)) FROM crimes") == before
    assert sql(v1_url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'crimes'"
               " AND column_name = 'geom' AND table_schema = current_schema()") == [(1,)]  # fmt: skip
    stores.append(PostGISStore(v1_url))  # and a later open upgrades it
    assert sql(v1_url, "SELECT version FROM crimemap_schema") == [(SCHEMA_VERSION,)]


def test_processes_opening_a_first_release_store_at_once_upgrade_it_once(
    v1_url: str, stores: list[PostGISStore]
) -> None:
    opened: list[PostGISStore] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            opened.append(PostGISStore(v1_url, pool_size=1))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stores.extend(opened)
    assert not errors and len(opened) == 4
    assert {s.months()[0].crimes for s in opened} == {1500}
    assert sql(v1_url, "SELECT count(*) FROM crimes") == [(3000,)]


def test_a_store_written_by_a_newer_crimemap_is_refused(url: str, stores: list[PostGISStore]) -> None:
    stores.append(PostGISStore(url))
    sql(url, "UPDATE crimemap_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer crimemap"):
        PostGISStore(url)


def test_a_store_made_before_the_index_of_category_and_force_pairs_gains_it_when_opened(
    url: str, stores: list[PostGISStore]
) -> None:
    first = PostGISStore(url)
    stores.append(first)
    load_policeuk(first, [POLICEUK / "2016-03" / f"2016-03-{CITY}-street.csv"])
    where = And((Compare("category", "=", "burglary"), Compare("reported_by", "=", "City of London Police")))
    before = list(first.features(FeatureQuery(CRIMES_TABLE, where=where)))
    sql(url, "DROP INDEX crimes_by_kind")
    stores.append(PostGISStore(url))
    assert sql(url, "SELECT to_regclass('crimes_by_kind') IS NOT NULL") == [(True,)]
    after = list(stores[-1].features(FeatureQuery(CRIMES_TABLE, where=where)))
    assert after == before and before


# -- loads: in place, and in bulk -----------------------------------------------------------------


def city_crimes(month: str) -> list[Any]:
    return list(read_street(find_sources([POLICEUK / month / f"{month}-{CITY}-street.csv"])[0]))


def test_a_load_as_large_as_the_store_builds_new_tables_and_readers_keep_the_old_until_it_commits(
    url: str, stores: list[PostGISStore]
) -> None:
    stores.append(store := PostGISStore(url))
    load_policeuk(store, [POLICEUK / "2016-01", POLICEUK / "2016-02"])
    january = list(store.crimes(CrimeQuery(month="2016-01")))
    february = store.crimes_json(CrimeQuery(month="2016-02", area=Circle(ST_PAULS, geo.ONE_MILE_M)), 10_001)
    assert february.found > 0
    march = city_crimes("2016-03")
    seen = []
    with store.writer() as w:
        w.expect(1_000_000)  # as large as a store: written in bulk
        w.replace_crimes("2016-02", CITY, [])  # February's crimes replaced by none
        w.replace_crimes("2016-03", CITY, march)
        assert sql(url, "SELECT to_regclass('crimes_next')") == [(None,)]  # the new table is the load's own

        def read() -> None:
            seen.append(store.crimes_json(CrimeQuery(month="2016-02", area=Circle(ST_PAULS, geo.ONE_MILE_M)), 10_001))

        reader = threading.Thread(target=read)
        reader.start()
        reader.join(30)
    assert seen == [february]  # read while the load was writing
    assert list(store.crimes(CrimeQuery(month="2016-01"))) == january  # kept
    assert list(store.crimes(CrimeQuery(month="2016-02"))) == []  # replaced
    assert store.months()[0].crimes == len(march)
    indexes = {name for (name,) in sql(url, "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
    assert set(INDEXES) <= indexes and not any(name.endswith("_next") for name in indexes)
    assert sql(url, "SELECT to_regclass('crimes_next'), to_regclass('outcomes_next')") == [(None, None)]
    assert sql(url, "SELECT count(*) FROM crime_points") == sql(url, "SELECT count(*) FROM crimes WHERE cell >= 0")


def test_a_bulk_load_that_fails_leaves_the_store_as_it_was(url: str, stores: list[PostGISStore]) -> None:
    stores.append(store := PostGISStore(url))
    load_policeuk(store, [POLICEUK / "2016-01"])
    before = (store.months(), list(store.crimes(CrimeQuery(month="2016-01"))))
    with pytest.raises(RuntimeError), store.writer() as w:
        w.expect(1_000_000)
        w.replace_crimes("2016-03", CITY, city_crimes("2016-03"))
        raise RuntimeError("the load failed half way")
    assert (store.months(), list(store.crimes(CrimeQuery(month="2016-01")))) == before
    assert sql(url, "SELECT to_regclass('crimes_next')") == [(None,)]


def test_a_crime_id_stored_twice_is_refused_in_bulk_too(url: str, stores: list[PostGISStore]) -> None:
    stores.append(store := PostGISStore(url))
    crimes = city_crimes("2016-01")
    with store.writer() as w:
        w.replace_crimes("2016-01", CITY, crimes)
    with pytest.raises(StoreError, match="crime id"), store.writer() as w:
        w.expect(1_000_000)
        w.replace_crimes("2016-02", CITY, [c._replace(month="2016-02") for c in crimes[:3]])
    assert [m.month for m in store.months()] == ["2016-01"]


def test_two_loads_at_once_are_serialised(url: str, stores: list[PostGISStore]) -> None:
    stores.append(store := PostGISStore(url))
    events: list[str] = []
    first_in = threading.Event()

    def second() -> None:
        first_in.wait(10)
        with store.writer() as w:
            events.append("second writes")
            w.replace_crimes("2016-02", CITY, city_crimes("2016-02"))

    other = threading.Thread(target=second)
    other.start()
    with store.writer() as w:
        first_in.set()
        w.replace_crimes("2016-01", CITY, city_crimes("2016-01"))
        time.sleep(0.5)
        events.append("first commits")
    other.join(30)
    assert events == ["first commits", "second writes"]
    assert [m.month for m in store.months()] == ["2016-02", "2016-01"]


def test_outcomes_loaded_later_redate_only_the_crimes_they_concern(url: str, stores: list[PostGISStore]) -> None:
    stores.append(store := PostGISStore(url))
    load_policeuk(store, [POLICEUK / m / f"{m}-{CITY}-street.csv" for m in ("2016-01", "2016-02")])
    before = dict(sql(url, "SELECT id, xmin::text FROM crimes"))
    may = POLICEUK / "2016-05" / f"2016-05-{CITY}-outcomes.csv"
    load_policeuk(store, [may])
    concerned = {o.persistent_id for o in read_outcomes(find_sources([may])[0])}
    after = sql(url, "SELECT id, xmin::text, encode(pid, 'hex'), outcome_month, outcome, json FROM crimes")
    touched = {cid for cid, xmin, *_ in after if before[cid] != xmin}
    assert touched, "some crimes of January and February have outcomes recorded in May"
    for cid, _, pid, month, outcome, json in after:
        if cid in touched:
            assert pid in concerned and outcome is not None
            assert month == 2016 * 12 + 4 and '"date":"2016-05"},"persistent_id"' in json
    crime = store.crime_by_persistent_id(next(pid for cid, _, pid, *_ in after if cid in touched))
    assert crime is not None and crime.outcome_month == "2016-05"


# -- the time budget -------------------------------------------------------------------------------


def test_a_read_past_the_time_budget_is_stopped(url: str, stores: list[PostGISStore]) -> None:
    stores.append(store := PostGISStore(url, statement_timeout_s=0.05))
    with pytest.raises(ReadTimeout, match="0.05 s"):
        store._one("SELECT pg_sleep(1)")
    assert store.months() == []  # the connection is fine afterwards


def test_the_time_budget_comes_from_the_environment(
    url: str, stores: list[PostGISStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRIMEMAP_STATEMENT_TIMEOUT", "0.25")
    stores.append(store := PostGISStore(url))
    assert store.statement_timeout_s == 0.25
    assert store._one("SHOW statement_timeout") == ("250ms",)


def test_a_read_run_again_on_a_connection_is_planned_once_not_for_each_call(
    url: str, stores: list[PostGISStore]
) -> None:
    # psycopg prepares a statement run five times; PostgreSQL then planned it anew for every call's values.
    stores.append(store := PostGISStore(url, pool_size=1))
    load_policeuk(store, [POLICEUK])
    month = store.latest_month()
    query = CrimeQuery(month=month, area=Circle((-0.0915, 51.5155), 500.0))
    answers = {store.crimes_json(query, 10_001).body for _ in range(12)}
    assert len(answers) == 1 and answers != {b"[]"}
    generic, custom = store._one(
        "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) FROM pg_prepared_statements"
    )
    assert generic > 0 and custom == 0


# -- binary COPY rows ------------------------------------------------------------------------------


def test_binary_copy_rows_are_read_back_as_they_were_made(url: str, stores: list[PostGISStore]) -> None:
    stores.append(PostGISStore(url))
    rnd = np.random.default_rng(1)
    n = 500
    ints = rnd.integers(-(2**62), 2**62, n)
    small = rnd.integers(-30_000, 30_000, n).astype(np.int16)
    floats = rnd.normal(size=n) * 1e6
    present = rnd.random(n) > 0.2
    raw = rnd.integers(0, 256, (n, 32)).astype(np.uint8)
    words = ["", "a", "é", "tab\there", "line\nbreak", "back\\slash", '"quoted"', "日本", "x" * 3000]
    texts = pa.array([None if rnd.random() < 0.1 else str(rnd.choice(words)) for _ in range(n)], pa.string())
    rows = CopyRows(n)
    rows.fixed("int8", ints)
    rows.fixed("float8", floats, present)
    rows.text(texts)
    rows.fixed("int2", small)
    rows.raw(raw, ~present)
    rows.fixed("int4", np.arange(n))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE copied (a int8, b float8, c text, d int2, e bytea, n int4)")
        with conn.cursor().copy("COPY copied FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(SIGNATURE + rows.encode() + TRAILER)
        back = conn.execute("SELECT a, b, c, d, e FROM copied ORDER BY n").fetchall()
    assert back == [
        (int(a), float(b) if p else None, c, int(d), None if p else bytes(r))
        for a, b, p, c, d, r in zip(ints, floats, present, texts.to_pylist(), small, raw, strict=True)
    ]
