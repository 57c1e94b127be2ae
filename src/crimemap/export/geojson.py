"""A table as one RFC 7946 GeoJSON FeatureCollection, written as a stream of chunks.

One feature per line, each with its ``gx_id`` as the feature ``id`` (so
loading the file again keeps the ids), a ``Point`` geometry (a table of shapes:
its ``Polygon`` or ``MultiPolygon``) or ``null``, and
the properties in column order::

    {"type":"FeatureCollection","features":[
    {"type":"Feature","id":1,"geometry":{"type":"Point","coordinates":[-73.85,40.74]},"properties":{...}},
    ...
    ]}
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from crimemap.export import CHUNK_BYTES, Export, Progress, feature_batches
from crimemap.store import shapes
from crimemap.store.base import Feature, Store

HEAD = b'{"type":"FeatureCollection","features":[\n'
TAIL = b"\n]}\n"
MEDIA_TYPE = "application/geo+json"


def feature_bytes(
    features: list[Feature], names: tuple[str, ...], *, with_id: bool = True, with_geometry: bool = True
) -> list[bytes]:
    """Each feature as compact GeoJSON: ``{"type":"Feature","id":..,"geometry":..,"properties":{..}}``.

    ``with_id`` writes the ``gx_id`` as the feature's ``id``; ``with_geometry``
    False leaves the ``geometry`` member out (a Maps Engine page whose
    ``select`` omits it). The envelope is formatted around two small ``orjson``
    dumps, which measured about three times faster than dumping one nested
    dict per feature; each dump is used at once because ``orjson`` output
    holds a 4 KiB buffer until it is freed.
    """
    dumps = orjson.dumps
    if not with_geometry:
        return [
            b'{"type":"Feature","properties":%b}' % dumps(dict(zip(names, f.properties, strict=True))) for f in features
        ]
    if with_id:
        template = b'{"type":"Feature","id":%d,"geometry":%b,"properties":%b}'
        return [
            template % (f.gx_id, _geometry(f), dumps(dict(zip(names, f.properties, strict=True)))) for f in features
        ]
    template = b'{"type":"Feature","geometry":%b,"properties":%b}'
    return [template % (_geometry(f), dumps(dict(zip(names, f.properties, strict=True)))) for f in features]


def _geometry(f: Feature) -> bytes:
    if f.shape is not None:
        return shapes.geojson(f.shape)
    return b'{"type":"Point","coordinates":[%b]}' % orjson.dumps([f.lng, f.lat])[1:-1] if f.lng is not None else b"null"


def geojson_chunks(store: Store, export: Export, progress: Progress | None = None) -> Iterator[bytes]:
    """The FeatureCollection in chunks of about :data:`~crimemap.export.CHUNK_BYTES` bytes."""
    names = export.names
    pending: list[bytes] = [HEAD]
    size = len(HEAD)
    first = True
    for batch in feature_batches(store, export, progress=progress):
        for line in feature_bytes(batch, names):
            if not first:
                pending.append(b",\n")
            first = False
            pending.append(line)
            size += len(line) + 2
            if size >= CHUNK_BYTES:
                yield b"".join(pending)
                pending, size = [], 0
    pending.append(TAIL)
    yield b"".join(pending)
