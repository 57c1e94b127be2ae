"""The synthetic street and outcomes files: a month's crimes drawn on the world, their outcomes queued.

A crime's outcome rows land in its own month or a later one of the range
generated (:class:`PendingOutcomes` holds them until that month's outcomes file
is written); its street row's Last outcome category is its latest outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crimemap.load.generate.world import Sink, World, interleave, seed_word, year_month
from crimemap.vocab import BTP, CATEGORY_BY_SLUG, OUTCOMES, categories_for_month

STREET_HEADER = (
    "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,"
    "LSOA code,LSOA name,Crime type,Last outcome category,Context"
)
"""The street file's header, exactly as police.uk writes it."""

OUTCOMES_HEADER = "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Outcome type"
"""The outcomes file's header, exactly as police.uk writes it."""

# Category mix, in percent, roughly as in the real archive.
_CATEGORY_MIX: tuple[tuple[str, float], ...] = (
    ("violent-crime", 30.0),
    ("anti-social-behaviour", 20.0),
    ("other-theft", 9.0),
    ("criminal-damage-arson", 9.0),
    ("shoplifting", 7.0),
    ("vehicle-crime", 6.0),
    ("burglary", 6.0),
    ("public-order", 6.0),
    ("drugs", 2.0),
    ("theft-from-the-person", 2.0),
    ("bicycle-theft", 1.5),
    ("other-crime", 1.5),
    ("possession-of-weapons", 1.0),
    ("robbery", 1.0),
)
# Before 2013-05 police.uk had fewer categories; later ones fold into these.
_PRE_2013_FOLD = {
    "bicycle-theft": "other-theft",
    "theft-from-the-person": "other-theft",
    "possession-of-weapons": "public-disorder-weapons",
    "public-order": "public-disorder-weapons",
}

# Last outcome of a crime that has a Crime ID, in percent (as in the real
# City of London files).
_FINAL_OUTCOME_MIX: tuple[tuple[str, float], ...] = (
    ("no-further-action", 44.0),
    ("under-investigation", 12.0),
    ("unable-to-prosecute", 12.0),
    ("status-update-unavailable", 6.0),
    ("cautioned", 3.0),
    ("awaiting-court-result", 3.0),
    ("court-result-unavailable", 2.5),
    ("imprisoned", 2.5),
    ("local-resolution", 2.5),
    ("drugs-possession-warning", 0.8),
    ("fined", 1.0),
    ("formal-action-not-in-public-interest", 1.0),
    ("suspended-sentence", 1.0),
    ("community-penalty", 0.8),
    ("not-guilty", 0.6),
    ("conditional-discharge", 0.5),
    ("penalty-notice-issued", 0.5),
    ("further-investigation-not-in-public-interest", 1.0),
    ("action-taken-by-another-organisation", 0.8),
    ("unable-to-proceed", 0.4),
    ("other-court-disposal", 0.2),
    ("sentenced-in-another-case", 0.2),
    ("compensation", 0.2),
    ("sent-to-crown-court", 0.2),
    ("deprived-of-property", 0.1),
)
# Court results follow a charge: these crimes often show "Suspect charged"
# first, so consumers see an outcome history, not just one row.
_COURT_OUTCOMES = frozenset(
    {
        "awaiting-court-result",
        "court-result-unavailable",
        "imprisoned",
        "fined",
        "suspended-sentence",
        "community-penalty",
        "not-guilty",
        "conditional-discharge",
        "unable-to-proceed",
        "other-court-disposal",
        "compensation",
        "sent-to-crown-court",
        "deprived-of-property",
    }
)
# In the real files crimes still under investigation, or without an update,
# have a Last outcome category but no row in any outcomes file.
_NO_OUTCOME_ROWS = frozenset({"under-investigation", "status-update-unavailable"})

_P_NO_LOCATION = 0.015  # share of (non-BTP) rows published without coordinates
_P_BTP_NO_ID = 0.5  # BTP rows without a Crime ID (beside anti-social behaviour)
_P_CHARGED_FIRST = 0.7  # court outcomes preceded by "Suspect charged"
_P_NEXT_MONTH = 0.45  # geometric parameter of the months until the last outcome


