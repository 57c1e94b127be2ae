"""Route each path given to ``crimemap load`` to the loader that understands it.

police.uk archives (zips, folders, ``YYYY-MM-<force>-<kind>.csv``) go to
:mod:`crimemap.load.policeuk`; GeoJSON files and other CSV files are feature
tables (:mod:`crimemap.load.tables`); police force boundaries (``.kml`` files,
folders and zips of them) go to :mod:`crimemap.load.boundaries`, and neighbourhood
boundaries (``.kml`` files in folders named by force id, and zips of such folders)
to :mod:`crimemap.load.neighbourhoods`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crimemap.load import policeuk
from crimemap.load.errors import LoadError
from crimemap.load.policeuk_files import FILE_NAME, find_sources
from crimemap.store.base import Store

TABLE_SUFFIXES = (".geojson", ".json", ".csv")


@dataclass
class Summary:
    policeuk: policeuk.LoadSummary | None = None
    tables: list[tuple[str, int]] = field(default_factory=list)
    boundaries: int = 0
    neighbourhoods: int = 0

    def describe(self, elapsed: float) -> str:
        lines = []
        if self.policeuk is not None:
            s = self.policeuk
            rate = (s.crimes + s.outcomes + s.stops) / elapsed if elapsed > 0 else 0.0
            forces = sorted(s.forces)
            named = ", ".join(forces) if len(forces) <= 6 else f"{len(forces)} forces"
            stops = f", {s.stops:,} stops and searches" if s.stops else ""
            lines.append(
                f"loaded {s.crimes:,} crimes{stops} and {s.outcomes:,} outcomes from {s.files} files"
                f" ({len(s.months)} months, {named}) in {elapsed:.1f} s ({rate:,.0f} rows/s)"
            )
            lines.extend(s.skipped)
        if self.boundaries:
            lines.append(f"loaded {self.boundaries} police force boundaries")
        if self.neighbourhoods:
            lines.append(f"loaded {self.neighbourhoods:,} police neighbourhood boundaries")
        for tid, n in self.tables:
            lines.append(f"loaded table {tid}: {n:,} features")
            lines.extend(f"  {note}" for note in getattr(n, "notes", ()))
        return "\n".join(lines)


def is_table_file(path: Path) -> bool:
    """A GeoJSON file, or a CSV that is not named like a police.uk file."""
    if path.is_dir() or path.suffix.lower() not in TABLE_SUFFIXES:
        return False
    return path.suffix.lower() != ".csv" or FILE_NAME.search(path.name) is None


def load_paths(
    store: Store,
    paths: Iterable[Path],
    *,
    table: str | None = None,
    title: str | None = None,
    progress: Callable[..., Any] | None = None,
    quiet: bool = True,
) -> Summary:
    """Load police.uk files and feature tables; each kind of load is all or nothing.

    ``table`` and ``title`` name the one GeoJSON/CSV table given: its id and the title clients show.
    """
    from crimemap.load import boundaries, neighbourhoods

    paths = list(paths)
    local = [p for p in paths if neighbourhoods.is_neighbourhood_path(p)]
    zipped = {p: neighbourhoods.zips_in(p) for p in paths if p.is_dir() and p not in local}
    local += [z for found in zipped.values() for z in found]
    areas = [p for p in paths if p not in local and boundaries.is_boundary_path(p)]
    tables = [p for p in paths if is_table_file(p)]
    only_neighbourhoods = [p for p, found in zipped.items() if found and not policeuk.find_sources([p])]
    archives = [p for p in paths if p not in tables + areas + local + only_neighbourhoods]
    if table is not None and len(tables) != 1:
        raise LoadError("--table names one table: give exactly one GeoJSON or CSV file with it")
    if title is not None and len(tables) != 1:
        raise LoadError("--title names one table: give exactly one GeoJSON or CSV file with it")
    summary = Summary()
    if areas:
        summary.boundaries = boundaries.load_boundaries(store, areas)
    if local:
        summary.neighbourhoods = neighbourhoods.load_neighbourhoods(store, local)
    if archives:
        sources = find_sources(archives)
        if progress is None:
            summary.policeuk = policeuk.load_policeuk(store, archives)
        else:
            with progress(len(sources), "loading police.uk files", quiet) as advance:
                summary.policeuk = policeuk.load_policeuk(
                    store,
                    archives,
                    on_file=lambda src, rows: advance(1, f"{src.month} {src.force} {src.kind}"),
                )
    for path in tables:
        from crimemap.load import tables as table_loader

        table_id = table or path.stem
        count = table_loader.load_table(store, path, table_id=table_id, name=title)
        summary.tables.append((table_id, count))
    return summary


__all__ = ["LoadError", "Summary", "is_table_file", "load_paths"]
