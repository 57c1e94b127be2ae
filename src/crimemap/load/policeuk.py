"""Load police.uk bulk archives: street, outcomes and stop-and-search CSV files, folders of them, and the zips.

The archive's layout is ``YYYY-MM/YYYY-MM-<force>-<kind>.csv`` with kind
``street``, ``outcomes`` or ``stop-and-search`` (read by :mod:`crimemap.load.stops`). Everything one call loads is
written in one store transaction: a wrong header or a bad row anywhere raises
:class:`LoadError` naming the file and line, and nothing is stored.

Ids are derived, not counted, so loading the same files again or in another
order gives the same ids:

- a crime's ``id`` packs its month, its force and its row in the file
  (:func:`crime_id`);
- a map point's street ``id`` is a hash of its coordinates and name
  (:func:`street_id`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from crimemap import vocab
from crimemap.lifeline import exit_with_parent
from crimemap.load import pipeline
from crimemap.months import parse_month
from crimemap.records import Crime, OutcomeRecord
from crimemap.store.base import Store

STREET_HEADER = (
    "Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
    "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context",
)  # fmt: skip
OUTCOMES_HEADER = (
    "Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
    "LSOA code", "LSOA name", "Outcome type",
)  # fmt: skip

_NAME = re.compile(r"(?:^|/)(\d{4}-\d{2})-([a-z0-9-]+?)-(street|outcomes|stop-and-search)\.csv$")
_MONTH_BITS, _FORCE_BITS, _ROW_BITS = 10, 6, 21
_EPOCH = 1970 * 12
MAX_ROWS_PER_FILE = 1 << _ROW_BITS


class LoadError(Exception):
    """A file could not be loaded; the message names the file and the line."""


def crime_id(month: str, force: str, row: int) -> int:
    """The crime's API id: month, force and row number in the street file, packed in 37 bits.

    Small enough for JavaScript clients (below 2**53) and the same every time the
    same file is loaded.

    >>> crime_id("2017-01", "city-of-london", 0) == crime_id("2017-01", "city-of-london", 0)
    True
    """
    m = parse_month(month) - _EPOCH
    f = vocab.FORCE_BY_ID[force].code
    if not 0 <= m < 1 << _MONTH_BITS or row >= MAX_ROWS_PER_FILE:
        raise ValueError(f"cannot number row {row} of {month}")
    return ((m << _FORCE_BITS | f) << _ROW_BITS) | row


def street_id(lng: str, lat: str, name: str) -> int:
    """A stable street (map point) id: 52 bits of a hash of its coordinates and name.

    The name is compared without case: outcomes files spell the same map point
    in capitals ("On or near ARTIZAN STREET") where street files do not.
    """
    key = f"{float(lat):.6f},{float(lng):.6f},{name.lower()}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 12


@dataclass(frozen=True)
class Source:
    """One CSV in the archive layout: where it is, and what it holds.

    A plain value (it pickles), so the parsing process gets the same sources:
    ``path`` is the CSV file, or the zip archive holding it as ``member``.
    """

    label: str
    month: str
    force: str
    kind: str
    path: Path
    member: str | None = None
    size: int = field(default=0, compare=False)
    """Uncompressed bytes, to estimate the work ahead."""

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """The CSV's bytes; a zip archive opened for it is closed with it."""
        if self.member is None:
            with self.path.open("rb") as raw:
                yield raw
        else:
            with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as raw:
                yield raw


@dataclass
class LoadSummary:
    """What one load stored, for the command line's report."""

    crimes: int = 0
    outcomes: int = 0
    stops: int = 0
    files: int = 0
    months: set[str] = field(default_factory=set)
    forces: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)


def find_sources(paths: Iterable[Path]) -> list[Source]:
    """Every police.uk CSV under the given files, folders and zips, in a stable order."""
    found: list[Source] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.suffix.lower() == ".zip" or _NAME.search(child.name):
                    found.extend(find_sources([child]))
        elif path.suffix.lower() == ".zip":
            found.extend(_zip_sources(path))
        elif path.exists():
            found.append(_file_source(path))
        else:
            raise LoadError(f"{path}: no such file or folder")
    return found


def _classify(label: str, name: str) -> tuple[str, str, str]:
    m = _NAME.search(name)
    if m is None:
        raise LoadError(
            f"{label}: not a police.uk file name (expected YYYY-MM-<force>-street.csv,"
            " -outcomes.csv or -stop-and-search.csv)"
        )
    return m.group(1), m.group(2), m.group(3)


def _file_source(path: Path) -> Source:
    month, force, kind = _classify(str(path), path.name)
    return Source(str(path), month, force, kind, path, None, path.stat().st_size)


def _zip_sources(path: Path) -> list[Source]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = sorted(archive.infolist(), key=lambda i: i.filename)
    except zipfile.BadZipFile as e:
        raise LoadError(f"{path}: not a zip archive ({e})") from None
    sources = []
    for info in members:
        if info.is_dir() or not _NAME.search(info.filename):
            continue
        label = f"{path}:{info.filename}"
        month, force, kind = _classify(label, info.filename)
        sources.append(Source(label, month, force, kind, path, info.filename, info.file_size))
    return sources


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


