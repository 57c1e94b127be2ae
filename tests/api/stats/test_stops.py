"""``GET /stats/stops`` and ``crimemap stats --data stops`` over the real stop-and-search files, on both stores.

The expected counts are made here from the CSV files themselves (read with the
csv module by :mod:`stops_truth`), with the grid formula and the area tests of
:mod:`test_stats_store` written out there, never from crimemap. The stops of
an area are also those ``/api/stops-street`` answers for it.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import LiveServer, _open_empty
from crimemap.api.app import Settings
from crimemap.load.policeuk import load_policeuk
from crimemap.stats_stops_query import StopStatsQuery, parse_stop_stats
from crimemap.store.base import Store
from stops_truth import STOPS, StopRow, stop_rows
from test_stats_store import CITY_BOX, CITY_POLY, _cell, _in_area

MERSEYSIDE_BOX = "-3.2,53.3,-2.7,53.55"
SOUTH_TRIANGLE = "53.2,-1.9:53.6,-1.0:52.6,-1.0"  # lat,lng: South Yorkshire, much of Derbyshire
CONCAVE_CITY = (  # a C open to the east
    "51.508,-0.115:51.522,-0.115:51.522,-0.07:51.517,-0.07:51.517,-0.095:51.512,-0.095:51.512,-0.07:51.508,-0.07"
)


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def stops_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Every real stop-and-search file, loaded once per store kind; tests only read it."""
    store = _open_empty(request.param, tmp_path_factory.mktemp("stop-stats"))
    load_policeuk(store, [STOPS])
    yield store
    store.close()


@pytest.fixture(scope="module")
def server(stops_store: Store) -> Iterator[LiveServer]:
    live = LiveServer(stops_store, Settings(cache_mb=0))
    yield live
    live.stop()


# -- the independent count -----------------------------------------------------------------------------------


def _values(r: StopRow, level: int) -> dict[str, Any]:
    f = r.fields
    return {
        "month": r.month,
        "force": r.force,
        "type": f["Type"] or None,
        "outcome": f["Outcome"],
        "object": f["Object of search"] or None,
        "cell": _cell(r.lng, r.lat, level) if r.located else None,
    }


