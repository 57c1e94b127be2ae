"""``crimemap harvest policeuk --data neighbourhoods|forces`` copies what only the API serves, from crimemap's
own server on loopback (holding the real Leicestershire answers) into both stores, resumably."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from conftest import LiveServer
from crimemap.cli import app
from crimemap.harvest.http import HarvestClient, RetryPolicy
from crimemap.harvest.policeuk_neighbourhoods import (
    RETRY,
    NeighbourhoodsHarvest,
    NeighbourhoodsSummary,
    harvest_neighbourhoods,
)
from crimemap.harvest.state import HarvestState
from crimemap.load.neighbourhoods import load_neighbourhoods
from crimemap.neighbourhoods import stored_neighbourhoods
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore
from neighbourhood_data import (
    LEICESTERSHIRE_FORCE,
    LEICESTERSHIRE_LIST,
    LEICESTERSHIRE_PEOPLE,
    NC04_DETAILS,
    leicestershire_zip,
    real,
    store_leicestershire,
)
from test_harvest_policeuk import Stop, recorder, stop_after

LISTED = len(real(LEICESTERSHIRE_LIST))
"""66 neighbourhoods listed, of which the source holds two (NC04 and NC08): the others answer 404."""


@pytest.fixture
def source(make_store: Callable[[], Store], tmp_path: Path, live_server: Callable[..., LiveServer]) -> LiveServer:
    store = make_store()
    store_leicestershire(store, tmp_path)
    return live_server(store)


def run(
    url: str, target: Store, state: Path, what: NeighbourhoodsHarvest, hooks: list[Callable[..., None]] | None = None
) -> NeighbourhoodsSummary:
    with (
        HarvestClient(url + "/api", rate=None, retry=RETRY, policy=RetryPolicy(backoff=0.01),
                      event_hooks={"request": list(hooks or [])}) as client,
        HarvestState(state, what.job(client.base_url)) as saved,
    ):  # fmt: skip
        summary = harvest_neighbourhoods(target, client, what, saved)
    saved.finish()
    return summary


def _answers(server: LiveServer, paths: list[str]) -> list[object]:
    return [orjson.loads(server.client.get(p).content) for p in paths]


PATHS = [
    "/api/leicestershire/neighbourhoods",
    *(f"/api/leicestershire/{n}{kind}" for n in ("NC04", "NC08") for kind in ("", "/people", "/events", "/priorities")),
]


def test_a_harvest_copies_every_neighbourhood_document_and_the_target_answers_alike(
    source: LiveServer, make_store: Callable[[], Store], tmp_path: Path, live_server: Callable[..., LiveServer]
) -> None:
    target = make_store()
    load_neighbourhoods(target, [leicestershire_zip(tmp_path / "bulk.zip")])  # the boundaries come in bulk
    assert {n: name for _, n, name, _ in stored_neighbourhoods(target)}["NC04"] == "NC04"
    summary = run(source.url, target, tmp_path / "state", NeighbourhoodsHarvest("neighbourhoods", ("leicestershire",)))
    assert (summary.forces, summary.neighbourhoods) == (1, 2)
    assert len(summary.skipped) == LISTED - 2 and "NA39: listed, but /leicestershire/NA39 is 404" in summary.skipped[0]
    assert orjson.loads(target.document("leicestershire", "NC04", "details") or b"") == real(NC04_DETAILS)
    assert _answers(live_server(target), PATHS) == _answers(source, PATHS)
    assert {n: name for _, n, name, _ in stored_neighbourhoods(target)}["NC04"] == "City Centre"  # named by the list
    assert not (tmp_path / "state").exists()


def test_a_harvest_of_forces_copies_their_details_and_senior_officers(
    source: LiveServer, make_store: Callable[[], Store], tmp_path: Path, live_server: Callable[..., LiveServer]
) -> None:
    target = make_store()
    summary = run(source.url, target, tmp_path / "s", NeighbourhoodsHarvest("forces", ("leicestershire", "essex")))
    assert summary.forces == 2 and summary.documents == 4
    served = live_server(target)
    assert orjson.loads(served.client.get("/api/forces/leicestershire").content) == LEICESTERSHIRE_FORCE
    assert orjson.loads(served.client.get("/api/forces/leicestershire/people").content) == LEICESTERSHIRE_PEOPLE
    assert served.client.get("/api/forces/essex").content == source.client.get("/api/forces/essex").content


def test_an_interrupted_harvest_resumes_without_fetching_again(
    source: LiveServer, make_store: Callable[[], Store], tmp_path: Path
) -> None:
    what = NeighbourhoodsHarvest("neighbourhoods", ("leicestershire",))
    target = make_store()
    first, hook = recorder()
    with pytest.raises(Stop):  # the list, 7 neighbourhoods not held, NC04 and NC08 (4 each), 4 more
        run(source.url, target, tmp_path / "state", what, [hook, stop_after(20)])
    assert (tmp_path / "state").exists() and target.documents("details") == []  # nothing written halfway
    second, hook = recorder()
    summary = run(source.url, target, tmp_path / "state", what, [hook])
    assert not {str(r.url) for r in first[:20]} & {str(r.url) for r in second}
    assert len(first[:20]) + len(second) == 1 + 2 * 4 + (LISTED - 2)
    assert summary.resumed == 7 + 2 + 4 and summary.neighbourhoods == 2
    assert [n for _, n, _ in target.documents("details")] == ["NC04", "NC08"]


def test_the_remote_s_server_errors_stop_the_harvest_with_the_state_kept(
    make_store: Callable[[], Store], tmp_path: Path
) -> None:
    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": "down"})

    target = make_store()
    what = NeighbourhoodsHarvest("neighbourhoods", ("leicestershire",))
    with (
        HarvestClient("http://remote/api", rate=None, retry=RETRY, policy=RetryPolicy(backoff=0.001),
                      transport=httpx.MockTransport(failing)) as client,
        HarvestState(tmp_path / "state", what.job(client.base_url)) as saved,
        pytest.raises(Exception, match="500"),
    ):  # fmt: skip
        harvest_neighbourhoods(target, client, what, saved)


def test_the_command_line_harvests_neighbourhoods_and_forces(source: LiveServer, tmp_path: Path) -> None:
    target = tmp_path / "target.sqlite"
    common = ["--force", "leicestershire", "--store", str(target), "--rate", "0"]
    result = CliRunner().invoke(app, ["harvest", "policeuk", source.url, "--data", "neighbourhoods", *common])
    assert result.exit_code == 0, result.output
    assert "harvested 2 neighbourhoods of 1 forces" in result.output
    result = CliRunner().invoke(app, ["harvest", "policeuk", source.url, "--data", "forces", *common])
    assert result.exit_code == 0 and "the details and senior officers of 1 forces" in result.output
    with SQLiteStore(target) as harvested:
        assert orjson.loads(harvested.document("leicestershire", "", "force") or b"")["telephone"] == "101"
    bad = CliRunner().invoke(app, ["harvest", "policeuk", source.url, "--data", "forces", "--force", "atlantis"])
    assert bad.exit_code == 2 and "unknown force 'atlantis'" in bad.output
    crimes = CliRunner().invoke(app, ["harvest", "policeuk", source.url, "--store", str(target)])
    assert crimes.exit_code == 2 and "--data crimes needs --bbox and --months" in crimes.output


def test_a_neighbourhood_without_a_team_page_is_kept_with_none(make_store: Callable[[], Store], tmp_path: Path) -> None:
    """A remote that answers 404 for a neighbourhood's people (police.uk's own answers vary) stands in here."""
    pages = {
        "/api/leicestershire/neighbourhoods": [{"id": "A1", "name": "Alpha"}],
        "/api/leicestershire/A1": {"id": "A1", "name": "Alpha"},
        "/api/leicestershire/A1/events": [],
        "/api/leicestershire/A1/priorities": [],
    }

    def remote(request: httpx.Request) -> httpx.Response:
        page = pages.get(request.url.path)
        return httpx.Response(404) if page is None else httpx.Response(200, json=page)

    target = make_store()
    what = NeighbourhoodsHarvest("neighbourhoods", ("leicestershire",))
    with (
        HarvestClient("http://remote/api", rate=None, retry=RETRY, transport=httpx.MockTransport(remote)) as client,
        HarvestState(tmp_path / "state", what.job(client.base_url)) as saved,
    ):
        summary = harvest_neighbourhoods(target, client, what, saved)
    assert summary.neighbourhoods == 1 and summary.skipped == [
        "leicestershire/A1: /leicestershire/A1/people is 404; stored as []"
    ]
    assert target.document("leicestershire", "A1", "people") == b"[]"
