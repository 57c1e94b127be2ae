"""What a store holds, as its readers see it: feature tables, their columns, the stored months.

The police.uk crimes and stops are feature tables too (:data:`CRIMES_TABLE`,
:data:`STOPS_TABLE`), with the columns :data:`CRIME_COLUMNS` and
:data:`STOP_COLUMNS`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

ColumnType: TypeAlias = Literal["integer", "double", "string", "boolean", "datetime"]

CRIMES_TABLE = "policeuk-crimes"
"""The id under which stored police.uk crimes are readable as a feature table."""

STOPS_TABLE = "policeuk-stops"
"""The id under which stored stops and searches are readable as a feature table (once any are stored)."""

FORCE_BOUNDARIES = "policeuk-force-boundaries"
"""The table of police force areas: ``force``, ``name``, a MultiPolygon each (:mod:`crimemap.load.boundaries`)."""

NEIGHBOURHOODS_TABLE = "policeuk-neighbourhoods"
"""The table of police neighbourhoods: ``force``, ``neighbourhood``, ``name``, a (Multi)Polygon each
(:mod:`crimemap.load.neighbourhoods`)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType


@dataclass(frozen=True)
class TableInfo:
    """A feature table's resource: what ``/mapsengine/v1/tables/{id}`` describes."""

    id: str
    name: str
    columns: tuple[Column, ...]
    description: str = ""
    feature_count: int = 0
    bbox: tuple[float, float, float, float] | None = None
    created: dt.datetime | None = None
    modified: dt.datetime | None = None
    tags: tuple[str, ...] = field(default=())
    shapes: bool = False
    """Whether features carry a ``shape`` (polygons) rather than points only."""

    @property
    def schema(self) -> dict[str, ColumnType]:
        return {c.name: c.type for c in self.columns}


@dataclass(frozen=True)
class MonthSummary:
    """What is stored for one month: the forces that published it and its crime count."""

    month: str
    forces: tuple[str, ...]
    crimes: int


CRIME_COLUMNS: tuple[Column, ...] = (
    Column("id", "integer"),
    Column("crime_id", "string"),
    Column("month", "string"),
    Column("reported_by", "string"),
    Column("falls_within", "string"),
    Column("longitude", "double"),
    Column("latitude", "double"),
    Column("location", "string"),
    Column("lsoa_code", "string"),
    Column("lsoa_name", "string"),
    Column("crime_type", "string"),
    Column("category", "string"),
    Column("last_outcome_category", "string"),
    Column("outcome_month", "string"),
    Column("context", "string"),
    Column("location_type", "string"),
    Column("location_subtype", "string"),
    Column("street_id", "integer"),
)
"""The police.uk crimes seen as a feature table (:data:`CRIMES_TABLE`).

Names follow the bulk CSV's headers in snake case (``crime_id`` is police.uk's
``Crime ID``, the ``persistent_id``), plus the API's ``id``, ``category`` slug
and ``street_id``. ``reported_by`` and ``falls_within`` hold force names.
"""


STOP_COLUMNS: tuple[Column, ...] = (
    Column("id", "integer"),
    Column("month", "string"),
    Column("force", "string"),
    Column("type", "string"),
    Column("date", "datetime"),
    Column("part_of_a_policing_operation", "boolean"),
    Column("policing_operation", "string"),
    Column("latitude", "double"),
    Column("longitude", "double"),
    Column("gender", "string"),
    Column("age_range", "string"),
    Column("self_defined_ethnicity", "string"),
    Column("officer_defined_ethnicity", "string"),
    Column("legislation", "string"),
    Column("object_of_search", "string"),
    Column("outcome", "string"),
    Column("outcome_linked_to_object_of_search", "boolean"),
    Column("removal_of_more_than_just_outer_clothing", "boolean"),
    Column("outcome_id", "string"),
    Column("street_id", "integer"),
    Column("location", "string"),
)
"""The stored stops seen as a feature table (:data:`STOPS_TABLE`).

Names follow the stop-and-search CSV's headers in snake case; empty text and
empty yes/no cells are null. Added: the stop's ``id`` (month, force and row, as
a crime's), the file's ``month`` and ``force`` id, the API's ``outcome_id``,
and the map point it was placed at (``street_id``, and ``location``, its
"On or near ..." name, null for a point no street file named).
"""
