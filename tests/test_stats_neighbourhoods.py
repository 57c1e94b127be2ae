"""Counts inside a neighbourhood: ``/stats/crimes`` and ``/stats/stops`` take ``neighbourhood=force/id``, and so
does ``crimemap stats``; its area is the stored boundary, as a ``poly`` of its ``/boundary`` would be."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import shapely

from conftest import STORE_KINDS, LiveServer, _open_empty
from crimemap.geometry.shapes import polygonal
from crimemap.load.generate.archive import generate
from crimemap.load.policeuk import load_policeuk
from crimemap.query import CrimeQuery
from crimemap.store.base import Store
from neighbourhood_data import nc04_points, store_leicestershire

MONTH = "2024-06"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("archive")
    generate(out, months=[MONTH], crimes_per_month=100_000, stops_per_month=50_000)  # Leicester is one of its towns
    return out


@pytest.fixture(scope="module", params=STORE_KINDS)
def store(request: pytest.FixtureRequest, archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The archive and Leicestershire's neighbourhoods, loaded once per kind of store: the tests only read it."""
    folder = tmp_path_factory.mktemp("store")
    loaded = _open_empty(request.param, folder)
    load_policeuk(loaded, [archive])
    store_leicestershire(loaded, folder)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def server(store: Store) -> Iterator[LiveServer]:
    served = LiveServer(store)
    yield served
    served.stop()


POLY = ":".join(f"{lat},{lng}" for lat, lng in nc04_points())


def _rows(server: LiveServer, path: str, **params: str) -> list[dict[str, object]]:
    response = server.client.post(path, data=params)
    assert response.status_code == 200, response.text
    return list(orjson.loads(response.content))


def test_crime_counts_in_a_neighbourhood_are_those_of_its_boundary(store: Store, server: LiveServer) -> None:
    by_name = _rows(server, "/stats/crimes", neighbourhood="leicestershire/NC04", group="category")
    assert by_name == _rows(server, "/stats/crimes", poly=POLY, group="category")
    area = polygonal(shapely.Polygon([(float(lng), float(lat)) for lat, lng in nc04_points()]))
    covered = [c for c in store.crimes(CrimeQuery(month=MONTH)) if area.covers(shapely.Point(c.lng, c.lat))]
    assert sum(int(str(r["count"])) for r in by_name) == len(covered) > 10
    got = server.client.get("/stats/crimes", params={"neighbourhood": "leicestershire/NC04", "group": "category"})
    assert orjson.loads(got.content) == by_name


def test_stop_counts_in_a_neighbourhood_are_those_of_its_boundary(server: LiveServer) -> None:
    by_name = _rows(server, "/stats/stops", neighbourhood="leicestershire/NC04", group="type")
    assert by_name == _rows(server, "/stats/stops", poly=POLY, group="type") and by_name


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"neighbourhood": "leicestershire/NC99"}, "no boundary is stored for 'leicestershire/NC99'"),
        ({"neighbourhood": "NC04"}, "neighbourhood is force/id"),
        ({"neighbourhood": "leicestershire/NC04", "bbox": "-1.2,52.6,-1.1,52.7"}, "give one area"),
    ],
)
def test_a_neighbourhood_that_cannot_be_counted_is_400(
    server: LiveServer, params: dict[str, str], message: str
) -> None:
    for path in ("/stats/crimes", "/stats/stops"):
        response = server.client.get(path, params=params)
        assert response.status_code == 400 and message in response.json()["message"]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_command_line_counts_a_neighbourhood_as_the_api_does(store: Store, server: LiveServer) -> None:
    run = [sys.executable, "-m", "crimemap", "stats", "--store", store.url, "--format", "json"]
    answer = subprocess.run([*run, "--neighbourhood", "leicestershire/NC04", "--group", "category"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert orjson.loads(answer.stdout) == _rows(server, "/stats/crimes", poly=POLY, group="category")
    bad = subprocess.run([*run, "--neighbourhood", "leicestershire/NC99"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--neighbourhood: no boundary" in bad.stderr
