"""Months as partitions in the PostGIS store (schema 3): made by loads, swapped in at once, pruned by reads,
made from older stores in place (issue 20, "Partitions by month").

A reload is also checked on the embedded store, where it is one transaction too:
the two stores must show a reader the same thing during a reload.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from conftest import LiveServer
from crimemap import geo
from crimemap.api.app import Settings
from crimemap.errors import StoreError
from crimemap.load.generate.archive import generate
from crimemap.load.generate.world import month_range
from crimemap.load.policeuk import load_policeuk
from crimemap.months import parse_month
from crimemap.query import Circle, CrimeQuery
from crimemap.store.base import Store
from crimemap.store.postgis import PostGISStore, partitions
from crimemap.store.postgis import crimes as crime_reads
from crimemap.store.postgis.schema import INDEXES, PARTITIONED, SCHEMA_VERSION, ensure_schema
from crimemap.store.postgis.upgrade import upgrade
from make_postgis_v2 import restore as restore_v2
from pg_server import fresh_store_url
from wire_requests import GOLDEN_SECRET, changed_answers

MONTHS = month_range("2024-03", 3)
CENTRE = Circle((-0.1276, 51.5073), geo.ONE_MILE_M)  # Westminster, the densest town of the generated world


def sql(url: str, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three months (seed 5), and 2024-03 again, other crimes (seed 6): a reload that changes the month."""
    root = tmp_path_factory.mktemp("partitions")
    generate(root / "three", months=MONTHS, crimes_per_month=3000, seed=5, stops_per_month=300)
    generate(root / "again", months=["2024-03"], crimes_per_month=4000, seed=6, stops_per_month=400)
    return {"three": root / "three", "again": root / "again"}


@pytest.fixture
def url() -> str:
    return fresh_store_url()


@pytest.fixture
def stores() -> Iterator[list[PostGISStore]]:
    opened: list[PostGISStore] = []
    yield opened
    for s in opened:
        s.close()


def _partitions(url: str, table: str) -> list[str]:
    rows = sql(
        url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = to_regclass(%s) ORDER BY 1",
        (table,),
    )
    return [name for (name,) in rows]


def _leftovers(url: str) -> list[str]:
    rows = sql(url, "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace")
    return sorted(name for (name,) in rows if name.endswith(("_next", "_v1", "_v2")))


# -- a partition per month ---------------------------------------------------------------------------


def test_a_load_makes_one_partition_a_month_of_crimes_outcomes_and_stops_each_holding_its_month(
    url: str, stores: list[PostGISStore], archives: dict[str, Path]
) -> None:
    stores.append(store := PostGISStore(url))
    load_policeuk(store, [archives["three"]])
    for table in PARTITIONED:
        names = [f"{table}_{m.replace('-', '_')}" for m in MONTHS]
        assert _partitions(url, table) == names
        for name, month in zip(names, MONTHS, strict=True):
            rows = sql(url, f"SELECT DISTINCT month FROM {name}")
            assert rows == [(parse_month(month),)], name  # every row in its month's partition, none empty
    # every index of the schema, on every partition, attached to the partitioned table's
    attached = sql(
        url,
        "SELECT p.relname, count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent"
        " WHERE p.relkind = 'I' AND p.relnamespace = current_schema()::regnamespace GROUP BY 1",
    )
    assert dict(attached) == dict.fromkeys(INDEXES, len(MONTHS))
    assert _leftovers(url) == []
    assert [m.month for m in store.months()] == MONTHS[::-1]


def test_a_month_with_no_rows_reads_as_empty_and_a_later_load_fills_it(
    url: str, stores: list[PostGISStore], archives: dict[str, Path]
) -> None:
    stores.append(store := PostGISStore(url))
    load_policeuk(store, [archives["three"]])
    with store.writer() as w:
        w.replace_crimes("2025-01", "metropolitan", [])  # a month known, with no crimes
    assert store.crimes_json(CrimeQuery(month="2025-01", area=CENTRE), 10_001).found == 0
    assert store.crimes_json(CrimeQuery(month="2030-01", area=CENTRE), 10_001).found == 0  # and one never loaded
    assert "crimes_2025_01" in _partitions(url, "crimes")


