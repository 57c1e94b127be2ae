"""GeoJSON written by the engine (crimemap.store.geojson_sql) is byte for byte what Python writes, on both stores.

Each test reads the same query twice: as the engine writes it (``Store.feature_geojson``)
and as Python writes it from the columns (``column_bytes`` over ``Store.feature_columns``),
and asserts the two are equal, over values chosen to catch every difference in
escaping and number formatting: quotes, backslashes, control characters, non-ASCII,
NUL, whole and negative zero doubles, doubles of 15, 16 and 17 digits, tiny and huge
ones, and property names that need escaping themselves.
"""

from __future__ import annotations

import csv
import json
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from crimemap.export import export_chunks
from crimemap.export import plan as exporting
from crimemap.export.geojson import column_bytes, geojson_page
from crimemap.load.policeuk import load_policeuk
from crimemap.load.policeuk_files import STREET_HEADER
from crimemap.load.tables import load_table
from crimemap.query import FeatureQuery, OrderKey
from crimemap.store import columnar
from crimemap.store.base import Store
from crimemap.store.catalogue import CRIMES_TABLE, TableInfo
from crimemap.store.geojson_sql import Layout
from crimemap.store.sqlite import SQLiteStore

NASTY_TEXT = [
    'say "hello"',
    "back\\slash \\u0041 not an escape",
    "tab\there, newline\nthere, return\r, bell\x07, escape\x1b, unit\x1f, delete\x7f",
    "backspace\b formfeed\f",
    "café, 中文, emoji 😀, line separator \u2028, paragraph \u2029",
    "nul\x00inside",
    "</script><script>alert(1)</script>",
    "'single' and `back` quotes; DROP TABLE crimes; --",
    "",
]

EXACT_DOUBLES = [
    0.0, -0.0, 1.0, -1.0, 0.5, 123456.0, 0.0001, 1e-05, -1.234567e-05, 9.99e-05, 51.518226, -0.111497,
    0.30000000000000004, 1.2345678901234567, 40.74003896742295, -73.85288013198138, 999999999999999.9,
    123456789012345.6,
]  # fmt: skip
"""Doubles both engines write themselves (SQLite: 15 digits by ``printf``, the rest through orjson)."""

FAR_DOUBLES = [9.9e-06, -2.5e-07, 1e15, 1e16, 1.7976931348623157e308, 5e-324]
"""Doubles PostgreSQL leaves to Python (orjson writes them in another notation than PostgreSQL's)."""


@pytest.fixture(autouse=True)
def _engine_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's engine writing is off by measurement (see SQLiteStore.engine_geojson): these tests switch it on."""
    monkeypatch.setattr(SQLiteStore, "engine_geojson", True)


def _texts(store: Store) -> list[str]:
    """:data:`NASTY_TEXT`, but for a NUL in PostgreSQL, whose text cannot hold one."""
    return NASTY_TEXT if isinstance(store, SQLiteStore) else [t for t in NASTY_TEXT if "\x00" not in t]


def _table_file(store: Store, folder: Path, doubles: Sequence[float], name: str = "nasty") -> Path:
    features = []
    texts = _texts(store)
    for i, number in enumerate(doubles):
        text = texts[i % len(texts)]
        properties: dict[str, Any] = {
            "label": text,
            'odd "name"\\ é': text[::-1],
            "number": number,
            "count": [0, -1, 2**53 + 1, -(2**62), None][i % 5],
            "flag": [True, False, None][i % 3],
            "empty": None,
        }
        lng = max(-180.0, min(180.0, number)) if abs(number) <= 180 else -0.111497
        geometry = {"type": "Point", "coordinates": [lng, 51.5 if i % 2 else number % 90]}
        features.append({"type": "Feature", "geometry": geometry if i % 7 else None, "properties": properties})
    path = folder / f"{name}.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _loaded(store: Store, path: Path) -> TableInfo:
    load_table(store, path)
    table = store.table(path.stem)
    assert table is not None
    return table


def _python(store: Store, query: FeatureQuery, names: tuple[str, ...], **layout: Any) -> list[bytes]:
    cols = store.feature_columns(query)
    return column_bytes(cols.with_values(cols.values[: len(names)]), names, **layout)


def test_engine_writes_nasty_strings_and_doubles_as_python_does(store: Store, tmp_path: Path) -> None:
    table = _loaded(store, _table_file(store, tmp_path, EXACT_DOUBLES * 3))
    names = tuple(c.name for c in table.columns)
    query = FeatureQuery(table.id, None, names, (), None, None)
    engine = store.feature_geojson(query, Layout(names))
    assert engine is not None, "the engine wrote none of it (fell back to Python)"
    assert engine.features == _python(store, query, names)
    texts = _texts(store)
    assert [json.loads(f)["properties"]["label"] for f in engine.features[: len(texts)]] == texts
    assert engine.cursors == [(g,) for g in store.feature_columns(query).gx_id]


