"""Counts under ``/stats`` (:mod:`.routes`) and the force outlines the map draws them in (:mod:`.boundaries`)."""
