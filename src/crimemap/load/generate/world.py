"""The generator's world: the towns and map points every synthetic file is drawn on, and how files are written.

The map points are the same for every seed, as police.uk's anonymised map
points are fixed (:func:`build_world`); :class:`Sink` writes a month's CSVs
into a folder or a zip. Crimes (:mod:`crimemap.load.generate.crimes`) and stops
(:mod:`crimemap.load.generate.stops`) are drawn on this world.
"""

from __future__ import annotations

import math
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from crimemap.geo import EARTH_RADIUS_M
from crimemap.vocab import BTP, FORCE_BY_ID, Force

DENSEST_CENTRE = (-0.1276, 51.5073)
"""``(lng, lat)`` of the densest town centre (Westminster, at Charing Cross).

At 500,000 crimes a month about 2,500 of them (the brief: 1,500-3,000) fall
within one mile of this point, more than around any other town centre;
benchmarks query here for the worst realistic ``crimes-street`` call.
"""


@dataclass(frozen=True)
class Town:
    """A town centre that crimes cluster around.

    ``weight`` is the town's share of all (non-BTP) crime in percent (they
    sum to about 100), standing for the population it polices; ``spread_km`` is the standard deviation of
    its map points around the centre. ``stations`` are railway stations
    (name, lat, lng) for British Transport Police crimes; towns without any get
    one "<Town> (Station)" near their centre.
    """

    name: str
    lat: float
    lng: float
    weight: float
    force: str
    district: str
    spread_km: float
    stations: tuple[tuple[str, float, float], ...] = ()


def _town(
    name: str,
    lat: float,
    lng: float,
    weight: float,
    force: str,
    *,
    district: str | None = None,
    spread_km: float | None = None,
    stations: tuple[tuple[str, float, float], ...] = (),
) -> Town:
    # Spread grows with the square root of the weight, so every town has
    # about the same density at its centre (weight / spread**2 ~ 0.16 %/km2);
    # the London centres set their own, and Westminster is the densest.
    if spread_km is None:
        spread_km = max(1.3, 2.5 * math.sqrt(weight))
    if force not in FORCE_BY_ID:
        raise ValueError(f"unknown force {force!r} for {name}")
    return Town(name, lat, lng, weight, force, district or name, spread_km, stations)