def _mix(pairs: Sequence[tuple[str, float]]) -> NDArray[np.float64]:
    """Cumulative probabilities of a (name, percent) mix, ending exactly at 1."""
    cum = np.cumsum(np.array([p for _, p in pairs], dtype=np.float64))
    return np.asarray(cum / cum[-1])


_CAT_CUM = _mix(_CATEGORY_MIX)
_OUT_CUM = _mix(_FINAL_OUTCOME_MIX)
_OUTCOME_BY_SLUG = {o.slug: o for o in OUTCOMES}
_FINAL_SLUGS = tuple(s for s, _ in _FINAL_OUTCOME_MIX)
_ASB = [s for s, _ in _CATEGORY_MIX].index("anti-social-behaviour")
# Outcome codes in our own small table: the final outcomes, then "Suspect charged".
_CHARGED = len(_FINAL_SLUGS)
_OUTCOME_NAMES: tuple[bytes, ...] = tuple(_OUTCOME_BY_SLUG[s].name.encode("ascii") for s in (*_FINAL_SLUGS, "charged"))
_IS_COURT = np.array([s in _COURT_OUTCOMES for s in _FINAL_SLUGS])
_HAS_ROWS = np.array([s not in _NO_OUTCOME_ROWS for s in _FINAL_SLUGS])
_NO_OUTCOME = len(_FINAL_SLUGS)  # tail column for "empty Last outcome category"
_OUTCOME_TAILS = np.array([n + b"\n" for n in _OUTCOME_NAMES], dtype=object)


def _street_tails(month: str) -> NDArray[np.object_]:
    """b"Crime type,Last outcome category,\\n" for every (category, outcome) pair.

    Indexed by ``category * (len(finals) + 1) + outcome``; the last outcome
    column is the empty one.
    """
    valid = {c.slug for c in categories_for_month(month)}
    tails: list[bytes] = []
    for slug, _ in _CATEGORY_MIX:
        if slug not in valid:
            slug = _PRE_2013_FOLD.get(slug, "other-crime")
        cat = CATEGORY_BY_SLUG[slug].name.encode("ascii")
        tails.extend(cat + b"," + name + b",\n" for name in _OUTCOME_NAMES[:_NO_OUTCOME])
        tails.append(cat + b",,\n")
    arr = np.empty(len(tails), dtype=object)
    arr[:] = tails
    return arr


@dataclass
class PendingOutcomes:
    """Outcome rows waiting for their month's outcomes file."""

    ids: list[NDArray[np.bytes_]]
    points: list[NDArray[np.int32]]
    outcomes: list[NDArray[np.int16]]


StreetRows = tuple[NDArray[np.int64], NDArray[np.object_], NDArray[np.intp]]


