"""The Maps Engine v1 tables API under ``/mapsengine/v1`` (:mod:`.routes`), its parameters, schema and errors."""
