"""Crimes and outcomes column by column: what a load hands a store, with each crime's work already done.

A police.uk file is parsed into one :class:`CrimeBatch` (or
:class:`OutcomeBatch`): numbers in numpy arrays, text in pyarrow arrays, and
everything a store would otherwise compute crime by crime computed here once,
for whole columns: the grid cell, the unit vector, the persistent-id key, and
the crime's police.uk JSON object (:func:`crimemap.policeuk_json.crime_json_column`).
Stores turn batches into what they insert fastest (``StoreWriter.prepare``).

Records and batches convert both ways (:meth:`CrimeBatch.from_records`,
:meth:`CrimeBatch.records`) for the few who hold records: the harvester, and
files that need the careful reader.

    >>> from crimemap.records import Crime
    >>> c = Crime(1, "2017-01", "city-of-london", "City of London Police", -0.09, 51.5, 7, "On or near X",
    ...           "E01", "City 001A", "drugs", "", "Force", "", "", None, None)
    >>> next(CrimeBatch.from_records([c]).records()) == c
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import pyarrow as pa

from crimemap import geo, vocab
from crimemap.geometry.areas import unit_vector
from crimemap.months import format_month, parse_month
from crimemap.policeuk_json import crime_json
from crimemap.records import Crime, OutcomeRecord

NO_OUTCOME = -1
"""``outcome`` of a crime without one; unknown outcome names get placeholders below this."""
NO_MONTH = -1


def outcome_code(name: str, unknown: dict[str, int]) -> tuple[int, str]:
    """The stored code of an outcome name and the name crimemap shows for it.

    Names the vocabulary does not know get placeholder codes (``-2``, ``-3``...)
    listed in ``unknown``; the writing store numbers them (and may show an
    earlier spelling of the same name).
    """
    found = vocab.OUTCOME_BY_NAME.get(name.strip().lower())
    if found is not None:
        return found.code, found.name
    return unknown.setdefault(name, NO_OUTCOME - 1 - len(unknown)), vocab.outcome_by_name(name).name


def pid_bytes(pids: pa.Array | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(has_pid, bytes)``: which rows have a persistent id (64 hex digits), and its 32 bytes (a row each).

    Decoded for the whole column at once from the text's buffer: no Python per row.
    """
    if not isinstance(pids, pa.Array):
        pids = pa.array(pids, pa.string())
    has = pc_not_empty(pids)
    out = np.zeros((len(pids), 32), dtype=np.uint8)
    if has.any():
        present = pids.filter(pa.array(has))
        offsets = np.frombuffer(present.buffers()[1], dtype=np.int32)[
            present.offset : present.offset + len(present) + 1
        ]
        data = np.frombuffer(present.buffers()[2], dtype=np.uint8)
        digits = data[offsets[0] : offsets[0] + 64 * len(present)].reshape(-1, 64)
        nibbles = (digits & 0x0F) + 9 * (digits >> 6)
        out[has] = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return has, out


def pc_not_empty(texts: pa.Array) -> np.ndarray:
    import pyarrow.compute as pc

    return np.asarray(pc.not_equal(texts, "").to_numpy(zero_copy_only=False), dtype=bool)


def pid_keys(pids: pa.Array | Sequence[str]) -> np.ndarray:
    """The 63-bit keys of 64-hex persistent ids (``-1`` for none), a whole column at once."""
    has, raw = pid_bytes(pids)
    return key_of(has, raw)