def test_engine_writes_maps_engine_layout_with_gx_id_as_text_and_no_geometry(store: Store, tmp_path: Path) -> None:
    table = _loaded(store, _table_file(store, tmp_path, EXACT_DOUBLES))
    names = ("number", "gx_id", 'odd "name"\\ é')
    fetch = ("number", 'odd "name"\\ é')
    query = FeatureQuery(table.id, None, fetch, (), None, None)
    layout = Layout(names, frozenset({"gx_id"}), with_id=False, with_geometry=False)
    engine = store.feature_geojson(query, layout)
    assert engine is not None
    cols = store.feature_columns(query)
    values = (cols.values[0], [str(g) for g in cols.gx_id], cols.values[1])
    assert engine.features == column_bytes(cols.with_values(values), names, with_id=False, with_geometry=False)


def test_engine_pages_in_order_by_with_cursors_of_typed_values(store: Store, tmp_path: Path) -> None:
    table = _loaded(store, _table_file(store, tmp_path, EXACT_DOUBLES * 2))
    names = ("flag", "label", "number")
    order = (OrderKey("flag", True), OrderKey("number", False))
    query = FeatureQuery(table.id, None, names, order, None, 7)
    engine = store.feature_geojson(query, Layout(names))
    assert engine is not None
    cols = store.feature_columns(query)
    assert engine.features == column_bytes(cols, names)
    assert engine.cursors == list(zip(cols.values[0], cols.values[2], cols.gx_id, strict=True))
    following = FeatureQuery(table.id, None, names, order, engine.cursors[-1], 7)
    assert geojson_page(store, following, Layout(names)).features == column_bytes(
        store.feature_columns(following), names
    )


def test_a_table_of_more_columns_than_a_function_takes_arguments_is_written_by_the_engine(
    store: Store, tmp_path: Path
) -> None:
    properties = {f'column {i} "quoted"': [i, i + 0.5, f"text {i}\n", i % 2 == 0, None][i % 5] for i in range(130)}
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-0.1, 51.5]}, "properties": properties}
    path = tmp_path / "wide.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": [feature] * 3}))
    table = _loaded(store, path)
    names = tuple(c.name for c in table.columns)
    query = FeatureQuery(table.id, None, names, (), None, None)
    engine = store.feature_geojson(query, Layout(names))
    assert engine is not None and engine.features == _python(store, query, names)


def test_doubles_the_engine_cannot_write_exactly_are_written_by_python(store: Store, tmp_path: Path) -> None:
    table = _loaded(store, _table_file(store, tmp_path, FAR_DOUBLES))
    names = tuple(c.name for c in table.columns)
    query = FeatureQuery(table.id, None, names, (), None, None)
    assert geojson_page(store, query, Layout(names)).features == _python(store, query, names)


def _street_file(folder: Path) -> Path:
    """A police.uk street file whose text columns hold every nasty string, and coordinates of every kind."""
    month = folder / "2016-01"
    month.mkdir()
    path = month / "2016-01-city-of-london-street.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(STREET_HEADER)
        points = [("-0.111497", "51.518226"), ("0.000012", "51.5"), ("-0.0", "51.5"), ("", ""), ("-0.1", "51.51")]
        for i, text in enumerate(t.replace("\x00", "") for t in NASTY_TEXT * 2):
            lng, lat = points[i % len(points)]
            pid = f"{i:064x}" if i % 3 else ""
            falls = "City of London Police" if i % 2 else "Metropolitan Police Service"
            category = ["Anti-social behaviour", "Burglary", "Other theft"][i % 3]
            outcome = "" if category == "Anti-social behaviour" else "Under investigation"
            out.writerow([pid, "2016-01", "City of London Police", falls, lng, lat, f"On or near {text}",
                          "E01000914", f"Camden {text}", category, outcome, text])  # fmt: skip
    return folder


def test_engine_writes_crimes_with_nasty_text_as_python_does(store: Store, tmp_path: Path) -> None:
    load_policeuk(store, [_street_file(tmp_path)])
    table = store.table(CRIMES_TABLE)
    assert table is not None
    names = tuple(c.name for c in table.columns)
    query = FeatureQuery(CRIMES_TABLE, None, names, (), None, None)
    page = geojson_page(store, query, Layout(names))
    assert page.features == _python(store, query, names)
    assert len(page.features) == 2 * len(NASTY_TEXT)


def test_engine_writes_real_crimes_page_by_page_as_python_does(policeuk_store: Store) -> None:
    table = policeuk_store.table(CRIMES_TABLE)
    assert table is not None
    names = tuple(c.name for c in table.columns)
    after = None
    pages = 0
    while True:
        query = FeatureQuery(CRIMES_TABLE, None, names, (), after, 5_000)
        engine = policeuk_store.feature_geojson(query, Layout(names))
        python = _python(policeuk_store, query, names)
        assert engine is not None and engine.features == python
        pages += 1
        if len(python) < 5_000:
            break
        after = engine.cursors[-1]
    assert pages > 2


def test_geojson_export_of_the_crimes_keeps_memory_flat(policeuk_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columnar, "BATCH_ROWS", 500)  # Python's share: a few batches' bytes, not the table's
    plan = exporting.plan_export(policeuk_store, CRIMES_TABLE)
    tracemalloc.start()
    size = sum(len(c) for c in export_chunks(policeuk_store, plan, "geojson"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size > 20_000_000
    assert peak < 2_500_000, f"peak {peak:,} bytes for a {size:,}-byte export"
