"""The police.uk archive's files: their names and layout, their headers, and the ids derived from them.

The archive's layout is ``YYYY-MM/YYYY-MM-<force>-<kind>.csv`` with kind
``street``, ``outcomes`` or ``stop-and-search``; :func:`find_sources` finds
them in files, folders and zips.

Ids are derived, not counted, so loading the same files again or in another
order gives the same ids:

- a crime's ``id`` packs its month, its force and its row in the file
  (:func:`crime_id`);
- a map point's street ``id`` is a hash of its coordinates and name
  (:func:`street_id`).
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from crimemap import vocab
from crimemap.load.errors import LoadError
from crimemap.months import parse_month

STREET_HEADER = (
    "Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
    "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context",
)  # fmt: skip
OUTCOMES_HEADER = (
    "Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
    "LSOA code", "LSOA name", "Outcome type",
)  # fmt: skip

FILE_NAME = re.compile(r"(?:^|/)(\d{4}-\d{2})-([a-z0-9-]+?)-(street|outcomes|stop-and-search)\.csv$")
"""A police.uk file's name, ``YYYY-MM-<force>-<kind>.csv``, perhaps in a folder: groups month, force, kind."""
_MONTH_BITS, _FORCE_BITS, _ROW_BITS = 10, 6, 21
_EPOCH = 1970 * 12
MAX_ROWS_PER_FILE = 1 << _ROW_BITS


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


def find_sources(paths: Iterable[Path]) -> list[Source]:
    """Every police.uk CSV under the given files, folders and zips, in a stable order."""
    found: list[Source] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.suffix.lower() == ".zip" or FILE_NAME.search(child.name):
                    found.extend(find_sources([child]))
        elif path.suffix.lower() == ".zip":
            found.extend(_zip_sources(path))
        elif path.exists():
            found.append(_file_source(path))
        else:
            raise LoadError(f"{path}: no such file or folder")
    return found


def _classify(label: str, name: str) -> tuple[str, str, str]:
    m = FILE_NAME.search(name)
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
        if info.is_dir() or not FILE_NAME.search(info.filename):
            continue
        label = f"{path}:{info.filename}"
        month, force, kind = _classify(label, info.filename)
        sources.append(Source(label, month, force, kind, path, info.filename, info.file_size))
    return sources
