"""Loading a table whose polygon crosses itself too often is a load error naming the feature, never a hang
(issue 19, item 1, for loads).

A table's polygons are made valid as they are loaded (GEOS's ``make_valid``), the repair that grew the
server by 150 MB/s for a 10,000-point star sent to the API. A load must refuse such a feature, saying
which one, within seconds, and leave the store as it was; a polygon that crosses itself a little (a bow
tie) is still loaded as its parts. On both stores.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import shapely

from crimemap.load.policeuk import LoadError
from crimemap.load.tables import load_table
from crimemap.query import FeatureQuery
from crimemap.store.base import Store
from test_crossing_polygons import BOW_TIE, STAR_10000, WITHIN


def _collection(path: Path, *rings: list[tuple[float, float]]) -> Path:
    features: list[dict[str, Any]] = [
        {"type": "Feature", "properties": {"name": f"area {i}"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        for i, ring in enumerate(rings, start=1)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_a_table_with_a_star_that_crosses_itself_everywhere_is_refused_naming_the_feature(
    store: Store, tmp_path: Path
) -> None:
    path = _collection(tmp_path / "stars.geojson", BOW_TIE, STAR_10000)
    started = time.monotonic()
    refused = r"stars\.geojson: feature #2: the polygon crosses itself .* more than 100 times"
    with pytest.raises(LoadError, match=refused):
        load_table(store, path, table_id="stars")
    assert time.monotonic() - started < WITHIN
    assert "stars" not in {t.id for t in store.tables()}, "nothing was loaded"


def test_a_table_with_a_bow_tie_loads_it_as_its_two_parts(store: Store, tmp_path: Path) -> None:
    load_table(store, _collection(tmp_path / "bow.geojson", BOW_TIE), table_id="bow")
    (feature,) = store.features(FeatureQuery(table="bow"))
    assert feature.shape is not None
    assert shapely.from_wkb(feature.shape).geom_type == "MultiPolygon"
