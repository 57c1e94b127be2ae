"""Feature tables of shapes in the embedded store (police force boundaries, any polygon GeoJSON).

A table whose features are shapes (:mod:`crimemap.geometry.shapes`) keeps, after
its columns, the WKB of each shape and its box (``shape``, ``shape_west``,
``shape_south``, ``shape_east``, ``shape_north``); the box is what an area
test reads first, the WKB what GEOS then tests. ``feature_geometry`` lists the
physical tables that hold shapes, so a read knows to select them.
"""

from __future__ import annotations

from typing import Any

import shapely

from crimemap.records import Feature
from crimemap.store.catalogue import TableInfo
from crimemap.store.sqlite.load_connection import SqlConnection

SHAPE_COLUMNS_SQL = ", shape BLOB, shape_west REAL, shape_south REAL, shape_east REAL, shape_north REAL"
SHAPE_COLUMNS = 5


def columns_sql(info: TableInfo) -> str:
    """The physical columns a table of ``info`` has after its own: the shape's, when it holds shapes."""
    return SHAPE_COLUMNS_SQL if info.shapes else ""


def shape_values(feature: Feature) -> tuple[Any, ...]:
    """The shape columns of one feature (NULLs for a feature without geometry)."""
    if feature.shape is None:
        return (None, None, None, None, None)
    west, south, east, north = shapely.from_wkb(feature.shape).bounds
    return (feature.shape, west, south, east, north)


def record(conn: SqlConnection, info: TableInfo, physical: str, replaced: str | None) -> None:
    """Note which physical table holds shapes (and forget the one a load replaced)."""
    if replaced is not None:
        conn.execute("DELETE FROM feature_geometry WHERE physical = ?", (replaced,))
    if info.shapes:
        conn.execute("INSERT OR REPLACE INTO feature_geometry VALUES (?, 'shapes')", (physical,))
