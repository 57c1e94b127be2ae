"""Real OGC API - Features clients against ``crimemap serve``: GDAL's OAPIF driver (through pyogrio) and OWSLib.

The server runs in its own process: pyogrio holds the interpreter lock while
GDAL downloads pages, so a server thread in the test process would never answer.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyogrio
import pytest
from owslib.ogcapi.features import Features

from conftest import STORE_KINDS, LiveServer, _open_empty
from crimemap.load.generate.archive import generate
from crimemap.load.policeuk import load_policeuk
from crimemap.load.tables import load_table
from crimemap.query import FeatureQuery
from crimemap.store.base import Store
from crimemap.store.catalogue import CRIMES_TABLE
from crimemap.store.sqlite import SQLiteStore

CITY = (-0.1, 51.51, -0.09, 51.52)


class ServedProcess:
    """``crimemap serve`` over a store in a subprocess on a free loopback port, response cache off."""

    def __init__(self, store: Store) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        location = getattr(store, "_conninfo", store.url)  # PostGIS: the URL with its password, if any
        command = [sys.executable, "-m", "crimemap", "serve", "--store", location, "--port", str(port)]
        self.process = subprocess.Popen([*command, "--cache-mb", "0"], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("crimemap serve did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def served(policeuk_store: Store) -> Iterator[ServedProcess]:
    server = ServedProcess(policeuk_store)
    yield server
    server.stop()


def police_uk_ids(server: str, month: str) -> set[int]:
    west, south, east, north = CITY
    poly = f"{south},{west}:{south},{east}:{north},{east}:{north},{west}"
    answer = httpx.get(f"{server}/api/crimes-street/all-crime", params={"poly": poly, "date": month})
    return {c["id"] for c in answer.json()}


# -- GDAL ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=STORE_KINDS)
def unlocated_first(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A generated month served, whose crimes with "No location" come first (as in the demo), and its URL."""
    folder = tmp_path_factory.mktemp("unlocated-first")
    generate(folder / "archive", months=["2024-06"], crimes_per_month=3000, seed=1)
    store = _open_empty(request.param, folder)
    load_policeuk(store, [folder / "archive"])
    server = ServedProcess(store)
    yield server.url
    server.stop()
    store.close()


def test_gdal_types_the_crimes_layer_by_its_schema_when_the_first_page_has_no_locations(unlocated_first: str) -> None:
    first = httpx.get(f"{unlocated_first}/ogc/collections/{CRIMES_TABLE}/items", params={"limit": 20}).json()
    assert all(f["geometry"] is None for f in first["features"])  # what GDAL samples says nothing of the types
    queryables = httpx.get(f"{unlocated_first}/ogc/collections/{CRIMES_TABLE}/queryables").json()["properties"]
    numbers = ("longitude", "latitude", "street_id")
    assert [queryables[name]["type"] for name in numbers] == ["number", "number", "integer"]
    info = pyogrio.read_info(f"OAPIF:{unlocated_first}/ogc", layer=CRIMES_TABLE)
    assert info["geometry_type"] == "Point"
    types = dict(zip(info["fields"], info["ogr_types"], strict=True))
    assert [types[name] for name in (*numbers, "id")] == ["OFTReal", "OFTReal", "OFTInteger64", "OFTInteger64"]
    frame = pyogrio.read_dataframe(f"OAPIF:{unlocated_first}/ogc", layer=CRIMES_TABLE, max_features=300)
    assert [str(frame[name].dtype) for name in (*numbers, "id")] == ["float64"] * 3 + ["int64"]  # NaN: no street
    served = {
        f["id"]: f["properties"]
        for f in httpx.get(f"{unlocated_first}/ogc/collections/{CRIMES_TABLE}/items", params={"limit": 300}).json()[
            "features"
        ]
    }
    located = frame[frame["street_id"].notna()]
    assert len(located) > 0
    for row in located.itertuples():
        assert (row.longitude, row.latitude, int(row.street_id)) == (
            served[row.id]["longitude"], served[row.id]["latitude"], served[row.id]["street_id"]
        )  # fmt: skip
        assert (row.geometry.x, row.geometry.y) == (row.longitude, row.latitude)


def test_gdal_types_fields_by_the_json_schema_where_names_are_no_xml_names(tmp_path: Path) -> None:
    table = tmp_path / "places.geojson"
    table.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "properties": {"street id": null, "a b": null}, "geometry": null},'
        '{"type": "Feature", "properties": {"street id": 3000000000, "a b": 1.5},'
        ' "geometry": {"type": "Point", "coordinates": [-0.1, 51.5]}}]}'
    )
    store = SQLiteStore(tmp_path / "s.sqlite")
    load_table(store, table, table_id="places")
    server = ServedProcess(store)
    try:
        links = httpx.get(f"{server.url}/ogc/collections/places").json()["links"]
        assert [link["type"] for link in links if link["rel"] == "describedby"] == ["application/schema+json"]
        info = pyogrio.read_info(f"OAPIF:{server.url}/ogc", layer="places")
        types = dict(zip(info["fields"], info["ogr_types"], strict=True))
        assert types == {"street id": "OFTReal", "a b": "OFTReal"}  # a double holds 3,000,000,000; no string
        frame = pyogrio.read_dataframe(f"OAPIF:{server.url}/ogc", layer="places")
        assert frame["street id"].dropna().tolist() == [3_000_000_000.0]
    finally:
        server.stop()
        store.close()


