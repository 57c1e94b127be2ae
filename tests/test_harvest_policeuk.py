"""Harvesting police.uk's street-level crimes, against crimemap's own police.uk API on loopback.

The source is the real police.uk data (``policeuk_store``, served by a real
uvicorn server); the harvest must reproduce what the source holds in the box:
the same crimes with the same ids, places, categories and outcomes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from conftest import POLICEUK, LiveServer
from crimemap.api.app import Settings
from crimemap.cli import app
from crimemap.harvest import tiling
from crimemap.harvest.http import HarvestClient, HarvestError, RetryPolicy
from crimemap.harvest.policeuk import PoliceUKHarvest, PoliceUKSummary, crime_from_json, harvest_policeuk, parse_months
from crimemap.harvest.state import HarvestState
from crimemap.harvest.tiling import POLICEUK_RETRY, BBox, Tile, tiles
from crimemap.load.policeuk import load_policeuk
from crimemap.query import CrimeQuery, Polygon
from crimemap.records import Crime
from crimemap.store.base import Store

SQLITE_SOURCE = pytest.mark.parametrize("policeuk_store", ["sqlite"], indirect=True)
SQLITE_TARGET = pytest.mark.parametrize("make_store", ["sqlite"], indirect=True)

CITY = BBox(-0.1145, 51.5055, -0.0725, 51.5245)
"""Around the City of London (its 2017-01 crimes lie within -0.113767..-0.073065, 51.506255..51.523977)."""

ESSEX = BBox(0.0, 51.45, 1.3, 52.1)


def stored(store: Store, month: str, force: str | None = None) -> list[Crime]:
    return [
        *store.crimes(CrimeQuery(month=month, force=force)),
        *store.crimes(CrimeQuery(month=month, force=force, located=False)),
    ]


def expected(source: Store, box: BBox, month: str, force: str) -> list[Crime]:
    """What the source holds in the box (edges included) plus the force's crimes without a location."""
    ring = (
        (box.min_lng, box.min_lat),
        (box.max_lng, box.min_lat),
        (box.max_lng, box.max_lat),
        (box.min_lng, box.max_lat),
    )
    return [
        *source.crimes(CrimeQuery(month=month, area=Polygon(ring))),
        *source.crimes(CrimeQuery(month=month, force=force, located=False)),
    ]


def as_served(c: Crime) -> tuple[Any, ...]:
    """A crime as the API shows it: what a harvest can and must reproduce."""
    lng = None if c.lng is None else round(c.lng, 6)
    lat = None if c.lat is None else round(c.lat, 6)
    return (
        c.id, c.month, lng, lat, c.street_id, c.street_name, c.category, c.persistent_id,
        c.location_type, c.location_subtype, c.context, c.outcome,
    )  # fmt: skip


def same_crimes(got: list[Crime], want: list[Crime]) -> None:
    assert len(got) == len({c.id for c in got}), "a crime was stored twice"
    assert sorted(map(as_served, got), key=repr) == sorted(map(as_served, want), key=repr)


def run(
    url: str,
    store: Store,
    state: Path,
    what: PoliceUKHarvest,
    hooks: list[Callable[[httpx.Request], None]] | None = None,
    response_hooks: list[Callable[[httpx.Response], None]] | None = None,
    rate: float | None = None,
) -> PoliceUKSummary:
    hooks_by_event: dict[str, list[Callable[..., Any]]] = {"request": list(hooks or [])}
    hooks_by_event["response"] = list(response_hooks or [])
    with (
        HarvestClient(
            url + "/api", rate=rate, retry=POLICEUK_RETRY, policy=RetryPolicy(backoff=0.01), event_hooks=hooks_by_event
        ) as client,
        HarvestState(state, what.job(client.base_url)) as saved,
    ):
        summary = harvest_policeuk(store, client, what, saved)
    saved.finish()
    return summary


def recorder() -> tuple[list[httpx.Request], Callable[[httpx.Request], None]]:
    seen: list[httpx.Request] = []
    return seen, seen.append


class Stop(Exception):
    """Raised by a test hook to interrupt a harvest, as a crash or Ctrl-C would."""


def stop_after(n: int) -> Callable[[httpx.Request], None]:
    sent = [0]

    def hook(request: httpx.Request) -> None:
        sent[0] += 1
        if sent[0] > n:
            raise Stop

    return hook


# -- tiles, boxes, months, crimes -----------------------------------------------------------------------


