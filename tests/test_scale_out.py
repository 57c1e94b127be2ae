"""Scale-out on PostgreSQL, on loopback: loads on a primary, reads on its hot standby, through PgBouncer.

The primary, the standby (``pg_basebackup -R``) and PgBouncer in transaction mode
are real processes started by :mod:`pg_replica`; the API is a real ``crimemap serve``.
These are PostGIS-only by nature: the embedded store has no replicas nor poolers.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from conftest import POLICEUK
from crimemap.errors import ReadTimeout, ReplicaConflict, StoreError
from crimemap.load.policeuk import load_policeuk
from crimemap.store.postgis import PostGISStore
from crimemap.store.postgis.connection import Database
from crimemap.store.sqlite import SQLiteStore
from pg_replica import ReplicaSet, replica_set
from serve_process import serving

pytestmark = pytest.mark.heavy  # a primary, a standby and PgBouncer of its own: scheduled first under xdist

MONTHS = ("2016-01", "2016-02")
"""City of London months from the shared data: small, so that a load and its replay take a moment."""
SPOTS = ((51.515, -0.09), (51.5136, -0.0984), (51.518, -0.081))


def _requests(months: tuple[str, ...]) -> list[str]:
    paths = ["/api/crimes-street-dates", "/api/forces", "/stats/crimes?group=category"]
    for month in months:
        for lat, lng in SPOTS:
            paths += [
                f"/api/crimes-street/all-crime?lat={lat}&lng={lng}&date={month}",
                f"/api/crimes-at-location?lat={lat}&lng={lng}&date={month}",
                f"/api/outcomes-at-location?lat={lat}&lng={lng}&date={month}",
                f"/api/crimes-street/burglary?lat={lat}&lng={lng}&date={month}",
            ]
    return paths


@dataclass
class Loaded:
    """A database loaded on the primary and replayed on the standby."""

    replicas: ReplicaSet
    database: str

    @property
    def primary(self) -> str:
        return self.replicas.primary.url(self.database)

    @property
    def standby(self) -> str:
        return self.replicas.standby.url(self.database)

    @property
    def bouncer(self) -> str:
        return self.replicas.bouncer.url(self.database)


def _load(replicas: ReplicaSet, months: tuple[str, ...]) -> Loaded:
    loaded = Loaded(replicas, replicas.fresh_database())
    with PostGISStore(loaded.primary) as store:
        load_policeuk(store, [POLICEUK / m for m in months])
    replicas.wait_for_replay()
    return loaded


@pytest.fixture(scope="module")
def loaded() -> Loaded:
    return _load(replica_set(), MONTHS)


def _answers(base: str, paths: list[str]) -> dict[str, tuple[int, bytes]]:
    with httpx.Client(base_url=base, timeout=60) as client:
        return {p: (r.status_code, r.content) for p in paths for r in [client.get(p)]}


# -- through PgBouncer in transaction mode --------------------------------------------------------


def test_many_concurrent_requests_through_pgbouncer_in_transaction_mode_all_answer_as_direct(
    loaded: Loaded,
) -> None:
    paths = _requests(MONTHS)
    with serving(loaded.standby, "--workers", "2") as direct:
        expected = _answers(direct, paths)
    assert all(status == 200 for status, _ in expected.values()), expected
    rounds = 8  # every path many times on every pooled connection: psycopg would prepare them all
    with serving(loaded.bouncer, "--workers", "2", env={"CRIMEMAP_PG_POOLER": "transaction"}) as pooled:
        clients: queue.SimpleQueue[httpx.Client] = queue.SimpleQueue()
        opened = [httpx.Client(base_url=pooled, timeout=20) for _ in range(16)]
        for client in opened:
            clients.put(client)

        def get(path: str) -> tuple[str, int, bytes]:
            client = clients.get()
            try:
                r = client.get(path)
            finally:
                clients.put(client)
            return path, r.status_code, r.content

        try:
            with ThreadPoolExecutor(len(opened)) as pool:
                got = list(pool.map(get, paths * rounds))
        finally:
            for client in opened:
                client.close()
    wrong = [(path, status, body[:200]) for path, status, body in got if (status, body) != expected[path]]
    assert len(got) == len(paths) * rounds >= 200
    assert wrong == []


def test_store_reads_from_many_threads_through_pgbouncer_meet_no_other_clients_prepared_statements(
    loaded: Loaded,
) -> None:
    def reads(store: PostGISStore) -> tuple[object, ...]:
        return (store.months(), store.generation(), store.map_points_bbox(), store.last_updated())

    with PostGISStore(loaded.standby) as direct:
        expected = reads(direct)
    with PostGISStore(loaded.bouncer, pooler="transaction") as pooled, ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda _: reads(pooled), range(300)))
    assert [g for g in got if g != expected] == []


def test_each_read_through_the_pooler_has_its_budget_and_leaves_no_session_state_behind(loaded: Loaded) -> None:
    db = Database(loaded.bouncer, statement_timeout_s=7, pooler="transaction")
    db.open_pool()
    try:
        for _ in range(20):
            assert db.one("SHOW statement_timeout") == ("7s",)
            assert db.one("SHOW jit") == ("off",)
    finally:
        db.close()
    for _ in range(10):  # the server connections PgBouncer shares with everyone else kept their defaults
        with psycopg.connect(loaded.bouncer, autocommit=True, prepare_threshold=None) as conn:
            assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)


def test_a_url_with_options_through_a_pooler_is_refused_with_the_reason() -> None:
    with pytest.raises(StoreError, match="PgBouncer refuses the options= startup parameter"):
        Database("postgresql://u@127.0.0.1:1/db?options=-csearch_path%3Dx", pooler="transaction")


def test_an_unknown_pooler_mode_is_refused() -> None:
    with pytest.raises(StoreError, match="CRIMEMAP_PG_POOLER must be one of"):
        Database("postgresql://u@127.0.0.1:1/db", pooler="sometimes")


# -- reads on the standby ----------------------------------------------------------------------------


def _primary_changes(loaded: Loaded) -> Iterator[int]:
    with psycopg.connect(loaded.primary, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()
        assert row is not None
        yield int(row[0])


def test_a_store_on_the_standby_opens_read_only_and_writes_nothing(loaded: Loaded) -> None:
    # A load swaps months in (DDL): the catalog rows it left dead are pruned by the next catalog lookup, which
    # writes WAL that is no write of crimemap's. Vacuumed first, so that any WAL below is the store's own.
    with psycopg.connect(loaded.primary, autocommit=True) as conn:
        conn.execute("VACUUM")
    before = next(_primary_changes(loaded))
    with PostGISStore(loaded.standby) as store:
        assert store.read_only
        assert [m.month for m in store.months()] == ["2016-02", "2016-01"]
    with PostGISStore(loaded.primary) as store:
        assert not store.read_only
    # opening on the primary an up-to-date store wrote nothing either: no upgrade, no DDL, no counts rebuilt
    assert next(_primary_changes(loaded)) == before


def test_a_store_that_needs_an_upgrade_is_refused_on_the_standby_naming_the_command() -> None:
    replicas = replica_set()
    database = replicas.fresh_database()
    with psycopg.connect(replicas.primary.url(database), autocommit=True) as conn:
        conn.execute("CREATE TABLE crimemap_schema (version integer)")
        conn.execute("INSERT INTO crimemap_schema VALUES (1)")
    replicas.wait_for_replay()
    with pytest.raises(StoreError, match=r"read-only \(a hot standby\).*schema 1.*crimemap upgrade --store"):
        PostGISStore(replicas.standby.url(database))


def test_an_empty_database_on_the_standby_is_refused_rather_than_created() -> None:
    replicas = replica_set()
    database = replicas.fresh_database()
    with pytest.raises(StoreError, match="has no crimemap tables yet"):
        PostGISStore(replicas.standby.url(database))


def test_months_loaded_into_the_primary_are_served_by_the_standby_after_replay() -> None:
    replicas = replica_set()
    first = _load(replicas, ("2016-01",))
    path = "/api/crimes-street/all-crime?lat=51.515&lng=-0.09&date=2016-03"
    with serving(first.standby) as standby:
        assert httpx.get(f"{standby}/api/crimes-street-dates").json()[0]["date"] == "2016-01"
        assert httpx.get(f"{standby}{path}").json() == []
        with PostGISStore(first.primary) as primary:
            load_policeuk(primary, [POLICEUK / "2016-03"])
        replicas.wait_for_replay()
        assert [d["date"] for d in httpx.get(f"{standby}/api/crimes-street-dates").json()] == ["2016-03", "2016-01"]
        served = httpx.get(f"{standby}{path}")
    with serving(first.primary) as primary_api:
        assert served.status_code == 200 and served.json()
        assert served.content == httpx.get(f"{primary_api}{path}").content


# -- replay conflicts ------------------------------------------------------------------------------

SLOW_READ = "SELECT count(*) FROM victim WHERE pg_sleep(0.5) IS NOT NULL"
"""Two seconds on the four rows of ``victim``, holding its lock all along: long enough to be in the way."""


@pytest.fixture
def conflicting() -> Iterator[tuple[ReplicaSet, str]]:
    """A database with a ``victim`` table, on a standby that cancels at once any read in the way of replay."""
    replicas = replica_set()
    database = replicas.fresh_database()
    with psycopg.connect(replicas.primary.url(database), autocommit=True) as conn:
        conn.execute("CREATE TABLE victim AS SELECT generate_series(1, 4) AS n")
    replicas.set_standby_delay("0")
    replicas.wait_for_replay()
    yield replicas, database
    replicas.set_standby_delay("30s")


def _in_the_way(replicas: ReplicaSet, database: str, times: int | None, reader: threading.Thread) -> int:
    """Lock ``victim`` on the primary (a lock the standby replays) each time the slow read is running there.

    ``times``: how many reads to cancel (None: every one, until ``reader`` ends). Returns the locks taken.
    """
    taken = 0
    with (
        psycopg.connect(replicas.primary.url(database), autocommit=True) as primary,
        psycopg.connect(replicas.standby.url(database), autocommit=True) as standby,
    ):
        deadline = time.monotonic() + 30
        while reader.is_alive() and (times is None or taken < times) and time.monotonic() < deadline:
            running = standby.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query = %s AND state = 'active'", (SLOW_READ,)
            ).fetchone()
            if running and running[0]:
                with primary.transaction():
                    primary.execute("LOCK TABLE victim IN ACCESS EXCLUSIVE MODE")
                taken += 1
                time.sleep(0.2)  # the cancelled read gives way, and is tried again
            time.sleep(0.02)
    return taken


def _slow_read_on_the_standby(replicas: ReplicaSet, database: str, times: int | None) -> tuple[object, int]:
    db = Database(replicas.standby.url(database))
    db.open_pool()
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(db.all(SLOW_READ))
        except Exception as e:  # noqa: BLE001 - handed to the test to look at
            outcome.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        locks = _in_the_way(replicas, database, times, reader)
        reader.join(30)
    finally:
        db.close()
    return outcome[0], locks


def test_a_read_cancelled_once_by_a_replay_conflict_is_tried_again_and_answers(
    conflicting: tuple[ReplicaSet, str],
) -> None:
    result, locks = _slow_read_on_the_standby(*conflicting, times=1)
    assert locks == 1
    assert result == [(4,)]


def test_a_read_cancelled_twice_by_replay_conflicts_is_a_replica_conflict_which_the_apis_answer_503(
    conflicting: tuple[ReplicaSet, str],
) -> None:
    result, locks = _slow_read_on_the_standby(*conflicting, times=None)
    assert locks == 2
    assert isinstance(result, ReplicaConflict), result
    assert isinstance(result, ReadTimeout)  # what every API answers as its own 503
    assert "replay conflict" in str(result)


# -- freshness: /health -----------------------------------------------------------------------------


def test_health_on_the_standby_reports_its_lag_and_goes_503_past_the_bound_while_replay_is_held_up(
    loaded: Loaded,
) -> None:
    replicas = loaded.replicas
    with serving(loaded.standby, env={"CRIMEMAP_MAX_REPLICA_LAG": "0.5"}) as api:
        caught_up = httpx.get(f"{api}/health")
        assert caught_up.status_code == 200
        assert caught_up.json()["status"] == "ok"
        assert caught_up.json()["replication"] == {"standby": True, "lag_s": 0}
        with psycopg.connect(replicas.standby.url(), autocommit=True) as standby:
            standby.execute("SELECT pg_wal_replay_pause()")
            try:
                with psycopg.connect(loaded.primary, autocommit=True) as primary:
                    primary.execute("CREATE TABLE IF NOT EXISTS heartbeat (at timestamptz)")
                    primary.execute("INSERT INTO heartbeat VALUES (now())")
                time.sleep(1)  # past the bound: replay holds back what the standby has received
                lagging = httpx.get(f"{api}/health")
            finally:
                standby.execute("SELECT pg_wal_replay_resume()")
        replicas.wait_for_replay()
        again = httpx.get(f"{api}/health")
    assert lagging.status_code == 503
    assert lagging.json()["status"] == "lagging"
    assert lagging.json()["replication"]["lag_s"] > 0.5
    assert (again.status_code, again.json()["status"]) == (200, "ok")


def test_health_on_the_primary_says_it_is_no_standby_and_is_never_lagging(loaded: Loaded) -> None:
    with serving(loaded.primary, env={"CRIMEMAP_MAX_REPLICA_LAG": "0"}) as api:
        answer = httpx.get(f"{api}/health")
    assert answer.status_code == 200
    assert answer.json()["replication"] == {"standby": False, "lag_s": None}


def test_health_of_the_embedded_store_has_no_replication_and_ignores_the_bound(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "store.sqlite").close()
    with serving(tmp_path / "store.sqlite", env={"CRIMEMAP_MAX_REPLICA_LAG": "0"}) as api:
        answer = httpx.get(f"{api}/health")
    assert answer.status_code == 200
    assert "replication" not in answer.json()


# -- several API machines ------------------------------------------------------------------------------

SECRET = {"CRIMEMAP_TOKEN_SECRET": "one-key-for-every-api-machine"}
FIRST_PAGE = "/mapsengine/v1/tables/policeuk-crimes/features?maxResults=5&select=id,category"


def _next_page(first: bytes) -> str:
    token = httpx.Response(200, content=first).json()["nextPageToken"]
    return f"{FIRST_PAGE}&pageToken={token}"


def test_two_api_processes_on_the_same_replica_give_the_same_answers_byte_for_byte(loaded: Loaded) -> None:
    with serving(loaded.standby, env=SECRET) as one, serving(loaded.standby, env=SECRET) as other:
        paths = [*_requests(MONTHS), FIRST_PAGE]
        from_one, from_other = _answers(one, paths), _answers(other, paths)
        # a client behind a balancer follows a page token from one machine on another
        second = _next_page(from_one[FIRST_PAGE][1])
        from_one |= _answers(one, [second])
        from_other |= _answers(other, [second])
    assert all(status == 200 for status, _ in from_one.values()), from_one
    assert from_other == from_one


def test_a_page_token_is_refused_by_an_api_machine_that_does_not_share_the_token_secret(loaded: Loaded) -> None:
    with serving(loaded.standby, env=SECRET) as one, serving(loaded.standby) as stranger:
        second = _next_page(httpx.get(f"{one}{FIRST_PAGE}").content)
        assert httpx.get(f"{one}{second}").status_code == 200
        refused = httpx.get(f"{stranger}{second}")
    assert refused.status_code == 400
    assert "pageToken" in refused.text


def test_the_rate_limit_is_counted_by_each_api_machine_for_itself(loaded: Loaded) -> None:
    limit = {"CRIMEMAP_RATE_BURST": "3", "CRIMEMAP_RATE_PER_SECOND": "0.01"}
    path = "/api/crimes-street-dates"
    with (
        serving(loaded.standby, "--rate-limit", env=limit) as one,
        serving(loaded.standby, "--rate-limit", env=limit) as other,
    ):
        on_one = [httpx.get(f"{one}{path}").status_code for _ in range(4)]
        on_other = [httpx.get(f"{other}{path}").status_code for _ in range(4)]
    assert on_one == on_other == [200, 200, 200, 429]
