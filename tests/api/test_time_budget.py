"""A read that runs past the store's time budget is stopped, and every API answers its own 503.

The embedded store interrupts a statement after ``CRIMEMAP_STATEMENT_TIMEOUT``
seconds (a progress handler, as PostGIS's ``statement_timeout``); each thread's
connection takes the budget when it is opened, and here the threads that read
after the store was opened get a microsecond, checked every 50 steps, so
every real read runs past it. The server must
answer each API's 503 envelope, not a 500, and go on serving.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from api.policeuk.test_crimes import assert_error
from conftest import POLICEUK, LiveServer
from crimemap.errors import ReadTimeout
from crimemap.load.policeuk import load_policeuk
from crimemap.query import CrimeQuery, Polygon
from crimemap.store.sqlite import SQLiteStore, connection

CITY = "51.52,-0.11:51.52,-0.07:51.50,-0.07:51.50,-0.11"
"""A polygon around the City of London, whose crimes the real files hold."""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("budget") / "store.sqlite"
    store = SQLiteStore(path)
    load_policeuk(store, sorted(POLICEUK.glob("*/*-city-of-london-*.csv")))
    store.close()
    return path


@pytest.fixture
def slow_store(loaded: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SQLiteStore]:
    """The store, opened as usual; the connections of threads that read it afterwards get the tiny budget."""
    store = SQLiteStore(loaded, readonly=True)
    monkeypatch.setenv("CRIMEMAP_STATEMENT_TIMEOUT", "0.000001")
    monkeypatch.setattr(connection, "_PROGRESS_STEPS", 50)  # look at the clock often: these reads are short
    yield store
    store.close()


def test_the_embedded_store_stops_a_read_past_its_budget(slow_store: SQLiteStore) -> None:
    ring = tuple((float(lng), float(lat)) for lat, lng in (pair.split(",") for pair in CITY.split(":")))
    query = CrimeQuery(month="2016-06", area=Polygon(ring))
    with ThreadPoolExecutor(1) as thread, pytest.raises(ReadTimeout, match="took longer than 1e-06 s"):
        thread.submit(slow_store.crimes_json, query, 10_000).result()


def test_the_police_uk_api_answers_503_in_its_envelope(
    slow_store: SQLiteStore, live_server: Callable[..., LiveServer]
) -> None:
    client = live_server(slow_store).client
    for response in (
        client.get("/api/crimes-street/all-crime", params={"poly": CITY, "date": "2016-06"}),
        client.post("/api/crimes-street/all-crime", data={"poly": CITY, "date": "2016-06"}),
        client.get("/api/outcomes-at-location", params={"poly": CITY, "date": "2016-06"}),
    ):
        assert_error(response, 503, "took longer than")
    assert client.get("/api/forces").status_code == 200  # the server goes on serving


def test_the_ogc_api_answers_503_as_an_ogc_exception(
    slow_store: SQLiteStore, live_server: Callable[..., LiveServer]
) -> None:
    response = live_server(slow_store).client.get(
        "/ogc/collections/policeuk-crimes/items", params={"limit": 10_000, "datetime": "2016-06"}
    )
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "ServiceUnavailable"
    assert "took longer than" in response.json()["description"]


def test_the_maps_engine_api_answers_503_backend_error(
    slow_store: SQLiteStore, live_server: Callable[..., LiveServer]
) -> None:
    response = live_server(slow_store).client.get(
        "/mapsengine/v1/tables/policeuk-crimes/features", params={"maxResults": 1000, "where": "month = '2016-06'"}
    )
    assert response.status_code == 503, response.text
    assert response.json()["error"]["errors"][0]["reason"] == "backendError"