@contextmanager
def _rows(source: Source, header: tuple[str, ...]) -> Iterator[csv.reader]:  # type: ignore[valid-type]
    """A csv reader past the header, after checking it (snake_case re-headings are accepted)."""
    with source.open() as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        try:
            got = next(reader)
        except StopIteration:
            raise LoadError(f"{source.label}: line 1: empty file, expected a header") from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise LoadError(f"{source.label}: line 1: unreadable header ({e})") from None
        if tuple(_normalise(h) for h in got) != tuple(_normalise(h) for h in header):
            raise LoadError(
                f"{source.label}: line 1: wrong header for a {source.kind} file;"
                f" expected {','.join(header)}; got {','.join(got)}"
            )
        yield reader


def _coordinates(lng: str, lat: str, where: str) -> tuple[float | None, float | None]:
    if not lng and not lat:
        return None, None
    try:
        x, y = float(lng), float(lat)
    except ValueError:
        raise LoadError(f"{where}: longitude/latitude must be numbers, got {lng!r}, {lat!r}") from None
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        raise LoadError(f"{where}: coordinates out of range: {lng}, {lat}")
    return x, y


def _map_point(
    streets: dict[tuple[str, str, str], int], lng: str, lat: str, name: str, where: str
) -> tuple[float | None, float | None, int | None]:
    """A row's coordinates and street id; ``streets`` remembers the ids a file has already hashed."""
    x, y = _coordinates(lng, lat, where)
    if x is None:
        return None, None, None
    key = (lng, lat, name)
    sid = streets.get(key)
    if sid is None:
        sid = streets[key] = street_id(lng, lat, name)
    return x, y, sid


def read_street(source: Source, outcome_months: Mapping[str, str] | None = None) -> Iterator[Crime]:
    """The crimes of one street file, with their ids, checking every row.

    ``outcome_months`` (persistent id to the month of its latest outcome, from
    the outcomes files of the same load) dates each crime's latest outcome;
    the store completes it from outcomes loaded before.
    """
    dated = outcome_months or {}
    force = vocab.FORCE_BY_ID[source.force]
    location_type = "BTP" if force is vocab.BTP else "Force"
    categories = vocab.CATEGORY_BY_NAME
    base_id = crime_id(source.month, source.force, 0)
    streets: dict[tuple[str, str, str], int] = {}
    with _rows(source, STREET_HEADER) as reader:
        try:
            for row_no, row in enumerate(reader):
                where = f"{source.label}: line {reader.line_num}"
                if len(row) != 12:
                    if not row:
                        continue
                    raise LoadError(f"{where}: expected 12 fields, got {len(row)}")
                pid, month, reported, falls, lng, lat, loc, lcode, lname, ctype, outcome, context = row
                if month != source.month:
                    raise LoadError(f"{where}: month {month!r} in a file for {source.month}")
                category = categories.get(ctype.lower())
                if category is None:
                    raise LoadError(f"{where}: unknown crime type {ctype!r}")
                if pid and not _is_hex(pid):
                    raise LoadError(f"{where}: Crime ID must be 64 hexadecimal characters, got {pid!r}")
                x, y, sid = _map_point(streets, lng, lat, loc, where)
                if row_no >= MAX_ROWS_PER_FILE:
                    raise LoadError(f"{where}: more than {MAX_ROWS_PER_FILE} rows in one file")
                yield Crime(
                    base_id | row_no, month, source.force, falls or force.name, x, y, sid, loc, lcode, lname,
                    category.slug, pid.lower(), location_type, "", context, outcome or None, dated.get(pid.lower()),
                )  # fmt: skip
        except csv.Error as e:
            raise LoadError(f"{source.label}: line {reader.line_num}: {e}") from None
        except UnicodeDecodeError as e:
            raise LoadError(f"{source.label}: near line {reader.line_num}: not UTF-8 text ({e})") from None


def read_outcomes(source: Source) -> Iterator[OutcomeRecord]:
    """The outcome rows of one outcomes file, checking every row."""
    streets: dict[tuple[str, str, str], int] = {}
    with _rows(source, OUTCOMES_HEADER) as reader:
        try:
            for row in reader:
                where = f"{source.label}: line {reader.line_num}"
                if len(row) != 10:
                    if not row:
                        continue
                    raise LoadError(f"{where}: expected 10 fields, got {len(row)}")
                pid, month, _reported, _falls, lng, lat, loc, lcode, lname, outcome = row
                if not _is_hex(pid):
                    raise LoadError(f"{where}: Crime ID must be 64 hexadecimal characters, got {pid!r}")
                if month != source.month:
                    raise LoadError(f"{where}: month {month!r} in a file for {source.month}")
                if not outcome:
                    raise LoadError(f"{where}: empty Outcome type")
                x, y, sid = _map_point(streets, lng, lat, loc, where)
                yield OutcomeRecord(pid.lower(), month, source.force, outcome, x, y, sid, loc, lcode, lname)
        except csv.Error as e:
            raise LoadError(f"{source.label}: line {reader.line_num}: {e}") from None
        except UnicodeDecodeError as e:
            raise LoadError(f"{source.label}: near line {reader.line_num}: not UTF-8 text ({e})") from None


