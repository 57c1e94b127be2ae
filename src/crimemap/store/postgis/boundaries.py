"""Feature tables of shapes in the PostGIS store (police force boundaries, any polygon GeoJSON).

A table whose features are shapes (:mod:`crimemap.geometry.shapes`) keeps each
shape's WKB as loaded (``shape_wkb``, what reads answer, byte for byte as the
embedded store answers it) and a ``shape`` geometry the server derives from it,
with a GiST index, which area tests (``ST_Intersects``) and other PostGIS tools
read. ``feature_geometry`` lists the physical tables that hold shapes.
"""

from __future__ import annotations

from typing import Any

import psycopg

from crimemap.records import Feature
from crimemap.store.catalogue import TableInfo
from crimemap.store.compiler import Geometry

SHAPE_COLUMNS_SQL = (
    ", shape_wkb bytea, shape geometry(Geometry, 4326) GENERATED ALWAYS AS (CASE WHEN shape_wkb IS NULL"
    " THEN NULL ELSE ST_SetSRID(ST_GeomFromWKB(shape_wkb), 4326) END) STORED"
)
SHAPE_GEOMETRY = Geometry(geom="geom", shape="shape")

Conn = psycopg.Connection[Any]


def columns_sql(info: TableInfo) -> str:
    return SHAPE_COLUMNS_SQL if info.shapes else ""


def copy_columns(info: TableInfo) -> tuple[list[str], list[str]]:
    """The extra COPY column names and binary types of a table of shapes."""
    return (["shape_wkb"], ["bytea"]) if info.shapes else ([], [])


def copy_values(info: TableInfo, feature: Feature) -> tuple[Any, ...]:
    return (feature.shape,) if info.shapes else ()


def finish_table(conn: Conn, info: TableInfo, physical: str, replaced: str | None) -> list[float] | None:
    """Index the shapes, note the table in ``feature_geometry``; the bounding box of everything in it."""
    if replaced is not None:
        conn.execute("DELETE FROM feature_geometry WHERE physical = %s", (replaced,))
    if not info.shapes:
        return None
    conn.execute(f"CREATE INDEX {physical}_shape ON {physical} USING gist (shape)")
    conn.execute("INSERT INTO feature_geometry VALUES (%s, 'shapes') ON CONFLICT (physical) DO NOTHING", (physical,))
    row = conn.execute(
        f"SELECT min(ST_XMin(shape)), min(ST_YMin(shape)), max(ST_XMax(shape)), max(ST_YMax(shape)) FROM {physical}"
    ).fetchone()
    return list(row) if row and row[0] is not None else None


SHAPES_FLAG_SQL = "(SELECT kind FROM feature_geometry g WHERE g.physical = feature_tables.physical) IS NOT NULL"
"""Whether a ``feature_tables`` row's table holds shapes, as a column of a query on it."""


def select_shape(shapes: bool) -> list[str]:
    return ["shape_wkb"] if shapes else []


def feature(row: tuple[Any, ...], shapes: bool) -> Feature:
    if shapes:
        return Feature(row[0], row[1], row[2], row[3:-1], bytes(row[-1]) if row[-1] is not None else None)
    return Feature(row[0], row[1], row[2], row[3:])
