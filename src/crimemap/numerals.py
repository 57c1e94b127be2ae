"""Numbers in request parameters, in ASCII digits only, as police.uk reads them.

Python's ``float()`` and ``int()`` read digits of every script (``float('٥١.٥')`` is 51.5), underscores
(``int('1_0')``), ``inf`` and ``nan``; police.uk and the APIs crimemap re-implements read ASCII decimals
only. Every parameter that is a number is read here, and anything else is a ``ValueError`` the caller
turns into its API's 400.

    >>> decimal(" -0.5e1 "), whole("+12")
    (-5.0, 12)
    >>> decimal("٥١.٥")
    Traceback (most recent call last):
    ...
    ValueError: not a number in ASCII digits: '٥١.٥'
"""

from __future__ import annotations

import re

from crimemap.query import NUMBER_TEXT

_DECIMAL = re.compile(NUMBER_TEXT)
_WHOLE = re.compile(r"[-+]?[0-9]+")


def decimal(text: str) -> float:
    """A decimal number (``51.5``, ``-.5``, ``2e3``; blanks around it are ignored), in ASCII digits."""
    stripped = text.strip(" \t\r\n")
    if not _DECIMAL.fullmatch(stripped):
        raise ValueError(f"not a number in ASCII digits: {text!r}")
    return float(stripped)


def whole(text: str) -> int:
    """A whole number (``12``, ``-3``, ``+4``; blanks around it are ignored), in ASCII digits."""
    stripped = text.strip(" \t\r\n")
    if not _WHOLE.fullmatch(stripped):
        raise ValueError(f"not a whole number in ASCII digits: {text!r}")
    return int(stripped)