TOWNS: tuple[Town, ...] = (
    # London: many centres, so the Met's crime is spread over the city and
    # only Westminster reaches the benchmark's density.
    _town(
        "Westminster",
        51.5073,
        -0.1276,
        0.56,
        "metropolitan",
        spread_km=1.2,
        stations=(
            ("Charing Cross (Station)", 51.5080, -0.1247),
            ("London Victoria (Station)", 51.4952, -0.1441),
            ("Oxford Circus (Lu Station)", 51.5152, -0.1419),
            ("Paddington (Station)", 51.5154, -0.1755),
        ),
    ),
    _town(
        "Camden",
        51.5390,
        -0.1426,
        0.6,
        "metropolitan",
        spread_km=2.6,
        stations=(
            ("Kings Cross (Station)", 51.5308, -0.1238),
            ("St Pancras International (Station)", 51.5319, -0.1263),
            ("Euston (Station)", 51.5282, -0.1337),
        ),
    ),
    _town("Islington", 51.5462, -0.1040, 0.6, "metropolitan", spread_km=2.6),
    _town(
        "Lambeth",
        51.4613,
        -0.1156,
        0.9,
        "metropolitan",
        spread_km=2.4,
        stations=(
            ("London Waterloo (Station)", 51.5031, -0.1132),
            ("Brixton (Lu Station)", 51.4627, -0.1145),
        ),
    ),
    _town(
        "Southwark",
        51.4740,
        -0.0690,
        0.7,
        "metropolitan",
        spread_km=2.4,
        stations=(("London Bridge (Station)", 51.5052, -0.0864),),
    ),
    _town("Tower Hamlets", 51.5252, -0.0332, 0.6, "metropolitan", spread_km=2.6),
    _town(
        "Wandsworth",
        51.4571,
        -0.1931,
        0.8,
        "metropolitan",
        spread_km=2.2,
        stations=(("Clapham Junction (Station)", 51.4643, -0.1704),),
    ),
    _town("Greenwich", 51.4906, 0.0693, 0.7, "metropolitan", spread_km=2.2),
    _town("Hackney", 51.5450, -0.0553, 0.6, "metropolitan", spread_km=2.6),
    _town(
        "Newham",
        51.5416,
        -0.0034,
        0.9,
        "metropolitan",
        spread_km=2.4,
        stations=(("Stratford (Station)", 51.5416, -0.0033),),
    ),
    _town(
        "Croydon",
        51.3762,
        -0.0982,
        1.0,
        "metropolitan",
        spread_km=2.1,
        stations=(("East Croydon (Station)", 51.3755, -0.0927),),
    ),
    _town("Lewisham", 51.4452, -0.0209, 0.8, "metropolitan", spread_km=1.9),
    _town("Ealing", 51.5130, -0.3089, 0.9, "metropolitan", spread_km=2.1),
    _town("Brent", 51.5522, -0.2964, 0.9, "metropolitan", spread_km=2.1),
    _town("Haringey", 51.5975, -0.1097, 0.8, "metropolitan", spread_km=1.9),
    _town("Barnet", 51.6252, -0.1517, 0.9, "metropolitan", spread_km=2.3),
    _town("Havering", 51.5768, 0.1801, 0.7, "metropolitan", spread_km=2.1),
    _town("Kingston upon Thames", 51.4123, -0.3007, 0.6, "metropolitan", spread_km=1.9),
    _town("Bromley", 51.4060, 0.0140, 0.8, "metropolitan", spread_km=2.3),
    _town(
        "City of London",
        51.5152,
        -0.0922,
        0.1,
        "city-of-london",
        spread_km=0.45,
        stations=(
            ("Liverpool Street (Station)", 51.5178, -0.0823),
            ("Fenchurch Street (Station)", 51.5115, -0.0786),
        ),
    ),
    # The rest of England and Wales: one or two towns per force.
    _town(
        "Manchester",
        53.4808,
        -2.2426,
        5.6,
        "greater-manchester",
        stations=(
            ("Manchester Piccadilly (Station)", 53.4774, -2.2309),
            ("Manchester Victoria (Station)", 53.4874, -2.2425),
        ),
    ),
    _town("Bolton", 53.5769, -2.4282, 1.2, "greater-manchester"),
    _town(
        "Birmingham",
        52.4862,
        -1.8904,
        5.0,
        "west-midlands",
        stations=(("Birmingham New Street (Station)", 52.4778, -1.8983),),
    ),
    _town("Coventry", 52.4068, -1.5197, 1.4, "west-midlands"),
    _town("Wolverhampton", 52.5862, -2.1288, 1.2, "west-midlands"),
    _town("Leeds", 53.8008, -1.5491, 3.2, "west-yorkshire", stations=(("Leeds (Station)", 53.7954, -1.5479),)),
    _town("Bradford", 53.7960, -1.7594, 2.0, "west-yorkshire"),
    _town("Sheffield", 53.3811, -1.4701, 2.6, "south-yorkshire"),
    _town("Doncaster", 53.5228, -1.1285, 1.1, "south-yorkshire"),
    _town(
        "Liverpool",
        53.4084,
        -2.9916,
        3.6,
        "merseyside",
        stations=(("Liverpool Lime Street (Station)", 53.4077, -2.9778),),
    ),
    _town(
        "Bristol",
        51.4545,
        -2.5879,
        2.6,
        "avon-and-somerset",
        stations=(("Bristol Temple Meads (Station)", 51.4491, -2.5813),),
    ),
    _town(
        "Newcastle upon Tyne",
        54.9783,
        -1.6178,
        2.4,
        "northumbria",
        stations=(("Newcastle (Station)", 54.9683, -1.6174),),
    ),
    _town("Sunderland", 54.9069, -1.3838, 1.2, "northumbria"),
    _town("Nottingham", 52.9548, -1.1581, 2.4, "nottinghamshire"),
    _town("Leicester", 52.6369, -1.1398, 2.2, "leicestershire"),
    _town("Cardiff", 51.4816, -3.1791, 1.8, "south-wales"),
    _town("Swansea", 51.6214, -3.9436, 1.0, "south-wales"),
    _town("Newport", 51.5842, -2.9977, 1.0, "gwent"),
    _town("Wrexham", 53.0430, -2.9925, 0.9, "north-wales"),
    _town("Carmarthen", 51.8560, -4.3120, 0.7, "dyfed-powys", district="Carmarthenshire"),
    _town("Southampton", 50.9097, -1.4044, 1.8, "hampshire"),
    _town("Portsmouth", 50.8198, -1.0880, 1.5, "hampshire"),
    _town("Brighton", 50.8225, -0.1372, 1.7, "sussex", district="Brighton and Hove"),
    _town("Plymouth", 50.3755, -4.1427, 1.4, "devon-and-cornwall"),
    _town("Exeter", 50.7184, -3.5339, 1.0, "devon-and-cornwall"),
    _town("Reading", 51.4543, -0.9781, 1.4, "thames-valley"),
    _town("Oxford", 51.7520, -1.2577, 1.2, "thames-valley"),
    _town("Milton Keynes", 52.0406, -0.7594, 1.2, "thames-valley"),
    _town("Peterborough", 52.5695, -0.2405, 1.1, "cambridgeshire"),
    _town("Norwich", 52.6309, 1.2974, 1.4, "norfolk"),
    _town("Ipswich", 52.0567, 1.1482, 1.1, "suffolk"),
    _town("Southend-on-Sea", 51.5459, 0.7077, 1.3, "essex"),
    _town("Chelmsford", 51.7356, 0.4685, 1.1, "essex"),
    _town("Maidstone", 51.2704, 0.5227, 1.2, "kent"),
    _town("Canterbury", 51.2802, 1.0789, 0.9, "kent"),
    _town("Guildford", 51.2362, -0.5704, 1.0, "surrey"),
    _town("Luton", 51.8787, -0.4200, 1.1, "bedfordshire"),
    _town("Watford", 51.6565, -0.3903, 1.1, "hertfordshire"),
    _town("Northampton", 52.2405, -0.9027, 1.2, "northamptonshire"),
    _town("Derby", 52.9225, -1.4746, 1.5, "derbyshire"),
    _town("Stoke-on-Trent", 53.0027, -2.1794, 1.4, "staffordshire"),
    _town("Preston", 53.7632, -2.7031, 1.2, "lancashire"),
    _town("Blackpool", 53.8175, -3.0357, 1.1, "lancashire"),
    _town("Kingston upon Hull", 53.7676, -0.3274, 1.6, "humberside"),
    _town("York", 53.9600, -1.0873, 1.2, "north-yorkshire"),
    _town("Middlesbrough", 54.5742, -1.2350, 1.3, "cleveland"),
    _town("Durham", 54.7753, -1.5849, 1.1, "durham", district="County Durham"),
    _town("Carlisle", 54.8925, -2.9329, 0.7, "cumbria"),
    _town("Chester", 53.1934, -2.8931, 1.2, "cheshire", district="Cheshire West and Chester"),
    _town("Lincoln", 53.2307, -0.5406, 1.1, "lincolnshire"),
    _town("Gloucester", 51.8642, -2.2382, 1.0, "gloucestershire"),
    _town("Swindon", 51.5558, -1.7797, 1.1, "wiltshire"),
    _town("Bournemouth", 50.7192, -1.8808, 1.1, "dorset"),
    _town("Worcester", 52.1920, -2.2200, 1.2, "west-mercia"),
    _town("Nuneaton", 52.5230, -1.4652, 0.8, "warwickshire", district="Nuneaton and Bedworth"),
)
"""Town centres (real centre coordinates and the force that polices each)."""

