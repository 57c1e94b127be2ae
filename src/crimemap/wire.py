"""Facts of the served APIs that their harvesters need too: one home below both ``api/`` and ``harvest/``.

The server (:mod:`crimemap.api`) enforces these limits and the harvesters (:mod:`crimemap.harvest`)
keep within them when they read another server; neither imports the other.
"""

from __future__ import annotations

MAX_CRIMES = 10_000
"""An area holding more crimes than this is answered 503, as data.police.uk does."""

MAX_GET_LENGTH = 4094
"""A GET whose request target (path + ``?`` + query string) is longer than this is answered 400."""

MAX_RESULTS = 1_000
"""The largest Maps Engine page (``maxResults``), and the default, as in Maps Engine."""

GX_ID = "gx_id"
"""The Maps Engine feature id, selectable like a column (as a string, as Maps Engine's ``gx_id`` was)."""
