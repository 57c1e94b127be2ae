"""crimemap: police-recorded crime data served through the APIs existing tools speak.

Load police.uk bulk archives and GeoJSON/CSV tables into an embedded SQLite store
(or PostgreSQL/PostGIS), then serve them wire-compatibly as the police.uk API and
the Google Maps Engine v1 tables API, and export them as GeoJSON and CSV.
"""

__version__ = "0.1.0"
