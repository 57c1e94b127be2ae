"""Stored codes back to police.uk records: what both stores share when they read crimes.

Both stores keep crimes with small integer codes (month, force, category,
outcome) and read them back through the same column list, :data:`CRIME_FIELDS`,
so one function turns a row into a :class:`~crimemap.records.Crime`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from crimemap import vocab
from crimemap.months import format_month
from crimemap.records import Crime

CRIME_FIELDS = (
    "id", "month", "force", "falls_within", "lng", "lat", "street_id", "street_name", "lsoa_code", "lsoa_name",
    "category", "pid", "location_subtype", "context", "outcome", "outcome_month",
)  # fmt: skip
"""The columns a crime is read from, in the order :func:`crime_from_row` expects."""

FORCE_IDS = [f.id for f in vocab.FORCES]
FORCE_NAMES = [f.name for f in vocab.FORCES]
CATEGORY_SLUGS = [c.slug for c in vocab.CATEGORIES]
LOCATION_TYPES = ["BTP" if f is vocab.BTP else "Force" for f in vocab.FORCES]
KNOWN_OUTCOMES = {o.name.lower(): o.code for o in vocab.OUTCOMES} | {
    name: o.code for name, o in vocab.OUTCOME_BY_NAME.items()
}
"""Outcome display names (lower case) to the codes both stores seed their outcome table with."""

month_text = lru_cache(maxsize=4096)(format_month)
"""``format_month``, memoised: a result holds few distinct months."""


def crime_from_row(row: tuple[Any, ...], outcome_name: Callable[[int], str | None]) -> Crime:
    """A row of :data:`CRIME_FIELDS` as a :class:`Crime`; ``outcome_name`` decodes outcome codes.

    The persistent id comes as its 32 bytes or as its 64 hex digits (``''`` or None for none).
    """
    (cid, month, force, falls, lng, lat, sid, sname, lcode, lname, cat, pid, lsub, ctx, out, om) = row
    return Crime(
        cid,
        month_text(month),
        FORCE_IDS[force],
        falls if falls is not None else FORCE_NAMES[force],
        lng,
        lat,
        sid,
        sname,
        lcode,
        lname,
        CATEGORY_SLUGS[cat],
        pid.hex() if isinstance(pid, bytes) else (pid or ""),
        LOCATION_TYPES[force],
        lsub,
        ctx,
        outcome_name(out) if out is not None else None,
        month_text(om) if om is not None else None,
    )


# -- literals of a where clause to stored codes (for comparisons the indexes can use) ----------


def encode_category_slug(value: Any) -> int:
    return vocab.CATEGORY_BY_SLUG[value].code


def encode_category_name(value: Any) -> int:
    return vocab.CATEGORY_BY_NAME[str(value).lower()].code


def encode_force_name(value: Any) -> int:
    return vocab.FORCE_BY_NAME[str(value).lower()].code


def encode_pid(value: Any) -> bytes:
    """A 64-hex persistent id as its 32 stored bytes; ``ValueError`` otherwise."""
    raw = bytes.fromhex(value)
    if len(raw) != 32:
        raise ValueError(value)
    return raw


def pid_key(pid: bytes) -> int:
    """The non-negative 63-bit integer that indexes a persistent id (see the schema)."""
    return int.from_bytes(pid[:8], "big") >> 1


def pid_bytes(persistent_id: str) -> bytes | None:
    """The 32 bytes of a 64-hex persistent id, or None for anything else."""
    try:
        pid = bytes.fromhex(persistent_id)
    except ValueError:
        return None
    return pid if len(pid) == 32 else None