_P_BTP = 0.03  # share of rows reported by British Transport Police
_POINTS_PER_WEIGHT = 1000  # map points per percent of crime
_LSOA_CELL = (0.004, 0.0064)  # (lat, lng) degrees: one synthetic LSOA, ~450 m

_STREET_STEMS = (
    "High",
    "Church",
    "Station",
    "Victoria",
    "King",
    "Queen",
    "Park",
    "Mill",
    "London",
    "York",
    "Albert",
    "George",
    "Manor",
    "Green",
    "Market",
    "North",
    "South",
    "West",
    "East",
    "Bridge",
    "Castle",
    "Chapel",
    "School",
    "New",
    "Old",
    "Windsor",
    "Grange",
    "Richmond",
    "Oxford",
    "Cambridge",
    "Wellington",
    "Nelson",
    "Princes",
    "Albion",
    "Mount",
    "Water",
    "Hill",
    "Springfield",
    "Orchard",
    "Kingsway",
    "Beech",
    "Elm",
    "Oak",
    "Ash",
    "Willow",
    "Cedar",
    "Forest",
    "Meadow",
    "Garden",
    "Stanley",
    "Clarence",
    "Alexandra",
    "Cromwell",
    "Regent",
    "Brook",
    "Lime",
    "Hawthorn",
    "Holly",
    "Rose",
    "Stafford",
    "Lancaster",
    "Chester",
    "Derby",
    "Grosvenor",
    "Cavendish",
    "Portland",
    "Sussex",
    "Trinity",
    "St John'S",
    "St Mary'S",
    "Abbey",
    "Priory",
    "Marsh",
    "Fore",
    "Union",
    "Commercial",
    "Duke",
    "Earl",
    "Fleet",
)
_STREET_SUFFIXES = (
    "Street",
    "Road",
    "Lane",
    "Avenue",
    "Close",
    "Way",
    "Place",
    "Grove",
    "Gardens",
    "Crescent",
    "Terrace",
    "Drive",
    "Square",
    "Court",
    "Row",
    "Walk",
    "Mews",
    "Hill",
)
# police.uk's anonymised non-street map points.
_PLACES = (
    "Supermarket",
    "Parking Area",
    "Shopping Area",
    "Petrol Station",
    "Nightclub",
    "Sports/Recreation Area",
    "Pedestrian Subway",
    "Police Station",
    "Hospital",
    "Further/Higher Educational Building",
    "Theatre/Concert Hall",
    "Conference/Exhibition Centre",
    "Bus/Coach Station",
    "Park/Open Space",
)
_P_PLACE = 0.12  # share of map points that are places, not streets
_PLACE_BOOST = 3.0  # places (a supermarket, a nightclub) collect more crime than a street
_WALES = frozenset({"south-wales", "gwent", "north-wales", "dyfed-powys"})
_WORLD_SEED = 0x574F524C44  # "WORLD": fixes the map points (see build_world)
_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def year_month(month: str) -> tuple[int, int]:
    m = _MONTH_RE.match(month)
    if m is None:
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    return int(m.group(1)), int(m.group(2))


