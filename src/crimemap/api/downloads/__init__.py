"""Whole-table downloads under ``/download`` (:mod:`.routes`), in the Maps Engine API's envelope."""
