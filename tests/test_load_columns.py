"""The fast reader reads every file exactly as the careful one does, and leaves odd files to it.

A police.uk file is read column by column by :mod:`crimemap.load.columns`, and
row by row by the careful reader only when the fast one declines; which reader
read a file must never show. Here both read every real file, and generated ones,
and their batches are compared column by column, JSON included.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest import POLICEUK
from crimemap.load.columns import MapPoints, OutcomeDates, ReadCarefully, read_outcome_columns, read_street_columns
from crimemap.load.generate.archive import generate
from crimemap.load.generate.world import month_range
from crimemap.load.policeuk_files import Source, crime_id, find_sources
from crimemap.load.policeuk_reader import read_outcomes, read_street
from crimemap.store.batches import CrimeBatch, OutcomeBatch


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, pa.Array):
        return isinstance(b, pa.Array) and a.to_pylist() == b.to_pylist()
    return a == b


def _differences(a: object, b: object) -> list[str]:
    return [f.name for f in fields(a) if not _same(getattr(a, f.name), getattr(b, f.name))]  # type: ignore[arg-type]


def _both_readers_agree(sources: list[Source]) -> int:
    """Read every file both ways (outcomes first, dating the crimes); returns how many files were compared."""
    dates, points, months = OutcomeDates.empty(), MapPoints(), {}
    compared = 0
    for s in sources:
        if s.kind != "outcomes":
            continue
        with s.open() as stream:
            fast, checks = read_outcome_columns(stream, s.month, s.force, points)
        dates.add(fast, checks)
        records = list(read_outcomes(s))
        for o in records:
            months[o.persistent_id] = max(months.get(o.persistent_id, ""), o.month)
        assert _differences(fast, OutcomeBatch.from_records(records)) == [], s.label
        compared += 1
    for s in sources:
        if s.kind != "street":
            continue
        with s.open() as stream:
            fast_crimes = read_street_columns(stream, s.month, s.force, crime_id(s.month, s.force, 0), dates, points)
        careful = CrimeBatch.from_records(list(read_street(s, months)))
        assert _differences(fast_crimes, careful) == [], s.label
        compared += 1
    return compared


def test_every_real_file_reads_the_same_both_ways() -> None:
    assert _both_readers_agree(find_sources([POLICEUK])) == 39


def test_generated_files_read_the_same_both_ways(tmp_path: Path) -> None:
    generate(tmp_path, months=month_range("2024-02", 2), crimes_per_month=6_000, seed=5)
    assert _both_readers_agree(find_sources([tmp_path])) == 2 * 2 * 44


def test_a_file_the_fast_reader_declines_is_left_to_the_careful_one(tmp_path: Path) -> None:
    good = (POLICEUK / "2016-03" / "2016-03-city-of-london-street.csv").read_text()
    lines = good.splitlines()
    lines[5] = lines[5].replace(",-0.", ",north,", 1) if ",-0." in lines[5] else lines[5] + ",extra"
    bad = tmp_path / "2016-03-city-of-london-street.csv"
    bad.write_text("\n".join(lines) + "\n")
    (source,) = find_sources([bad])
    with source.open() as stream, pytest.raises(ReadCarefully):
        read_street_columns(stream, "2016-03", "city-of-london", 0, OutcomeDates.empty(), MapPoints())