def month_range(last: str, count: int) -> list[str]:
    """``count`` months ending at ``last`` (``YYYY-MM``), oldest first.

    >>> month_range("2017-02", 3)
    ['2016-12', '2017-01', '2017-02']
    """
    if count < 0:
        raise ValueError("count must not be negative")
    year, month = year_month(last)
    end = year * 12 + month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(end - count + 1, end + 1)]


@dataclass(frozen=True)
class World:
    """Every month's fixed scenery: map points, their forces and their text.

    Points are sorted by force, then LSOA name, then location, and each force
    ends with its own "No Location" point (never drawn, only substituted), so
    sorting a month's crimes by point index groups them by force in the order
    the real files list them, with "No Location" rows last.
    """

    forces: tuple[Force, ...]  # forces that have points, in file order
    point_force: NDArray[np.int32]  # index into forces, per point
    point_text: NDArray[np.object_]  # b"lng,lat,Location,LSOA code,LSOA name," per point
    cum_weight: NDArray[np.float64]  # cumulative draw probability per point (ends at 1)
    no_location: NDArray[np.int32]  # each force's "No Location" point
    force_start: NDArray[np.int64]  # first point index of each force (+ one past the end)


def _lsoa_labels(
    town: Town, first_code: int, lat: NDArray[np.float64], lng: NDArray[np.float64]
) -> tuple[list[str], list[str], int]:
    """Plausible LSOA codes and names: one LSOA per ~450 m grid cell around the town.

    Codes are numbered on from ``first_code`` (returned advanced past this
    town's), so a code always names one LSOA, as in the real data.
    """
    rows = np.floor((lat - town.lat) / _LSOA_CELL[0]).astype(np.int64)
    cols = np.floor((lng - town.lng) / _LSOA_CELL[1]).astype(np.int64)
    _, inverse = np.unique(rows * 100_000 + cols, return_inverse=True)
    prefix = "W01" if town.force in _WALES else "E01"
    codes, names = [], []
    inverse = inverse.ravel()
    for i in inverse.tolist():
        codes.append(f"{prefix}{first_code + i:06d}")
        names.append(f"{town.district} {i // 4 + 1:03d}{'ABCD'[i % 4]}")
    return codes, names, first_code + int(inverse.max()) + 1


