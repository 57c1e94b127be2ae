"""Synthetic stop-and-search files, the third file of each generated month (see :mod:`crimemap.load.generate.archive`).

Stops are placed on the same anonymised map points as the month's crimes, with
the same weights (so the densest mile is Westminster's again, and stops are
named by the map points of the street files), and written per force as
``YYYY-MM/YYYY-MM-<force>-stop-and-search.csv`` with the real header, rows in
time order. The mix of types, legislation, objects of
search and outcomes is roughly the real files'; some fields are left empty as
in them (about 7% of ages and ethnicities, a third of the yes/no columns), some
stops have no location (South Yorkshire publishes none at all), and in months
of British Summer Time the stops of the first hour of the 1st fall, in UTC, on
the last day of the month before. A month's stops depend only on the seed and
the month, and are drawn from their own random stream: asking for stops leaves
the street and outcomes files byte for byte as they were.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from crimemap.load.generate.world import Sink, World, interleave, seed_word, year_month
from crimemap.load.stops import STOPS_HEADER

HEADER = ",".join(STOPS_HEADER)

_TYPES = (("Person search", 78.0), ("Person and Vehicle search", 18.0), ("Vehicle search", 4.0))
_OPERATION = (("False", 60.0), ("True", 5.0), ("", 35.0))
_GENDER = (("Male", 88.0), ("Female", 9.0), ("Other", 0.3), ("", 2.7))
_AGE = (("18-24", 33.0), ("25-34", 24.0), ("over 34", 19.0), ("10-17", 17.0), ("under 10", 0.05), ("", 6.95))
_SELF_DEFINED = (
    ("White - English/Welsh/Scottish/Northern Irish/British", 45.0),
    ("Other ethnic group - Not stated", 12.0),
    ("White - Any other White background", 6.0),
    ("Black/African/Caribbean/Black British - African", 6.0),
    ("Black/African/Caribbean/Black British - Caribbean", 4.0),
    ("Asian/Asian British - Pakistani", 3.0),
    ("Asian/Asian British - Bangladeshi", 3.0),
    ("Asian/Asian British - Indian", 2.0),
    ("Asian/Asian British - Any other Asian background", 2.0),
    ("Mixed/Multiple ethnic groups - White and Black Caribbean", 2.0),
    ("White - Irish", 1.0),
    ("Other ethnic group - Any other ethnic group", 1.0),
    ("", 13.0),
)
_OFFICER_DEFINED = (("White", 60.0), ("Black", 20.0), ("Asian", 12.0), ("Other", 3.0), ("", 5.0))
# (legislation, object of search) pairs: each act allows searches for its own objects.
_GROUNDS = (
    ("Misuse of Drugs Act 1971 (section 23),Controlled drugs", 62.0),
    ("Police and Criminal Evidence Act 1984 (section 1),Stolen goods", 9.0),
    ("Police and Criminal Evidence Act 1984 (section 1),Offensive weapons", 9.0),
    ("Police and Criminal Evidence Act 1984 (section 1),Article for use in theft", 6.0),
    ("Police and Criminal Evidence Act 1984 (section 1),Articles for use in criminal damage", 2.0),
    ("Police and Criminal Evidence Act 1984 (section 1),Evidence of offences under the Act", 1.0),
    ("Criminal Justice and Public Order Act 1994 (section 60),Offensive weapons", 1.5),
    ("Criminal Justice and Public Order Act 1994 (section 60),Anything to threaten or harm anyone", 1.0),
    ("Firearms Act 1968 (section 47),Firearms", 1.0),
    ("Police and Criminal Evidence Act 1984 (section 1),Fireworks", 0.1),
    (",", 2.4),
)
_OUTCOMES = (
    ("A no further action disposal", 68.0),
    ("Arrest", 13.0),
    ("Community resolution", 8.0),
    ("Khat or Cannabis warning", 4.0),
    ("Summons / charged by post", 3.0),
    ("Penalty Notice for Disorder", 1.5),
    ("Caution (simple or conditional)", 1.5),
    ("", 1.0),
)
_LINKED = (("False", 45.0), ("True", 25.0), ("", 30.0))
_REMOVAL = (("False", 75.0), ("True", 3.0), ("", 22.0))

_P_NO_LOCATION = 0.08
_NO_COORDINATES = frozenset({"south-yorkshire"})
"""Forces that publish no coordinates at all, as South Yorkshire does."""
_STOP_SEED = 0x53544F50  # "STOP": a random stream of its own


def _column(pairs: Sequence[tuple[str, float]], end: bytes) -> tuple[NDArray[np.float64], NDArray[np.object_]]:
    """Cumulative probabilities of a mix, and each choice's bytes followed by ``end``."""
    cum = np.cumsum(np.array([p for _, p in pairs]))
    texts = np.empty(len(pairs), dtype=object)
    texts[:] = [name.encode("ascii") + end for name, _ in pairs]
    return cum / cum[-1], texts