def test_tiles_cover_the_box_with_shared_edges() -> None:
    cut = tiles(BBox(0.0, 51.45, 1.3, 52.1), 0.25)
    assert len(cut) == 6 * 3
    assert max(t.size for t in cut) <= 0.25
    assert (cut[0].min_lng, cut[0].min_lat, cut[-1].max_lng, cut[-1].max_lat) == (0.0, 51.45, 1.3, 52.1)
    assert cut[0].max_lng == cut[1].min_lng and cut[0].max_lat == cut[6].min_lat


def test_a_tile_splits_into_four_quarters() -> None:
    quarters = Tile("r0c0", 0.0, 50.0, 1.0, 51.0).quarters()
    assert [q.key for q in quarters] == ["r0c0.0", "r0c0.1", "r0c0.2", "r0c0.3"]
    assert quarters[0] == Tile("r0c0.0", 0.0, 50.0, 0.5, 50.5)
    assert quarters[3] == Tile("r0c0.3", 0.5, 50.5, 1.0, 51.0)


def test_a_tile_asks_for_itself_widened_as_lat_lng_pairs() -> None:
    poly = Tile("r0c0", -0.1, 51.5, -0.05, 51.52).poly()
    assert poly == "51.499990,-0.100010:51.499990,-0.049990:51.520010,-0.049990:51.520010,-0.100010"


@pytest.mark.parametrize("text", ["1,2,3", "0,52,1,51", "a,b,c,d", "0,51,1,nan", "-181,51,0,52"], ids=str)
def test_a_bad_bbox_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="minlng,minlat,maxlng,maxlat"):
        BBox.parse(text)


def test_months_are_ranges_lists_or_one_month() -> None:
    assert parse_months("2016-11..2017-02") == ("2016-11", "2016-12", "2017-01", "2017-02")
    assert parse_months("2017-01,2017-03") == ("2017-01", "2017-03")
    assert parse_months("2017-01") == ("2017-01",)
    with pytest.raises(ValueError, match="backwards"):
        parse_months("2017-02..2017-01")
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_months("2017-1")


def test_the_force_and_category_are_checked_before_any_request() -> None:
    with pytest.raises(ValueError, match="unknown force 'london'"):
        PoliceUKHarvest(CITY, ("2017-01",), "london")
    with pytest.raises(ValueError, match="unknown category 'theft'"):
        PoliceUKHarvest(CITY, ("2017-01",), "city-of-london", category="theft")


def test_a_crime_keeps_its_remote_ids_and_takes_the_given_force() -> None:
    crime = crime_from_json(
        {
            "category": "anti-social-behaviour", "location_type": "Force", "context": "", "id": 54164419,
            "location": {"latitude": "52.640961", "street": {"id": 884343, "name": "On or near Wharf Street North"},
                         "longitude": "-1.126371"},
            "outcome_status": None, "persistent_id": "", "location_subtype": "", "month": "2017-01",
        },
        "leicestershire",
    )  # fmt: skip
    assert crime == Crime(
        54164419, "2017-01", "leicestershire", "Leicestershire Police", -1.126371, 52.640961, 884343,
        "On or near Wharf Street North", "", "", "anti-social-behaviour", "", "Force", "", "", None, None,
    )  # fmt: skip


def test_a_crime_not_as_police_uk_describes_it_is_an_error() -> None:
    with pytest.raises(HarvestError, match="unknown category 'arson'"):
        crime_from_json({"category": "arson", "id": 1, "month": "2017-01", "location": None}, "essex")
    with pytest.raises(HarvestError, match="'id'"):
        crime_from_json({"category": "drugs", "month": "2017-01", "location": None}, "essex")


# -- against the real data on loopback -----------------------------------------------------------------------


@SQLITE_SOURCE
def test_harvesting_the_city_of_london_reproduces_the_source(
    policeuk_store: Store, policeuk_server: LiveServer, make_store: Callable[[], Store], tmp_path: Path
) -> None:
    target = make_store()
    summary = run(
        policeuk_server.url, target, tmp_path / "state", PoliceUKHarvest(CITY, ("2017-01",), "city-of-london")
    )
    want = expected(policeuk_store, CITY, "2017-01", "city-of-london")
    assert len(want) == 483  # every City of London crime of 2017-01, 14 of them without a location
    same_crimes(stored(target, "2017-01"), want)
    assert summary.crimes == {"2017-01": 483} and summary.splits == 0
    assert {c.force for c in stored(target, "2017-01")} == {"city-of-london"}
    assert not (tmp_path / "state").exists()


