"""The police.uk stop-and-search vocabulary: search types and the outcome ids the API shows.

Data, not code, beside :mod:`crimemap.vocab`. The bulk files name a stop's
outcome in words ("Arrest"); the API adds an ``outcome_object`` whose ``id``
is a ``bu-`` code. The ids of the current wording are police.uk's own, read
from a real answer (``shared/data/policeuk-api/stops-force-metropolitan-2024-09.json``).
Older files (before 2017) word the same outcomes differently; each older name
is given the id of the current outcome that replaced it. A name the table does
not know gets ``bu-`` and the name's slug, so a new wording in an archive is
served, not refused.

    >>> stop_outcome_id("Suspect arrested")
    'bu-arrest'
    >>> stop_outcome_id("Article found - Detailed outcome unavailable")
    'bu-article-found-detailed-outcome-unavailable'
"""

from __future__ import annotations

from functools import lru_cache

from crimemap.vocab import slugify

STOP_TYPES = ("Person search", "Person and Vehicle search", "Vehicle search")
"""The ``Type`` of a stop, as the bulk files and the API spell it."""

VEHICLE_ONLY = "Vehicle search"
"""The one type that involves no person: the API's ``involved_person`` is false for it."""

STOP_OUTCOME_IDS: dict[str, str] = {
    # Read from the real answer: police.uk's ids for today's wording.
    "a no further action disposal": "bu-no-further-action",
    "arrest": "bu-arrest",
    "community resolution": "bu-community-resolution",
    "penalty notice for disorder": "bu-penalty-notice",
    "summons / charged by post": "bu-summons",
    "caution (simple or conditional)": "bu-caution",
    # The wording of older files, given the id of the outcome that replaced it.
    "nothing found - no further action": "bu-no-further-action",
    "suspect arrested": "bu-arrest",
    "local resolution": "bu-community-resolution",
    "offender given penalty notice": "bu-penalty-notice",
    "suspect summonsed to court": "bu-summons",
    "offender cautioned": "bu-caution",
    # A warning for possession of khat or cannabis, in both wordings: absent from the
    # real answer, so its id is derived from today's name.
    "khat or cannabis warning": "bu-khat-or-cannabis-warning",
    "offender given drugs possession warning": "bu-khat-or-cannabis-warning",
}
"""Outcome names (lower case) to the ``outcome_object.id`` the API shows (see the module docstring)."""


@lru_cache(maxsize=256)
def stop_outcome_id(outcome: str) -> str:
    """The ``outcome_object.id`` of an outcome name; ``""`` for an empty outcome."""
    name = outcome.strip()
    if not name:
        return ""
    return STOP_OUTCOME_IDS.get(name.lower()) or f"bu-{slugify(name)}"


def involved_person(stop_type: str) -> bool | None:
    """Whether a search of this type involved a person; None when the type is not given."""
    return stop_type != VEHICLE_ONLY if stop_type else None
