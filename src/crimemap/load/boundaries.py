"""Load police force boundaries: the KML files data.police.uk publishes, one per force, or the zip of them.

Each file is named by its force's id (``city-of-london.kml``) and holds a
``MultiGeometry`` of ``Polygon`` elements (outer and inner rings of
``longitude,latitude,0`` coordinates). They are stored as the feature table
:data:`FORCE_BOUNDARIES` (columns ``force`` and ``name``, one MultiPolygon per
force, ``gx_id`` the force's code plus one), a table of shapes
(:mod:`crimemap.geometry.shapes`) in either store. Loading some forces again
replaces those and keeps the others, in one transaction.

They tell which force's area a point lies in (:mod:`crimemap.boundaries`):
``crimemap harvest policeuk`` stores each harvested crime under the force whose
area holds it, and the web map draws them.

    crimemap load ../shared/data/boundaries/forces/        # a folder of .kml files
    crimemap load police-force-boundaries.zip               # the published zip
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

import numpy as np
import shapely

from crimemap import vocab
from crimemap.geometry.shapes import polygonal, shape_fields
from crimemap.load.errors import LoadError
from crimemap.records import Feature
from crimemap.rings import RingError
from crimemap.store.base import FORCE_BOUNDARIES, Store, TableInfo
from crimemap.store.catalogue import Column

COLUMNS = (Column("force", "string"), Column("name", "string"))


def is_boundary_path(path: Path) -> bool:
    """A ``.kml`` file, a folder with ``.kml`` files in it, or a zip holding ``.kml`` files."""
    if path.is_dir():
        return any(path.rglob("*.kml"))
    if path.suffix.lower() == ".kml":
        return True
    if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return any(n.lower().endswith(".kml") for n in z.namelist())
    return False


def _sources(paths: Iterable[Path]) -> Iterator[tuple[str, str, Any]]:
    """``(force id, where, opener)`` of each KML file among the paths."""
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*.kml")):
                yield file.stem, str(file), file.open
        elif path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as z:
                names = sorted(n for n in z.namelist() if n.lower().endswith(".kml") and not n.endswith("/"))
                for name in names:
                    data = z.read(name)
                    yield Path(name).stem, f"{path}:{name}", lambda d=data: io.BytesIO(d)
        else:
            yield path.stem, str(path), path.open


def _ring(text: str | None, where: str) -> np.ndarray:
    parts = (text or "").split()
    if not parts:
        raise LoadError(f"{where}: a ring with no coordinates")
    width = parts[0].count(",") + 1
    try:
        values = np.array(",".join(parts).split(","), dtype=np.float64).reshape(-1, width)
    except ValueError:
        raise LoadError(f"{where}: coordinates must be longitude,latitude[,altitude] numbers") from None
    if len(values) < 4 or not np.isfinite(values).all():
        raise LoadError(f"{where}: a ring needs at least four points of finite numbers")
    return values[:, :2]


def read_kml(source: IO[bytes], where: str) -> Any:
    """The (Multi)Polygon of a KML file's ``Polygon`` elements, made valid when its rings cross."""
    polygons = []
    try:
        for _, element in ElementTree.iterparse(source, events=("end",)):
            if element.tag.rsplit("}", 1)[-1] != "Polygon":
                continue
            outer, holes = None, []
            for child in element.iter():
                tag = child.tag.rsplit("}", 1)[-1]
                if tag == "outerBoundaryIs":
                    outer = _ring(_coordinates(child), where)
                elif tag == "innerBoundaryIs":
                    holes.append(_ring(_coordinates(child), where))
            if outer is None:
                raise LoadError(f"{where}: a Polygon without an outerBoundaryIs")
            polygons.append(shapely.Polygon(outer, holes))
            element.clear()
    except ElementTree.ParseError as e:
        raise LoadError(f"{where}: not a KML file ({e})") from None
    if not polygons:
        raise LoadError(f"{where}: no Polygon in this KML file")
    try:
        shape = polygonal(shapely.MultiPolygon(polygons))
    except RingError as e:
        raise LoadError(f"{where}: {e}") from None
    if shape.geom_type == "Polygon":
        shape = shapely.MultiPolygon([shape])
    lng0, lat0, lng1, lat1 = shape.bounds
    if not (-180 <= lng0 and lng1 <= 180 and -90 <= lat0 and lat1 <= 90):
        raise LoadError(f"{where}: coordinates out of range (longitude,latitude expected)")
    return shape


def _coordinates(boundary: Any) -> str | None:
    for child in boundary.iter():
        if child.tag.rsplit("}", 1)[-1] == "coordinates":
            return str(child.text or "")
    return None


def read_boundaries(paths: Iterable[Path]) -> dict[str, Any]:
    """Force id -> shapely geometry, for every KML file among ``paths``."""
    found: dict[str, Any] = {}
    for force, where, opener in _sources(paths):
        if force not in vocab.FORCE_BY_ID:
            raise LoadError(
                f"{where}: {force!r} is not a force id; boundary files are named by force, e.g. city-of-london.kml"
            )
        with opener() as f:
            found[force] = read_kml(f, where)
    if not found:
        raise LoadError("no .kml boundary files found")
    return found


def load_boundaries(store: Store, paths: Iterable[Path]) -> int:
    """Store the boundaries found in ``paths`` (replacing those forces', keeping the others'); how many."""
    given = {f: shape_fields(g) for f, g in read_boundaries(paths).items()}
    kept = {}
    if store.table(FORCE_BOUNDARIES) is not None:
        for force, (_, shape) in store.force_boundaries().items():
            if force not in given:
                kept[force] = shape_fields(shapely.from_wkb(shape))
    every = {**kept, **given}
    info = TableInfo(
        id=FORCE_BOUNDARIES,
        name="police force boundaries",
        description="The areas of the police forces of England, Wales and Northern Ireland, from data.police.uk.",
        columns=COLUMNS,
        shapes=True,
    )
    features = [
        Feature(vocab.FORCE_BY_ID[force].code + 1, lng, lat, (force, vocab.FORCE_BY_ID[force].name), wkb)
        for force, (lng, lat, wkb, _) in sorted(every.items(), key=lambda kv: vocab.FORCE_BY_ID[kv[0]].code)
    ]
    with store.writer() as writer:
        writer.replace_table(info, features)
    return len(given)