@SQLITE_SOURCE
def test_harvested_outcome_dates_are_kept(
    policeuk_store: Store, policeuk_server: LiveServer, make_store: Callable[[], Store], tmp_path: Path
) -> None:
    target = make_store()
    run(policeuk_server.url, target, tmp_path / "state", PoliceUKHarvest(CITY, ("2017-01",), "city-of-london"))
    got = {c.id: c.outcome_month or c.month for c in stored(target, "2017-01")}
    want = {c.id: c.outcome_month or c.month for c in expected(policeuk_store, CITY, "2017-01", "city-of-london")}
    assert got == want


@SQLITE_SOURCE
@SQLITE_TARGET
def test_an_area_over_10000_crimes_is_split_and_harvested_completely(
    policeuk_store: Store, policeuk_server: LiveServer, make_store: Callable[[], Store], tmp_path: Path
) -> None:
    target = make_store()
    what = PoliceUKHarvest(ESSEX, ("2018-01",), "essex", tile_size=2.0)  # one tile: 503 at first
    summary = run(policeuk_server.url, target, tmp_path / "state", what)
    want = expected(policeuk_store, ESSEX, "2018-01", "essex")
    assert len(want) > 10_000
    assert summary.splits >= 1
    same_crimes(stored(target, "2018-01"), want)


@SQLITE_SOURCE
@SQLITE_TARGET
def test_crimes_at_btp_locations_are_stored_under_british_transport_police(
    policeuk_store: Store, policeuk_server: LiveServer, make_store: Callable[[], Store], tmp_path: Path
) -> None:
    target = make_store()
    london = BBox(-0.25, 51.45, 0.05, 51.6)
    summary = run(
        policeuk_server.url, target, tmp_path / "state", PoliceUKHarvest(london, ("2020-01",), "metropolitan")
    )
    want = expected(policeuk_store, london, "2020-01", "metropolitan")
    assert {c.force for c in want} == {"btp"} and len(want) > 100
    same_crimes(stored(target, "2020-01", "btp"), want)
    assert stored(target, "2020-01", "metropolitan") == []
    assert summary.btp == len(want)
    assert "at British Transport Police locations, stored under btp" in summary.describe(1.0)


