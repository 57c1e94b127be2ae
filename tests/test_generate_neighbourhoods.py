"""Synthetic neighbourhoods: plausible areas for the generator's towns, in police.uk's KML zip layout, that
load into both stores and answer every neighbourhood method; the demo serves them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import shapely

from conftest import LiveServer
from crimemap.load import dispatch
from crimemap.load.generate.neighbourhoods import documents, plan, write_neighbourhoods
from crimemap.load.generate.world import TOWNS
from crimemap.store.base import Store
from serve_process import demo


def test_each_town_gets_neighbourhoods_by_its_weight_and_none_overlap() -> None:
    made = plan(400)
    assert 380 <= len(made) <= 420
    per_town = Counter(n.town.name for n in made)
    assert set(per_town) == {t.name for t in TOWNS}
    assert per_town["Manchester"] > per_town["Westminster"] > per_town["City of London"] >= 1
    assert len({(n.force, n.id) for n in made}) == len(made)
    shapes = [n.shape for n in made]
    tree = shapely.STRtree(shapes)
    for i, j in zip(*tree.query(shapes, predicate="intersects"), strict=True):
        if i < j:
            # they share edges, up to the rounding of coordinates to six decimals (slivers centimetres wide)
            overlap = shapely.intersection(shapes[i], shapes[j])
            assert shapely.area(overlap) < 1e-6 * min(shapely.area(shapes[i]), shapely.area(shapes[j]))
    assert all(n.shape.is_valid and n.shape.contains(shapely.Point(n.seed)) for n in made)


def test_the_zip_is_laid_out_as_police_uk_s_and_the_same_arguments_give_the_same_bytes(tmp_path: Path) -> None:
    count = write_neighbourhoods(tmp_path / "a.zip", 120, seed=3)
    write_neighbourhoods(tmp_path / "b.zip", 120, seed=3)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        names = z.namelist()
    assert len(names) == count and all(n.startswith("neighbourhoods/") and n.endswith(".kml") for n in names)
    assert "neighbourhoods/leicestershire/LEI01.kml" in names


def test_a_generated_store_answers_every_neighbourhood_method(
    store: Store, tmp_path: Path, live_server: Callable[..., LiveServer]
) -> None:
    write_neighbourhoods(tmp_path / "neighbourhoods.zip", 150)
    assert dispatch.load_paths(store, [tmp_path]).neighbourhoods > 140  # found in the folder, as generate writes it
    leicester = next(n for n in plan(150) if n.id == "LEI01")
    expected = documents(leicester)
    client = live_server(store).client

    def get(path: str) -> object:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        return orjson.loads(response.content)

    lng, lat = leicester.seed
    assert get(f"/api/locate-neighbourhood?q={lat},{lng}") == {"force": "leicestershire", "neighbourhood": "LEI01"}
    assert {"id": "LEI01", "name": "Leicester Town Centre"} in get("/api/leicestershire/neighbourhoods")  # type: ignore[operator]
    assert get("/api/leicestershire/LEI01") == expected["details"]
    for kind in ("people", "events", "priorities"):
        assert get(f"/api/leicestershire/LEI01/{kind}") == expected[kind]
    boundary = get("/api/leicestershire/LEI01/boundary")
    assert isinstance(boundary, list) and boundary[0] == boundary[-1]
    ring = shapely.Polygon([(float(p["longitude"]), float(p["latitude"])) for p in boundary])
    assert ring.equals_exact(leicester.shape, 1e-6)
    assert len(expected["people"]) == 5 and {p["rank"] for p in expected["people"]} == {"Sergeant", "PC", "PCSO"}


def test_generate_writes_neighbourhoods_beside_the_crimes_and_load_takes_both(tmp_path: Path) -> None:
    out, store = tmp_path / "archive", tmp_path / "s.sqlite"
    run = [sys.executable, "-m", "crimemap"]
    made = subprocess.run(
        [*run, "generate", str(out), "--months", "1", "--crimes-per-month", "500", "--neighbourhoods", "60", "-q"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    loaded = subprocess.run(
        [*run, "load", str(out), "--store", str(store)], capture_output=True, text=True, timeout=120
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 500 crimes" in loaded.stdout and "police neighbourhood boundaries" in loaded.stdout


def test_the_demo_serves_neighbourhoods(tmp_path: Path) -> None:
    with demo(tmp_path, "--crimes-per-month", "2000", "--months", "1") as (url, _):
        leicester = next(n for n in plan() if n.id == "LEI01")
        lng, lat = leicester.seed
        located = httpx.get(f"{url}/api/locate-neighbourhood", params={"q": f"{lat},{lng}"}, timeout=30).json()
        assert located == {"force": "leicestershire", "neighbourhood": "LEI01"}
        team = httpx.get(f"{url}/api/leicestershire/LEI01/people", timeout=30).json()
        assert len(team) == 5