_COLUMNS = tuple(
    _column(pairs, end)
    for pairs, end in (
        (_TYPES, b","),
        (_OPERATION, b",,"),  # then the (empty) policing operation
        (_GENDER, b","),
        (_AGE, b","),
        (_SELF_DEFINED, b","),
        (_OFFICER_DEFINED, b","),
        (_GROUNDS, b","),
        (_OUTCOMES, b","),
        (_LINKED, b","),
        (_REMOVAL, b"\n"),
    )
)


_COORDINATES: dict[int, NDArray[np.object_]] = {}


def _coordinates(world: World) -> NDArray[np.object_]:
    """``b"lat,lng,"`` per map point (the stop files' column order), ``b",,"`` for "No Location"."""
    found = _COORDINATES.get(id(world))
    if found is None:
        found = np.empty(len(world.point_text), dtype=object)
        for i, text in enumerate(world.point_text.tolist()):
            lng, lat = text.split(b",", 2)[:2]
            found[i] = lat + b"," + lng + b"," if lng else b",,"
        _COORDINATES.clear()
        _COORDINATES[id(world)] = found
    return found


def _dates(month: str, seconds: NDArray[np.int64]) -> NDArray[np.object_]:
    """``b"YYYY-MM-DDTHH:MM:SS+00:00,"`` in UTC of local times ``seconds`` into the month."""
    year, mon = year_month(month)
    bst = 4 <= mon <= 10  # British Summer Time (its days in March and October aside): UTC is an hour behind
    start = np.datetime64(f"{year:04d}-{mon:02d}-01T00:00:00") - np.timedelta64(3600 if bst else 0, "s")
    text = np.datetime_as_string(start + seconds.astype("timedelta64[s]"), unit="s")
    return np.char.add(np.char.encode(text, "ascii"), b"+00:00,").astype(object)


def write_stops(sink: Sink, world: World, seed: int, month: str, n: int) -> int:
    """Draw and write one month's stop-and-search files (one per force with stops); the stops written."""
    year, mon = year_month(month)
    rng = np.random.default_rng([seed_word(seed), year * 100 + mon, _STOP_SEED])
    point = np.searchsorted(world.cum_weight, rng.random(n), side="right").astype(np.int32)
    np.minimum(point, len(world.cum_weight) - 1, out=point)
    force = world.point_force[point]
    hidden = np.array([f.id in _NO_COORDINATES for f in world.forces])[force] | (rng.random(n) < _P_NO_LOCATION)
    point = np.where(hidden, world.no_location[force], point)
    days = np.datetime64(f"{year + mon // 12:04d}-{mon % 12 + 1:02d}") - np.datetime64(f"{year:04d}-{mon:02d}")
    seconds = rng.integers(0, int(days.astype("timedelta64[s]").astype(np.int64)), n)
    seconds -= seconds % np.where(rng.random(n) < 0.5, 60, 1)  # half the forces record minutes only
    picks = [texts[np.searchsorted(cum, rng.random(n), side="right")] for cum, texts in _COLUMNS]
    order = np.lexsort((seconds, force))
    force = force[order]
    pieces = [picks[0][order], _dates(month, seconds[order]), picks[1][order], _coordinates(world)[point[order]]]
    pieces += [p[order] for p in picks[2:]]
    bounds = np.searchsorted(force, np.arange(len(world.forces) + 1)).tolist()
    for fi, f in enumerate(world.forces):
        a, b = bounds[fi], bounds[fi + 1]
        if a < b:
            body = b"".join(interleave(*(p[a:b] for p in pieces)))
            sink.write(f"{month}-{f.id}-stop-and-search.csv", HEADER, body)
    return n