@SQLITE_SOURCE
@SQLITE_TARGET
def test_long_polygons_are_posted(
    policeuk_server: LiveServer, make_store: Callable[[], Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tiling, "MAX_GET_LENGTH", 40)
    seen, hook = recorder()
    target = make_store()
    run(policeuk_server.url, target, tmp_path / "state", PoliceUKHarvest(CITY, ("2017-01",), "city-of-london"), [hook])
    assert [r.method for r in seen if "/crimes-street/" in r.url.path] == ["POST"]
    assert len(stored(target, "2017-01")) == 483


@SQLITE_SOURCE
@SQLITE_TARGET
def test_rate_limited_server_answers_429_and_the_harvest_honours_retry_after(
    policeuk_store: Store, live_server: Any, make_store: Callable[[], Store], tmp_path: Path
) -> None:
    server: LiveServer = live_server(policeuk_store, Settings(rate_limit=True, rate_per_second=5, rate_burst=5))
    sent: list[float] = []
    refused: list[tuple[float, float]] = []

    def on_request(request: httpx.Request) -> None:
        sent.append(time.monotonic())

    def on_response(response: httpx.Response) -> None:
        if response.status_code == 429:
            refused.append((time.monotonic(), float(response.headers["retry-after"])))

    target = make_store()
    what = PoliceUKHarvest(CITY, ("2017-01",), "city-of-london", tile_size=0.01)  # 5 x 2 tiles
    summary = run(server.url, target, tmp_path / "state", what, [on_request], [on_response], rate=15.0)
    assert summary.http.throttled == len(refused) >= 1
    for at, wait in refused:
        following = next(t for t in sent if t > at)
        assert following - at >= wait - 0.05
    same_crimes(stored(target, "2017-01"), expected(policeuk_store, CITY, "2017-01", "city-of-london"))


@SQLITE_SOURCE
@SQLITE_TARGET
def test_an_interrupted_harvest_resumes_without_redoing_finished_units(
    policeuk_store: Store, policeuk_server: LiveServer, make_store: Callable[[], Store], tmp_path: Path
) -> None:
    months = ("2016-01", "2016-02", "2016-03")
    what = PoliceUKHarvest(CITY, months, "city-of-london", tile_size=0.01)  # 10 tiles + no-location a month
    target = make_store()
    first, hook = recorder()
    with pytest.raises(Stop):
        run(policeuk_server.url, target, tmp_path / "state", what, [hook, stop_after(16)])
    assert (tmp_path / "state").exists()
    assert [m.month for m in target.months()] == ["2016-01"]  # a whole month was written, the next is not

    second, hook = recorder()
    summary = run(policeuk_server.url, target, tmp_path / "state", what, [hook])
    done_before = {str(r.url) for r in first[:16]}
    assert not done_before & {str(r.url) for r in second}
    assert len(first[:16]) + len(second) == 1 + 3 * 11  # months published, then 11 units a month
    assert summary.resumed == 15
    for month in months:
        same_crimes(stored(target, month, "city-of-london"), expected(policeuk_store, CITY, month, "city-of-london"))


@SQLITE_SOURCE
@SQLITE_TARGET
def test_crimes_outside_the_harvest_are_kept(
    policeuk_server: LiveServer, make_store: Callable[[], Store], tmp_path: Path
) -> None:
    target = make_store()
    load_policeuk(target, [POLICEUK / "2017-01" / "2017-01-city-of-london-street.csv"])
    before = stored(target, "2017-01")
    west = BBox(CITY.min_lng, CITY.min_lat, -0.095, CITY.max_lat)
    what = PoliceUKHarvest(west, ("2017-01",), "city-of-london", no_location=False)
    summary = run(policeuk_server.url, target, tmp_path / "state", what)
    after = stored(target, "2017-01")
    same_crimes(after, before)
    harvested = {c.id for c in after if c.lsoa_code == "" and c.lng is not None}  # the API gives no LSOA
    in_west = {c.id for c in before if c.lng is not None and c.lat is not None and west.contains(c.lng, c.lat)}
    assert harvested == in_west and 0 < len(in_west) < len(before)
    assert summary.kept == len(before) - len(in_west)


@SQLITE_SOURCE
@SQLITE_TARGET
def test_months_the_remote_does_not_publish_are_skipped(
    policeuk_server: LiveServer, make_store: Callable[[], Store], tmp_path: Path
) -> None:
    target = make_store()
    summary = run(
        policeuk_server.url, target, tmp_path / "s", PoliceUKHarvest(CITY, ("2015-12", "2016-01"), "city-of-london")
    )
    assert list(summary.crimes) == ["2016-01"]
    assert summary.skipped == [f"2015-12: not published by {policeuk_server.url}/api; skipped"]


# -- the command line ------------------------------------------------------------------------------------


@pytest.fixture
def cli() -> Iterator[CliRunner]:
    yield CliRunner()


@SQLITE_SOURCE
def test_the_command_harvests_into_the_store_and_reports(
    policeuk_server: LiveServer, cli: CliRunner, tmp_path: Path
) -> None:
    store = tmp_path / "harvest.sqlite"
    args = ["harvest", "policeuk", policeuk_server.url, "--bbox", "-0.1145,51.5055,-0.0725,51.5245"]
    args += ["--months", "2017-01", "--force", "city-of-london", "--store", str(store)]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "harvested 483 crimes of city-of-london in 1 months (2017-01)" in result.output
    assert not Path(str(store) + ".harvest.sqlite").exists()
    quiet = cli.invoke(app, [*args, "--quiet"])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_the_command_refuses_a_bad_bbox(cli: CliRunner, tmp_path: Path) -> None:
    args = ["harvest", "policeuk", "http://127.0.0.1:9", "--bbox", "1,2,3", "--months", "2017-01"]
    result = cli.invoke(app, [*args, "--force", "essex", "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2
    assert "--bbox takes minlng,minlat,maxlng,maxlat" in result.output


def test_the_command_refuses_another_harvests_state_file(cli: CliRunner, tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    HarvestState(Path(str(store) + ".harvest.sqlite"), {"api": "mapsengine"}).close()
    args = ["harvest", "policeuk", "http://127.0.0.1:9", "--bbox", "0,51,1,52", "--months", "2017-01"]
    result = cli.invoke(app, [*args, "--force", "essex", "--store", str(store)])
    assert result.exit_code == 1
    assert "holds an unfinished harvest of another request (api=mapsengine)" in result.output
    assert "--restart" in result.output