def _offsets(
    rng: np.random.Generator, n: int, lat: float, spread_km: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` (dlat, dlng) degree offsets, normally distributed with ``spread_km``."""
    sigma_lat = math.degrees(spread_km * 1000.0 / EARTH_RADIUS_M)
    sigma_lng = sigma_lat / math.cos(math.radians(lat))
    return rng.normal(0.0, sigma_lat, n), rng.normal(0.0, sigma_lng, n)


@lru_cache(maxsize=1)
def build_world() -> World:
    """Build (once) the map points every month's crimes are drawn from.

    The map is the same for every seed, as police.uk's anonymised map points
    are fixed: seeds vary the crimes, not the geography, so the density around
    :data:`DENSEST_CENTRE` that benchmarks rely on holds for any seed.
    """
    rng = np.random.default_rng(_WORLD_SEED)
    stems = np.array(_STREET_STEMS, dtype=object)
    suffixes = np.array(_STREET_SUFFIXES, dtype=object)
    places = np.array(_PLACES, dtype=object)
    # (force id, lsoa name, location, text, weight) per point; BTP weights apart.
    rows: list[tuple[str, str, str, str, float]] = []
    btp_rows: list[tuple[str, str, str, str, float]] = []
    total_weight = sum(t.weight for t in TOWNS)
    next_code = 1
    for town in TOWNS:
        n = max(60, int(town.weight * _POINTS_PER_WEIGHT))
        dlat, dlng = _offsets(rng, n, town.lat, town.spread_km)
        lat, lng = town.lat + dlat, town.lng + dlng
        is_place = rng.random(n) < _P_PLACE
        street = stems[rng.integers(0, len(stems), n)] + " " + suffixes[rng.integers(0, len(suffixes), n)]
        names = np.where(is_place, places[rng.integers(0, len(places), n)], street)
        weight = rng.lognormal(0.0, 0.7, n) * np.where(is_place, _PLACE_BOOST, 1.0)
        weight *= (town.weight / total_weight) * (1.0 - _P_BTP) / weight.sum()
        stations = list(town.stations) or [(f"{town.name} (Station)", math.nan, math.nan)]
        s_lat = np.array([s[1] for s in stations])
        s_lng = np.array([s[2] for s in stations])
        near_lat, near_lng = _offsets(rng, len(stations), town.lat, 0.4)
        s_lat = np.where(np.isnan(s_lat), town.lat + near_lat, s_lat)
        s_lng = np.where(np.isnan(s_lng), town.lng + near_lng, s_lng)
        s_weight = rng.lognormal(0.0, 0.25, len(stations)) * math.sqrt(town.weight) / len(stations) ** 0.5
        codes, lsoa_names, next_code = _lsoa_labels(
            town, next_code, np.concatenate([lat, s_lat]), np.concatenate([lng, s_lng])
        )
        for i in range(n):
            loc = f"On or near {names[i]}"
            text = f"{lng[i]:.6f},{lat[i]:.6f},{loc},{codes[i]},{lsoa_names[i]},"
            rows.append((town.force, lsoa_names[i], loc, text, float(weight[i])))
        for j, (s_name, _, _) in enumerate(stations):
            loc = f"On or near {s_name}"
            text = f"{s_lng[j]:.6f},{s_lat[j]:.6f},{loc},{codes[n + j]},{lsoa_names[n + j]},"
            btp_rows.append((BTP.id, lsoa_names[n + j], loc, text, float(s_weight[j])))
    btp_total = sum(r[4] for r in btp_rows)
    rows.extend((f, ln, loc, text, w * _P_BTP / btp_total) for f, ln, loc, text, w in btp_rows)
    rows.sort(key=lambda r: (r[0], r[1], r[2]))

    forces: list[Force] = []
    point_force: list[int] = []
    texts: list[bytes] = []
    weights: list[float] = []
    no_location: list[int] = []
    force_start: list[int] = []
    for i, (force_id, _, _, text, w) in enumerate(rows):
        if not forces or forces[-1].id != force_id:
            if forces:
                no_location.append(len(texts))
                texts.append(b",,No Location,,,")
                weights.append(0.0)
                point_force.append(len(forces) - 1)
            forces.append(FORCE_BY_ID[force_id])
            force_start.append(len(texts))
        texts.append(text.encode("ascii"))
        weights.append(w)
        point_force.append(len(forces) - 1)
        if i == len(rows) - 1:
            no_location.append(len(texts))
            texts.append(b",,No Location,,,")
            weights.append(0.0)
            point_force.append(len(forces) - 1)
    force_start.append(len(texts))
    cum = np.cumsum(np.array(weights))
    cum /= cum[-1]
    text_arr = np.empty(len(texts), dtype=object)
    text_arr[:] = texts
    return World(
        forces=tuple(forces),
        point_force=np.array(point_force, dtype=np.int32),
        point_text=text_arr,
        cum_weight=cum,
        no_location=np.array(no_location, dtype=np.int32),
        force_start=np.array(force_start, dtype=np.int64),
    )


def seed_word(seed: int) -> int:
    """Any Python int as a non-negative seed word (numpy refuses negative seeds)."""
    return seed & 0xFFFF_FFFF_FFFF_FFFF


def interleave(*columns: list[bytes] | NDArray[np.object_]) -> list[bytes]:
    """Row pieces (object arrays of bytes) column by column into one list for ``b"".join``.

    Slice assignment runs in C, so a row costs a few pointer copies instead
    of a Python-level string format.
    """
    k = len(columns)
    out: list[bytes] = [b""] * (k * len(columns[0]))
    for j, col in enumerate(columns):
        out[j::k] = col if isinstance(col, list) else col.tolist()
    return out


class Sink:
    """Writes files into folders, or into one zip per month."""

    def __init__(self, out: Path, month: str, zipped: bool) -> None:
        self.out = out
        self.month = month
        self.zip: zipfile.ZipFile | None = None
        self.files: list[Path] = []
        year, mon = year_month(month)
        self.date_time = (year, mon, 1, 0, 0, 0)
        if zipped:
            path = out / f"{month}.zip"
            self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
            self.files.append(path)
        else:
            (out / month).mkdir(parents=True, exist_ok=True)

    def write(self, name: str, header: str, body: bytes) -> None:
        """One CSV: the header line, then the rows (a plain file gets them apart, saving a copy)."""
        head = header.encode("ascii") + b"\n"
        if self.zip is not None:
            # A fixed timestamp and mode keep zips byte-identical between runs.
            info = zipfile.ZipInfo(f"{self.month}/{name}", date_time=self.date_time)
            info.external_attr = 0o644 << 16
            # Level 1: deflating is the slowest step of a zipped archive.
            self.zip.writestr(info, head + body, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
        else:
            path = self.out / self.month / name
            with path.open("wb") as f:
                f.write(head)
                f.write(body)
            self.files.append(path)

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()
