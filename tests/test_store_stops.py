"""Both stores answer every stop-and-search query alike, byte for byte (the conformance suite, for stops)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from conftest import POLICEUK, _open_empty
from crimemap import geo
from crimemap.export.plan import value_fixer
from crimemap.load.policeuk import load_policeuk
from crimemap.query import Circle, CrimeQuery, FeatureQuery, Polygon, StopQuery
from crimemap.store.base import Store
from crimemap.store.catalogue import STOPS_TABLE, TableInfo
from stops_truth import STOPS, files


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    stores = tuple(_open_empty(kind, tmp_path_factory.mktemp(kind)) for kind in ("sqlite", "postgis"))
    for store in stores:
        load_policeuk(store, [POLICEUK, STOPS])
    yield stores  # type: ignore[misc]
    for store in stores:
        store.close()


def _ring(rnd: random.Random, lng: float, lat: float) -> Polygon:
    n = rnd.randint(3, 8)
    angles = sorted(rnd.uniform(0, 2 * math.pi) for _ in range(n))
    size = rnd.choice([0.003, 0.01, 0.05])
    ring = [
        (lng + size * rnd.uniform(0.3, 1) * math.cos(a), lat + size * rnd.uniform(0.3, 1) * math.sin(a)) for a in angles
    ]
    return Polygon((*ring, ring[0]))


def test_both_stores_give_the_same_answers_byte_for_byte(both: tuple[Store, Store]) -> None:
    sqlite, postgis = both
    assert sqlite.stop_months() == postgis.stop_months()
    rnd = random.Random(11)
    centres = [(-0.09, 51.515), (-2.99, 53.41), (0.47, 51.74), (-1.47, 52.92), (-1.58, 54.78)]
    queries: list[StopQuery] = []
    for _ in range(30):
        lng, lat = rnd.choice(centres)
        lng, lat = lng + rnd.uniform(-0.05, 0.05), lat + rnd.uniform(-0.05, 0.05)
        month = rnd.choice(["2019-12", "2020-01"])
        queries.append(StopQuery(month=month, area=Circle((lng, lat), rnd.choice([200.0, geo.ONE_MILE_M, 5_000.0]))))
        queries.append(StopQuery(month=month, area=_ring(rnd, lng, lat)))
        box = (lng - 0.02, lat - 0.01, lng + 0.02, lat + 0.01)
        queries.append(StopQuery(month=month, area=Polygon(((box[0], box[1]), (box[2], box[1]), (box[2], box[3]),
                                                             (box[0], box[3]), (box[0], box[1])))))  # fmt: skip
    for month, force in files():
        queries += [StopQuery(month=month, force=force, located=located) for located in (None, True, False)]
    for query in queries:
        a, b = sqlite.stops_json(query, 10_001), postgis.stops_json(query, 10_001)
        assert a == b, query
        assert list(sqlite.stops(query)) == list(postgis.stops(query)), query
    placed = [s for s in sqlite.stops(StopQuery(month="2019-12", force="city-of-london")) if s.street_id][:10]
    for stop in placed:
        q = StopQuery(month="2019-12", street_id=stop.street_id)
        assert sqlite.stops_json(q, 100) == postgis.stops_json(q, 100)
        assert sqlite.stop_location_known(stop.street_id) and postgis.stop_location_known(stop.street_id)


def test_both_stores_read_the_stops_table_alike(both: tuple[Store, Store]) -> None:
    sqlite, postgis = both
    info = sqlite.table(STOPS_TABLE)
    assert info is not None and info == postgis.table(STOPS_TABLE) or _same_but_times(info, postgis.table(STOPS_TABLE))
    for columns in (None, ("outcome_id", "location", "part_of_a_policing_operation")):
        query = FeatureQuery(STOPS_TABLE, columns=columns, limit=2_000)
        names = columns or tuple(c.name for c in info.columns)
        fix = value_fixer(info.schema, names) or (lambda values: values)  # SQLite keeps booleans as 0 and 1
        a = [(f.gx_id, f.lng, f.lat, fix(f.properties)) for f in sqlite.features(query)]
        b = [(f.gx_id, f.lng, f.lat, fix(f.properties)) for f in postgis.features(query)]
        assert a == b and len(a) == 2_000


def _same_but_times(a: TableInfo | None, b: TableInfo | None) -> bool:
    return (
        a is not None
        and b is not None
        and replace(a, created=None, modified=None) == replace(b, created=None, modified=None)
    )


def test_a_store_file_made_before_stops_gets_the_table_when_opened_for_writing(tmp_path: Path) -> None:
    import sqlite3

    from crimemap.store.sqlite import SQLiteStore

    path = tmp_path / "old.sqlite"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE stops")
    conn.commit()
    conn.close()
    readonly = SQLiteStore(path, readonly=True)
    assert readonly.stop_months() == [] and readonly.table(STOPS_TABLE) is None
    assert readonly.stops_json(StopQuery(month="2020-01", force="essex", located=None), 10).body == b"[]"
    readonly.close()
    with SQLiteStore(path) as writable:
        load_policeuk(writable, [STOPS / "2020-01"])
        assert writable.stop_months()[0].month == "2020-01"


@pytest.mark.parametrize("name", ['On or near "The Cut"', "On or near Back\\Lane", "On or near Rue de l'Église"])
def test_a_stop_shows_its_map_points_name_as_json_whatever_the_name_holds(
    make_store: Callable[[], Store], tmp_path: Path, name: str
) -> None:
    """The writer puts a batch's map point names into the stops' JSON for the whole batch at once: a name
    that JSON must escape is escaped as everywhere else."""
    month = tmp_path / "2016-01"
    month.mkdir()
    quoted = '"' + name.replace('"', '""') + '"'
    (month / "2016-01-city-of-london-street.csv").write_text(
        "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type,"
        "Last outcome category,Context\n"
        f",2016-01,City of London Police,City of London Police,-0.111497,51.518226,{quoted},E01000914,"
        "Camden 028B,Anti-social behaviour,,\n"
    )
    (month / "2016-01-city-of-london-stop-and-search.csv").write_text(
        "Type,Date,Part of a policing operation,Policing operation,Latitude,Longitude,Gender,Age range,"
        "Self-defined ethnicity,Officer-defined ethnicity,Legislation,Object of search,Outcome,"
        "Outcome linked to object of search,Removal of more than just outer clothing\n"
        "Person search,2016-01-01T08:05:00+00:00,,,51.518226,-0.111497,Male,18-24,,White,,Controlled drugs,"
        "Arrest,,\n"
    )
    store = make_store()
    load_policeuk(store, [month])
    (crime,) = orjson.loads(store.crimes_json(CrimeQuery(month="2016-01"), 10).body)
    body = store.stops_json(StopQuery(month="2016-01", force="city-of-london"), 10).body
    (stop,) = orjson.loads(body)
    assert crime["location"]["street"]["name"] == name
    assert stop["location"] == {
        "latitude": "51.518226",
        "street": crime["location"]["street"],
        "longitude": "-0.111497",
    }
    assert orjson.dumps(stop["location"]) in body  # written as orjson writes it