def key_of(has: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """The 63-bit key of 32-byte ids: their first 8 bytes, big-endian, shifted right once (``-1`` for none)."""
    first = np.ascontiguousarray(raw[:, :8]).view(">u8").reshape(-1)
    return np.where(has, (first >> np.uint64(1)).astype(np.int64), -1)


def check_of(raw: np.ndarray) -> np.ndarray:
    """A second 64-bit key of 32-byte ids (bytes 8 to 16), to tell apart ids whose first keys agree."""
    return np.ascontiguousarray(raw[:, 8:16]).view(">i8").reshape(-1).astype(np.int64)


def unit_vectors(lng: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The unit vectors of points (NaN where there is none), by :func:`crimemap.geometry.areas.unit_vector`.

    Computed with Python's ``math`` (the C library, as SQLite and PostgreSQL
    call it), once per distinct point, not with numpy's own vectorised sine,
    which may differ in the last bit on some machines.
    """
    out = np.full((3, len(lng)), np.nan)
    seen: dict[tuple[float, float], tuple[float, float, float]] = {}
    for i, (a, b) in enumerate(zip(lng.tolist(), lat.tolist(), strict=True)):
        if a != a or b != b:  # NaN: no location
            continue
        v = seen.get((a, b))
        if v is None:
            v = seen[(a, b)] = unit_vector(a, b)
        out[:, i] = v
    return out[0], out[1], out[2]


def cells(lng: np.ndarray, lat: np.ndarray, located: np.ndarray) -> np.ndarray:
    """Grid cells of points (:func:`crimemap.geo.cell_of`), ``NO_CELL`` where there is no location."""
    out = np.full(len(lng), geo.NO_CELL, dtype=np.int64)
    if located.any():
        rows = np.floor((lat[located] + 90.0) / geo.GRID_LAT).astype(np.int64)
        cols = np.floor((lng[located] + 180.0) / geo.GRID_LNG).astype(np.int64)
        out[located] = rows * geo.ROW_SPAN + cols
    return out


@dataclass
class CrimeBatch:
    """Crimes of one month, column by column (see the module docstring).

    Text columns are pyarrow string arrays; ``falls_within`` is null where it
    is the reporting force; ``lng``/``lat`` are NaN and ``street_id`` 0 where
    a crime has no location (``located`` False).
    """

    month: int
    id: np.ndarray
    force: np.ndarray
    category: np.ndarray
    located: np.ndarray
    lng: np.ndarray
    lat: np.ndarray
    cell: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    street_id: np.ndarray
    street_name: pa.Array
    pid: pa.Array
    pid_key: np.ndarray
    lsoa_code: pa.Array
    lsoa_name: pa.Array
    falls_within: pa.Array
    location_subtype: pa.Array
    context: pa.Array
    outcome: np.ndarray
    outcome_month: np.ndarray
    json: pa.Array
    unknown_outcomes: dict[int, str] = field(default_factory=dict)
    """Placeholder codes in ``outcome`` and the names they stand for."""

    def __len__(self) -> int:
        return len(self.id)

    @property
    def month_text(self) -> str:
        return format_month(self.month)

    @classmethod
    def from_records(cls, crimes: Sequence[Crime]) -> CrimeBatch:
        """A batch of records of one month (the JSON made by :func:`crimemap.policeuk_json.crime_json`)."""
        unknown: dict[str, int] = {}
        outcomes: list[int] = []
        shown: list[Crime] = []
        for c in crimes:
            if c.outcome:
                code, name = outcome_code(c.outcome, unknown)
                c = c._replace(outcome=name)
            else:
                code = NO_OUTCOME
            outcomes.append(code)
            shown.append(c)
        located = np.array([c.lng is not None and c.lat is not None for c in crimes], dtype=bool)
        lng = np.array([c.lng if c.lng is not None else np.nan for c in crimes], dtype=np.float64)
        lat = np.array([c.lat if c.lat is not None else np.nan for c in crimes], dtype=np.float64)
        x, y, z = unit_vectors(lng, lat)
        pids = [c.persistent_id for c in crimes]
        forces = vocab.FORCE_BY_ID
        return cls(
            month=parse_month(crimes[0].month) if crimes else 0,
            id=np.array([c.id for c in crimes], dtype=np.int64),
            force=np.array([forces[c.force].code for c in crimes], dtype=np.int16),
            category=np.array([vocab.CATEGORY_BY_SLUG[c.category].code for c in crimes], dtype=np.int16),
            located=located,
            lng=lng,
            lat=lat,
            cell=cells(lng, lat, located),
            x=x,
            y=y,
            z=z,
            street_id=np.array([c.street_id or 0 for c in crimes], dtype=np.int64),
            street_name=pa.array([c.street_name for c in crimes], pa.string()),
            pid=pa.array(pids, pa.string()),
            pid_key=pid_keys(pids),
            lsoa_code=pa.array([c.lsoa_code for c in crimes], pa.string()),
            lsoa_name=pa.array([c.lsoa_name for c in crimes], pa.string()),
            falls_within=pa.array(
                [None if c.falls_within == forces[c.force].name else c.falls_within for c in crimes], pa.string()
            ),
            location_subtype=pa.array([c.location_subtype for c in crimes], pa.string()),
            context=pa.array([c.context for c in crimes], pa.string()),
            outcome=np.array(outcomes, dtype=np.int32),
            outcome_month=np.array(
                [parse_month(c.outcome_month) if c.outcome_month else NO_MONTH for c in crimes], dtype=np.int32
            ),
            json=pa.array([crime_json(c).decode() for c in shown], pa.string()),
            unknown_outcomes={code: name for name, code in unknown.items()},
        )

    def records(self, outcome_names: dict[int, str] | None = None) -> Iterator[Crime]:
        """The batch as records; ``outcome_names`` names the stored codes (default: the vocabulary's)."""
        names = {o.code: o.name for o in vocab.OUTCOMES} | self.unknown_outcomes | (outcome_names or {})
        month = self.month_text
        columns = (
            self.id.tolist(), self.force.tolist(), self.category.tolist(), self.located.tolist(),
            self.lng.tolist(), self.lat.tolist(), self.street_id.tolist(), self.street_name.to_pylist(),
            self.pid.to_pylist(), self.lsoa_code.to_pylist(), self.lsoa_name.to_pylist(),
            self.falls_within.to_pylist(), self.location_subtype.to_pylist(), self.context.to_pylist(),
            self.outcome.tolist(), self.outcome_month.tolist(),
        )  # fmt: skip
        for cid, force, cat, located, lng, lat, sid, sname, pid, lcode, lname, falls, sub, ctx, out, om in zip(
            *columns, strict=True
        ):
            f = vocab.FORCES[force]
            yield Crime(
                cid, month, f.id, falls if falls is not None else f.name,
                lng if located else None, lat if located else None, sid if located else None, sname,
                lcode, lname, vocab.CATEGORIES[cat].slug, pid, "BTP" if f is vocab.BTP else "Force", sub, ctx,
                names.get(out) if out != NO_OUTCOME else None, format_month(om) if om != NO_MONTH else None,
            )  # fmt: skip

    def take(self, order: np.ndarray) -> CrimeBatch:
        """The crimes at ``order`` (indices), in that order."""
        indices = pa.array(order)
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                values[f.name] = value[order]
            elif isinstance(value, pa.Array):
                values[f.name] = value.take(indices)
            else:
                values[f.name] = value
        return CrimeBatch(**values)

    @classmethod
    def concat(cls, batches: Sequence[CrimeBatch]) -> CrimeBatch:
        """One batch of several of the same month (their unknown outcomes' placeholders must not clash)."""
        if len(batches) == 1:
            return batches[0]
        values: dict[str, object] = {}
        for f in fields(cls):
            parts = [getattr(b, f.name) for b in batches]
            if isinstance(parts[0], np.ndarray):
                values[f.name] = np.concatenate(parts)
            elif isinstance(parts[0], pa.Array):
                values[f.name] = pa.concat_arrays(parts)
            elif f.name == "unknown_outcomes":
                merged: dict[int, str] = {}
                for p in parts:
                    merged.update(p)
                values[f.name] = merged
            else:
                values[f.name] = parts[0]
        return cls(**values)  # type: ignore[arg-type]


@dataclass
class OutcomeBatch:
    """Outcome rows of one outcomes file, column by column."""

    month: int
    force: int
    pid: pa.Array
    pid_key: np.ndarray
    outcome: np.ndarray
    located: np.ndarray
    lng: np.ndarray
    lat: np.ndarray
    cell: np.ndarray
    street_id: np.ndarray
    """The map point of the outcome row itself (0 without location); its name is in capitals in some files."""
    street_name: pa.Array
    unknown_outcomes: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pid)

    def records(self) -> Iterator[OutcomeRecord]:
        """The batch as records (without LSOAs, which outcome rows do not keep)."""
        names = {o.code: o.name for o in vocab.OUTCOMES} | self.unknown_outcomes
        month, force = format_month(self.month), vocab.FORCES[self.force].id
        for pid, code, located, lng, lat, sid, sname in zip(
            self.pid.to_pylist(), self.outcome.tolist(), self.located.tolist(), self.lng.tolist(), self.lat.tolist(),
            self.street_id.tolist(), self.street_name.to_pylist(), strict=True,
        ):  # fmt: skip
            if located:
                yield OutcomeRecord(pid, month, force, names[code], lng, lat, sid, sname, "", "")
            else:
                yield OutcomeRecord(pid, month, force, names[code], None, None, None, sname, "", "")

    @classmethod
    def from_records(cls, outcomes: Sequence[OutcomeRecord]) -> OutcomeBatch:
        unknown: dict[str, int] = {}
        codes = [outcome_code(o.outcome, unknown)[0] for o in outcomes]
        located = np.array([o.lng is not None and o.lat is not None for o in outcomes], dtype=bool)
        lng = np.array([o.lng if o.lng is not None else np.nan for o in outcomes], dtype=np.float64)
        lat = np.array([o.lat if o.lat is not None else np.nan for o in outcomes], dtype=np.float64)
        pids = [o.persistent_id for o in outcomes]
        return cls(
            month=parse_month(outcomes[0].month) if outcomes else 0,
            force=vocab.FORCE_BY_ID[outcomes[0].force].code if outcomes else 0,
            pid=pa.array(pids, pa.string()),
            pid_key=pid_keys(pids),
            outcome=np.array(codes, dtype=np.int32),
            located=located,
            lng=lng,
            lat=lat,
            cell=cells(lng, lat, located),
            street_id=np.array([o.street_id or 0 for o in outcomes], dtype=np.int64),
            street_name=pa.array([o.street_name for o in outcomes], pa.string()),
            unknown_outcomes={code: name for name, code in unknown.items()},
        )
