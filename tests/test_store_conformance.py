"""What every store does, checked on each kind (``sqlite``, ``postgis``) with the same assertions.

Expected answers come from the real police.uk files themselves (read with the
loader's own parsers) and from brute force in Python: a store must return
exactly the crimes within a circle or inside a polygon, at the metre, and both
stores must agree with each other row for row and id for id.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import threading
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest
import shapely

from conftest import POLICEUK, _open_empty
from crimemap import geo, vocab
from crimemap.errors import StoreError, TableChanged
from crimemap.load.errors import LoadError
from crimemap.load.policeuk import load_policeuk
from crimemap.load.policeuk_files import find_sources
from crimemap.load.policeuk_reader import read_outcomes, read_street
from crimemap.query import (
    And,
    Circle,
    Compare,
    Contains,
    CrimeQuery,
    FeatureQuery,
    In,
    IsNull,
    Like,
    Not,
    Or,
    OrderKey,
    Polygon,
    Predicate,
    Within,
)
from crimemap.records import Crime, Feature, OutcomeRecord
from crimemap.store.base import Store
from crimemap.store.catalogue import CRIME_COLUMNS, CRIMES_TABLE, Column, TableInfo

ST_PAULS = (-0.0983, 51.5138)
"""The middle of the City of London, where the real street files are densest."""


# -- the real files, as the loader reads them -----------------------------------------------


@cache
def file_crimes() -> tuple[Crime, ...]:
    return tuple(c for s in find_sources([POLICEUK]) if s.kind == "street" for c in read_street(s))


@cache
def file_outcomes() -> tuple[OutcomeRecord, ...]:
    return tuple(o for s in find_sources([POLICEUK]) if s.kind == "outcomes" for o in read_outcomes(s))


def ids(crimes: Iterator[Crime] | list[Crime]) -> set[int]:
    return {c.id for c in crimes}


def within(c: Crime, centre: tuple[float, float], radius_m: float) -> bool:
    return c.lng is not None and c.lat is not None and geo.haversine_m(c.lng, c.lat, *centre) <= radius_m


# -- police.uk reads (the real archive, loaded once per kind) ------------------------------------


def test_months_lists_every_loaded_month_newest_first_with_forces_and_counts(policeuk_store: Store) -> None:
    months = policeuk_store.months()
    expected: dict[str, dict[str, int]] = {}
    for c in file_crimes():
        expected.setdefault(c.month, {}).setdefault(c.force, 0)
        expected[c.month][c.force] += 1
    assert [m.month for m in months] == sorted(expected, reverse=True)
    for m in months:
        assert m.forces == tuple(sorted(expected[m.month], key=lambda f: vocab.FORCE_BY_ID[f].code))
        assert m.crimes == sum(expected[m.month].values())
    assert policeuk_store.latest_month() == "2020-01"


def test_point_query_returns_exactly_the_crimes_within_one_mile(policeuk_store: Store) -> None:
    got = list(policeuk_store.crimes(CrimeQuery(month="2016-03", area=Circle(ST_PAULS, geo.ONE_MILE_M))))
    expected = {c.id for c in file_crimes() if c.month == "2016-03" and within(c, ST_PAULS, geo.ONE_MILE_M)}
    assert len(got) == len(expected) > 400
    assert ids(got) == expected


def test_circle_boundary_is_inclusive_at_the_metre(policeuk_store: Store) -> None:
    located = [c for c in file_crimes() if c.month == "2016-05" and c.lng is not None]
    far = max(located, key=lambda c: geo.haversine_m(c.lng or 0, c.lat or 0, *ST_PAULS))
    radius = geo.haversine_m(far.lng or 0, far.lat or 0, *ST_PAULS)
    inside = ids(policeuk_store.crimes(CrimeQuery(month="2016-05", area=Circle(ST_PAULS, radius))))
    outside = ids(policeuk_store.crimes(CrimeQuery(month="2016-05", area=Circle(ST_PAULS, radius - 0.01))))
    assert far.id in inside and far.id not in outside
    assert inside == {c.id for c in located if within(c, ST_PAULS, radius)}


def test_polygon_query_returns_crimes_inside_or_on_the_ring(policeuk_store: Store) -> None:
    ring = ((-0.10, 51.51), (-0.09, 51.51), (-0.085, 51.518), (-0.10, 51.52), (-0.10, 51.51))
    poly = shapely.Polygon(ring)
    expected = {
        c.id
        for c in file_crimes()
        if c.month == "2016-07" and c.lng is not None and shapely.intersects_xy(poly, c.lng, c.lat)
    }
    got = ids(policeuk_store.crimes(CrimeQuery(month="2016-07", area=Polygon(ring))))
    assert got == expected and len(expected) > 100


def test_self_crossing_polygon_is_read_as_its_valid_parts(policeuk_store: Store) -> None:
    bowtie = ((-0.10, 51.51), (-0.08, 51.52), (-0.08, 51.51), (-0.10, 51.52), (-0.10, 51.51))
    valid = shapely.make_valid(shapely.Polygon(bowtie))
    expected = {
        c.id
        for c in file_crimes()
        if c.month == "2016-07" and c.lng is not None and shapely.intersects_xy(valid, c.lng, c.lat)
    }
    assert ids(policeuk_store.crimes(CrimeQuery(month="2016-07", area=Polygon(bowtie)))) == expected
    assert expected


def test_category_force_and_street_filters_narrow_the_query(policeuk_store: Store) -> None:
    area = Circle(ST_PAULS, geo.ONE_MILE_M)
    got = ids(policeuk_store.crimes(CrimeQuery(month="2016-03", area=area, category="burglary")))
    assert got == {
        c.id
        for c in file_crimes()
        if c.month == "2016-03" and c.category == "burglary" and within(c, ST_PAULS, geo.ONE_MILE_M)
    }
    cumbria = list(policeuk_store.crimes(CrimeQuery(month="2016-03", force="cumbria")))
    assert {c.force for c in cumbria} == {"cumbria"}
    assert len(cumbria) == sum(1 for c in file_crimes() if c.force == "cumbria" and c.lng is not None)
    street = next(c for c in file_crimes() if c.month == "2016-03" and c.street_id is not None)
    at = ids(policeuk_store.crimes(CrimeQuery(month="2016-03", street_id=street.street_id)))
    assert at == {c.id for c in file_crimes() if c.month == "2016-03" and c.street_id == street.street_id}


def test_unknown_category_or_force_matches_nothing(policeuk_store: Store) -> None:
    assert list(policeuk_store.crimes(CrimeQuery(month="2016-03", category="no-such-category"))) == []
    assert list(policeuk_store.crimes(CrimeQuery(month="2016-03", force="atlantis"))) == []
    assert list(policeuk_store.crimes(CrimeQuery(month="2015-01"))) == []


def test_crimes_without_location_are_served_only_when_asked_for(policeuk_store: Store) -> None:
    nowhere = [c for c in file_crimes() if c.lng is None]
    assert nowhere, "the real files have crimes without a location"
    month = nowhere[0].month
    got = list(policeuk_store.crimes(CrimeQuery(month=month, located=False)))
    assert ids(got) == {c.id for c in nowhere if c.month == month}
    assert all(c.lng is None and c.lat is None and c.street_id is None for c in got)
    located = ids(policeuk_store.crimes(CrimeQuery(month=month)))
    assert not located & ids(got)


def test_limit_stops_early(policeuk_store: Store) -> None:
    query = CrimeQuery(month="2016-03", area=Circle(ST_PAULS, geo.ONE_MILE_M), limit=10)
    assert len(list(policeuk_store.crimes(query))) == 10


def test_crimes_keep_every_field_of_the_file(policeuk_store: Store) -> None:
    stored = {c.id: c for c in policeuk_store.crimes(CrimeQuery(month="2020-01"))}
    stored |= {c.id: c for c in policeuk_store.crimes(CrimeQuery(month="2020-01", located=False))}
    originals = [c for c in file_crimes() if c.month == "2020-01"]
    assert len(stored) == len(originals)
    for original in originals:
        got = stored[original.id]
        assert got._replace(outcome_month=None) == original._replace(outcome_month=None)
    assert {c.location_type for c in stored.values()} == {"BTP"}


def test_streets_and_the_nearest_street_by_great_circle_distance(policeuk_store: Store) -> None:
    streets: dict[int, tuple[str, float, float]] = {}
    for c in file_crimes():
        if c.street_id is not None and c.lng is not None and c.lat is not None:
            streets.setdefault(c.street_id, (c.street_name, c.lng, c.lat))
    for o in file_outcomes():
        if o.street_id is not None and o.lng is not None and o.lat is not None:
            streets.setdefault(o.street_id, (o.street_name, o.lng, o.lat))
    sid, (name, lng, lat) = next(iter(streets.items()))
    street = policeuk_store.street(sid)
    assert street is not None and (street.id, street.name, street.lng, street.lat) == (sid, name, lng, lat)
    assert policeuk_store.street(12345) is None
    for point in [ST_PAULS, (-0.0901, 51.5155), (-3.3874, 54.8701), (-0.0950, 51.5030)]:
        best = min(streets.items(), key=lambda s: (geo.haversine_m(s[1][1], s[1][2], *point), s[0]))
        found = policeuk_store.nearest_street(*point)
        assert found is not None and found.id == best[0], point
    assert policeuk_store.nearest_street(150.0, -30.0) is None


def test_a_crime_by_its_persistent_id_and_its_outcome_history(policeuk_store: Store) -> None:
    outcomes: dict[str, set[tuple[str, str]]] = {}
    for o in file_outcomes():
        outcomes.setdefault(o.persistent_id, set()).add((o.outcome, o.month))
    # A crime whose outcomes span several months' files.
    pid = max(outcomes, key=lambda p: len({m for _, m in outcomes[p]}))
    crime = policeuk_store.crime_by_persistent_id(pid)
    assert crime is not None and crime.persistent_id == pid
    history = policeuk_store.outcome_history(pid)
    assert {(e.outcome, e.month) for e in history} == outcomes[pid]
    assert [e.month for e in history] == sorted(e.month for e in history)
    assert crime.outcome_month == max(m for _, m in outcomes[pid])
    assert policeuk_store.crime_by_persistent_id("00" * 32) is None
    assert policeuk_store.crime_by_persistent_id("not hex") is None
    assert policeuk_store.outcome_history("abc") == []


def test_outcomes_in_an_area_carry_their_crimes(policeuk_store: Store) -> None:
    area = Circle(ST_PAULS, 500.0)
    got = list(policeuk_store.outcomes(CrimeQuery(month="2016-06", area=area)))
    expected = [
        o for o in file_outcomes() if o.month == "2016-06" and o.lng is not None
        and geo.haversine_m(o.lng, o.lat or 0, *ST_PAULS) <= 500
    ]  # fmt: skip
    assert len(got) == len(expected) > 0
    assert sorted((e.outcome, e.month) for e in got) == sorted((o.outcome, o.month) for o in expected)
    crimes = {c.persistent_id: c for c in file_crimes() if c.persistent_id}
    for event in got:
        assert event.crime is None or event.crime.persistent_id in crimes
    assert any(e.crime is not None for e in got)
    assert len(list(policeuk_store.outcomes(CrimeQuery(month="2016-06", area=area, limit=3)))) == 3


def test_last_updated_is_when_the_load_committed(policeuk_store: Store) -> None:
    updated = policeuk_store.last_updated()
    assert updated is not None and updated <= dt.datetime.now(dt.UTC)


def test_crimes_are_a_feature_table_with_the_police_uk_columns(policeuk_store: Store) -> None:
    info = policeuk_store.table(CRIMES_TABLE)
    assert info is not None and info.columns == CRIME_COLUMNS
    assert info.feature_count == len(file_crimes())
    assert [t.id for t in policeuk_store.tables()][0] == CRIMES_TABLE
    where = And((Compare("month", "=", "2016-03"), Compare("crime_type", "=", "Burglary")))
    got = list(policeuk_store.features(FeatureQuery(CRIMES_TABLE, where=where, columns=("crime_id", "month"))))
    assert {f.gx_id for f in got} == {c.id for c in file_crimes() if c.month == "2016-03" and c.category == "burglary"}
    assert all(f.properties[1] == "2016-03" for f in got)
    one = file_crimes()[5]
    feature = policeuk_store.feature(CRIMES_TABLE, one.id)
    assert feature is not None
    props = dict(zip([c.name for c in CRIME_COLUMNS], feature.properties, strict=True))
    assert props["crime_id"] == one.persistent_id and props["reported_by"] == "City of London Police"
    assert props["category"] == one.category and props["location_type"] == "Force"
    assert policeuk_store.feature(CRIMES_TABLE, 1) is None
    assert policeuk_store.feature("no-such-table", 1) is None


@pytest.mark.parametrize("category", [Compare("category", "=", "anti-social-behaviour"),
                                      Compare("crime_type", "=", "Anti-social behaviour")])  # fmt: skip
def test_a_where_naming_a_category_and_a_force_pages_their_crimes_in_clustered_order(
    policeuk_store: Store, category: Compare
) -> None:
    """Read by the index of (category, force) pairs: the same crimes, in the same order, as the walk finds."""
    force = Compare("reported_by", "=", "City of London Police")
    columns = ("reported_by", "category", "month")
    walked = [f for f in policeuk_store.features(FeatureQuery(CRIMES_TABLE, where=category, columns=columns))
              if f.properties[0] == "City of London Police"]  # fmt: skip
    both = And((category, force))
    full = list(policeuk_store.features(FeatureQuery(CRIMES_TABLE, where=both, columns=columns)))
    assert full == walked
    assert {f.gx_id for f in full} == {
        c.id for c in file_crimes() if c.category == "anti-social-behaviour" and c.force == "city-of-london"
    }
    assert len({f.properties[2] for f in full}) > 1  # the pair's crimes of several months, month by month
    assert page_through(policeuk_store, FeatureQuery(CRIMES_TABLE, where=both, columns=columns, limit=13)) == full


def test_a_where_naming_two_categories_at_once_finds_nothing(policeuk_store: Store) -> None:
    where = And((Compare("category", "=", "burglary"), Compare("category", "=", "robbery"),
                 Compare("reported_by", "=", "City of London Police")))  # fmt: skip
    assert list(policeuk_store.features(FeatureQuery(CRIMES_TABLE, where=where))) == []


def test_crimes_table_pages_by_keyset_in_descending_month_order(policeuk_store: Store) -> None:
    where = Compare("reported_by", "=", "City of London Police")
    order = (OrderKey("outcome_month", descending=True), OrderKey("month", descending=True))
    full = list(policeuk_store.features(FeatureQuery(CRIMES_TABLE, where=where, order_by=order,
                                                     columns=("outcome_month", "month"))))  # fmt: skip
    paged = page_through(policeuk_store, FeatureQuery(CRIMES_TABLE, where=where, order_by=order,
                                                      columns=("outcome_month", "month"), limit=997))  # fmt: skip
    assert paged == full
    months = [f.properties[0] for f in full]
    assert months[-1] is None and months[0] is not None  # NULLs last when descending
    assert len(full) == sum(1 for c in file_crimes() if c.force == "city-of-london")


# -- loading: replace, all or nothing, readers undisturbed ---------------------------------------


def crimes_of(store: Store, month: str, force: str) -> set[int]:
    q = CrimeQuery(month=month, force=force)
    return ids(store.crimes(q)) | ids(store.crimes(CrimeQuery(month=month, force=force, located=False)))


def test_loading_a_month_and_force_again_replaces_it(make_store: Callable[[], Store]) -> None:
    store = make_store()
    load_policeuk(store, [POLICEUK / "2016-03"])
    first = crimes_of(store, "2016-03", "city-of-london")
    cumbria = crimes_of(store, "2016-03", "cumbria")
    load_policeuk(store, [POLICEUK / "2016-03" / "2016-03-city-of-london-street.csv"])
    assert crimes_of(store, "2016-03", "city-of-london") == first
    assert crimes_of(store, "2016-03", "cumbria") == cumbria
    [march] = store.months()
    assert march.crimes == len(first) + len(cumbria)
    some = [c for c in file_crimes() if c.month == "2016-03" and c.force == "city-of-london"][:7]
    with store.writer() as w:
        assert w.replace_crimes("2016-03", "city-of-london", some) == 7
    assert crimes_of(store, "2016-03", "city-of-london") == ids(some)
    assert store.months()[0].crimes == 7 + len(cumbria)


def test_a_failed_load_leaves_the_store_as_it_was(make_store: Callable[[], Store], tmp_path: Path) -> None:
    store = make_store()
    load_policeuk(store, [POLICEUK / "2016-03"])
    before = (store.months(), crimes_of(store, "2016-03", "city-of-london"), store.tables())
    with pytest.raises(RuntimeError), store.writer() as w:
        w.replace_crimes("2016-03", "city-of-london", [])
        w.replace_table(TableInfo("t", "t", (Column("a", "integer"),)), [Feature(1, 0.0, 0.0, (1,))])
        raise RuntimeError("the load failed half way")
    assert (store.months(), crimes_of(store, "2016-03", "city-of-london"), store.tables()) == before
    # A broken file after a good one: the loader's error, and nothing stored.
    archive = tmp_path / "archive" / "2016-04"
    archive.mkdir(parents=True)
    shutil.copy(POLICEUK / "2016-04" / "2016-04-city-of-london-street.csv", archive)
    (archive / "2016-04-cumbria-street.csv").write_text("Crime ID,Month\nx,2016-04\n")
    with pytest.raises(LoadError):
        load_policeuk(store, [archive.parent])
    assert (store.months(), crimes_of(store, "2016-03", "city-of-london"), store.tables()) == before


def test_readers_see_the_old_rows_until_the_load_commits(make_store: Callable[[], Store]) -> None:
    store = make_store()
    load_policeuk(store, [POLICEUK / "2016-03"])
    old = crimes_of(store, "2016-03", "city-of-london")
    some = [c for c in file_crimes() if c.month == "2016-03" and c.force == "city-of-london"][:3]
    seen: list[set[int]] = []
    with store.writer() as w:
        w.replace_crimes("2016-03", "city-of-london", some)
        reader = threading.Thread(target=lambda: seen.append(crimes_of(store, "2016-03", "city-of-london")))
        reader.start()
        reader.join(30)
        seen.append(crimes_of(store, "2016-03", "city-of-london"))
    assert seen == [old, old]
    assert crimes_of(store, "2016-03", "city-of-london") == ids(some)


def test_parsing_in_a_second_process_stores_the_same(make_store: Callable[[], Store]) -> None:
    serial, parallel = make_store(), make_store()
    load_policeuk(serial, [POLICEUK / "2016-03", POLICEUK / "2016-04"], parallel=False)
    load_policeuk(parallel, [POLICEUK / "2016-03", POLICEUK / "2016-04"], parallel=True)
    assert serial.months() == parallel.months()
    q = CrimeQuery(month="2016-04", area=Circle(ST_PAULS, geo.ONE_MILE_M))
    assert sorted(serial.crimes(q)) == sorted(parallel.crimes(q))


def test_outcome_names_new_to_the_vocabulary_are_kept(make_store: Callable[[], Store]) -> None:
    store = make_store()
    crime = next(c for c in file_crimes() if c.persistent_id and c.lng is not None)
    crime = crime._replace(outcome="Referred to a new kind of panel")
    outcome = OutcomeRecord(crime.persistent_id, "2016-05", crime.force, "Sent to a brand new panel",
                            crime.lng, crime.lat, crime.street_id, crime.street_name, "", "")  # fmt: skip
    with store.writer() as w:
        w.replace_crimes(crime.month, crime.force, [crime])
        w.replace_outcomes("2016-05", crime.force, [outcome])
    got = store.crime_by_persistent_id(crime.persistent_id)
    assert got is not None and got.outcome == "Referred to a new kind of panel"
    assert got.outcome_month == "2016-05"
    assert [(e.outcome, e.month) for e in store.outcome_history(crime.persistent_id)] == [
        ("Sent to a brand new panel", "2016-05")
    ]


def test_a_crimes_outcome_month_follows_outcomes_loaded_later(make_store: Callable[[], Store]) -> None:
    store = make_store()
    load_policeuk(store, [POLICEUK / "2016-01" / "2016-01-city-of-london-street.csv"])
    pid = next(c.persistent_id for c in file_crimes() if c.month == "2016-01" and c.persistent_id)
    assert store.crime_by_persistent_id(pid).outcome_month is None  # type: ignore[union-attr]
    later = sorted({o.month for o in file_outcomes() if o.persistent_id == pid})
    load_policeuk(store, [POLICEUK / m / f"{m}-city-of-london-outcomes.csv" for m in later])
    assert store.crime_by_persistent_id(pid).outcome_month == later[-1]  # type: ignore[union-attr]


def test_an_unknown_force_is_refused(make_store: Callable[[], Store]) -> None:
    store = make_store()
    with pytest.raises(StoreError, match="unknown force"), store.writer() as w:
        w.replace_crimes("2016-03", "atlantis", [])


# -- feature tables ---------------------------------------------------------------------------

PARKS = TableInfo(
    "parks",
    "Parks",
    (
        Column("name", "string"),
        Column("visitors", "integer"),
        Column("rating", "double"),
        Column("open", "boolean"),
        Column("opened", "datetime"),
    ),
    description="test parks",
)
PARK_ROWS = [
    Feature(1, -0.1, 51.5, ("Hyde", 100, 4.5, True, "2015-01-01T00:00:00Z")),
    Feature(2, -0.12, 51.51, ("regent's", None, 3.0, False, None)),
    Feature(3, None, None, ("Ünïcode Park", 50, None, None, "2016-06-01T00:00:00Z")),
    Feature(4, -0.2, 51.6, ("HYDE annex", 100, 4.5, True, "2014-01-01T00:00:00Z")),
    Feature(5, 2.35, 48.85, ("Paris\ttab\\", 7, -1.0, False, "2015-05-05T00:00:00Z")),
]


@pytest.fixture
def parks(store: Store) -> Store:
    with store.writer() as w:
        assert w.replace_table(PARKS, PARK_ROWS) == 5
    return store


def test_a_table_replaced_between_parse_and_read_is_a_clear_table_changed(parks: Store) -> None:
    """A request parsed against the old columns, read after a reload dropped them: ask again, not a crash."""
    parsed = FeatureQuery("parks", where=Compare("visitors", ">", 1), columns=("name", "visitors"))
    renamed = TableInfo("parks", "Parks", (Column("title", "string"),))
    with parks.writer() as w:
        w.replace_table(renamed, [Feature(1, 0.0, 51.5, ("Hyde",))])
    with pytest.raises(TableChanged, match="parks.*ask again"):
        list(parks.features(parsed))
    with pytest.raises(TableChanged, match="ask again"):
        parks.feature_columns(parsed)
    assert [f.properties for f in parks.features(FeatureQuery("parks"))] == [("Hyde",)]


def test_a_feature_table_keeps_every_type_and_null(parks: Store) -> None:
    info = parks.table("parks")
    assert info is not None
    assert (info.name, info.description, info.columns, info.feature_count) == (
        "Parks", "test parks", PARKS.columns, 5
    )  # fmt: skip
    assert info.bbox == (-0.2, 48.85, 2.35, 51.6)
    assert info.created is not None and info.modified is not None
    assert [t.id for t in parks.tables()] == [CRIMES_TABLE, "parks"]
    assert list(parks.features(FeatureQuery("parks"))) == PARK_ROWS
    assert parks.feature("parks", 3) == PARK_ROWS[2]
    assert parks.feature("parks", 5, ("opened", "name")) == Feature(5, 2.35, 48.85, (PARK_ROWS[4].properties[4],
                                                                                     "Paris\ttab\\"))  # fmt: skip
    assert parks.feature("parks", 9) is None
    assert parks.table("nope") is None


PARK_QUERIES: list[tuple[Predicate, list[int]]] = [
    (Compare("visitors", "=", 100), [1, 4]),
    (Compare("visitors", ">", 60), [1, 4]),
    (Compare("visitors", "<=", 50.5), [3, 5]),
    (Not(Compare("visitors", "=", 100)), [3, 5]),
    (Compare("rating", "<", 3.5), [2, 5]),
    (Compare("name", ">", "Hyde"), [2, 3, 5]),
    (Contains("name", "hyde"), [1, 4]),
    (Contains("name", "PARK"), [3]),
    (Contains("name", "nïc"), [3]),
    (Contains("name", "\t"), [5]),
    (In("name", ("Hyde", "x", "regent's")), [1, 2]),
    (In("visitors", (7, 50)), [3, 5]),
    (In("name", ()), []),
    (IsNull("rating"), [3]),
    (Not(IsNull("visitors")), [1, 3, 4, 5]),
    (Compare("open", "=", True), [1, 4]),
    (Compare("open", "<>", True), [2, 5]),
    (Compare("opened", ">", "2015-01-01"), [1, 3, 5]),
    (Within(Circle((-0.1, 51.5), 2_000)), [1, 2]),
    (Not(Within(Circle((-0.1, 51.5), 2_000))), [4, 5]),
    (Within(Polygon(((2.0, 48.0), (3.0, 48.0), (3.0, 49.0), (2.0, 49.0), (2.0, 48.0)))), [5]),
    (Or((Compare("visitors", "=", 7), And((Compare("open", "=", True), Compare("rating", ">", 4))))), [1, 4, 5]),
    (Like("name", "Hyde%"), [1]),
    (Like("name", "%yde%"), [1]),
    (Like("name", "_egent's"), [2]),
    (Like("name", "%Park"), [3]),
    (Like("name", "Ünï_ode%"), [3]),
    (Like("name", "Paris\ttab\\\\"), [5]),
    (Like("name", "Paris%\\"), [5]),  # a lone final escape is a literal backslash
    (Not(Like("name", "%a%")), [1, 2]),
]


@pytest.mark.parametrize(("where", "expected"), PARK_QUERIES, ids=[str(i) for i in range(len(PARK_QUERIES))])
def test_predicates_select_features_as_sql_does(parks: Store, where: Predicate, expected: list[int]) -> None:
    assert [f.gx_id for f in parks.features(FeatureQuery("parks", where=where))] == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ((OrderKey("visitors"),), [2, 5, 3, 1, 4]),
        ((OrderKey("visitors", descending=True),), [1, 4, 3, 5, 2]),
        ((OrderKey("name"),), [4, 1, 5, 2, 3]),
        ((OrderKey("rating", descending=True), OrderKey("opened")), [4, 1, 2, 5, 3]),
        ((OrderKey("open"), OrderKey("opened", descending=True)), [3, 5, 2, 1, 4]),
        ((), [1, 2, 3, 4, 5]),
    ],
)
def test_features_sort_with_nulls_first_ascending_and_page_by_keyset(
    parks: Store, order: tuple[OrderKey, ...], expected: list[int]
) -> None:
    full = list(parks.features(FeatureQuery("parks", order_by=order)))
    assert [f.gx_id for f in full] == expected
    for size in (1, 2, 3):
        assert page_through(parks, FeatureQuery("parks", order_by=order, limit=size)) == full


def page_through(store: Store, query: FeatureQuery) -> list[Feature]:
    """Every page of ``query``, each continuing after the last feature of the one before."""
    info = store.table(query.table)
    assert info is not None
    names = list(query.columns or [c.name for c in info.columns])
    found: list[Feature] = []
    after = None
    while True:
        page = list(store.features(FeatureQuery(query.table, query.where, query.columns, query.order_by,
                                                after, query.limit)))  # fmt: skip
        found.extend(page)
        if not query.limit or len(page) < query.limit:
            return found
        last = page[-1]
        after = (*(last.properties[names.index(k.column)] for k in query.order_by), last.gx_id)


def test_replacing_a_table_keeps_its_creation_time_and_swaps_all_rows(parks: Store) -> None:
    before = parks.table("parks")
    assert before is not None
    reader = parks.features(FeatureQuery("parks"))
    first = next(reader)
    with parks.writer() as w:
        w.replace_table(
            TableInfo("parks", "Parks again", (Column("name", "string"),)),
            [Feature(10, 1.0, 2.0, ("only",))],
        )
    assert [first, *reader] == PARK_ROWS  # a reader that had started finishes on the old table
    after = parks.table("parks")
    assert after is not None and after.created == before.created and after.name == "Parks again"
    assert list(parks.features(FeatureQuery("parks"))) == [Feature(10, 1.0, 2.0, ("only",))]
    with parks.writer() as w:
        w.replace_table(TableInfo("empty", "Empty", ()), [])
    assert parks.table("empty") is not None and list(parks.features(FeatureQuery("empty"))) == []


def test_the_crimes_table_cannot_be_replaced_as_a_feature_table(store: Store) -> None:
    with pytest.raises(StoreError), store.writer() as w:
        w.replace_table(TableInfo(CRIMES_TABLE, "x", ()), [])


# -- both stores, side by side: the same answers, row for row ---------------------------------------


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    """An embedded and a PostGIS store with the same real archive and the same random table."""
    stores = (
        _open_empty("sqlite", tmp_path_factory.mktemp("sqlite")),
        _open_empty("postgis", tmp_path_factory.mktemp("postgis")),
    )
    info, rows = random_table()
    for s in stores:
        load_policeuk(s, [POLICEUK])
        with s.writer() as w:
            w.replace_table(info, rows)
    yield stores
    for s in stores:
        s.close()


def random_table() -> tuple[TableInfo, list[Feature]]:
    rnd = random.Random(7)
    words = ["alpha", "Beta", "GAMMA", "delta", "Épée", "zeta", "", "a'b", "x%y"]
    rows = []
    for i in range(1, 401):
        point = (rnd.uniform(-0.2, 0.0), rnd.uniform(51.45, 51.55)) if rnd.random() > 0.1 else (None, None)
        maybe = rnd.random() < 0.15
        rows.append(Feature(i * 3, point[0], point[1], (
            None if maybe else rnd.choice(words) + rnd.choice(words),
            None if rnd.random() < 0.1 else rnd.randint(-5, 5),
            None if rnd.random() < 0.1 else round(rnd.uniform(-10, 10), rnd.choice([0, 1, 3])),
            None if rnd.random() < 0.1 else rnd.random() < 0.5,
            None if rnd.random() < 0.1 else f"2015-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}T00:00:00Z",
        )))  # fmt: skip
    columns = (Column("w", "string"), Column("n", "integer"), Column("d", "double"), Column("b", "boolean"),
               Column("t", "datetime"))  # fmt: skip
    return TableInfo("random", "Random", columns), rows


CROSS_QUERIES = [
    FeatureQuery("random", order_by=(OrderKey("w"), OrderKey("d", descending=True)), limit=50),
    FeatureQuery("random", where=Compare("n", ">", 2), order_by=(OrderKey("t", descending=True),)),
    FeatureQuery("random", where=Not(Contains("w", "A")), order_by=(OrderKey("b"), OrderKey("n"))),
    FeatureQuery("random", where=Or((Like("w", "%x\\%y%"), Like("w", "_eta%"), Like("w", "a'%"))), limit=80),
    FeatureQuery("random", where=Not(Like("w", "%a%")), order_by=(OrderKey("w"),)),
    FeatureQuery("random", where=Within(Circle((-0.1, 51.5), 3_000)), columns=("d", "w")),
    FeatureQuery("random", where=Or((IsNull("w"), Compare("d", "<=", 0))), order_by=(OrderKey("d"),)),
    FeatureQuery("random", where=Compare("b", "=", False), after=(5,), limit=20),
    FeatureQuery("random", order_by=(OrderKey("n", descending=True),), after=(None, 600)),
    FeatureQuery("random", order_by=(OrderKey("n"),), after=(None, 600), limit=30),
    FeatureQuery(
        CRIMES_TABLE, where=Compare("month", ">=", "2017-01"), order_by=(OrderKey("location"),), limit=200
    ),  # fmt: skip
    FeatureQuery(CRIMES_TABLE, where=Contains("lsoa_name", "city of london 001"), columns=("crime_id",)),
    FeatureQuery(
        CRIMES_TABLE,
        where=Like("location", "On or near %Street"),
        columns=("location",),
        order_by=(OrderKey("location", descending=True),),
        limit=500,
    ),
    FeatureQuery(
        CRIMES_TABLE,
        where=In("category", ("burglary", "drugs")),
        order_by=(OrderKey("falls_within"), OrderKey("last_outcome_category", descending=True)),
        limit=300,
    ),  # fmt: skip
    FeatureQuery(
        CRIMES_TABLE,
        where=Within(Polygon(((-0.1, 51.51), (-0.09, 51.51), (-0.09, 51.52), (-0.1, 51.51)))),
        columns=("id", "outcome_month"),
    ),  # fmt: skip
]


@pytest.mark.parametrize("query", CROSS_QUERIES, ids=[str(i) for i in range(len(CROSS_QUERIES))])
def test_both_stores_return_the_same_features(both: tuple[Store, Store], query: FeatureQuery) -> None:
    sqlite, postgis = both
    expected = list(sqlite.features(query))
    assert expected, "a query that finds nothing proves little"
    if query.table == CRIMES_TABLE and not query.order_by:
        # Without orderBy each store pages crimes in its own clustered order; the features are the same.
        assert query.limit is None
        assert sorted(postgis.features(query)) == sorted(expected)
    else:
        assert list(postgis.features(query)) == expected


def test_both_stores_return_the_same_crimes_ids_and_streets(both: tuple[Store, Store]) -> None:
    sqlite, postgis = both
    assert sqlite.months() == postgis.months()
    rnd = random.Random(3)
    for _ in range(25):
        centre = (rnd.uniform(-0.115, -0.07), rnd.uniform(51.505, 51.525))
        month = rnd.choice(["2016-01", "2016-06", "2017-03"])
        query = CrimeQuery(month=month, area=Circle(centre, rnd.choice([100.0, 500.0, geo.ONE_MILE_M])))
        assert sorted(sqlite.crimes(query)) == sorted(postgis.crimes(query))
        assert sqlite.nearest_street(*centre) == postgis.nearest_street(*centre)
        events = sorted(map(repr, sqlite.outcomes(query)))
        assert events == sorted(map(repr, postgis.outcomes(query)))
    for month in ["2016-03", "2020-01"]:
        q = CrimeQuery(month=month, located=False)
        assert sorted(sqlite.crimes(q)) == sorted(postgis.crimes(q))
    assert [t.id for t in sqlite.tables()] == [t.id for t in postgis.tables()]
    assert sqlite.table("random") == postgis.table("random") or _same_but_times(
        sqlite.table("random"), postgis.table("random")
    )


def _same_but_times(a: TableInfo | None, b: TableInfo | None) -> bool:
    assert a is not None and b is not None
    return a.__class__(**{**a.__dict__, "created": None, "modified": None}) == b.__class__(
        **{**b.__dict__, "created": None, "modified": None}
    )
