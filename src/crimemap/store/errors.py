"""What a store raises when it cannot do what was asked."""

from __future__ import annotations


class StoreError(Exception):
    """A store could not do what was asked (bad location, schema too new, ...)."""


class PageCursorGone(StoreError):
    """A keyset cursor points at a feature that is no longer stored (its data was reloaded)."""


class ReadTimeout(StoreError):
    """A read ran past the store's time budget and was stopped; the APIs answer 503."""


class TableChanged(StoreError):
    """A table was replaced between reading its schema and reading its rows; asking again will do."""