_HEX = re.compile(r"[0-9a-fA-F]{64}")


def _is_hex(text: str) -> bool:
    return _HEX.fullmatch(text) is not None


BATCH_ROWS = 50_000
"""Records per batch handed from the parsing process to the writing one."""

BYTES_PER_ROW = 200
"""About how many bytes a police.uk CSV row takes, to estimate a load's rows from its files."""

PARALLEL_MIN_BYTES = 16 << 20
"""Below this much input a second process costs more than it saves."""


def _in_load_order(sources: list[Source]) -> list[Source]:
    """Outcomes files first, so that street files can be dated as they are parsed; stop-and-search
    files last, so that the map points of the load's street files are stored before stops look them up."""
    return [s for kind in ("outcomes", "street", "stop-and-search") for s in sources if s.kind == kind]


def load_policeuk(
    store: Store,
    paths: Iterable[Path],
    *,
    on_file: Callable[[Source, int], None] | None = None,
    on_message: Callable[[str], None] | None = None,
    parallel: bool | None = None,
) -> LoadSummary:
    """Load every police.uk file under ``paths`` into ``store``, all or nothing.

    Files are parsed in a second process while this one writes (``parallel``;
    by default only for inputs over :data:`PARALLEL_MIN_BYTES`).
    ``on_file(source, rows)`` is called after each file (for a progress bar);
    ``on_message`` receives notes about the load.
    """
    paths = list(paths)
    sources = find_sources(paths)
    summary = LoadSummary()
    for s in sources:
        if s.force not in vocab.FORCE_BY_ID:
            raise LoadError(f"{s.label}: unknown force {s.force!r} in the file name")
        try:
            parse_month(s.month)
        except ValueError:
            raise LoadError(f"{s.label}: bad month {s.month!r} in the file name") from None
    if not sources:
        raise LoadError("no police.uk CSV files found in " + ", ".join(str(p) for p in paths))
    wanted = _in_load_order(sources)
    if parallel is None:
        parallel = sum(s.size for s in wanted) >= PARALLEL_MIN_BYTES
    with store.writer() as writer:
        writer.expect(sum(s.size for s in wanted) // BYTES_PER_ROW)
        prepare = type(writer).prepare
        groups = pipeline.plan(wanted, by_month=writer.groups_months)
        if parallel:
            parsed = parse_in_worker(groups, prepare)
        else:
            state = pipeline.ReadState()
            parsed = ((g, pipeline.group_batches(g, prepare, state)) for g in groups)
        for group, batches in parsed:
            stored = writer.replace_group(group.kind, group.month, group.forces, batches)
            for source in group.sources:
                rows = stored.get(source.force, 0)
                if source.kind == "street":
                    summary.crimes += rows
                elif source.kind == "stop-and-search":
                    summary.stops += rows
                else:
                    summary.outcomes += rows
                summary.files += 1
                summary.months.add(source.month)
                summary.forces.add(source.force)
                if on_file:
                    on_file(source, rows)
    return summary


def parse_in_worker(
    groups: list[pipeline.Group], prepare: pipeline.Prepare
) -> Iterator[tuple[pipeline.Group, Iterator[Any]]]:
    """Read and prepare the groups in a child process, handing batches back in order.

    The child runs ahead by a bounded number of batches, so memory stays flat;
    a parse error in the child is raised here as the same :class:`LoadError`.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue: Any = ctx.Queue(maxsize=6)
    worker = ctx.Process(target=_worker_main, args=(groups, prepare, queue, os.getpid()), daemon=True)
    worker.start()
    try:
        for group in groups:

            def batches() -> Iterator[Any]:
                while True:
                    tag, payload = queue.get()
                    if tag == "batch":
                        yield payload
                    elif tag == "end":
                        return
                    else:
                        raise LoadError(payload)

            yield group, batches()
    finally:
        worker.kill()
        worker.join()
        queue.close()


def _worker_main(groups: list[pipeline.Group], prepare: pipeline.Prepare, queue: Any, parent_pid: int) -> None:
    exit_with_parent(parent_pid)  # a killed load must not leave its parser running
    state = pipeline.ReadState()
    for group in groups:
        try:
            for batch in pipeline.group_batches(group, prepare, state):
                queue.put(("batch", batch))
        except LoadError as e:
            queue.put(("error", str(e)))
            return
        except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it
            where = ", ".join(s.label for s in group.sources)
            queue.put(("error", f"{where}: {type(e).__name__}: {e}"))
            return
        queue.put(("end", None))
