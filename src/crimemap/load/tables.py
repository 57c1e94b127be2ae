"""Load feature tables from GeoJSON FeatureCollections and CSV files, inferring their schema.

A table is a set of point features with typed columns (integer, double,
string, boolean, datetime). The file is read twice, streaming, in constant
memory: the first pass infers each column's type and checks every feature,
the second converts and writes. The whole table is replaced in one store
transaction, so readers see the old table or the new one, never half of it.

Decisions:

- **Types of a GeoJSON table: the JSON types it was given.** A table re-hosted
  from GeoJSON must answer with what it held: JSON integers make an
  ``integer`` column, numbers with a float among them (``2015.0``) ``double``,
  JSON booleans ``boolean``, and strings stay ``string``, numeric-looking or
  not (the 2014 NYC downloads have ``"YR": "2013"``; a ``where`` may still
  compare such a column with a number, see :mod:`crimemap.where`). A string
  column is ``datetime`` only when every value is an ISO 8601 date or time
  written exactly as crimemap writes one back (``2015-03-01``,
  ``2015-03-01T12:00:00Z``), so nothing changes on the way through.
- **Types of a CSV table are inferred**, CSV having only text: a column whose
  values are all numbers becomes ``integer`` when every value is integral and
  none is written as a float, else ``double``; a number with a leading zero
  (``"02134"``) is text. ISO 8601 dates and times (all of a column's values)
  make a ``datetime`` column, stored normalised (``2015-03-01T12:00:00Z``);
  ``true``/``false`` make a ``boolean`` column. Anything else, or a mix, is
  ``string``; in GeoJSON, nested objects and arrays are kept as JSON text.
- **Geometry.** ``Point`` geometries are stored as points. ``Polygon`` and
  ``MultiPolygon`` geometries (Maps Engine tables had them; police force
  boundaries are them) make the table a table of *shapes*
  (:mod:`crimemap.geometry.shapes`): each feature keeps its geometry, and a point
  on its surface as its coordinates. A feature without geometry, with a
  geometry of another type, or with bad coordinates is *stored without
  geometry* and reported in the load's notes (count and the first feature
  numbers), never silently dropped.
- **Feature ids** (``gx_id``): a GeoJSON feature's ``id`` when every feature
  has a distinct integer one; else a ``gx_id`` property/CSV column of distinct
  integers (used as the id, not stored as a column); else the feature's
  1-based position in the file, stable when the same file is loaded again.
  crimemap's own exports write ``id`` (GeoJSON) and ``gx_id`` (CSV), so a
  table exported and loaded again keeps its ids.
- **CSV geometry** comes from the first of these columns present (case
  insensitive): ``gx_longitude``, ``longitude``, ``lng``, ``lon``, ``long``
  and ``gx_latitude``, ``latitude``, ``lat``; they are not stored as columns.
  ``x``/``y`` are not guessed: they are as often projected coordinates (the
  NYC tables' ``X``/``Y`` are State Plane feet) as degrees.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from crimemap.load.errors import LoadError
from crimemap.load.table_sources import CSVSource, GeoJSONSource, Source
from crimemap.load.table_values import CONVERTERS
from crimemap.store.base import Store
from crimemap.store.catalogue import CRIMES_TABLE, STOPS_TABLE, Column, TableInfo

GEOJSON_SUFFIXES = (".geojson", ".json")


class TableLoad(int):
    """The number of features loaded, with notes on what was not loaded as given.

    An ``int`` so that callers that only count (``crimemap load``'s summary)
    need nothing more; ``notes`` are sentences for the user.
    """

    notes: tuple[str, ...]

    def __new__(cls, count: int, notes: Iterable[str] = ()) -> TableLoad:
        made = super().__new__(cls, count)
        made.notes = tuple(notes)
        return made


def load_table(
    store: Store,
    path: str | Path,
    *,
    table_id: str | None = None,
    name: str | None = None,
    lng_column: str | None = None,
    lat_column: str | None = None,
) -> TableLoad:
    """Create or replace the table ``table_id`` (default: the file name's stem) from ``path``.

    Raises :class:`LoadError` for a file that is not a FeatureCollection or a
    CSV with coordinate columns; nothing is stored then.

    >>> load_table(store, "nyc.geojson", table_id="nyc")  # doctest: +SKIP
    17710
    """
    path = Path(path)
    table_id = table_id or path.stem
    if table_id == CRIMES_TABLE:
        raise LoadError(f"{CRIMES_TABLE!r} is the police.uk crimes table; choose another --table id")
    if table_id == STOPS_TABLE:
        raise LoadError(f"{STOPS_TABLE!r} is the police.uk stop-and-search table; choose another --table id")
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    source: Source
    if path.suffix.lower() in GEOJSON_SUFFIXES:
        source = GeoJSONSource(path)
    else:
        source = CSVSource(path, lng_column, lat_column)
    try:
        survey = source.survey()
    except UnicodeDecodeError as e:
        raise LoadError(f"{path}: not UTF-8 text (byte {e.start + 1} is {e.object[e.start : e.start + 1]!r})") from None
    columns = tuple(Column(n, stats.column_type()) for n, stats in survey.columns.items())
    notes = survey.notes()
    info = TableInfo(
        id=table_id,
        name=name or path.stem,
        columns=columns,
        description=" ".join([f"Loaded from {path.name}.", *notes]),
        shapes=survey.shapes,
    )
    converters = [CONVERTERS[c.type] for c in columns]
    with store.writer() as writer:
        count = writer.replace_table(info, source.features(columns, converters, survey.id_source, survey.shapes))
    if count != survey.count:
        raise LoadError(f"{path}: the file changed while it was being loaded; load it again")
    return TableLoad(count, notes)
