"""Months as police.uk writes them (``YYYY-MM``) and as stores key them (integers)."""

from __future__ import annotations

import re

from crimemap.echo import echo

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
"""ASCII digits only, as police.uk reads them (``\\d`` would take ``٢٠١٧-٠١`` for 2017-01)."""


def parse_month(text: str) -> int:
    """``YYYY-MM`` to months since year 0; ``ValueError`` with a user-facing message otherwise.

    >>> parse_month("2017-01") - parse_month("2016-12")
    1
    """
    m = _MONTH.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1900:
        raise ValueError(f"date must be YYYY-MM, got {echo(text) if isinstance(text, str) else repr(text)}")
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


def format_month(value: int) -> str:
    """Months since year 0 back to ``YYYY-MM``."""
    return f"{value // 12:04d}-{value % 12 + 1:02d}"