def draw_month(
    world: World, seed: int, month: str, mi: int, n_months: int, n: int, pending: list[PendingOutcomes]
) -> StreetRows:
    """Draw one month's crimes; queue their outcome rows; return them sorted for writing.

    Returns (point per crime, Crime ID bytes per crime, street tail index per
    crime), sorted by point, which groups rows by force in file order.
    """
    year, mon = year_month(month)
    rng = np.random.default_rng([seed_word(seed), year * 100 + mon])
    point = np.searchsorted(world.cum_weight, rng.random(n), side="right").astype(np.int32)
    np.minimum(point, len(world.cum_weight) - 1, out=point)
    force = world.point_force[point]
    is_btp = np.array([f.id == BTP.id for f in world.forces])[force]
    category = np.searchsorted(_CAT_CUM, rng.random(n), side="right")
    no_loc = (rng.random(n) < _P_NO_LOCATION) & ~is_btp
    point = np.where(no_loc, world.no_location[force], point).astype(np.int32)
    has_id = (category != _ASB) & ~(is_btp & (rng.random(n) < _P_BTP_NO_ID))
    final = np.searchsorted(_OUT_CUM, rng.random(n), side="right").astype(np.int16)
    final = np.where(has_id, final, _NO_OUTCOME).astype(np.int16)
    ids = np.frombuffer(rng.bytes(32 * n).hex().encode("ascii"), dtype="S64")
    lag = rng.geometric(_P_NEXT_MONTH, n) - 1
    final_at = np.minimum(mi + lag, n_months - 1)
    charged_at = mi + np.floor(rng.random(n) * (final_at - mi + 1)).astype(np.int64)
    charged_first = rng.random(n) < _P_CHARGED_FIRST

    with_rows = has_id & _HAS_ROWS[np.minimum(final, _NO_OUTCOME - 1)]
    with_charge = with_rows & _IS_COURT[np.minimum(final, _NO_OUTCOME - 1)] & charged_first
    # Queue "Suspect charged" before the final outcomes, so when both fall in
    # one month the charge comes first in the file.
    for mask, at, code in ((with_charge, charged_at, None), (with_rows, final_at, final)):
        sel = np.flatnonzero(mask)
        for t in np.unique(at[sel]).tolist():
            rows = sel[at[sel] == t]
            p = pending[t]
            p.ids.append(ids[rows])
            p.points.append(point[rows])
            p.outcomes.append(np.full(len(rows), _CHARGED, np.int16) if code is None else code[rows])

    tail = category.astype(np.intp) * (_NO_OUTCOME + 1) + final
    order = np.argsort(point, kind="stable")
    id_obj = ids.astype(object)
    id_obj[~has_id] = b""
    return point[order].astype(np.int64), id_obj[order], tail[order]


def write_street(
    sink: Sink, world: World, month: str, street: StreetRows, progress: Callable[[int], None] | None
) -> int:
    points, ids, tails = street
    texts = world.point_text[points]
    tail_text = _street_tails(month)[tails]
    bounds = np.searchsorted(points, world.force_start).tolist()
    mb = month.encode("ascii")
    for fi, force in enumerate(world.forces):
        a, b = bounds[fi], bounds[fi + 1]
        if a == b:
            continue
        fb = force.name.encode("ascii")
        head = b"," + mb + b"," + fb + b"," + fb + b","
        pieces = interleave(ids[a:b], [head] * (b - a), texts[a:b], tail_text[a:b])
        sink.write(f"{month}-{force.id}-street.csv", STREET_HEADER, b"".join(pieces))
        if progress is not None:
            progress(b - a)
    return len(points)


def write_outcomes(
    sink: Sink, world: World, month: str, pending: PendingOutcomes, street_points: NDArray[np.int64]
) -> int:
    """Write the month's outcomes files: one per force with crimes or outcome rows."""
    if pending.ids:
        ids = np.concatenate(pending.ids)
        points = np.concatenate(pending.points)
        codes = np.concatenate(pending.outcomes)
    else:
        ids = np.empty(0, dtype="S64")
        points = np.empty(0, dtype=np.int32)
        codes = np.empty(0, dtype=np.int16)
    order = np.argsort(points, kind="stable")
    points = points[order]
    id_obj = ids[order].astype(object)
    texts = world.point_text[points]
    tails = _OUTCOME_TAILS[codes[order]]
    bounds = np.searchsorted(points, world.force_start).tolist()
    street_bounds = np.searchsorted(street_points, world.force_start).tolist()
    mb = month.encode("ascii")
    for fi, force in enumerate(world.forces):
        a, b = bounds[fi], bounds[fi + 1]
        if a == b and street_bounds[fi] == street_bounds[fi + 1]:
            continue
        fb = force.name.encode("ascii")
        head = b"," + mb + b"," + fb + b"," + fb + b","
        pieces = interleave(id_obj[a:b], [head] * (b - a), texts[a:b], tails[a:b])
        sink.write(f"{month}-{force.id}-outcomes.csv", OUTCOMES_HEADER, b"".join(pieces))
    return len(points)
