"""Harvesting Maps Engine tables, against crimemap's own Maps Engine API (and the real pages) on loopback.

The source store holds the NYC Crime Map's two tables as they were downloaded
from Google; a harvest must give back every feature once, with its id, its
point and its properties, and a schema inferred as ``crimemap load`` infers it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from typer.testing import CliRunner

from conftest import NYC, LiveServer
from crimemap.api.app import Settings, create_app
from crimemap.cli import app as cli_app
from crimemap.harvest.http import HarvestClient, HarvestError, RetryPolicy
from crimemap.harvest.mapsengine import MapsEngineHarvest, MapsEngineSummary, harvest_mapsengine, mapsengine_retry
from crimemap.harvest.state import HarvestState
from crimemap.load.tables import load_table
from crimemap.query import FeatureQuery
from crimemap.records import Feature
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore
from crimemap.where import parse_where

TOTALS = "02378420399528461352-11853667273131550346"
BY_TYPE = "02378420399528461352-17772055697785505571"
RAW = NYC / "raw_samples"


@pytest.fixture(scope="module")
def nyc_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Both NYC Crime Map tables, loaded as ``crimemap load`` loads them; tests only read it."""
    store = SQLiteStore(tmp_path_factory.mktemp("nyc") / "nyc.sqlite")
    for table in (TOTALS, BY_TYPE):
        load_table(store, NYC / "2015-05-08" / f"{table}.geojson")
    yield store
    store.close()


@pytest.fixture(scope="module")
def nyc_server(nyc_store: Store) -> Iterator[LiveServer]:
    server = LiveServer(nyc_store)
    yield server
    server.stop()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Store]:
    store = SQLiteStore(tmp_path / "target.sqlite")
    yield store
    store.close()


class AppServer:
    """Any ASGI app served by uvicorn on a free loopback port."""

    def __init__(self, app: ASGIApp) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def app_server() -> Iterator[Callable[[ASGIApp], AppServer]]:
    servers: list[AppServer] = []

    def start(app: ASGIApp) -> AppServer:
        servers.append(AppServer(app))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


