"""Police force boundaries: loaded from the real KML files (or their zip), stored as a table of shapes in
both stores, queried with ST_INTERSECTS, and deciding the force of harvested crimes."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import shapely

from conftest import SHARED_DATA, LiveServer
from crimemap.boundaries import ForceLocator
from crimemap.harvest.http import HarvestError
from crimemap.harvest.policeuk import PoliceUKHarvest
from crimemap.harvest.tiling import BBox
from crimemap.load import dispatch
from crimemap.load.boundaries import load_boundaries, read_kml
from crimemap.load.errors import LoadError
from crimemap.load.tables import load_table
from crimemap.query import FeatureQuery
from crimemap.store.base import Store
from crimemap.store.catalogue import FORCE_BOUNDARIES
from crimemap.where import parse_where
from test_harvest_policeuk import CITY, SQLITE_SOURCE, expected, run, same_crimes, stored

FORCES = SHARED_DATA / "boundaries" / "forces"


def _kml(force: str) -> shapely.Geometry:
    with (FORCES / f"{force}.kml").open("rb") as f:
        return read_kml(f, force)


def _intersecting(store: Store, table: str, where: str) -> list[str]:
    info = store.table(table)
    assert info is not None
    query = FeatureQuery(table, where=parse_where(where, info.schema), columns=(info.columns[0].name,))
    return sorted(str(f.properties[0]) for f in store.features(query))


def test_the_44_force_boundaries_load_from_their_folder(store: Store) -> None:
    summary = dispatch.load_paths(store, [FORCES])
    assert summary.boundaries == 44
    assert "loaded 44 police force boundaries" in summary.describe(1.0)
    info = store.table(FORCE_BOUNDARIES)
    assert info is not None and info.shapes and info.feature_count == 44
    assert [c.name for c in info.columns] == ["force", "name"]
    west, south, east, north = info.bbox  # type: ignore[misc]
    assert -8.7 < west < -8.5 and 49.8 < south < 50 and 1.7 < east < 1.8 and 55.7 < north < 55.9
    found = store.force_boundaries()
    assert len(found) == 44 and found["metropolitan"][0] == "Metropolitan Police Service"
    city = shapely.from_wkb(found["city-of-london"][1])
    assert city.equals_exact(_kml("city-of-london"), 0) and 2.5e6 < shapely.area(city) * 111e3 * 69e3 < 3.5e6
    met = shapely.from_wkb(found["metropolitan"][1])
    assert len(met.geoms[0].interiors) == 1  # the City is a hole in London's outline


def test_the_published_zip_and_single_files_load_and_replace_only_their_forces(store: Store, tmp_path: Path) -> None:
    archive = tmp_path / "police-force-kmls.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for force in ("essex", "kent", "surrey"):
            z.write(FORCES / f"{force}.kml", f"force kmls/{force}.kml")
    assert dispatch.load_paths(store, [archive]).boundaries == 3
    assert sorted(store.force_boundaries()) == ["essex", "kent", "surrey"]
    assert dispatch.load_paths(store, [FORCES / "kent.kml", FORCES / "cumbria.kml"]).boundaries == 2
    assert sorted(store.force_boundaries()) == ["cumbria", "essex", "kent", "surrey"]


def test_a_boundary_file_that_is_not_a_force_or_not_kml_is_refused(store: Store, tmp_path: Path) -> None:
    (tmp_path / "atlantis.kml").write_bytes((FORCES / "kent.kml").read_bytes())
    with pytest.raises(LoadError, match="'atlantis' is not a force id"):
        load_boundaries(store, [tmp_path / "atlantis.kml"])
    (tmp_path / "kent.kml").write_text("<kml><Document><Placemark>")
    with pytest.raises(LoadError, match="kent.kml: not a KML file"):
        load_boundaries(store, [tmp_path / "kent.kml"])
    assert store.table(FORCE_BOUNDARIES) is None


def test_st_intersects_and_st_distance_select_the_forces_an_area_meets(store: Store) -> None:
    load_boundaries(store, [FORCES])
    square = "POLYGON((-0.1 51.51, -0.08 51.51, -0.08 51.52, -0.1 51.52, -0.1 51.51))"
    assert _intersecting(store, FORCE_BOUNDARIES, f"ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('{square}'))") == [
        "city-of-london",
        "metropolitan",
    ]
    chelmsford = "ST_DISTANCE(geometry, ST_POINT(0.4685, 51.7356)) < 1000"
    assert _intersecting(store, FORCE_BOUNDARIES, chelmsford) == ["essex"]
    assert _intersecting(store, FORCE_BOUNDARIES, f"force = 'kent' AND NOT {chelmsford}") == ["kent"]
    severn = "POLYGON((-2.75 51.45, -2.6 51.45, -2.6 51.65, -2.75 51.65, -2.75 51.45))"
    assert _intersecting(store, FORCE_BOUNDARIES, f"ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('{severn}'))") == [
        "avon-and-somerset",
        "gloucestershire",
        "gwent",
    ]


def test_a_geojson_table_of_polygons_and_points_is_stored_and_served(
    store: Store, tmp_path: Path, live_server: Callable[..., LiveServer]
) -> None:
    features = [
        {"type": "Feature", "id": 1, "properties": {"name": "square"},
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}},
        {"type": "Feature", "id": 2, "properties": {"name": "two squares"},
         "geometry": {"type": "MultiPolygon", "coordinates": [[[[2, 0], [3, 0], [3, 1], [2, 0]]],
                                                              [[[5, 5], [6, 5], [6, 6], [5, 5]]]]}},
        {"type": "Feature", "id": 3, "properties": {"name": "a point"},
         "geometry": {"type": "Point", "coordinates": [0.5, 0.5]}},
        {"type": "Feature", "id": 4, "properties": {"name": "a line"},
         "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
    ]  # fmt: skip
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    loaded = load_table(store, path)
    assert loaded == 4 and "not a Point, Polygon or MultiPolygon (#4)" in loaded.notes[0]
    assert (
        _intersecting(
            store, "areas", "ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('POLYGON((0.9 0.9, 2.1 0.9, 2.1 0.1, 0.9 0.9))'))"
        )
        == [  # noqa: E501
            "a point"[:0] + "square",
            "two squares",
        ]
    )
    assert _intersecting(store, "areas", "ST_DISTANCE(geometry, ST_POINT(0.5, 0.5)) < 10") == ["a point", "square"]
    server = live_server(store)
    page = server.client.get("/mapsengine/v1/tables/areas/features").json()
    geometries = {f["properties"]["name"]: f["geometry"] for f in page["features"]}
    assert geometries["square"]["type"] == "Polygon"
    assert shapely.from_geojson(json.dumps(geometries["two squares"])).equals(
        shapely.from_geojson(json.dumps(features[1]["geometry"]))
    )
    assert geometries["a point"] == {"type": "Point", "coordinates": [0.5, 0.5]}
    assert geometries["a line"] is None
    download = server.client.get("/download/areas.geojson").json()
    assert [f["geometry"]["type"] if f["geometry"] else None for f in download["features"]] == [
        "Polygon", "MultiPolygon", "Point", None,
    ]  # fmt: skip


def test_the_locator_gives_the_smallest_area_holding_a_point_else_the_nearest(store: Store) -> None:
    load_boundaries(store, [FORCES])
    locator = ForceLocator.from_store(store)
    assert locator is not None
    assert locator.force_at(-0.09, 51.515) == "city-of-london"
    assert locator.force_at(-0.1276, 51.5073) == "metropolitan"
    assert locator.force_at(0.4685, 51.7356) == "essex"
    assert locator.force_at(-3.18, 51.48) == "south-wales"
    assert locator.force_at(1.9, 52.5) == "suffolk" or locator.force_at(1.9, 52.5) == "norfolk"  # at sea: nearest
    assert locator.last_outside == 1
    assert locator.forces_in_box(-0.1145, 51.5055, -0.0725, 51.5245) == ["city-of-london", "metropolitan"]


# -- harvesting without --force -----------------------------------------------------------------------------


@SQLITE_SOURCE
def test_a_harvest_without_a_force_stores_each_crime_under_the_force_whose_area_holds_it(
    policeuk_store: Store, policeuk_server: LiveServer, make_store: Callable[[], Store], tmp_path: Path
) -> None:
    target = make_store()
    load_boundaries(target, [FORCES])
    summary = run(policeuk_server.url, target, tmp_path / "state", PoliceUKHarvest(CITY, ("2017-01",)))
    want = expected(policeuk_store, CITY, "2017-01", "city-of-london")
    got = stored(target, "2017-01")
    same_crimes(got, want)
    city, met = _kml("city-of-london"), _kml("metropolitan")
    for c in got:
        if c.location_type == "BTP":
            assert c.force == "btp"
        elif c.lng is None or c.lat is None:
            assert c.force == "city-of-london"  # asked of each force whose area meets the box
        else:
            inside = "city-of-london" if city.intersects(shapely.Point(c.lng, c.lat)) else "metropolitan"
            assert met.intersects(shapely.Point(c.lng, c.lat)) or inside == "city-of-london"
            assert c.force == inside, c
    assert {c.force for c in got} == {"city-of-london", "metropolitan"}
    assert set(summary.forces) == {"city-of-london", "metropolitan"}
    assert sum(summary.forces.values()) == summary.crimes["2017-01"] == len(want)


def test_a_harvest_without_a_force_or_boundaries_says_to_load_them(
    make_store: Callable[[], Store], tmp_path: Path
) -> None:
    with pytest.raises(HarvestError, match="load the force boundaries first"):
        run("http://127.0.0.1:9", make_store(), tmp_path / "state", PoliceUKHarvest(BBox(0, 51, 1, 52), ("2017-01",)))


def test_shapes_are_tested_from_many_threads_at_once(store: Store) -> None:
    """GEOS's prepared geometries are not safe to share between threads: each thread prepares its own."""
    from concurrent.futures import ThreadPoolExecutor

    load_boundaries(store, [FORCES])
    where = "ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('POLYGON((-0.2 51.4, 0.1 51.4, 0.1 51.6, -0.2 51.6, -0.2 51.4))'))"
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _intersecting(store, FORCE_BOUNDARIES, where), range(64)))
    assert all(a == ["city-of-london", "metropolitan"] for a in answers)