def test_gdal_lists_every_table_as_a_point_layer(served: ServedProcess, policeuk_store: Store) -> None:
    layers = pyogrio.list_layers(f"OAPIF:{served.url}/ogc")
    assert [name for name, _ in layers] == [t.id for t in policeuk_store.tables()]
    assert {kind for _, kind in layers} == {"Point"}


def test_gdal_reads_the_same_crimes_and_values_as_the_police_uk_api_and_the_store(
    served: ServedProcess, policeuk_store: Store, capfd: pytest.CaptureFixture[str]
) -> None:
    pyogrio.set_gdal_config_options({"CPL_DEBUG": "ON"})
    try:
        frame = pyogrio.read_dataframe(
            f"OAPIF:{served.url}/ogc",
            layer=CRIMES_TABLE,
            bbox=CITY,
            where="month = '2017-01' AND crime_type <> 'Anti-social behaviour'",
            fid_as_index=True,
        )
    finally:
        pyogrio.set_gdal_config_options({"CPL_DEBUG": None})
    log = capfd.readouterr().err
    assert "filter=" in log and "filter-lang=cql-text" in log, "GDAL should send the filter to the server"
    expected = {
        i
        for i in police_uk_ids(served.url, "2017-01")
        if (f := policeuk_store.feature(CRIMES_TABLE, i, ("crime_type",)))
        and f.properties[0] != "Anti-social behaviour"
    }
    assert set(frame.index) == expected and len(expected) > 20
    columns = [c for c in frame.columns if c != "geometry"]
    for gx_id, row in frame.iterrows():
        stored = policeuk_store.feature(CRIMES_TABLE, int(gx_id), tuple(columns))
        assert stored is not None
        assert (row.geometry.x, row.geometry.y) == (stored.lng, stored.lat)
        assert [None if _missing(v) else v for v in row[columns]] == list(stored.properties)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def test_gdal_pages_through_a_whole_month(served: ServedProcess, policeuk_store: Store) -> None:
    frame = pyogrio.read_dataframe(f"OAPIF:{served.url}/ogc", layer=CRIMES_TABLE, where="month = '2018-01'",
                                   columns=["month"], fid_as_index=True)  # fmt: skip
    month = {f.gx_id for f in policeuk_store.features(FeatureQuery(CRIMES_TABLE, columns=("month",)))
             if f.properties[0] == "2018-01"}  # fmt: skip
    assert len(frame) == len(month) > 5_000 and set(frame.index) == month


# -- OWSLib ---------------------------------------------------------------------------------------------------


def test_owslib_reads_the_landing_page_conformance_and_collections(
    served: ServedProcess, policeuk_store: Store
) -> None:
    api = Features(f"{served.url}/ogc")
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in api.conformance()["conformsTo"]
    assert api.feature_collections() == [t.id for t in policeuk_store.tables()]
    assert api.collection(CRIMES_TABLE)["extent"]["temporal"]["interval"][0][0] == "2016-01-01T00:00:00Z"
    assert "month" in api.collection_queryables(CRIMES_TABLE)["properties"]
    assert api.api()["openapi"].startswith("3.0")


def test_owslib_items_with_bbox_and_filter_match_the_police_uk_api(served: ServedProcess) -> None:
    api = Features(f"{served.url}/ogc")
    body = api.collection_items(CRIMES_TABLE, bbox=list(CITY), filter="month = '2016-06'", limit=10_000)
    assert {f["id"] for f in body["features"]} == police_uk_ids(served.url, "2016-06")
    one = body["features"][0]
    assert {k: v for k, v in api.collection_item(CRIMES_TABLE, one["id"]).items() if k != "links"} == one


def test_owslib_pages_to_the_end_of_a_collection_by_its_next_links(
    served: ServedProcess, policeuk_store: Store
) -> None:
    api = Features(f"{served.url}/ogc")
    params: dict[str, Any] = {"limit": 5_000, "properties": ""}
    seen: list[int] = []
    while True:
        body = api.collection_items(CRIMES_TABLE, **params)
        seen += [f["id"] for f in body["features"]]
        following = [x["href"] for x in body["links"] if x["rel"] == "next"]
        if not following:
            break
        params["cursor"] = parse_qs(urlsplit(following[0]).query)["cursor"][0]
    expected = {f.gx_id for f in policeuk_store.features(FeatureQuery(CRIMES_TABLE, columns=()))}
    assert len(seen) == len(set(seen)) == len(expected) and set(seen) == expected


def test_the_in_process_server_answers_like_the_served_one(policeuk_server: LiveServer, served: ServedProcess) -> None:
    path = f"/ogc/collections/{CRIMES_TABLE}/items?limit=50&sortby=-id&properties=id,month"
    assert policeuk_server.client.get(path).json()["features"] == httpx.get(served.url + path).json()["features"]
