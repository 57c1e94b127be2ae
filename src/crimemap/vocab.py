"""The police.uk vocabulary: crime categories, outcomes and forces.

Data, not code: every other module looks names up here so that a slug or a
display name is spelled in exactly one place. The lists follow
data.police.uk/docs (``crime-categories``, ``forces`` and the outcome table in
the street-level crimes documentation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALL_CRIME = "all-crime"
"""The pseudo-category that matches every crime (police.uk's ``all-crime``)."""


@dataclass(frozen=True)
class Category:
    """A crime category: the API's slug and the bulk CSV's display name."""

    code: int
    slug: str
    name: str


# Codes are storage values: append only, never renumber.
CATEGORIES: tuple[Category, ...] = (
    Category(0, "anti-social-behaviour", "Anti-social behaviour"),
    Category(1, "bicycle-theft", "Bicycle theft"),
    Category(2, "burglary", "Burglary"),
    Category(3, "criminal-damage-arson", "Criminal damage and arson"),
    Category(4, "drugs", "Drugs"),
    Category(5, "other-theft", "Other theft"),
    Category(6, "possession-of-weapons", "Possession of weapons"),
    Category(7, "public-order", "Public order"),
    Category(8, "robbery", "Robbery"),
    Category(9, "shoplifting", "Shoplifting"),
    Category(10, "theft-from-the-person", "Theft from the person"),
    Category(11, "vehicle-crime", "Vehicle crime"),
    Category(12, "violent-crime", "Violence and sexual offences"),
    Category(13, "other-crime", "Other crime"),
    Category(14, "public-disorder-weapons", "Public disorder and weapons"),
)

CATEGORY_BY_SLUG = {c.slug: c for c in CATEGORIES}
CATEGORY_BY_NAME = {c.name.lower(): c for c in CATEGORIES}
# Older archives called violent crime by its pre-2013 name.
CATEGORY_BY_NAME["violent crime"] = CATEGORY_BY_SLUG["violent-crime"]

# The set of categories police.uk published up to 2013-04 (when weapons and
# public order were split and several theft categories appeared) and after.
_PRE_2013_05 = (
    "anti-social-behaviour",
    "burglary",
    "criminal-damage-arson",
    "drugs",
    "other-theft",
    "public-disorder-weapons",
    "robbery",
    "shoplifting",
    "vehicle-crime",
    "violent-crime",
    "other-crime",
)
_FROM_2013_05 = (
    "anti-social-behaviour",
    "bicycle-theft",
    "burglary",
    "criminal-damage-arson",
    "drugs",
    "other-theft",
    "possession-of-weapons",
    "public-order",
    "robbery",
    "shoplifting",
    "theft-from-the-person",
    "vehicle-crime",
    "violent-crime",
    "other-crime",
)


def categories_for_month(month: str | None) -> list[Category]:
    """The categories valid in ``month`` (``YYYY-MM``), as police.uk lists them.

    >>> [c.slug for c in categories_for_month("2012-01")][:2]
    ['anti-social-behaviour', 'burglary']
    """
    slugs = _PRE_2013_05 if month is not None and month < "2013-05" else _FROM_2013_05
    return [CATEGORY_BY_SLUG[s] for s in slugs]


@dataclass(frozen=True)
class Outcome:
    """An outcome: the API's code and the bulk CSV's display name."""

    code: int
    slug: str
    name: str


_OUTCOME_PAIRS = (
    ("awaiting-court-result", "Awaiting court outcome"),
    ("court-result-unavailable", "Court result unavailable"),
    ("unable-to-proceed", "Court case unable to proceed"),
    ("local-resolution", "Local resolution"),
    ("no-further-action", "Investigation complete; no suspect identified"),
    ("deprived-of-property", "Offender deprived of property"),
    ("fined", "Offender fined"),
    ("absolute-discharge", "Offender given absolute discharge"),
    ("cautioned", "Offender given a caution"),
    ("drugs-possession-warning", "Offender given a drugs possession warning"),
    ("penalty-notice-issued", "Offender given penalty notice"),
    ("community-penalty", "Offender given community sentence"),
    ("conditional-discharge", "Offender given conditional discharge"),
    ("suspended-sentence", "Offender given suspended prison sentence"),
    ("imprisoned", "Offender sent to prison"),
    ("other-court-disposal", "Offender otherwise dealt with"),
    ("compensation", "Offender ordered to pay compensation"),
    ("sentenced-in-another-case", "Suspect charged as part of another case"),
    ("charged", "Suspect charged"),
    ("not-guilty", "Defendant found not guilty"),
    ("sent-to-crown-court", "Defendant sent to Crown Court"),
    ("unable-to-prosecute", "Unable to prosecute suspect"),
    ("formal-action-not-in-public-interest", "Formal action is not in the public interest"),
    ("action-taken-by-another-organisation", "Action to be taken by another organisation"),
    ("further-investigation-not-in-public-interest", "Further investigation is not in the public interest"),
    ("further-action-not-in-public-interest", "Further action is not in the public interest"),
    ("under-investigation", "Under investigation"),
    ("status-update-unavailable", "Status update unavailable"),
)
# Codes are storage values: append only, never renumber.
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome(i, s, n) for i, (s, n) in enumerate(_OUTCOME_PAIRS))
OUTCOME_BY_NAME = {o.name.lower(): o for o in OUTCOMES}
# Spellings seen in the bulk files beside the documented ones.
OUTCOME_BY_NAME["offender given a penalty notice"] = OUTCOMES[10]
OUTCOME_BY_CODE = {o.code: o for o in OUTCOMES}


