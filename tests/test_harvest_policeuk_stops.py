"""Harvesting stops and searches from a police.uk API: crimemap's own, on loopback, over the real files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from conftest import LiveServer
from crimemap.cli import app
from crimemap.harvest.http import HarvestClient
from crimemap.harvest.policeuk_stops import StopsHarvest, harvest_stops, owns
from crimemap.harvest.state import HarvestState
from crimemap.harvest.tiling import BBox, Tile
from crimemap.load.policeuk import load_policeuk
from crimemap.query import Polygon, StopQuery
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore
from stops_truth import STOPS, keys

CITY = "city-of-london"
BOX = BBox(-0.1145, 51.5055, -0.0725, 51.5245)
SQLITE_TARGET = pytest.mark.parametrize("make_store", ["sqlite"], indirect=True)


def box_query(month: str, box: BBox) -> StopQuery:
    ring = ((box.min_lng, box.min_lat), (box.max_lng, box.min_lat), (box.max_lng, box.max_lat),
            (box.min_lng, box.max_lat), (box.min_lng, box.min_lat))  # fmt: skip
    return StopQuery(month=month, area=Polygon(ring))


def answer(store: Store, query: StopQuery) -> list[dict]:  # type: ignore[type-arg]
    return list(orjson.loads(store.stops_json(query, 100_000).body))


def run(target: Store, server: LiveServer, what: StopsHarvest, tmp: Path) -> object:
    with (
        HarvestClient(f"{server.url}/api", rate=None) as client,
        HarvestState(tmp / "state.sqlite", what.job(client.base_url)) as state,
    ):
        summary = harvest_stops(target, client, what, state)
        state.finish()
    return summary


@SQLITE_TARGET
def test_a_harvest_holds_the_sources_stops_in_the_box_and_the_forces_without_location(
    make_store: Callable[[], Store], live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    source, target = make_store(), make_store()
    load_policeuk(source, [STOPS / "2019-12", STOPS / "2020-01"])
    server = live_server(source)
    what = StopsHarvest(BOX, ("2019-12", "2020-01"), CITY, tile_size=0.01)
    run(target, server, what, tmp_path)
    for month in what.months:
        assert keys(answer(target, box_query(month, BOX))) == keys(answer(source, box_query(month, BOX)))
        nowhere = StopQuery(month=month, force=CITY, located=False)
        assert keys(answer(target, nowhere)) == keys(answer(source, nowhere))
        here = answer(target, box_query(month, BOX))
        there = answer(source, box_query(month, BOX))
        assert Counter(s["location"]["street"]["id"] for s in here) == Counter(
            s["location"]["street"]["id"] for s in there
        )


@SQLITE_TARGET
def test_a_tile_past_10000_stops_is_split_and_nothing_is_lost_or_doubled(
    make_store: Callable[[], Store], live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    header = (STOPS / "2020-01" / f"2020-01-{CITY}-stop-and-search.csv").read_text().splitlines()[0]
    rows = [f"Person search,2020-01-05T10:00:00+00:00,,,{lat},{lng},Male,18-24,,White,,,Arrest,,"
            for lat, lng in (("51.510000", "-0.100000"), ("51.520000", "-0.080000")) for _ in range(6_000)]  # fmt: skip
    folder = tmp_path / "src" / "2020-01"
    folder.mkdir(parents=True)
    (folder / f"2020-01-{CITY}-stop-and-search.csv").write_text("\n".join([header, *rows]) + "\n")
    source, target = make_store(), make_store()
    load_policeuk(source, [folder])
    summary = run(target, live_server(source), StopsHarvest(BOX, ("2020-01",), CITY), tmp_path)
    assert summary.splits >= 1  # type: ignore[attr-defined]
    assert len(answer(target, box_query("2020-01", BOX))) == 12_000


@SQLITE_TARGET
def test_stops_stored_outside_the_box_are_kept(
    make_store: Callable[[], Store], live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    source, target = make_store(), make_store()
    load_policeuk(source, [STOPS / "2020-01"])
    load_policeuk(target, [STOPS / "2020-01" / f"2020-01-{CITY}-stop-and-search.csv"])
    west = BBox(-0.1145, 51.5055, -0.09, 51.5245)
    outside = [s for s in target.stops(StopQuery(month="2020-01", force=CITY)) if not west.contains(s.lng, s.lat)]
    run(target, live_server(source), StopsHarvest(west, ("2020-01",), CITY, tile_size=0.01), tmp_path)
    after = list(target.stops(StopQuery(month="2020-01", force=CITY, located=None)))
    assert len(after) == len(list(source.stops(StopQuery(month="2020-01", force=CITY, located=None))))
    assert Counter((s.datetime, s.lat) for s in outside) <= Counter((s.datetime, s.lat) for s in after)


def test_tiles_own_their_south_west_edges_and_the_box_its_north_east_ones() -> None:
    box = BBox(0.0, 0.0, 2.0, 2.0)
    a, b = Tile("a", 0.0, 0.0, 1.0, 2.0), Tile("b", 1.0, 0.0, 2.0, 2.0)
    assert owns(a, box, 0.0, 0.0) and not owns(a, box, 1.0, 1.0) and owns(b, box, 1.0, 1.0)
    assert owns(b, box, 2.0, 2.0) and not owns(a, box, 2.0, 1.0)


def test_the_command_line_harvests_stops_with_data_stops(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    source = SQLiteStore(tmp_path / "source.sqlite")
    load_policeuk(source, [STOPS / "2020-01"])
    server = live_server(source)
    target = tmp_path / "target.sqlite"
    result = CliRunner().invoke(
        app,
        ["harvest", "policeuk", server.url, "--bbox", "-0.1145,51.5055,-0.0725,51.5245", "--months", "2020-01",
         "--force", CITY, "--data", "stops", "--store", str(target), "--rate", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "stops and searches of city-of-london" in result.output
    with SQLiteStore(target) as harvested:
        assert harvested.stop_months()[0].month == "2020-01" and harvested.months() == []
    bad = CliRunner().invoke(app, ["harvest", "policeuk", server.url, "--bbox", "0,0,1,1", "--months", "2020-01",
                                   "--force", CITY, "--data", "nonsense", "--store", str(target)])  # fmt: skip
    assert bad.exit_code == 2 and "--data takes crimes, stops, all, neighbourhoods or forces" in bad.output