class BackendErrors:
    """Answers the first ``failures`` later-page requests with Google's real 503 ``backendError``, then delegates."""

    def __init__(self, app: ASGIApp, failures: int) -> None:
        self.app = app
        self.failures = failures
        self.body = (RAW / "error_503_backendError_2016-01-24.body").read_bytes()
        self.headers = json.loads((RAW / "error_503_backendError_2016-01-24.meta.json").read_text())["headers"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        later_page = scope["type"] == "http" and b"pageToken=" in scope["query_string"]
        if later_page and self.failures > 0:
            self.failures -= 1
            response = Response(self.body, 503, headers={"Content-Type": self.headers["Content-Type"]})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def run(
    url: str,
    store: Store,
    state: Path,
    what: MapsEngineHarvest,
    hooks: list[Callable[..., Any]] | None = None,
    key: str | None = None,
) -> MapsEngineSummary:
    with (
        HarvestClient(
            url + "/mapsengine/v1",
            rate=None,
            retry=mapsengine_retry,
            policy=RetryPolicy(backoff=0.01),
            event_hooks={"request": list(hooks or [])},
        ) as client,
        HarvestState(state, what.job(client.base_url)) as saved,
    ):
        summary = harvest_mapsengine(store, client, what, saved, key=key)
    saved.finish()
    return summary


class Stop(Exception):
    """Raised by a test hook to interrupt a harvest, as a crash or Ctrl-C would."""


def stop_after(n: int) -> Callable[[httpx.Request], None]:
    sent = [0]

    def hook(request: httpx.Request) -> None:
        sent[0] += 1
        if sent[0] > n:
            raise Stop

    return hook


def features(store: Store, table: str, where: str | None = None) -> list[Feature]:
    info = store.table(table)
    assert info is not None
    predicate = parse_where(where, info.schema) if where else None
    return list(store.features(FeatureQuery(table, predicate)))


def by_name(store: Store, table: str, feature_list: list[Feature]) -> dict[int, tuple[Any, ...]]:
    """``gx_id -> (lng, lat, {column: value})``, comparable across tables whose columns differ in order."""
    info = store.table(table)
    assert info is not None
    names = [c.name for c in info.columns]
    return {f.gx_id: (f.lng, f.lat, dict(zip(names, f.properties, strict=True))) for f in feature_list}


def test_paging_a_whole_nyc_table_returns_every_feature_once(
    nyc_store: Store, nyc_server: LiveServer, target: Store, tmp_path: Path
) -> None:
    seen: list[httpx.Request] = []
    summary = run(nyc_server.url, target, tmp_path / "state", MapsEngineHarvest(BY_TYPE), [seen.append])
    source, got = nyc_store.table(BY_TYPE), target.table(BY_TYPE)
    assert source is not None and got is not None
    assert got.feature_count == source.feature_count == summary.features == 19_145
    assert got.schema == source.schema  # inferred as `crimemap load` inferred it: YR, MO, X, Y, TOT double
    assert by_name(target, BY_TYPE, features(target, BY_TYPE)) == by_name(
        nyc_store, BY_TYPE, features(nyc_store, BY_TYPE)
    )
    tokens = [r.url.params.get("pageToken") for r in seen[1:]]
    assert summary.pages == len(tokens) == 20 and len(set(tokens)) == 20  # no page asked for twice
    assert seen[0].url.params["include"] == "schema"
    assert all(r.url.params["select"].endswith(",gx_id") for r in seen[1:])
    assert not (tmp_path / "state").exists()


def test_503_backend_error_is_retried_with_backoff(
    nyc_store: Store, app_server: Callable[[ASGIApp], AppServer], target: Store, tmp_path: Path
) -> None:
    server = app_server(BackendErrors(create_app(nyc_store), failures=2))
    what = MapsEngineHarvest(TOTALS, where="MO < 3")
    summary = run(server.url, target, tmp_path / "state", what)
    assert summary.http.retries == 2
    want = by_name(nyc_store, TOTALS, features(nyc_store, TOTALS, "MO < 3"))
    assert by_name(target, TOTALS, features(target, TOTALS)) == want and summary.pages > 1


def test_503_that_does_not_stop_is_an_error_and_the_harvest_resumes_later(
    nyc_store: Store, app_server: Callable[[ASGIApp], AppServer], target: Store, tmp_path: Path
) -> None:
    failing = BackendErrors(create_app(nyc_store), failures=1_000)
    server = app_server(failing)
    what = MapsEngineHarvest(TOTALS, where="MO < 3")
    with pytest.raises(HarvestError, match="503 backendError: Backend Error"):
        run(server.url, target, tmp_path / "state", what)
    failing.failures = 0  # the backend recovers
    summary = run(server.url, target, tmp_path / "state", what)
    assert summary.resumed_pages == 1
    assert len(features(target, TOTALS)) == len(features(nyc_store, TOTALS, "MO < 3"))


def test_an_interrupted_harvest_resumes_from_the_saved_page_token(
    nyc_store: Store, nyc_server: LiveServer, target: Store, tmp_path: Path
) -> None:
    what = MapsEngineHarvest(TOTALS, where="MO < 4", page_size=500)
    first: list[httpx.Request] = []
    with pytest.raises(Stop):
        run(nyc_server.url, target, tmp_path / "state", what, [first.append, stop_after(5)])
    assert target.table(TOTALS) is None  # nothing is stored before the last page is in
    with HarvestState(tmp_path / "state", what.job(nyc_server.url + "/mapsengine/v1")) as saved:
        assert saved.get("pages") == 4
        saved_token = saved.get("next_token")

    second: list[httpx.Request] = []
    summary = run(nyc_server.url, target, tmp_path / "state", what, [second.append])
    assert second[0].url.params["pageToken"] == saved_token  # neither the schema nor page 1 again
    fetched_before = {r.url.params.get("pageToken") for r in first[1:5]}
    assert not fetched_before & {r.url.params.get("pageToken") for r in second}
    assert summary.resumed_pages == 4 and summary.pages == 4 + len(second)
    want = by_name(nyc_store, TOTALS, features(nyc_store, TOTALS, "MO < 4"))
    assert by_name(target, TOTALS, features(target, TOTALS)) == want


def test_select_and_where_harvest_a_part_with_the_remote_ids(
    nyc_store: Store, nyc_server: LiveServer, target: Store, tmp_path: Path
) -> None:
    what = MapsEngineHarvest(BY_TYPE, local_id="robberies", select="CR,geometry", where="CR = 'ROBBERY'")
    run(nyc_server.url, target, tmp_path / "state", what)
    table = target.table("robberies")
    assert table is not None and [c.name for c in table.columns] == ["CR"]
    want = [(f.gx_id, f.lng, f.lat) for f in features(nyc_store, BY_TYPE, "CR = 'ROBBERY'")]
    assert [(f.gx_id, f.lng, f.lat) for f in features(target, "robberies")] == want
    assert {f.properties for f in features(target, "robberies")} == {("ROBBERY",)}


def test_without_remote_ids_features_are_numbered_in_order(
    nyc_store: Store, nyc_server: LiveServer, target: Store, tmp_path: Path
) -> None:
    seen: list[httpx.Request] = []
    what = MapsEngineHarvest(TOTALS, where="MO = 1", keep_ids=False)
    run(nyc_server.url, target, tmp_path / "state", what, [seen.append])
    assert all("select" not in r.url.params and "include" not in r.url.params for r in seen)
    got = features(target, TOTALS)
    assert [f.gx_id for f in got] == list(range(1, len(got) + 1))
    want = features(nyc_store, TOTALS, "MO = 1")
    assert [(f.lng, f.lat) for f in got] == [(f.lng, f.lat) for f in want]


def test_the_real_maps_engine_pages_are_harvested(
    app_server: Callable[[ASGIApp], AppServer], target: Store, tmp_path: Path
) -> None:
    """The two pages the real API served (pretty-printed, a nextPageToken, no schema on request)."""
    first = (RAW / "first_page_2016-01-31.body").read_bytes()
    last = (RAW / "last_page_2016-01-31.body").read_bytes()
    token = json.loads(first)["nextPageToken"]

    def page(request: Request) -> Response:
        body = last if request.query_params.get("pageToken") == token else first
        return Response(body, media_type="application/json")

    server = app_server(Starlette(routes=[Route("/mapsengine/v1/tables/{table}/features/", page)]))
    summary = run(server.url, target, tmp_path / "state", MapsEngineHarvest(BY_TYPE, local_id="nyc"))
    table = target.table("nyc")
    assert table is not None and table.feature_count == summary.features == 1_000 + 895
    assert table.schema == {
        "YR": "double",
        "MO": "double",
        "X": "double",
        "Y": "double",
        "TOT": "double",
        "CR": "string",
    }
    assert any("numbered in the order they came" in note for note in summary.notes)


def test_an_unknown_table_is_an_error_naming_it(nyc_server: LiveServer, target: Store, tmp_path: Path) -> None:
    with pytest.raises(HarvestError, match="404 notFound: Table 'nope' not found"):
        run(nyc_server.url, target, tmp_path / "state", MapsEngineHarvest("nope"))


def test_the_api_key_is_sent_but_never_saved(nyc_store: Store, live_server: Any, target: Store, tmp_path: Path) -> None:
    server: LiveServer = live_server(nyc_store, Settings(api_keys=frozenset({"s3cret-key"})))
    what = MapsEngineHarvest(TOTALS, where="MO = 1", page_size=200)
    with pytest.raises(HarvestError, match="403 dailyLimitExceededUnreg"):
        run(server.url, target, tmp_path / "state", what)
    with pytest.raises(Stop):
        run(server.url, target, tmp_path / "state", what, [stop_after(3)], key="s3cret-key")
    assert b"s3cret-key" not in (tmp_path / "state").read_bytes()
    run(server.url, target, tmp_path / "state", what, key="s3cret-key")
    assert len(features(target, TOTALS)) == len(features(nyc_store, TOTALS, "MO = 1"))


def test_the_command_harvests_a_table_under_a_local_id(nyc_server: LiveServer, tmp_path: Path) -> None:
    store = tmp_path / "harvest.sqlite"
    args = ["harvest", "mapsengine", nyc_server.url, TOTALS, "--where", "MO = 2", "--table", "nyc-february"]
    result = CliRunner().invoke(cli_app, [*args, "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert f"harvested table {TOTALS} from {nyc_server.url}/mapsengine/v1 into nyc-february" in result.output
    with SQLiteStore(store) as st:
        table = st.table("nyc-february")
        assert table is not None and table.feature_count > 0
    assert not Path(str(store) + ".harvest.sqlite").exists()