def expected(q: StopStatsQuery) -> list[tuple[Any, ...]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    for r in stop_rows():
        if q.months is not None and not q.months[0] <= r.month <= q.months[1]:
            continue
        if q.forces and r.force not in q.forces:
            continue
        if (q.area is not None or "cell" in q.group) and not r.located:
            continue
        if q.area is not None and not _in_area(q.area, r.lng, r.lat):
            continue
        values = _values(r, q.level)
        counts[tuple(values[g] for g in q.group)] += 1
    if not q.group and not counts:
        counts[()] = 0
    ordered = sorted(counts.items(), key=lambda kv: tuple((v is not None, v if v is not None else "") for v in kv[0]))
    return [(*k, n) for k, n in ordered]


def as_rows(q: StopStatsQuery, answer: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """JSON rows as store rows: a cell by its ``(row, col)``."""
    found = []
    for item in answer:
        values = []
        for name in q.group:
            if name == "cell":
                level, row, col = (int(v) for v in item["cell"].split("/"))
                assert level == q.level
                values.append((row, col))
            else:
                values.append(item[name])
        found.append((*values, item["count"]))
    return found


def _edge_box() -> str:
    """A box whose four edges pass through City of London stops of 2020-01 (as the files write them)."""
    located = [r for r in stop_rows() if r.month == "2020-01" and r.force == "city-of-london" and r.located]
    lngs = sorted({r.lng for r in located})
    lats = sorted({r.lat for r in located})
    return f"{lngs[2]!r},{lats[2]!r},{lngs[-3]!r},{lats[-3]!r}"


QUERIES: list[dict[str, str]] = [
    {},
    {"group": "month"},
    {"group": "force"},
    {"group": "type"},
    {"group": "outcome"},
    {"group": "object", "months": "2019-12..2020-01"},
    {"group": "month,force,type", "months": "2019-12..2020-01"},
    {"group": "force,outcome", "force": "merseyside,essex"},
    {"group": "month,outcome", "force": "merseyside", "months": "2020-01"},  # the README's examples
    {"group": "cell", "zoom": "13", "months": "2020-01", "bbox": CITY_BOX},
    {"group": "cell", "zoom": "6"},
    {"group": "cell", "zoom": "11", "months": "2020-01"},
    {"group": "cell,type", "zoom": "15", "force": "city-of-london", "months": "2019-12..2020-01"},
    {"group": "month", "bbox": CITY_BOX},
    {"group": "type,object", "bbox": MERSEYSIDE_BOX, "months": "2020-01"},
    {"group": "month", "poly": CITY_POLY},
    {"group": "force,outcome", "poly": SOUTH_TRIANGLE},
    {"group": "cell", "zoom": "14", "poly": CONCAVE_CITY},
    {"group": "month", "months": "1999-01..1999-12"},
    {"force": "northern-ireland"},
]


@pytest.mark.parametrize(
    "params", QUERIES, ids=["&".join(f"{k}={v}" for k, v in q.items()) or "total" for q in QUERIES]
)
def test_counts_equal_an_independent_count_of_the_files(server: LiveServer, params: dict[str, str]) -> None:
    r = server.client.get("/stats/stops", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    query = parse_stop_stats(**params)
    want = expected(query)
    assert as_rows(query, r.json()) == want
    if params.get("bbox") or params.get("poly") or "cell" in query.group:
        assert sum(row[-1] for row in want) > 0  # the areas hold stops: the test means something


def test_the_store_counts_every_stop_of_the_files(stops_store: Store) -> None:
    assert stops_store.stop_stats(StopStatsQuery()) == [(len(stop_rows()),)]
    by_month = {m.month: m.crimes for m in stops_store.stop_months()}
    assert dict(stops_store.stop_stats(StopStatsQuery(group=("month",)))) == by_month


def test_a_box_counts_the_stops_on_its_edges(server: LiveServer) -> None:
    box = _edge_box()
    query = parse_stop_stats(group="month", bbox=box)
    want = expected(query)
    west, south, east, north = (float(v) for v in box.split(","))
    on_edges = [
        r for r in stop_rows() if r.located and (r.lng in (west, east) or r.lat in (south, north))
        and west <= r.lng <= east and south <= r.lat <= north
    ]  # fmt: skip
    assert on_edges
    assert as_rows(query, server.client.get("/stats/stops", params={"group": "month", "bbox": box}).json()) == want


@pytest.mark.parametrize("area", [CITY_POLY, CONCAVE_CITY, "box"])
def test_an_area_holds_the_stops_stops_street_answers(server: LiveServer, area: str) -> None:
    if area == "box":
        west, south, east, north = _edge_box().split(",")
        area = f"{south},{west}:{north},{west}:{north},{east}:{south},{east}"
    for month in ("2019-12", "2020-01"):
        stops = server.client.post("/api/stops-street", data={"poly": area, "date": month})
        assert stops.status_code == 200, stops.text
        counted = server.client.post("/stats/stops", data={"poly": area, "months": month}).json()
        assert counted == [{"count": len(stops.json())}]
        assert counted[0]["count"] > 0


def test_csv_is_the_same_rows_with_a_header(server: LiveServer) -> None:
    params = {"group": "month,cell", "zoom": "13", "months": "2019-12..2020-01", "bbox": CITY_BOX}
    rows = server.client.get("/stats/stops", params=params).json()
    r = server.client.get("/stats/stops", params={**params, "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    table = list(csv.reader(io.StringIO(r.text)))
    assert table[0] == ["month", "cell", "lng", "lat", "west", "south", "east", "north", "count"]
    assert [(t[0], t[1], int(t[-1])) for t in table[1:]] == [(x["month"], x["cell"], x["count"]) for x in rows]
    outcomes = server.client.get("/stats/stops", params={"group": "outcome", "format": "csv"}).text
    first = list(csv.reader(io.StringIO(outcomes)))[1]
    assert first == ["", str(expected(parse_stop_stats(group="outcome"))[0][-1])]  # no outcome given: ""
    assert expected(parse_stop_stats(group="outcome"))[0][0] == ""


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"group": "category"}, "cannot group by 'category'"),
        ({"group": "lsoa"}, "cannot group by 'lsoa'"),
        ({"group": "type,type"}, "group names a field twice"),
        ({"category": "burglary"}, "unknown parameter 'category'"),
        ({"months": "2020-1"}, "months must be YYYY-MM"),
        ({"months": "2020-06..2020-01"}, "runs backwards"),
        ({"force": "atlantis"}, "unknown force 'atlantis'"),
        ({"bbox": "1,2,3"}, "bbox is minlng,minlat,maxlng,maxlat"),
        ({"poly": "51.5,-0.1:51.6"}, "poly"),
        ({"group": "cell"}, "group=cell needs zoom"),
        ({"group": "cell", "zoom": "x"}, "zoom must be a whole number"),
        ({"bbox": CITY_BOX, "poly": CITY_POLY}, "give bbox or poly, not both"),
        ({"format": "xml"}, "format must be json or csv"),
        ({"grup": "month"}, "unknown parameter 'grup'"),
    ],
)
def test_bad_parameters_are_400_naming_them(server: LiveServer, params: dict[str, str], named: str) -> None:
    r = server.client.get("/stats/stops", params=params)
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == 400 and named in body["message"], body


def test_the_stop_statistics_are_documented(server: LiveServer) -> None:
    spec = server.client.get("/openapi.json").json()
    for method in ("get", "post"):
        operation = spec["paths"]["/stats/stops"][method]
        assert set(operation["responses"]) >= {"200", "400", "401", "403", "503"}
        assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
        assert "object_of_search" in operation["description"]
    names = {p["name"] for p in spec["paths"]["/stats/stops"]["get"]["parameters"]}
    assert names == {"group", "months", "force", "bbox", "poly", "neighbourhood", "zoom", "format", "key"}


def test_the_command_line_prints_the_same_counts(stops_store: Store, server: LiveServer) -> None:
    location = getattr(stops_store, "path", None) or stops_store._db.conninfo  # type: ignore[attr-defined]
    args = ["--data", "stops", "--group", "force,type", "--months", "2020-01", "--store", str(location)]
    run = subprocess.run([sys.executable, "-m", "crimemap", "stats", *args], capture_output=True, text=True, check=True)
    api = server.client.get("/stats/stops", params={"group": "force,type", "months": "2020-01", "format": "csv"})
    assert run.stdout.replace("\n", "\r\n") == api.text
    bad = subprocess.run(
        [sys.executable, "-m", "crimemap", "stats", "--data", "stops", "--category", "burglary", "--store",
         str(location)], capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "--category" in bad.stderr
