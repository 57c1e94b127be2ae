"""``GET /stats/crimes`` and ``crimemap stats`` over the real police.uk files, on both stores."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from conftest import POLICEUK, LiveServer
from crimemap.stats_query import parse_stats
from crimemap.store.base import Store
from test_stats_store import CITY_BOX, CITY_POLY, _read_street_files, expected


@pytest.fixture(scope="module")
def real_rows() -> list:  # type: ignore[type-arg]
    return _read_street_files(POLICEUK)


@pytest.mark.parametrize(
    "params",
    [
        {"group": "month,category"},
        {"group": "force", "months": "2016-01..2016-06"},
        {"group": "category", "months": "2017-01", "bbox": CITY_BOX},
        {"group": "outcome", "category": "burglary,robbery"},
        {"group": "lsoa", "months": "2016-02", "force": "city-of-london"},
        {},
    ],
)
def test_json_rows_are_the_counts_of_the_files(
    policeuk_server: LiveServer, real_rows: list, params: dict[str, str]
) -> None:  # type: ignore[type-arg]
    r = policeuk_server.client.get("/stats/crimes", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    query = parse_stats(**params)
    want = [dict(zip([*query.group, "count"], row, strict=True)) for row in expected(real_rows, query)]
    assert r.json() == want


def test_cells_carry_their_name_centre_and_bounds(policeuk_server: LiveServer, real_rows: list) -> None:  # type: ignore[type-arg]
    r = policeuk_server.client.get("/stats/crimes", params={"group": "cell", "zoom": "11", "months": "2017-01"})
    cells = r.json()
    assert cells and all(set(c) == {"cell", "lng", "lat", "bounds", "count"} for c in cells)
    located = [x for x in real_rows if x.month == "2017-01" and x.lng is not None]
    assert sum(c["count"] for c in cells) == len(located)
    for c in cells:
        level, _, _ = (int(v) for v in c["cell"].split("/"))
        assert level == 2
        west, south, east, north = c["bounds"]
        assert west < c["lng"] < east and south < c["lat"] < north
        inside = [x for x in located if west <= x.lng < east and south <= x.lat < north]
        assert len(inside) == c["count"]


def test_csv_is_the_same_rows_with_a_header(policeuk_server: LiveServer) -> None:
    params = {"group": "month,cell", "zoom": "9", "months": "2016-11..2017-01", "bbox": "-0.2,51.45,0.05,51.55"}
    rows = policeuk_server.client.get("/stats/crimes", params=params).json()
    r = policeuk_server.client.get("/stats/crimes", params={**params, "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    table = list(csv.reader(io.StringIO(r.text)))
    assert table[0] == ["month", "cell", "lng", "lat", "west", "south", "east", "north", "count"]
    assert [t[0] for t in table[1:]] == [row["month"] for row in rows]
    assert [int(t[-1]) for t in table[1:]] == [row["count"] for row in rows]
    assert [[float(v) for v in t[4:8]] for t in table[1:]] == [row["bounds"] for row in rows]


def test_a_polygon_can_be_posted(policeuk_server: LiveServer, real_rows: list) -> None:  # type: ignore[type-arg]
    r = policeuk_server.client.post("/stats/crimes", data={"group": "month", "poly": CITY_POLY})
    assert r.status_code == 200
    query = parse_stats(group="month", poly=CITY_POLY)
    assert [(x["month"], x["count"]) for x in r.json()] == expected(real_rows, query)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"group": "street"}, "cannot group by 'street'"),
        ({"group": "month,month"}, "group names a field twice"),
        ({"months": "2017-13"}, "months must be YYYY-MM"),
        ({"months": "2017-06..2017-01"}, "runs backwards"),
        ({"category": "burglery"}, "unknown crime category 'burglery'"),
        ({"force": "atlantis"}, "unknown force 'atlantis'"),
        ({"bbox": "1,2,3"}, "bbox is minlng,minlat,maxlng,maxlat"),
        ({"bbox": "0.1,51.6,-0.1,51.4"}, "minimums below maximums"),
        ({"poly": "51.5,-0.1:51.6"}, "poly"),
        ({"group": "cell"}, "group=cell needs zoom"),
        ({"group": "cell", "zoom": "40"}, "zoom must be a whole number"),
        ({"bbox": "-1,51,0,52", "poly": CITY_POLY}, "give bbox or poly, not both"),
        ({"format": "xml"}, "format must be json or csv"),
        ({"grup": "month"}, "unknown parameter 'grup'"),
    ],
)
def test_bad_parameters_are_400_naming_them(policeuk_server: LiveServer, params: dict[str, str], named: str) -> None:
    r = policeuk_server.client.get("/stats/crimes", params=params)
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == 400 and named in body["message"], body


def test_the_statistics_api_is_documented(policeuk_server: LiveServer) -> None:
    spec = policeuk_server.client.get("/openapi.json").json()
    operation = spec["paths"]["/stats/crimes"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert names == {"group", "months", "category", "force", "bbox", "poly", "neighbourhood", "zoom", "format", "key"}
    assert set(operation["responses"]) >= {"200", "400", "401", "403", "503"}
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert "level = 13 - zoom" in operation["description"]


def test_the_command_line_prints_the_same_counts(policeuk_store: Store, policeuk_server: LiveServer) -> None:
    location = getattr(policeuk_store, "path", None) or policeuk_store._db.conninfo  # type: ignore[attr-defined]
    args = ["--group", "force,category", "--months", "2016-03", "--store", str(location)]
    run = subprocess.run([sys.executable, "-m", "crimemap", "stats", *args], capture_output=True, text=True, check=True)
    api = policeuk_server.client.get(
        "/stats/crimes", params={"group": "force,category", "months": "2016-03", "format": "csv"}
    )
    assert run.stdout.replace("\n", "\r\n") == api.text
    as_json = subprocess.run(
        [sys.executable, "-m", "crimemap", "stats", *args, "--format", "json"], capture_output=True, text=True
    )
    assert (
        as_json.stdout.strip()
        == policeuk_server.client.get("/stats/crimes", params={"group": "force,category", "months": "2016-03"}).text
    )
    bad = subprocess.run(
        [sys.executable, "-m", "crimemap", "stats", "--months", "2016-3", "--store", str(location)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--months" in bad.stderr
