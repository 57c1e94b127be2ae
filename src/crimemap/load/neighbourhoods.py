"""Load police neighbourhood boundaries: the zip of KML files data.police.uk publishes, or its folder.

The zip holds one folder per force, named by force id, and in it one KML file
per neighbourhood, named by the neighbourhood's id::

    leicestershire/NC04.kml
    leicestershire/NC08.kml
    metropolitan/E05000138.kml

(all of it possibly inside other folders). Each file holds a ``Placemark``
with one or more ``Polygon`` elements of ``longitude,latitude[,altitude]``
coordinates. The load keeps two things per neighbourhood, in one transaction:

- its shape, in the feature table :data:`~crimemap.store.base.NEIGHBOURHOODS_TABLE`
  (``force``, ``neighbourhood``, ``name``), which ``locate-neighbourhood`` searches
  (:mod:`crimemap.neighbourhoods`);
- its points as the strings published, in the published order: the
  ``/api/{force}/{neighbourhood}/boundary`` answer (a document of kind ``boundary``,
  :mod:`crimemap.store.documents`).

Loading some forces again replaces all of those forces' neighbourhoods and keeps
the other forces'. Anything wrong (malformed KML, a DTD, a ring that does not
close or that crosses itself, a zip member where none belongs) stops the load
with a message naming the file, before anything is written.

    crimemap load police-neighbourhood-boundaries.zip
    crimemap load neighbourhoods/                  # the unzipped folder
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
import shapely
from lxml import etree

from crimemap import vocab
from crimemap.geometry.shapes import polygonal, shape_fields
from crimemap.load.policeuk import LoadError
from crimemap.neighbourhoods import BOUNDARY, DETAILS, EVENTS, PEOPLE, PRIORITIES, stored_names, stored_neighbourhoods
from crimemap.store.base import Feature, Store, StoreWriter, TableInfo
from crimemap.store.catalogue import NEIGHBOURHOODS_TABLE, Column

COLUMNS = (Column("force", "string"), Column("neighbourhood", "string"), Column("name", "string"))

MAX_KML_BYTES = 64 << 20
"""A neighbourhood's KML file larger than this is refused (the largest published is a few hundred KB)."""

SLIVER = 1e-6
"""A ring whose crossings change its area by more than this fraction of it crosses itself.

police.uk's own rings have spikes of near-duplicate points that cross by a few
square centimetres (Leicestershire's NC04 does); those are kept as published,
and made valid for locating points. A bow tie changes its area by half or more."""

CARRIED = {DETAILS: dict, PEOPLE: list, EVENTS: list, PRIORITIES: list}
"""Documents a KML file may carry as ``<ExtendedData><Data name="people"><value>[...]</value></Data>``, and
the JSON type each must be. data.police.uk's files carry none; the generator's carry all
(:mod:`crimemap.load.generate.neighbourhoods`), so that a generated store answers every method."""

_NEIGHBOURHOOD_ID = re.compile(r"^[^/\\\x00-\x1f]{1,100}$")


@dataclass(frozen=True)
class Neighbourhood:
    """One neighbourhood read from its KML file."""

    force: str
    id: str
    name: str | None
    """The ``Placemark``'s ``name``, when the file gives one."""
    points: tuple[tuple[str, str], ...]
    """``(latitude, longitude)`` of every outer ring's points, as the file spells them, in its order."""
    shape: Any
    """A valid shapely (Multi)Polygon of the area."""
    documents: dict[str, bytes] = field(default_factory=dict)
    """API documents the file carries in its ``ExtendedData`` (see :data:`CARRIED`), kind -> JSON."""

    def boundary_json(self) -> bytes:
        """The ``/boundary`` answer: ``[{"latitude", "longitude"}]``, strings as published."""
        return orjson.dumps([{"latitude": lat, "longitude": lng} for lat, lng in self.points])


def _force_of(folder: str) -> str | None:
    return folder if folder in vocab.FORCE_BY_ID else None


def is_neighbourhood_path(path: Path) -> bool:
    """A KML file in a folder named by a force id, a folder of such, or a zip holding them."""
    if path.is_dir():
        return _force_of(path.name) is not None or any(_force_of(p.parent.name) for p in path.rglob("*.kml"))
    if path.suffix.lower() == ".kml":
        return _force_of(path.resolve().parent.name) is not None
    if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return any(_member_key(n) is not None for n in z.namelist())
    return False


def zips_in(folder: Path) -> list[Path]:
    """The neighbourhood zips in a folder of other files (``crimemap generate --neighbourhoods`` writes one
    beside the crimes, so that loading the folder loads both)."""
    return [z for z in sorted(folder.rglob("*.zip")) if is_neighbourhood_path(z)]


def _member_key(name: str) -> tuple[str, str] | None:
    """``(force, neighbourhood)`` of a zip member ``[folders/]force/id.kml``, else None."""
    parts = PurePosixPath(name).parts
    if len(parts) < 2 or not parts[-1].lower().endswith(".kml") or _force_of(parts[-2]) is None:
        return None
    return parts[-2], parts[-1][: -len(".kml")]


