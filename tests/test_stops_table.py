"""The stored stops as a feature table, ``policeuk-stops``: the Maps Engine API, downloads and ``crimemap export``."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import LiveServer
from crimemap.load.policeuk import load_policeuk
from crimemap.store.base import Store
from crimemap.store.catalogue import STOPS_TABLE
from crimemap.store.sqlite import SQLiteStore
from stops_truth import STOPS, rows_of

BASE = f"/mapsengine/v1/tables/{STOPS_TABLE}/features"


@pytest.fixture
def served(store: Store, live_server: Callable[..., LiveServer]) -> LiveServer:
    load_policeuk(store, [STOPS / "2019-12", STOPS / "2020-01"])
    return live_server(store)


def test_the_table_exists_once_stops_are_stored(store: Store) -> None:
    assert store.table(STOPS_TABLE) is None and STOPS_TABLE not in [t.id for t in store.tables()]
    load_policeuk(store, [STOPS / "2020-01"])
    info = store.table(STOPS_TABLE)
    assert info is not None and info.feature_count == len(rows_of("2020-01"))
    assert [t.id for t in store.tables()][:2] == ["policeuk-crimes", STOPS_TABLE]
    assert list(info.schema)[:5] == ["id", "month", "force", "type", "date"]


def test_where_selects_stops_by_their_csv_columns(served: LiveServer) -> None:
    where = "force = 'merseyside' AND month = '2020-01' AND outcome = 'Arrest' AND gender = 'Female'"
    response = served.client.get(BASE, params={"where": where, "maxResults": 1000})
    assert response.status_code == 200
    got = response.json()["features"]
    expected = [
        r
        for r in rows_of("2020-01", "merseyside")
        if r.fields["Outcome"] == "Arrest" and r.fields["Gender"] == "Female"
    ]
    assert len(got) == len(expected) > 0
    assert all(f["properties"]["outcome_id"] == "bu-arrest" for f in got)
    flags = served.client.get(BASE, params={"where": "outcome_linked_to_object_of_search = true", "maxResults": 1})
    assert flags.json()["features"][0]["properties"]["outcome_linked_to_object_of_search"] is True


def test_pages_walk_every_stop_once(served: LiveServer) -> None:
    seen: list[int] = []
    params = {"maxResults": "1000", "where": "month = '2019-12'"}
    while True:
        body = served.client.get(BASE, params=params).json()
        seen.extend(f["properties"]["id"] for f in body["features"])
        if "nextPageToken" not in body:
            break
        params["pageToken"] = body["nextPageToken"]
    assert len(seen) == len(set(seen)) == len(rows_of("2019-12"))


def test_the_table_downloads_as_csv_and_geojson(served: LiveServer) -> None:
    response = served.client.get(f"/download/{STOPS_TABLE}.csv", params={"where": "force = 'durham'"})
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(rows_of("2019-12", "durham")) + len(rows_of("2020-01", "durham"))
    geojson = served.client.get(f"/download/{STOPS_TABLE}.geojson", params={"where": "force = 'south-yorkshire'"})
    features = geojson.json()["features"]
    assert features and all(f["geometry"] is None for f in features)  # South Yorkshire gives no coordinates


def test_crimemap_export_writes_the_table(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = SQLiteStore(path)
    load_policeuk(store, [STOPS / "2020-01"])
    store.close()
    out = tmp_path / "stops.csv"
    subprocess.run(
        [sys.executable, "-m", "crimemap", "export", STOPS_TABLE, "--store", str(path), "-o", str(out), "--quiet",
         "--where", "force = 'city-of-london'"],
        check=True,
    )  # fmt: skip
    with out.open(newline="") as f:
        assert len(list(csv.DictReader(f))) == len(rows_of("2020-01", "city-of-london"))


def test_a_feature_table_cannot_take_the_stops_tables_id(store: Store, tmp_path: Path) -> None:
    from crimemap.load.errors import LoadError
    from crimemap.load.tables import load_table

    table = tmp_path / "t.csv"
    table.write_text("name,latitude,longitude\na,51.5,-0.1\n")
    with pytest.raises(LoadError, match="stop-and-search table"):
        load_table(store, table, table_id=STOPS_TABLE)
