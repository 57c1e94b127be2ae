"""Loading feature tables from GeoJSON and CSV: schema inference, ids, geometry problems, atomic replace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import NYC
from crimemap.load import dispatch, geojson
from crimemap.load.errors import LoadError
from crimemap.load.tables import load_table
from crimemap.query import Compare, FeatureQuery
from crimemap.records import Feature
from crimemap.store.base import Store
from crimemap.store.catalogue import Column
from crimemap.where import parse_where

NYC_TOTALS = NYC / "2015-05-08" / "02378420399528461352-11853667273131550346.geojson"
NYC_BY_TYPE = NYC / "2015-05-08" / "02378420399528461352-17772055697785505571.geojson"


def point(lng: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lng, lat]}


def write_geojson(path: Path, features: list[dict[str, Any]], **members: Any) -> Path:
    collection = {"type": "FeatureCollection", "features": features, **members}
    path.write_text(json.dumps(collection))
    return path


def feature(props: dict[str, Any], geometry: Any = None, **members: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": props, **members}


def all_features(store: Store, table: str) -> list[Feature]:
    return list(store.features(FeatureQuery(table)))


# -- the NYC Crime Map tables -------------------------------------------------------------------------


def test_nyc_tables_load_under_their_real_ids_with_the_real_schema(store: Store) -> None:
    summary = dispatch.load_paths(store, [NYC_TOTALS, NYC_BY_TYPE])
    assert summary.tables == [
        ("02378420399528461352-11853667273131550346", 17_710),
        ("02378420399528461352-17772055697785505571", 19_145),
    ]
    by_type = store.table("02378420399528461352-17772055697785505571")
    assert by_type is not None
    assert by_type.schema == {
        "MO": "double",
        "YR": "double",
        "CR": "string",
        "TOT": "double",
        "Y": "double",
        "X": "double",
    }
    assert by_type.feature_count == 19_145
    west, south, east, north = by_type.bbox or (0, 0, 0, 0)
    assert -77.6 < west < east < -73.6 and 40.1 < south < north < 41.0
    totals = store.table("02378420399528461352-11853667273131550346")
    assert totals is not None and "CR" not in totals.schema


def test_nyc_features_keep_file_order_ids_floats_and_coordinates(store: Store) -> None:
    load_table(store, NYC_BY_TYPE)
    raw = json.loads(NYC_BY_TYPE.read_text())["features"]
    stored = all_features(store, NYC_BY_TYPE.stem)
    assert [f.gx_id for f in stored] == list(range(1, len(raw) + 1))
    columns = [c.name for c in store.table(NYC_BY_TYPE.stem).columns]  # type: ignore[union-attr]
    for f, r in zip(stored[:500], raw[:500], strict=True):
        assert [f.lng, f.lat] == r["geometry"]["coordinates"]
        assert dict(zip(columns, f.properties, strict=True)) == r["properties"]
        assert isinstance(f.properties[columns.index("YR")], float)


def test_file_name_or_table_option_names_the_table(store: Store, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "my places.geojson", [feature({"a": 1}, point(1, 2))])
    assert load_table(store, path) == 1
    assert store.table("my places") is not None
    dispatch.load_paths(store, [path], table="renamed")
    assert store.table("renamed") is not None


def test_the_crimes_table_id_cannot_be_taken(store: Store, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "t.geojson", [feature({"a": 1}, point(1, 2))])
    with pytest.raises(LoadError, match="police.uk crimes"):
        load_table(store, path, table_id="policeuk-crimes")


# -- schema inference -----------------------------------------------------------------------------------


def test_schema_inference_finds_every_type(store: Store, tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {
            "n": 1,
            "d": 1.5,
            "s": "a",
            "b": True,
            "t": "2015-03-01T12:00:00Z",
            "day": "2015-03-01",
            "o": {"k": [1]},
        },
        {
            "n": 2,
            "d": 2,
            "s": "b",
            "b": False,
            "t": "2015-03-02 08:30:00+00:00",
            "day": "2015-03-02",
            "o": None,
        },
        {"n": None, "d": None, "s": None, "b": None, "t": None, "day": None, "o": [1, 2]},
    ]
    path = write_geojson(tmp_path / "types.geojson", [feature(r, point(0, 0)) for r in rows])
    load_table(store, path)
    info = store.table("types")
    assert info is not None
    assert info.columns == (
        Column("n", "integer"),
        Column("d", "double"),
        Column("s", "string"),
        Column("b", "boolean"),
        Column("t", "string"),  # "2015-03-02 08:30:00+00:00" would not come back as it was given
        Column("day", "datetime"),
        Column("o", "string"),
    )
    first, second, third = all_features(store, "types")
    assert first.properties[:3] == (1, 1.5, "a")
    assert first.properties[4:] == ("2015-03-01T12:00:00Z", "2015-03-01", '{"k":[1]}')
    assert second.properties[4] == "2015-03-02 08:30:00+00:00"
    assert third.properties == (None,) * 6 + ("[1,2]",)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([2015.0, 2014.0], "double"),  # the NYC tables: floats stay double
        ([2015, 2014], "integer"),
        ([2015, 2014.0], "double"),
        (["2015", "2014"], "string"),  # older downloads: strings stay strings ...
        (["2015", 2014], "string"),
        (["1e3", "-2"], "string"),
        ([1, 2**63], "double"),
        ([True, False, None], "boolean"),
        ([True, 1], "string"),
        ([None, None], "string"),
        (["2015-01-01", "2015-01-02T10:00:00", "2015-01-02T10:00:00.500000+01:00"], "datetime"),  # as served back
        (["2015-01-01", "2015-01-02T10:00"], "string"),  # "10:00" would come back as "10:00:00"
        (["2015-01-02 10:00:00Z"], "string"),
        (["2015-01-02T10:00:00.5+01:00"], "string"),
        (["2015-13-01"], "string"),
    ],
)
def test_geojson_columns_keep_the_json_types_they_were_given(
    store: Store, tmp_path: Path, values: list[Any], expected: str
) -> None:
    path = write_geojson(tmp_path / "t.geojson", [feature({"v": v}, point(0, 0)) for v in values])
    load_table(store, path)
    assert store.table("t").schema == {"v": expected}  # type: ignore[union-attr]
    assert [f.properties[0] for f in all_features(store, "t")] == [
        v if expected != "string" or v is None or isinstance(v, str) else json.dumps(v) for v in values
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["2015", "2014"], "integer"),
        (["2015", "2014.0"], "double"),
        (["2015.5", "3"], "double"),
        (["1e3", "-2"], "double"),
        (["1", str(2**63)], "double"),
        (["02134", "10001"], "string"),  # a leading zero is a code, not a number
        (["12", "twelve"], "string"),
        (["true", "FALSE", ""], "boolean"),
        (["", ""], "string"),
        (["2015-01-01", "2015-01-02T10:00"], "datetime"),
        (["2015-13-01"], "string"),
    ],
)
def test_csv_column_types_are_inferred_from_all_values(
    store: Store, tmp_path: Path, values: list[str], expected: str
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("lng,lat,v\n" + "".join(f"0,0,{v}\n" for v in values))
    load_table(store, path)
    assert store.table("t").schema == {"v": expected}  # type: ignore[union-attr]


def test_numbers_as_strings_are_served_as_strings_and_answer_the_same_query(make_store: Any, tmp_path: Path) -> None:
    """The 2014 downloads of the NYC tables had "YR": "2013": served back as "2013", not 2013.0."""
    raw = json.loads(NYC_TOTALS.read_text())
    for f in raw["features"]:
        f["properties"] = {k: str(int(v)) for k, v in f["properties"].items()}
    as_strings = tmp_path / "strings.geojson"
    as_strings.write_text(json.dumps(raw))
    old, new = make_store(), make_store()
    load_table(old, as_strings, table_id="t")
    load_table(new, NYC_TOTALS, table_id="t")
    schema = old.table("t").schema  # type: ignore[union-attr]
    assert set(schema.values()) == {"string"}
    columns = list(schema)
    first = next(iter(old.features(FeatureQuery("t", limit=1))))
    assert dict(zip(columns, first.properties, strict=True)) == raw["features"][0]["properties"]
    for text in ("MO = 2", "MO=2 AND YR=2015 AND X<>0 AND Y<>0", "TOT > 3", "MO IN (1, 12)"):
        on_strings = [f.gx_id for f in old.features(FeatureQuery("t", parse_where(text, schema)))]
        on_floats = [f.gx_id for f in new.features(FeatureQuery("t", parse_where(text, new.table("t").schema)))]  # type: ignore[union-attr]
        assert on_strings == on_floats and on_strings, text
    assert len(list(new.features(FeatureQuery("t", Compare("MO", "=", 2))))) == 5_370


# -- geometry problems are reported, never dropped --------------------------------------------------------


def test_features_without_or_with_bad_geometry_are_stored_and_reported(store: Store, tmp_path: Path) -> None:
    features = [
        feature({"k": 1}, point(-0.1, 51.5)),
        feature({"k": 2}, None),
        feature({"k": 3}, point(200, 51.5)),
        feature({"k": 4}, {"type": "Point", "coordinates": ["x", 1]}),
        feature({"k": 5}, {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}),
        feature({"k": 6}, {"type": "Point"}),
        {"type": "Feature", "properties": {"k": 7}},
    ]
    path = write_geojson(tmp_path / "broken.geojson", features)
    loaded = load_table(store, path)
    assert loaded == 7
    assert loaded.notes == (
        "2 features have no geometry (#2, #7); stored without geometry.",
        "1 feature has a geometry that is not a Point, Polygon or MultiPolygon (#5); stored without geometry.",
        "3 features have a Point with bad coordinates (#3, #4, #6); stored without geometry.",
    )
    stored = all_features(store, "broken")
    assert [f.properties[0] for f in stored] == [1, 2, 3, 4, 5, 6, 7]
    assert [f.lng is not None for f in stored] == [True] + [False] * 6
    assert "2 features have no geometry" in store.table("broken").description  # type: ignore[union-attr]
    summary = dispatch.load_paths(store, [path])
    assert "  2 features have no geometry (#2, #7); stored without geometry." in summary.describe(1.0)


def test_problem_notes_list_only_the_first_few_features(store: Store, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "many.geojson", [feature({"k": i}, None) for i in range(12)])
    assert load_table(store, path).notes == (
        "12 features have no geometry (#1, #2, #3, #4, #5, ...); stored without geometry.",
    )


# -- feature ids -------------------------------------------------------------------------------------------


def test_distinct_integer_feature_ids_become_gx_ids(store: Store, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "ids.geojson", [feature({"k": i}, point(0, 0), id=i * 10) for i in (3, 1, 2)])
    load_table(store, path)
    assert [f.gx_id for f in all_features(store, "ids")] == [10, 20, 30]


def test_duplicate_or_text_ids_fall_back_to_positions(store: Store, tmp_path: Path) -> None:
    dupes = write_geojson(tmp_path / "d.geojson", [feature({"k": i}, point(0, 0), id=7) for i in range(3)])
    assert "numbered by their position" in load_table(store, dupes).notes[0]
    assert [f.gx_id for f in all_features(store, "d")] == [1, 2, 3]
    text = write_geojson(tmp_path / "t.geojson", [feature({"k": i}, point(0, 0), id=f"a{i}") for i in range(3)])
    load_table(store, text)
    assert [f.gx_id for f in all_features(store, "t")] == [1, 2, 3]


def test_a_gx_id_property_of_distinct_integers_is_the_id_not_a_column(store: Store, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "g.geojson", [feature({"gx_id": str(i), "k": i}, point(0, 0)) for i in (5, 9)])
    load_table(store, path)
    assert store.table("g").schema == {"k": "integer"}  # type: ignore[union-attr]
    assert [f.gx_id for f in all_features(store, "g")] == [5, 9]


def test_a_property_called_geometry_is_refused(store: Store, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "g.geojson", [feature({"geometry": "x"}, point(0, 0))])
    with pytest.raises(LoadError, match="geometry"):
        load_table(store, path)


# -- the file itself --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"type": "Feature", "geometry": null, "properties": {}}', "not a GeoJSON FeatureCollection"),
        ('{"type": "FeatureCollection"}', "no features array"),
        ("[1, 2]", "expected a GeoJSON FeatureCollection object"),
        ('{"type": "FeatureCollection", "features": [{"type": "Feature"', "not valid JSON"),
        ('{"type": "FeatureCollection", "features": [1]}', "feature #1 is not a GeoJSON Feature"),
        ('{"type": "FeatureCollection", "features": []} trailing', "unexpected text"),
        ("", "expected a GeoJSON FeatureCollection"),
    ],
)
def test_a_file_that_is_not_a_feature_collection_is_refused(
    store: Store, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(text)
    with pytest.raises(LoadError, match=message):
        load_table(store, path)
    assert store.table("bad") is None


def test_members_may_come_in_any_order_and_values_may_straddle_reads(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(geojson, "_READ_CHARS", 7)
    features = [feature({"name": "x" * 30, "n": 123456789 + i}, point(-0.1234567, 51.5)) for i in range(50)]
    text = json.dumps({"bbox": [0, 0, 1, 1], "features": features, "crs": None, "type": "FeatureCollection"})
    path = tmp_path / "order.geojson"
    path.write_text(text, encoding="utf-8-sig")
    assert load_table(store, path) == 50
    assert [f.properties[1] for f in all_features(store, "order")] == [123456789 + i for i in range(50)]


def test_reloading_replaces_the_table_and_a_failed_reload_keeps_the_old_one(store: Store, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "t.geojson", [feature({"k": 1}, point(0, 0))])
    load_table(store, path)
    write_geojson(path, [feature({"k": 2, "m": "x"}, point(0, 0)), feature({"k": 3, "m": "y"}, point(1, 1))])
    assert load_table(store, path) == 2
    assert store.table("t").schema == {"k": "integer", "m": "string"}  # type: ignore[union-attr]
    path.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(LoadError):
        load_table(store, path)
    assert [f.properties for f in all_features(store, "t")] == [(2, "x"), (3, "y")]


# -- CSV -------------------------------------------------------------------------------------------------


def test_csv_tables_take_geometry_from_longitude_and_latitude_columns(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    path.write_text(
        "name,Longitude,LAT,count,ok,when\na,-0.1,51.5,3,true,2020-01-01\nb,,,4,false,2020-01-02\nc,abc,51.5,,TRUE,\n"
    )
    loaded = load_table(store, path)
    assert loaded == 3
    assert loaded.notes == (
        "1 feature has no geometry (#2); stored without geometry.",
        "1 feature has a Point with bad coordinates (#3); stored without geometry.",
    )
    assert store.table("points").schema == {  # type: ignore[union-attr]
        "name": "string",
        "count": "integer",
        "ok": "boolean",
        "when": "datetime",
    }
    stored = all_features(store, "points")
    assert (stored[0].lng, stored[0].lat) == (-0.1, 51.5)
    assert [f.properties[1] for f in stored] == [3, 4, None]


def test_csv_without_coordinate_columns_is_refused(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "nyc.csv"
    path.write_text("X,Y,TOT\n1015773,240835,2\n")
    with pytest.raises(LoadError, match="no longitude column"):
        load_table(store, path)


def test_csv_coordinate_columns_can_be_named(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "named.csv"
    path.write_text("easting,northing,v\n-0.1,51.5,1\n")
    load_table(store, path, lng_column="easting", lat_column="northing")
    assert all_features(store, "named")[0][1:4] == (-0.1, 51.5, (1,))


def test_a_ragged_csv_row_names_its_line(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("lng,lat,v\n0,0,1\n0,0\n")
    with pytest.raises(LoadError, match="line 3"):
        load_table(store, path)


def test_blank_csv_lines_are_skipped(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("lng,lat,v\n0,0,1\n\n1,1,2\n\n")
    assert load_table(store, path) == 2
    assert [f.gx_id for f in all_features(store, "blank")] == [1, 2]


@pytest.mark.parametrize("name", ["latin.csv", "latin.geojson"])
def test_a_file_that_is_not_utf8_is_refused_clearly(store: Store, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_bytes("lng,lat,place\n0,0,Montréal\n".encode("latin-1"))
    else:
        text = json.dumps({"type": "FeatureCollection", "features": [feature({"p": "Montréal"}, point(0, 0))]})
        path.write_bytes(text.replace("\\u00e9", "é").encode("latin-1"))
    with pytest.raises(LoadError, match="not UTF-8"):
        load_table(store, path)