def _files(paths: Iterable[Path]) -> Iterator[tuple[str, str, str, bytes]]:
    """``(force, neighbourhood id, where, bytes)`` of each neighbourhood KML file among ``paths``."""
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*.kml")):
                force = _force_of(file.parent.name)
                if force is None:
                    raise LoadError(f"{file}: not in a folder named by a force id (e.g. leicestershire/NC04.kml)")
                yield force, file.stem, str(file), _read(file)
        elif path.suffix.lower() == ".zip":
            yield from _zip_members(path)
        else:
            force = _force_of(path.resolve().parent.name)
            if force is None:
                raise LoadError(f"{path}: not in a folder named by a force id (e.g. leicestershire/NC04.kml)")
            yield force, path.stem, str(path), _read(path)


def _read(file: Path) -> bytes:
    if file.stat().st_size > MAX_KML_BYTES:
        raise LoadError(f"{file}: larger than {MAX_KML_BYTES >> 20} MB; not a neighbourhood's KML file")
    return file.read_bytes()


def _zip_members(path: Path) -> Iterator[tuple[str, str, str, bytes]]:
    with zipfile.ZipFile(path) as z:
        infos = [i for i in z.infolist() if not i.is_dir()]
        for info in infos:  # every member is checked before any is read
            if _member_key(info.filename) is None:
                raise LoadError(
                    f"{path}: unexpected member {info.filename!r}; a neighbourhood boundaries zip holds"
                    " <force>/<neighbourhood>.kml files only"
                )
            if info.file_size > MAX_KML_BYTES:
                raise LoadError(f"{path}:{info.filename}: larger than {MAX_KML_BYTES >> 20} MB unzipped")
        for info in sorted(infos, key=lambda i: i.filename):
            force, nbhd = _member_key(info.filename)  # type: ignore[misc]
            with z.open(info) as f:
                data = f.read(MAX_KML_BYTES + 1)
            if len(data) > MAX_KML_BYTES:
                raise LoadError(f"{path}:{info.filename}: larger than {MAX_KML_BYTES >> 20} MB unzipped")
            yield force, nbhd, f"{path}:{info.filename}", data


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _parse(data: bytes, where: str) -> Any:
    """The document's root, refusing DTDs (entities are a way to make a small file huge)."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as e:
        raise LoadError(f"{where}: not a KML file ({e})") from None
    if root is None or root.getroottree().docinfo.doctype:
        raise LoadError(f"{where}: a KML file with a DTD (<!DOCTYPE ...>); DTDs and entities are refused")
    return root


def _ring(element: Any, where: str) -> tuple[list[tuple[str, str]], list[tuple[float, float]]]:
    """A ring's points as published ``(lat, lng)`` strings and as numbers ``(lng, lat)``; closed."""
    found = element.find(".//{*}coordinates")
    tokens = (found.text or "").split() if found is not None else []
    texts, numbers = [], []
    for token in tokens:
        parts = token.split(",")
        try:
            if len(parts) not in (2, 3):
                raise ValueError(token)
            lng, lat = float(parts[0]), float(parts[1])
        except ValueError:
            raise LoadError(
                f"{where}: coordinates must be longitude,latitude[,altitude] numbers, not {token[:40]!r}"
            ) from None
        if not (-180 <= lng <= 180 and -90 <= lat <= 90):
            raise LoadError(f"{where}: coordinates out of range (longitude,latitude expected): {token[:40]!r}")
        texts.append((parts[1], parts[0]))
        numbers.append((lng, lat))
    if len(numbers) < 4:
        raise LoadError(f"{where}: a ring needs at least four points (it has {len(numbers)})")
    if numbers[0] != numbers[-1]:
        raise LoadError(
            f"{where}: a ring that does not close (it starts at {texts[0][1]},{texts[0][0]}"
            f" and ends at {texts[-1][1]},{texts[-1][0]})"
        )
    return texts, numbers


def _valid(polygon: Any, where: str) -> Any:
    """``polygon`` made valid, unless its rings truly cross (see :data:`SLIVER`)."""
    if polygon.is_valid:
        return polygon
    fixed = polygonal(polygon)
    if abs(fixed.area - polygon.area) > SLIVER * max(fixed.area, polygon.area) or fixed.is_empty:
        reason = shapely.is_valid_reason(polygon)
        what = "crosses itself" if "Self-intersection" in reason else "is not a simple polygon"
        raise LoadError(f"{where}: a ring that {what} ({reason})")
    return fixed


