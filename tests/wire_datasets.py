"""The data sets the wire record is made on.

- ``real``: every police.uk file and both NYC tables in ``../shared/data``;
- ``generated``: a generated archive (3 months x 20,000 crimes);
- ``upgraded``: ``tests/fixtures/store-v1.sqlite``, a store file written by crimemap's
  first release (schema 1; 2 generated months and a small CSV table), opened by
  today's code, which upgrades it in place. Embedded store only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import NYC, POLICEUK, needs_shared_data
from crimemap.load.generate import generate, month_range
from crimemap.load.policeuk import load_policeuk
from crimemap.load.tables import load_table
from crimemap.store.base import Store

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

        copy = scratch / "store-v1-copy.sqlite"
        shutil.copyfile(V1_STORE, copy)
        return SQLiteStore(copy)
    archive = scratch / "generated-archive"
    if not archive.exists():
        generate(archive, months=month_range("2024-06", 3), crimes_per_month=20_000, seed=7)
    load_policeuk(store, [archive])
    return store