# -- a reload swaps its month in at once ---------------------------------------------------------------


def _month_seen(store: Store, month: str) -> tuple[Any, ...]:
    """What a reader reads of ``month``: its count in the month list, the crimes and outcomes of a mile."""
    query = CrimeQuery(month=month, area=CENTRE)
    crimes = store.crimes_json(query, 10_001)
    outcomes = store.outcomes_json(query, 10_001)
    summary = {m.month: m.crimes for m in store.months()}.get(month)
    return summary, (crimes.found, crimes.body), (outcomes.found, outcomes.body)


def test_a_reader_during_a_reload_sees_the_old_month_or_the_new_never_a_mix_nor_an_empty_month(
    url: str, stores: list[PostGISStore], archives: dict[str, Path]
) -> None:
    stores.append(store := PostGISStore(url))
    load_policeuk(store, [archives["three"]])
    old = _month_seen(store, "2024-03")
    seen: list[tuple[Any, ...]] = []
    failed: list[BaseException] = []
    loader = _reloading(store, archives["again"], failed)
    while loader.is_alive():
        seen.append(_month_seen(store, "2024-03"))
    loader.join()
    new = _month_seen(store, "2024-03")
    assert not failed
    assert all(n != o for n, o in zip(new, old, strict=True)) and old[1][0] > 0 and new[1][0] > 0
    assert len(seen) > 1, "the reader read while the reload ran"
    # each read (the month's count, its crimes, its outcomes: one statement each) is all old or all new
    for part in range(len(old)):
        got = [s[part] for s in seen]
        assert all(g in (old[part], new[part]) for g in got), f"a reader saw a month half replaced ({part})"
        first_new = got.index(new[part]) if new[part] in got else len(got)
        assert all(g == new[part] for g in got[first_new:]), "once swapped in, the new month stays"


def test_a_reload_waiting_for_a_long_read_to_end_holds_up_none_of_the_reads_that_arrive_meanwhile(
    url: str, stores: list[PostGISStore], archives: dict[str, Path]
) -> None:
    # A download streams from one open transaction for as long as it takes. The load's lock for its swaps must
    # wait for it to end, but a lock request that waits puts every later reader of the table behind it.
    stores.append(store := PostGISStore(url))
    load_policeuk(store, [archives["three"]])
    before = _month_seen(store, "2024-03")
    assert before[1][0] > 0
    failed: list[BaseException] = []
    with psycopg.connect(url) as long_read:  # not autocommit: its transaction stays open after the read
        long_read.execute("SELECT count(*) FROM crimes").fetchone()
        loader = _reloading(store, archives["again"], failed)
        _until_a_lock_is_asked_for(url, loader)
        answered: list[tuple[Any, ...]] = []
        reader = threading.Thread(target=lambda: answered.append(_month_seen(store, "2024-03")))
        reader.start()
        reader.join(timeout=20)  # held up, it would wait for the long read, which never ends on its own
        assert answered == [before], "a read that arrived while the load waited for its lock was held up"
        assert loader.is_alive(), "the load waits for the long read"
        long_read.rollback()
    loader.join(timeout=120)
    assert not loader.is_alive() and not failed
    assert _month_seen(store, "2024-03") != before  # the reload landed


def _reloading(store: Store, archive: Path, failed: list[BaseException]) -> threading.Thread:
    """A thread loading ``archive`` into ``store``, started; what it raises is put in ``failed``."""

    def reload() -> None:
        try:
            load_policeuk(store, [archive])
        except BaseException as e:  # noqa: BLE001 - reported by the test
            failed.append(e)

    loader = threading.Thread(target=reload)
    loader.start()
    return loader


