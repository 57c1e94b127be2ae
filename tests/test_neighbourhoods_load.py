"""Neighbourhood boundaries: the KML zip (or folder) loaded into both stores, all or nothing, with the
points kept as published; bad files refused with a message naming them."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import orjson
import psycopg
import pytest
import shapely

from crimemap.load import dispatch
from crimemap.load.neighbourhoods import load_neighbourhoods
from crimemap.load.policeuk import LoadError
from crimemap.neighbourhoods import BOUNDARY, NeighbourhoodLocator, stored_neighbourhoods
from crimemap.store.base import Store
from crimemap.store.catalogue import NEIGHBOURHOODS_TABLE
from crimemap.store.postgis import PostGISStore
from crimemap.store.sqlite import SQLiteStore
from neighbourhood_data import INSIDE_NC04, NC04_BOUNDARY, kml, leicestershire_zip, nc04_points, square, write_zip
from pg_server import fresh_store_url
from wire_datasets import V1_STORE, postgis_v1_url


def _nothing_stored(store: Store) -> None:
    assert store.table(NEIGHBOURHOODS_TABLE) is None
    assert store.documents(BOUNDARY) == []


def test_the_published_zip_loads_each_boundary_with_its_points_as_published(store: Store, tmp_path: Path) -> None:
    summary = dispatch.load_paths(store, [leicestershire_zip(tmp_path / "neighbourhoods.zip")])
    assert summary.neighbourhoods == 2 and summary.boundaries == 0
    assert "loaded 2 police neighbourhood boundaries" in summary.describe(1.0)
    body = store.document("leicestershire", "NC04", BOUNDARY)
    assert body is not None and orjson.loads(body) == orjson.loads(NC04_BOUNDARY.read_bytes())
    assert list(orjson.loads(body)[0]) == ["latitude", "longitude"]
    info = store.table(NEIGHBOURHOODS_TABLE)
    assert info is not None and info.shapes and info.feature_count == 2
    assert [c.name for c in info.columns] == ["force", "neighbourhood", "name"]
    rows = {(force, nbhd): name for force, nbhd, name, _ in stored_neighbourhoods(store)}
    assert rows == {("leicestershire", "NC04"): "NC04", ("leicestershire", "NC08"): "Westcotes"}


def test_the_real_boundary_keeps_its_sliver_and_locates_points_inside_it(store: Store, tmp_path: Path) -> None:
    assert not shapely.Polygon([(float(lng), float(lat)) for lat, lng in nc04_points()]).is_valid  # a spike crosses
    load_neighbourhoods(store, [leicestershire_zip(tmp_path / "n.zip")])
    locator = NeighbourhoodLocator.of(store)
    lat, lng = INSIDE_NC04
    assert locator.at(lng, lat) == ("leicestershire", "NC04")
    assert locator.at(-1.165, 52.625) == ("leicestershire", "NC08")
    assert locator.at(-1.0, 52.0) is None


def test_the_unzipped_folder_and_a_single_file_load_too(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "leicestershire"
    folder.mkdir()
    (folder / "NC04.kml").write_text(kml(nc04_points()))
    assert dispatch.load_paths(store, [tmp_path]).neighbourhoods == 1
    (folder / "NC08.kml").write_text(kml(square(52.62, -1.17)))
    assert dispatch.load_paths(store, [folder / "NC08.kml"]).neighbourhoods == 1
    assert [n for _, n, _, _ in stored_neighbourhoods(store)] == ["NC08"]  # a reload replaces the force's


def test_reloading_a_force_replaces_its_neighbourhoods_and_keeps_other_forces(store: Store, tmp_path: Path) -> None:
    load_neighbourhoods(store, [leicestershire_zip(tmp_path / "a.zip")])
    other = write_zip(tmp_path / "b.zip", {"derbyshire/D1.kml": kml(square(53.0, -1.5), "Derby North")})
    load_neighbourhoods(store, [other])
    again = write_zip(tmp_path / "c.zip", {"leicestershire/NC66.kml": kml(square(52.64, -1.12))})
    load_neighbourhoods(store, [again])
    assert [(f, n) for f, n, _, _ in stored_neighbourhoods(store)] == [
        ("derbyshire", "D1"),
        ("leicestershire", "NC66"),
    ]
    assert [n for _, n, _ in store.documents(BOUNDARY)] == ["D1", "NC66"]
    assert NeighbourhoodLocator.of(store).at(-1.165, 52.625) is None  # NC08 is gone from the locator too


def _refused(store: Store, tmp_path: Path, files: dict[str, str], message: str) -> None:
    archive = write_zip(tmp_path / "bad.zip", files)
    with pytest.raises(LoadError, match=message):
        dispatch.load_paths(store, [archive])


def test_a_ring_that_does_not_close_is_refused_naming_the_file_and_nothing_is_stored(
    store: Store, tmp_path: Path
) -> None:
    ring = square(52.62, -1.17)[:-1] + [("52.6250", "-1.1700")]
    files = {"leicestershire/NC04.kml": kml(nc04_points()), "leicestershire/NC08.kml": kml(ring)}
    _refused(store, tmp_path, files, r"bad.zip:leicestershire/NC08.kml: a ring that does not close")
    _nothing_stored(store)


def test_a_ring_that_crosses_itself_is_refused_and_the_stored_neighbourhoods_stay(store: Store, tmp_path: Path) -> None:
    load_neighbourhoods(store, [leicestershire_zip(tmp_path / "good.zip")])
    bow_tie = [("52.0", "-1.0"), ("52.1", "-0.9"), ("52.1", "-1.0"), ("52.0", "-0.9"), ("52.0", "-1.0")]
    _refused(store, tmp_path, {"leicestershire/NC04.kml": kml(bow_tie)}, r"NC04.kml: a ring that crosses itself")
    assert orjson.loads(store.document("leicestershire", "NC04", BOUNDARY) or b"") == orjson.loads(
        NC04_BOUNDARY.read_bytes()
    )
    assert len(stored_neighbourhoods(store)) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<kml><Document><Placemark>", "not a KML file"),
        ("<kml><Document></Document></kml>", "no Polygon in this KML file"),
        (kml([("52.0", "-1.0"), ("52.1", "east"), ("52.1", "-1.0"), ("52.0", "-1.0")]), "numbers, not 'east,52.1,0'"),
        (kml([("52.0", "-1.0"), ("52.1", "-1.0"), ("52.0", "-1.0")]), "at least four points"),
        (kml([("95.0", "-1.0"), ("95.1", "-1.0"), ("95.1", "-0.9"), ("95.0", "-1.0")]), "out of range"),
    ],
)
def test_malformed_kml_is_refused_naming_the_file(store: Store, tmp_path: Path, text: str, message: str) -> None:
    _refused(store, tmp_path, {"leicestershire/NC04.kml": text}, rf"bad.zip:leicestershire/NC04.kml: .*{message}")
    _nothing_stored(store)


def test_a_kml_with_entities_is_refused_before_they_are_expanded(store: Store, tmp_path: Path) -> None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><kml><Document><name>&c;</name></Document></kml>'
    )
    _refused(store, tmp_path, {"leicestershire/NC04.kml": laughs}, "NC04.kml: a KML file with a DTD")
    _nothing_stored(store)


def test_a_zip_with_an_unexpected_member_is_refused_naming_it(store: Store, tmp_path: Path) -> None:
    files = {"leicestershire/NC04.kml": kml(nc04_points()), "leicestershire/readme.txt": "hello"}
    _refused(store, tmp_path, files, r"bad.zip: unexpected member 'leicestershire/readme.txt'")
    files = {"leicestershire/NC04.kml": kml(nc04_points()), "../../etc/NC08.kml": kml(square(52.62, -1.17))}
    _refused(store, tmp_path, files, r"unexpected member '../../etc/NC08.kml'")
    files = {"leicestershire/NC04.kml": kml(nc04_points()), "__MACOSX/leicestershire/._NC04.kml": "\x00\x05"}
    _refused(store, tmp_path, files, r"NC04.kml: not a KML file")  # a force folder's member is read as KML
    _nothing_stored(store)


def test_a_store_from_before_neighbourhoods_keeps_opening(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE policeuk_documents")
    with SQLiteStore(path, readonly=True) as old:
        assert old.documents(BOUNDARY) == [] and old.document("leicestershire", "NC04", BOUNDARY) is None
    with SQLiteStore(path) as store:
        load_neighbourhoods(store, [leicestershire_zip(tmp_path / "n.zip")])
        assert len(store.documents(BOUNDARY)) == 2


def _carrying(data: str) -> str:
    return kml(square(52.62, -1.17), "Westcotes").replace("<Polygon>", f"<ExtendedData>{data}</ExtendedData><Polygon>")


def test_documents_a_kml_file_carries_are_stored_beside_its_boundary(store: Store, tmp_path: Path) -> None:
    team = '[{"name": "Jo", "rank": "PC", "bio": null, "contact_details": {}}]'
    people = f'<Data name="people"><value>{team}</value></Data>'
    other = '<Data name="colour"><value>blue</value></Data>'
    load_neighbourhoods(store, [write_zip(tmp_path / "n.zip", {"leicestershire/NC08.kml": _carrying(people + other)})])
    assert orjson.loads(store.document("leicestershire", "NC08", "people") or b"") == [
        {"name": "Jo", "rank": "PC", "bio": None, "contact_details": {}}
    ]
    assert store.document("leicestershire", "NC08", "colour") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('<Data name="events"><value>[{"title": </value></Data>', "the events in ExtendedData is not JSON"),
        ('<Data name="people"><value>{"name": "Jo"}</value></Data>', "the people in ExtendedData must be a JSON list"),
        ('<Data name="details"><value>{"id": "NC04"}</value></Data>', "the details in ExtendedData are of 'NC04'"),
    ],
)
def test_carried_documents_that_are_not_what_they_say_are_refused(
    store: Store, tmp_path: Path, data: str, message: str
) -> None:
    _refused(store, tmp_path, {"leicestershire/NC08.kml": _carrying(data)}, rf"NC08.kml: {message}")
    _nothing_stored(store)


def test_a_postgis_store_from_before_neighbourhoods_keeps_opening_and_takes_them(tmp_path: Path) -> None:
    url = fresh_store_url()
    PostGISStore(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE policeuk_documents")
    with PostGISStore(url) as store:
        assert store.documents(BOUNDARY) == []
        load_neighbourhoods(store, [leicestershire_zip(tmp_path / "n.zip")])
        assert len(store.documents(BOUNDARY)) == 2


def test_a_first_release_store_is_upgraded_and_takes_neighbourhoods(tmp_path: Path) -> None:
    shutil.copyfile(V1_STORE, tmp_path / "v1.sqlite")
    for store in (SQLiteStore(tmp_path / "v1.sqlite"), PostGISStore(postgis_v1_url())):
        with store:
            load_neighbourhoods(store, [leicestershire_zip(tmp_path / "n.zip")])
            assert NeighbourhoodLocator.of(store).at(-1.165, 52.625) == ("leicestershire", "NC08")
            assert store.table("places") is not None  # what it held is still there


def test_force_folders_may_lie_deeper_in_the_zip(store: Store, tmp_path: Path) -> None:
    deep = "2024-01/neighbourhoods/leicestershire/NC08.kml"
    archive = write_zip(tmp_path / "n.zip", {deep: kml(square(52.62, -1.17))})
    assert dispatch.load_paths(store, [archive]).neighbourhoods == 1
    assert [(f, n) for f, n, _, _ in stored_neighbourhoods(store)] == [("leicestershire", "NC08")]
