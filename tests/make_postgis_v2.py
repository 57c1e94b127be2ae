"""Write ``tests/fixtures/store-v2-postgis.sql.gz``: the first release's store, written by the last release of schema 2.

The same inputs, load times and dump as :mod:`make_postgis_v1` (2024-02 and
2024-03, 1,500 generated crimes a month, seed 11, and ``places.csv``), loaded by
the code of schema 2 (crimes, outcomes and stops not yet partitioned by month),
so that the upgrade to schema 3 can be checked against the wire record of the
``upgraded`` data set. Run it with that release on the path, from the project root::

    git archive a4f03fe src | tar -x -C /tmp/v2
    PYTHONPATH=/tmp/v2/src python tests/make_postgis_v2.py
"""

from __future__ import annotations

from pathlib import Path

import make_postgis_v1

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "store-v2-postgis.sql.gz"


def restore(conn: object) -> None:
    """Replay the fixture on ``conn`` (a psycopg connection whose search path starts at an empty schema)."""
    make_postgis_v1.restore(conn, FIXTURE)


if __name__ == "__main__":
    make_postgis_v1.main(FIXTURE)
