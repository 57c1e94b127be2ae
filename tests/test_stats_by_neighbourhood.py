"""Counts grouped by neighbourhood: ``group=neighbourhood`` on ``/stats/crimes``, ``/stats/stops`` and
``crimemap stats``, checked against the crimes' and stops' own points tested against each loaded area."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson
import pytest
import shapely

from conftest import STORE_KINDS, LiveServer, _open_empty
from crimemap.load.generate.archive import generate
from crimemap.load.generate.neighbourhoods import write_neighbourhoods
from crimemap.load.neighbourhoods import load_neighbourhoods
from crimemap.load.policeuk import load_policeuk
from crimemap.neighbourhoods import stored_neighbourhoods
from crimemap.query import CrimeQuery, StopQuery
from crimemap.store.base import Store

MONTHS = ["2024-05", "2024-06"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("archive")
    generate(out, months=MONTHS, crimes_per_month=20_000, stops_per_month=5_000)
    write_neighbourhoods(out / "neighbourhoods.zip", count=80)
    return out


@pytest.fixture(scope="module", params=STORE_KINDS)
def store(request: pytest.FixtureRequest, archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The archive and its neighbourhoods, loaded once per kind of store: the tests only read it."""
    loaded = _open_empty(request.param, tmp_path_factory.mktemp("store"))
    load_policeuk(loaded, [archive])
    load_neighbourhoods(loaded, [archive / "neighbourhoods.zip"])
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def server(store: Store) -> Iterator[LiveServer]:
    served = LiveServer(store)
    yield served
    served.stop()


def _rows(server: LiveServer, path: str, **params: str) -> list[dict[str, object]]:
    response = server.client.post(path, data=params)
    assert response.status_code == 200, response.text
    got = server.client.get(path, params=params)
    assert got.status_code == 200 and got.content == response.content
    return list(orjson.loads(response.content))


def _truth(
    store: Store, points: Iterable[tuple[float | None, float | None, str]]
) -> tuple[Counter[tuple[str, str]], int]:
    """(neighbourhood, month) -> how many points each stored area covers (edges included); and how many lie in none."""
    stored = stored_neighbourhoods(store)
    shapes = [shapely.from_wkb(wkb) for _, _, _, wkb in stored]
    shapely.prepare(shapes)
    tree = shapely.STRtree(shapes)
    counts: Counter[tuple[str, str]] = Counter()
    outside = 0
    for lng, lat, month in points:
        if lng is None or lat is None:
            continue
        point = shapely.Point(lng, lat)
        hits = [i for i in tree.query(point) if shapes[i].covers(point)]
        outside += not hits
        for i in hits:
            counts[(f"{stored[i][0]}/{stored[i][1]}", month)] += 1
    return counts, outside


def _crime_points(store: Store) -> list[tuple[float | None, float | None, str]]:
    return [(c.lng, c.lat, c.month) for m in MONTHS for c in store.crimes(CrimeQuery(month=m))]


def test_crime_counts_by_neighbourhood_and_month_are_each_areas_own_points(store: Store, server: LiveServer) -> None:
    truth, outside = _truth(store, _crime_points(store))
    rows = _rows(server, "/stats/crimes", group="neighbourhood,month")
    assert {(str(r["neighbourhood"]), str(r["month"])): r["count"] for r in rows} == truth
    assert len(truth) > 100 and outside > 1000  # points in no neighbourhood are left out, not a null row
    assert [list(r) for r in rows[:1]] == [["neighbourhood", "month", "count"]]
    assert rows == sorted(rows, key=lambda r: (str(r["neighbourhood"]), str(r["month"])))


def test_each_row_is_what_the_neighbourhood_filter_counts(server: LiveServer) -> None:
    rows = _rows(server, "/stats/crimes", group="neighbourhood", category="burglary")
    for row in rows[:5]:
        alone = _rows(server, "/stats/crimes", neighbourhood=str(row["neighbourhood"]), category="burglary")
        assert alone == [{"count": row["count"]}]


def test_a_neighbourhood_filter_keeps_that_neighbourhoods_rows_alone(server: LiveServer) -> None:
    everyone = _rows(server, "/stats/crimes", group="month,neighbourhood")
    name = str(everyone[0]["neighbourhood"])
    assert [list(r) for r in everyone[:1]] == [["month", "neighbourhood", "count"]]
    alone = _rows(server, "/stats/crimes", group="month,neighbourhood", neighbourhood=name)
    assert alone == [r for r in everyone if r["neighbourhood"] == name] and alone


def test_a_box_keeps_the_neighbourhoods_wholly_inside_it(store: Store, server: LiveServer) -> None:
    stored = stored_neighbourhoods(store)
    west, south, east, north = shapely.union(shapely.from_wkb(stored[0][3]), shapely.from_wkb(stored[1][3])).bounds
    box = shapely.box(west - 0.001, south - 0.001, east + 0.001, north + 0.001)
    inside = {f"{f}/{n}" for f, n, _, wkb in stored if box.covers(shapely.from_wkb(wkb))}
    rows = _rows(server, "/stats/crimes", group="neighbourhood", bbox=",".join(str(v) for v in box.bounds))
    everyone = _rows(server, "/stats/crimes", group="neighbourhood")
    assert rows == [r for r in everyone if r["neighbourhood"] in inside] and 1 < len(rows) < len(everyone)


def test_stop_counts_by_neighbourhood_are_each_areas_own_points(store: Store, server: LiveServer) -> None:
    points = [(s.lng, s.lat, s.month) for m in MONTHS for s in store.stops(StopQuery(month=m))]
    truth, outside = _truth(store, points)
    rows = _rows(server, "/stats/stops", group="month,neighbourhood")
    assert {(str(r["neighbourhood"]), str(r["month"])): r["count"] for r in rows} == truth
    assert truth and outside


@pytest.mark.parametrize(
    ("path", "group"),
    [("/stats/crimes", "neighbourhood,month,neighbourhood"), ("/stats/stops", "neighbourhood,street")],
)
def test_a_bad_neighbourhood_group_is_400_naming_group(server: LiveServer, path: str, group: str) -> None:
    response = server.client.get(path, params={"group": group})
    assert response.status_code == 400 and "group" in response.json()["message"]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_command_line_groups_by_neighbourhood_as_the_api_does(store: Store, server: LiveServer) -> None:
    run = [sys.executable, "-m", "crimemap", "stats", "--store", store.url, "--format", "json"]
    for data, path in (("crimes", "/stats/crimes"), ("stops", "/stats/stops")):
        answer = subprocess.run([*run, "--data", data, "--group", "neighbourhood,month"],
                                capture_output=True, text=True, check=True)  # fmt: skip
        assert orjson.loads(answer.stdout) == _rows(server, path, group="neighbourhood,month")
