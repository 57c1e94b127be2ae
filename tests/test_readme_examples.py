"""Every example in the README returns what it implies, run against ``crimemap demo`` as a user starts it.

The curl commands and the ``where`` example are read from README.md itself, so an
edited example is tested as written. Not run: the police.uk harvest example, which
asks data.police.uk (no network here), and the web map's address for 2017-01,
which needs the real archive rather than the demo's months.
"""

from __future__ import annotations

import csv
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from conftest import NYC
from serve_process import demo

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
NYC_TABLES = ("02378420399528461352-11853667273131550346", "02378420399528461352-17772055697785505571")


def readme_urls() -> list[str]:
    """The URLs of the README's curl commands, host and port left out."""
    found = re.findall(r"curl (?:-\w+ )*'http://(?:127\.0\.0\.1|localhost):8000(/[^']*)'", README)
    assert len(found) >= 3, found
    return found


def readme_where() -> str:
    match = re.search(r"`(MO=[^`]*ST_INTERSECTS[^`]*)`", README)
    assert match, "the NYC where example is gone from the README"
    return match.group(1)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> object:
    if not NYC.is_dir():
        pytest.skip("the NYC tables are not at ../shared/data (the demo loads them from there)")
    with demo(tmp_path_factory.mktemp("demo")) as (url, _):
        yield url


def _says_something(path: str, response: httpx.Response) -> None:
    assert response.status_code == 200, (path, response.text[:500])
    kind = response.headers["content-type"]
    if kind.startswith("text/csv"):
        rows = list(csv.reader(io.StringIO(response.text)))
        assert len(rows) > 1, path
        return
    body = response.json()
    if isinstance(body, list):
        assert body, path
    else:
        features = body["features"]
        assert features, path
        assert all(f.get("geometry") for f in features), f"{path}: a feature without a location"


@pytest.mark.parametrize("path", readme_urls())
def test_every_curl_example_returns_data(demo_server: str, path: str) -> None:
    _says_something(path, httpx.get(demo_server + path, timeout=60))


def test_the_nyc_where_example_finds_crimes_in_both_tables(demo_server: str) -> None:
    where = readme_where()
    for table in NYC_TABLES:
        path = f"/mapsengine/v1/tables/{table}/features?where={quote(where)}"
        response = httpx.get(demo_server + path, timeout=60)
        _says_something(path, response)
        assert {(f["properties"]["YR"], f["properties"]["MO"]) for f in response.json()["features"]} == {(2015.0, 3.0)}


def test_the_maps_engine_harvest_example_copies_the_table(demo_server: str, tmp_path: Path) -> None:
    match = re.search(r"crimemap harvest mapsengine (http://127\.0\.0\.1:8000 [^\n]*\\\n[^\n]*)", README)
    assert match, "the Maps Engine harvest example is gone from the README"
    args = shlex.split(match.group(1).replace("\\\n", " "))
    args[0] = demo_server
    args[args.index("--store") + 1] = str(tmp_path / "crimes.sqlite")
    done = subprocess.run(
        [sys.executable, "-m", "crimemap", "harvest", "mapsengine", *args, "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    from crimemap.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "crimes.sqlite")
    table = store.table("nyc-2015")
    store.close()
    assert table is not None and table.feature_count == 19_145


def test_the_gdal_and_geopandas_examples_ask_for_a_month_the_demo_holds(demo_server: str) -> None:
    import pyogrio

    months = re.findall(r"month = '(\d{4}-\d{2})'", README)
    box = re.search(r"bbox=\(([-\d., ]+)\)", README)
    assert len(months) >= 2 and box, "the GDAL and geopandas examples are gone from the README"
    bbox = tuple(float(v) for v in box.group(1).split(","))
    for month in set(months):
        frame = pyogrio.read_dataframe(
            f"OAPIF:{demo_server}/ogc", layer="policeuk-crimes", bbox=bbox, where=f"month = '{month}'"
        )
        assert len(frame) > 0 and set(frame["month"]) == {month}


def test_the_demo_stores_as_many_stops_as_the_readme_says(demo_server: str) -> None:
    said = re.search(r"`crimemap demo` stores ([\d,]+) synthetic stops", README)
    assert said, "the README no longer says how many stops the demo stores"
    counts = httpx.get(f"{demo_server}/stats/stops", params={"group": "month"}, timeout=60).json()
    assert sum(row["count"] for row in counts) == int(said.group(1).replace(",", ""))