def _until_a_lock_is_asked_for(url: str, loader: threading.Thread) -> None:
    """Return once some connection waits for a lock on the store's crimes (at most 60 s)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(6000):
            waiting = conn.execute(
                "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE NOT l.granted AND c.relname IN ('crimes', 'outcomes')"
                " AND c.relnamespace = current_schema()::regnamespace"
            ).fetchone()
            if waiting is not None:
                return
            assert loader.is_alive(), "the load ended without waiting for the long read"
            threading.Event().wait(0.01)
    raise AssertionError("the load never asked for its lock")


def test_a_reload_that_fails_halfway_leaves_the_stored_month_in_place(
    make_store: Callable[[], Store], archives: dict[str, Path]
) -> None:
    store = make_store()
    load_policeuk(store, [archives["three"]])
    before = _month_seen(store, "2024-03")
    with pytest.raises(RuntimeError), store.writer() as w:
        w.replace_crimes("2024-03", "metropolitan", [])
        raise RuntimeError("the reload stopped halfway")
    assert _month_seen(store, "2024-03") == before
    if isinstance(store, PostGISStore):
        assert _leftovers(store.url) == []
        assert _partitions(store.url, "crimes") == [f"crimes_{m.replace('-', '_')}" for m in MONTHS]


def test_a_crime_id_stored_in_another_month_is_refused_when_the_month_is_sealed_and_nothing_changes(
    url: str, stores: list[PostGISStore], archives: dict[str, Path]
) -> None:
    stores.append(store := PostGISStore(url))
    load_policeuk(store, [archives["three"]])
    february = list(store.crimes(CrimeQuery(month="2024-02")))
    before = _month_seen(store, "2024-03")
    moved = [february[0]._replace(month="2024-03")]  # an id of February's
    with pytest.raises(StoreError, match=rf"crime id {moved[0].id} is already stored .*2024-02.*nothing was stored"):
        with store.writer() as w:
            w.replace_crimes("2024-03", moved[0].force, moved)
    assert _month_seen(store, "2024-03") == before
    assert _leftovers(url) == []


# -- swapping in reads no row ----------------------------------------------------------------------------


def test_attaching_a_sealed_month_reads_none_of_its_rows_its_check_proves_the_bound(
    url: str, stores: list[PostGISStore], archives: dict[str, Path]
) -> None:
    stores.append(store := PostGISStore(url))
    load_policeuk(store, [archives["three"]])
    notices: list[str] = []
    month = parse_month("2024-03")
    with psycopg.connect(url) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        stage = partitions.create_stage(conn, "crimes", month)
        partitions.keep_rows(conn, "crimes", month, stage, [])
        partitions.seal(conn, "crimes", month, stage)
        conn.execute("SET client_min_messages = debug1")
        partitions.swap_in(conn, "crimes", month, stage)
        conn.execute("SET client_min_messages = notice")
        counted = conn.execute("SELECT count(*) FROM crimes WHERE month = %s", (month,)).fetchone()
        conn.rollback()
    assert f'partition constraint for table "{stage}" is implied by existing constraints' in notices
    assert counted is not None and counted[0] == {m.month: m.crimes for m in store.months()}["2024-03"]


# -- reads prune to the months they name ---------------------------------------------------------------


def _relations(plan: Any) -> set[str]:
    found = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add(plan["Relation Name"])
        for value in plan.values():
            found |= _relations(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= _relations(value)
    return found


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
def test_a_read_that_names_a_month_touches_only_that_months_partitions(
    plan_cache_mode: str, url: str, stores: list[PostGISStore], archives: dict[str, Path]
) -> None:
    """The crimes-street statement as the store runs it, planned with its values and as a generic plan."""
    stores.append(store := PostGISStore(url))
    load_policeuk(store, [archives["three"]])
    scan = next(crime_reads._crime_scans(CrimeQuery(month="2024-02", area=CENTRE)))
    rows, params = scan.rows("c.cell, c.id, c.json", " LIMIT %s")
    crimes_sql = (
        f"SELECT x.* FROM {crime_reads.RANGES} CROSS JOIN LATERAL (SELECT {crime_reads.JOINED} FROM ({rows}) AS c)"
        " AS x(n, body) WHERE x.n > 0 ORDER BY r.k"
    )
    month = parse_month("2024-02")
    statements = [
        (crimes_sql, [*(scan.ranges or ()), *params, 10_001]),
        ("SELECT count(*) FROM outcomes o WHERE o.month = %s AND o.force = %s::smallint", [month, 20]),
        ("SELECT string_agg(s.json, ',') FROM stops s WHERE s.month = %s::integer", [month]),
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET plan_cache_mode = {plan_cache_mode}")
        for statement, values in statements:
            plan = conn.execute(f"EXPLAIN (FORMAT JSON) {statement}", values).fetchone()
            assert plan is not None
            touched = _relations(plan[0])
            table = next(t for t in PARTITIONED if f"{t}_" in " ".join(touched))
            assert touched == {f"{table}_2024_02"}, statement
    assert store.crimes_json(CrimeQuery(month="2024-02", area=CENTRE), 10_001).found > 0


# -- stores of schema 2 are partitioned in place -----------------------------------------------------------


@pytest.fixture
def v2_url() -> str:
    """A fresh schema holding the store the last release of schema 2 wrote (:mod:`make_postgis_v2`)."""
    url = fresh_store_url()
    with psycopg.connect(url, autocommit=True) as conn:
        restore_v2(conn)
    return url


GOLDEN = orjson.loads((Path(__file__).parent / "golden" / "wire.json").read_bytes())["upgraded"]


def test_a_schema_2_store_partitioned_in_place_answers_every_recorded_request_byte_for_byte(
    v2_url: str,
    stores: list[PostGISStore],
    live_server: Callable[..., LiveServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wire record of the ``upgraded`` data set (the same inputs, written by the first release) still holds."""
    assert sql(v2_url, "SELECT version FROM crimemap_schema") == [(2,)]
    counts = {t: sql(v2_url, f"SELECT count(*) FROM {t}")[0][0] for t in PARTITIONED}
    stores.append(store := PostGISStore(v2_url))
    assert sql(v2_url, "SELECT version FROM crimemap_schema") == [(SCHEMA_VERSION,)]
    for table in PARTITIONED:
        assert sql(v2_url, f"SELECT count(*) FROM {table}") == [(counts[table],)]
        assert sql(v2_url, "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (table,)) == [("p",)]
    assert _partitions(v2_url, "crimes") == ["crimes_2024_02", "crimes_2024_03"]
    assert _leftovers(v2_url) == []
    monkeypatch.setenv("CRIMEMAP_TOKEN_SECRET", GOLDEN_SECRET)
    server = live_server(store, Settings(cache_mb=0))
    changed = changed_answers(server.client, GOLDEN)
    assert not changed, f"{len(changed)} answers changed, e.g.:\n" + "\n".join(changed[:10])


def test_a_schema_2_store_opened_read_only_is_told_to_upgrade_on_the_primary(v2_url: str) -> None:
    read_only = v2_url.replace("search_path%3D", "default_transaction_read_only%3Don%20-c%20search_path%3D")
    with pytest.raises(StoreError, match=r"read-only .*schema 2.*crimemap upgrade --store"):
        PostGISStore(read_only)
    assert sql(v2_url, "SELECT version FROM crimemap_schema") == [(2,)]
    assert sql(v2_url, "SELECT relkind FROM pg_class WHERE oid = to_regclass('crimes')") == [("r",)]


def test_partitioning_that_fails_halfway_leaves_the_schema_2_store_as_it_was(
    v2_url: str, stores: list[PostGISStore]
) -> None:
    before = sql(v2_url, "SELECT count(*), sum(id), sum(length(json)) FROM crimes")

    def fails_at_the_end(conn: psycopg.Connection[Any], version: int) -> None:
        upgrade(conn, version)
        raise RuntimeError("the upgrade was stopped")

    with psycopg.connect(v2_url, autocommit=True) as conn, pytest.raises(RuntimeError):
        ensure_schema(conn, fails_at_the_end)
    assert sql(v2_url, "SELECT version FROM crimemap_schema") == [(2,)]
    assert sql(v2_url, "SELECT count(*), sum(id), sum(length(json)) FROM crimes") == before
    assert sql(v2_url, "SELECT relkind FROM pg_class WHERE oid = to_regclass('crimes')") == [("r",)]
    assert _leftovers(v2_url) == []
    stores.append(PostGISStore(v2_url))  # and a later open partitions it
    assert sql(v2_url, "SELECT version FROM crimemap_schema") == [(SCHEMA_VERSION,)]
