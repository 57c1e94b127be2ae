"""The data sets the wire record is made on.

- ``real``: every police.uk file and both NYC tables in ``../shared/data``;
- ``generated``: a generated archive (3 months x 20,000 crimes);
- ``upgraded``: ``tests/fixtures/store-v1.sqlite``, a store file written by crimemap's
  first release (schema 1; 2 generated months and a small CSV table), opened by
  today's code, which upgrades it in place; on PostGIS, the same store written by
  the first release's PostGIS code (``tests/fixtures/store-v1-postgis.sql.gz``, see
  :mod:`make_postgis_v1`), restored into a fresh schema and upgraded on opening.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import NYC, POLICEUK, needs_shared_data
from crimemap.load.generate.archive import generate
from crimemap.load.generate.world import month_range
from crimemap.load.policeuk import load_policeuk
from crimemap.load.tables import load_table
from crimemap.store.base import Store


def postgis_v1_url() -> str:
    """The URL of a fresh schema holding the first release's PostGIS store (schema 1), as its dump restores it."""
    import psycopg

    from make_postgis_v1 import restore
    from pg_server import fresh_store_url

    url = fresh_store_url()
    with psycopg.connect(url, autocommit=True) as conn:
        restore(conn)
    return url


def open_postgis_v1() -> Store:
    """The first release's PostGIS store, opened (and so upgraded in place) by today's code."""
    from crimemap.store.postgis import PostGISStore

    return PostGISStore(postgis_v1_url())


DATASETS = ("real", "generated", "upgraded")
V1_STORE = Path(__file__).resolve().parent / "fixtures" / "store-v1.sqlite"


def load_dataset(store: Store, name: str, scratch: Path) -> Store:
    """Data set ``name`` in ``store`` (empty); ``upgraded`` returns another store, a copy of the v1 file."""
    if name == "real":
        needs_shared_data()
        load_policeuk(store, [POLICEUK])
        for path in sorted((NYC / "2015-05-08").glob("*.geojson")):
            load_table(store, path, table_id=path.stem)
        return store
    if name == "upgraded":
        from crimemap.store.sqlite import SQLiteStore

        if not isinstance(store, SQLiteStore):
            return open_postgis_v1()
        copy = scratch / "store-v1-copy.sqlite"
        shutil.copyfile(V1_STORE, copy)
        return SQLiteStore(copy)
    archive = scratch / "generated-archive"
    if not archive.exists():
        generate(archive, months=month_range("2024-06", 3), crimes_per_month=20_000, seed=7)
    load_policeuk(store, [archive])
    return store
