"""The error every loader raises: a file that cannot be loaded, named with its line."""

from __future__ import annotations


class LoadError(Exception):
    """A file could not be loaded; the message names the file and the line."""
