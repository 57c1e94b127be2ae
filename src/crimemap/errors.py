"""What a store, and the long work a request does, raise when they cannot do what was asked.

A leaf module: the area geometry below the store stops at a request's deadline
(:mod:`crimemap.deadline`) with the same :class:`ReadTimeout` a store read raises,
so every API answers both alike.
"""

from __future__ import annotations


class StoreError(Exception):
    """A store could not do what was asked (bad location, schema too new, ...)."""


class PageCursorGone(StoreError):
    """A keyset cursor points at a feature that is no longer stored (its data was reloaded)."""


class ReadTimeout(StoreError):
    """A read ran past the store's time budget and was stopped; the APIs answer 503."""


class ReplicaConflict(ReadTimeout):
    """A read on a hot standby was cancelled twice by the replay of the primary's changes; the APIs answer 503."""


class DatabaseUnavailable(ReadTimeout):
    """A database server could not be reached for a read (it died, or is being failed over); the APIs answer 503."""


class ClientGone(ReadTimeout):
    """The client hung up, and the work for it was stopped (:mod:`crimemap.deadline`); answered as a
    stopped read, to nobody."""


class TableChanged(StoreError):
    """A table was replaced between reading its schema and reading its rows; asking again will do."""
