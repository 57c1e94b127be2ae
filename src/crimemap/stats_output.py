"""Crime counts written out: JSON rows, CSV and the command line's table share one set of columns.

A row of :meth:`crimemap.store.base.Store.stats` (or ``stop_stats``) holds its group values then
its count; here each becomes named columns. A cell becomes five more: its
name ``level/row/col``, its centre (``lng``, ``lat``) and, in JSON, its
``bounds`` ``[west, south, east, north]`` (in CSV, four columns)::

    [{"month": "2024-06", "category": "burglary", "count": 12}, ...]
    [{"cell": "7/442/351", "lng": -0.032, "lat": 51.6, "bounds": [-0.288, 51.44, 0.224, 51.76], "count": 812}]
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

import orjson

from crimemap.stats_query import StatsQuery, cell_bounds, cell_name
from crimemap.stats_stops_query import StopStatsQuery

GroupedQuery = StatsQuery | StopStatsQuery
"""A count of crimes or of stops: what the rows' columns are read from (``group``, ``level``)."""

CELL_CSV_COLUMNS = ("cell", "lng", "lat", "west", "south", "east", "north")


def csv_columns(query: GroupedQuery) -> list[str]:
    """The CSV header: the group names in order (a cell as seven columns), then ``count``."""
    columns: list[str] = []
    for name in query.group:
        columns.extend(CELL_CSV_COLUMNS if name == "cell" else (name,))
    return [*columns, "count"]


def _cell_fields(query: GroupedQuery, value: tuple[int, int]) -> dict[str, Any]:
    west, south, east, north = cell_bounds(query.level, *value)
    return {
        "cell": cell_name(query.level, *value),
        "lng": round((west + east) / 2, 7),
        "lat": round((south + north) / 2, 7),
        "bounds": [west, south, east, north],
    }


def row_dicts(query: GroupedQuery, rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows as JSON objects, keys in group order then ``count``."""
    found = []
    for row in rows:
        item: dict[str, Any] = {}
        for name, value in zip(query.group, row, strict=False):
            if name == "cell":
                item.update(_cell_fields(query, value))
            else:
                item[name] = value
        item["count"] = row[-1]
        found.append(item)
    return found


def json_bytes(query: GroupedQuery, rows: Iterable[tuple[Any, ...]]) -> bytes:
    return orjson.dumps(row_dicts(query, rows))


def csv_rows(query: GroupedQuery, rows: Iterable[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as CSV fields (``None`` as an empty field), in :func:`csv_columns` order."""
    found = []
    for item in row_dicts(query, rows):
        fields: list[Any] = []
        for name, value in item.items():
            if name == "bounds":
                fields.extend(value)
            else:
                fields.append("" if value is None else value)
        found.append(fields)
    return found


def csv_text(query: GroupedQuery, rows: Iterable[tuple[Any, ...]]) -> str:
    """The counts as CSV (RFC 4180, CRLF line ends) with a header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(csv_columns(query))
    writer.writerows(csv_rows(query, rows))
    return buffer.getvalue()
