"""The column reader of stop-and-search files prepares every file exactly as the careful one does.

A stop-and-search file is read column by column (:mod:`crimemap.load.stop_columns`)
and prepared for whole columns (:mod:`crimemap.store.stop_columns`); the careful
reader (:mod:`crimemap.load.stops`) reads it row by row and prepares stop by stop.
Which path read a file must never show: here both read every real file, and
generated ones, and their prepared rows and JSON are compared value for value.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import POLICEUK
from crimemap.load import pipeline
from crimemap.load.columns import ReadCarefully
from crimemap.load.generate.archive import generate
from crimemap.load.generate.world import month_range
from crimemap.load.policeuk import load_policeuk
from crimemap.load.policeuk_files import Source, find_sources
from crimemap.load.stop_columns import read_stop_columns
from crimemap.load.stops import read_stops
from crimemap.query import StopQuery
from crimemap.store.base import Store
from crimemap.store.sqlite import SQLiteStore
from crimemap.store.stop_rows import PreparedStops, prepare_stops
from stops_truth import STOPS, files
from test_load_policeuk import fingerprint


def _fast(source: Source) -> PreparedStops:
    with source.open() as stream:
        return prepare_stops(read_stop_columns(stream, source))


def _same_both_ways(sources: list[Source]) -> int:
    compared = 0
    for s in sources:
        if s.kind != "stop-and-search":
            continue
        fast, careful = _fast(s), prepare_stops(list(read_stops(s)))
        assert fast.rows == careful.rows, s.label
        assert [type(v) for r in fast.rows for v in r] == [type(v) for r in careful.rows for v in r], s.label
        assert (fast.heads, fast.tails, fast.points) == (careful.heads, careful.tails, careful.points), s.label
        compared += 1
    return compared


def test_every_real_stop_file_is_prepared_the_same_both_ways() -> None:
    assert _same_both_ways(find_sources([STOPS])) == len(list(STOPS.glob("*/*-stop-and-search.csv")))


def test_generated_stop_files_are_prepared_the_same_both_ways(tmp_path: Path) -> None:
    generate(tmp_path, months=month_range("2024-02", 1), crimes_per_month=2_000, seed=5, stops_per_month=5_000)
    assert _same_both_ways(find_sources([tmp_path])) == 44


@pytest.mark.parametrize(
    ("column", "bad"),
    [("Date", "yesterday"), ("Type", "Dog search"), ("Part of a policing operation", "maybe"), ("Latitude", "north")],
)
def test_a_stop_file_the_column_reader_declines_is_left_to_the_careful_one(
    tmp_path: Path, column: str, bad: str
) -> None:
    (source,) = [s for s in find_sources([STOPS]) if s.kind == "stop-and-search"][:1]
    lines = Path(source.label).read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[3].split(",")
    assert len(fields) == len(header), "the third row has no quoted commas"
    fields[header.index(column)] = bad
    lines[3] = ",".join(fields)
    copy = tmp_path / Path(source.label).name
    copy.write_text("\n".join(lines) + "\n")
    (copied,) = find_sources([copy])
    with copied.open() as stream, pytest.raises(ReadCarefully):
        read_stop_columns(stream, copied)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_stop_file_with_an_empty_line_is_left_to_the_careful_one(tmp_path: Path, newline: str) -> None:
    """The careful reader counts an empty line in the stops' ids; pyarrow's would skip it."""
    (source,) = [s for s in find_sources([STOPS]) if s.kind == "stop-and-search"][:1]
    lines = Path(source.label).read_text().splitlines()
    copy = tmp_path / Path(source.label).name
    copy.write_bytes((newline.join(lines[:3] + [""] + lines[3:]) + newline).encode())
    (copied,) = find_sources([copy])
    with copied.open() as stream, pytest.raises(ReadCarefully):
        read_stop_columns(stream, copied)


DECLINED: list[str] = []


def _decline(stream: object, source: Source) -> None:
    DECLINED.append(source.label)
    raise ReadCarefully("the old path, for comparison")


def test_a_store_loaded_column_by_column_answers_as_one_loaded_row_by_row(
    make_store: Callable[[], Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real street and stop files into two stores of one kind, stops read both ways: every answer the same."""
    fast, careful = make_store(), make_store()
    wanted = [POLICEUK, STOPS]
    load_policeuk(fast, wanted, parallel=False)
    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "read_stop_columns", _decline)
        DECLINED.clear()
        load_policeuk(careful, wanted, parallel=False)
    assert len(DECLINED) == len(files())
    assert fast.stop_months() == careful.stop_months() != []
    for month, force in files():
        for located in (True, False, None):
            query = StopQuery(month=month, force=force, located=located)
            assert fast.stops_json(query, 100_000).body == careful.stops_json(query, 100_000).body, (month, force)
            assert list(fast.stops(query)) == list(careful.stops(query))
    if isinstance(fast, SQLiteStore) and isinstance(careful, SQLiteStore):
        assert fingerprint(fast.path) == fingerprint(careful.path)  # every row of every table