def read_neighbourhood(data: bytes, force: str, nbhd: str, where: str) -> Neighbourhood:
    """One neighbourhood's KML file, checked (see the module docstring)."""
    if not _NEIGHBOURHOOD_ID.match(nbhd):
        raise LoadError(f"{where}: {nbhd!r} is not a neighbourhood id (its file is named by it, e.g. NC04.kml)")
    root = _parse(data, where)
    name = None
    for placemark in root.iter("{*}Placemark"):
        found = placemark.find("{*}name")
        if found is not None and (found.text or "").strip():
            name = (found.text or "").strip()
            break
    points: list[tuple[str, str]] = []
    shapes = []
    for element in root.iter("{*}Polygon"):
        outer = element.find("{*}outerBoundaryIs")
        if outer is None:
            raise LoadError(f"{where}: a Polygon without an outerBoundaryIs")
        texts, shell = _ring(outer, where)
        holes = [_ring(inner, where)[1] for inner in element.findall("{*}innerBoundaryIs")]
        points.extend(texts)
        shapes.append(_valid(shapely.Polygon(shell, holes), where))
    if not shapes:
        raise LoadError(f"{where}: no Polygon in this KML file")
    shape = shapes[0] if len(shapes) == 1 else polygonal(shapely.union_all(shapes))
    return Neighbourhood(force, nbhd, name, tuple(points), shape, _carried(root, nbhd, where))


def _carried(root: Any, nbhd: str, where: str) -> dict[str, bytes]:
    """The documents in the file's ``ExtendedData`` (see :data:`CARRIED`), checked and made compact."""
    found: dict[str, bytes] = {}
    for data in root.iter("{*}Data"):
        kind = data.get("name")
        if kind not in CARRIED:
            continue
        value = data.find("{*}value")
        try:
            document = orjson.loads((value.text or "") if value is not None else "")
        except orjson.JSONDecodeError as e:
            raise LoadError(f"{where}: the {kind} in ExtendedData is not JSON ({e})") from None
        if not isinstance(document, CARRIED[kind]):
            raise LoadError(f"{where}: the {kind} in ExtendedData must be a JSON {CARRIED[kind].__name__}")
        if kind == DETAILS and document.get("id") != nbhd:
            raise LoadError(f"{where}: the details in ExtendedData are of {document.get('id')!r}, not {nbhd!r}")
        found[kind] = orjson.dumps(document)
    return found


def read_neighbourhoods(paths: Iterable[Path]) -> list[Neighbourhood]:
    """Every neighbourhood KML file among ``paths``, read and checked; none twice."""
    found: dict[tuple[str, str], Neighbourhood] = {}
    for force, nbhd, where, data in _files(paths):
        if (force, nbhd) in found:
            raise LoadError(f"{where}: neighbourhood {force}/{nbhd} is given twice")
        found[force, nbhd] = read_neighbourhood(data, force, nbhd, where)
    if not found:
        raise LoadError("no neighbourhood .kml files found (expected <force>/<neighbourhood>.kml)")
    return list(found.values())


TABLE_INFO = TableInfo(
    id=NEIGHBOURHOODS_TABLE,
    name="police neighbourhoods",
    description="The areas of the police neighbourhoods of England, Wales and Northern Ireland, from data.police.uk.",
    columns=COLUMNS,
    shapes=True,
)


def neighbourhood_features(rows: Iterable[tuple[str, str, str, Any]]) -> list[Feature]:
    """The table's features for ``(force, neighbourhood, name, shapely shape)``, in force then id order."""
    ordered = sorted(rows, key=lambda r: (vocab.FORCE_BY_ID[r[0]].code, r[1]))
    features = []
    for gx_id, (force, nbhd, name, shape) in enumerate(ordered, start=1):
        lng, lat, wkb, _ = shape_fields(shape)
        features.append(Feature(gx_id, lng, lat, (force, nbhd, name), wkb))
    return features


def load_neighbourhoods(store: Store, paths: Iterable[Path]) -> int:
    """Store the neighbourhoods found in ``paths``, replacing their forces' (all of them); how many."""
    given = read_neighbourhoods(paths)
    forces = sorted({n.force for n in given})
    names = {force: stored_names(store, force) for force in forces}
    rows: list[tuple[str, str, str, Any]] = [
        (force, nbhd, name, shapely.from_wkb(wkb))
        for force, nbhd, name, wkb in stored_neighbourhoods(store)
        if force not in names
    ]
    rows += [(n.force, n.id, names[n.force].get(n.id) or n.name or n.id, n.shape) for n in given]
    with store.writer() as writer:
        writer.replace_table(TABLE_INFO, neighbourhood_features(rows))
        for force in forces:
            writer.delete_documents(force, BOUNDARY)
        writer.put_documents((n.force, n.id, BOUNDARY, n.boundary_json()) for n in given)
        writer.put_documents((n.force, n.id, kind, body) for n in given for kind, body in n.documents.items())
    return len(given)


def rename_neighbourhoods(store: Store, writer: StoreWriter, force: str, names: dict[str, str]) -> None:
    """Give the force's stored shapes the names of its published list (a harvest brings it), in ``writer``."""
    rows = stored_neighbourhoods(store)
    if not any(f == force and names.get(nbhd, name) != name for f, nbhd, name, _ in rows):
        return
    renamed = [
        (f, nbhd, names.get(nbhd, name) if f == force else name, shapely.from_wkb(wkb)) for f, nbhd, name, wkb in rows
    ]
    writer.replace_table(TABLE_INFO, neighbourhood_features(renamed))