def outcome_by_name(name: str) -> Outcome:
    """The outcome with this display name; unknown names get a derived slug.

    New outcome names appear in the archives from time to time; they are kept
    (not refused) with a slug made from the name, and stored as text.
    """
    found = OUTCOME_BY_NAME.get(name.strip().lower())
    if found is not None:
        return found
    return Outcome(-1, slugify(name), name.strip())


@dataclass(frozen=True)
class Force:
    """A police force: the API's id (also the bulk file's slug) and its name."""

    code: int
    id: str
    name: str


_FORCE_PAIRS = (
    ("avon-and-somerset", "Avon and Somerset Constabulary"),
    ("bedfordshire", "Bedfordshire Police"),
    ("cambridgeshire", "Cambridgeshire Constabulary"),
    ("cheshire", "Cheshire Constabulary"),
    ("city-of-london", "City of London Police"),
    ("cleveland", "Cleveland Police"),
    ("cumbria", "Cumbria Constabulary"),
    ("derbyshire", "Derbyshire Constabulary"),
    ("devon-and-cornwall", "Devon & Cornwall Police"),
    ("dorset", "Dorset Police"),
    ("durham", "Durham Constabulary"),
    ("dyfed-powys", "Dyfed-Powys Police"),
    ("essex", "Essex Police"),
    ("gloucestershire", "Gloucestershire Constabulary"),
    ("greater-manchester", "Greater Manchester Police"),
    ("gwent", "Gwent Police"),
    ("hampshire", "Hampshire Constabulary"),
    ("hertfordshire", "Hertfordshire Constabulary"),
    ("humberside", "Humberside Police"),
    ("kent", "Kent Police"),
    ("lancashire", "Lancashire Constabulary"),
    ("leicestershire", "Leicestershire Police"),
    ("lincolnshire", "Lincolnshire Police"),
    ("merseyside", "Merseyside Police"),
    ("metropolitan", "Metropolitan Police Service"),
    ("norfolk", "Norfolk Constabulary"),
    ("north-wales", "North Wales Police"),
    ("north-yorkshire", "North Yorkshire Police"),
    ("northamptonshire", "Northamptonshire Police"),
    ("northumbria", "Northumbria Police"),
    ("nottinghamshire", "Nottinghamshire Police"),
    ("south-wales", "South Wales Police"),
    ("south-yorkshire", "South Yorkshire Police"),
    ("staffordshire", "Staffordshire Police"),
    ("suffolk", "Suffolk Constabulary"),
    ("surrey", "Surrey Police"),
    ("sussex", "Sussex Police"),
    ("thames-valley", "Thames Valley Police"),
    ("warwickshire", "Warwickshire Police"),
    ("west-mercia", "West Mercia Police"),
    ("west-midlands", "West Midlands Police"),
    ("west-yorkshire", "West Yorkshire Police"),
    ("wiltshire", "Wiltshire Police"),
    ("btp", "British Transport Police"),
    ("northern-ireland", "Police Service of Northern Ireland"),
)
# Codes are storage values (they are part of every crime id): append only.
FORCES: tuple[Force, ...] = tuple(Force(i, s, n) for i, (s, n) in enumerate(_FORCE_PAIRS))
FORCE_BY_ID = {f.id: f for f in FORCES}
FORCE_BY_NAME = {f.name.lower(): f for f in FORCES}
BTP = FORCE_BY_ID["btp"]


def slugify(name: str) -> str:
    """Lower-case, hyphen-separated slug of a display name.

    >>> slugify("Violence and sexual offences")
    'violence-and-sexual-offences'
    """
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
