"""Write ``tests/fixtures/store-v1-postgis.sql.gz``: a PostGIS store written by crimemap's first release.

The PostGIS twin of ``tests/fixtures/store-v1.sqlite``: the same inputs (a generated
archive of 2024-02 and 2024-03, 1,500 crimes a month, seed 11, and a three-row
``places.csv``) loaded by the first release's own code (schema 1), then dumped.
Run it with the first release on the path, from the project root::

    git archive 89400cb src | tar -x -C /tmp/v1
    PYTHONPATH=/tmp/v1/src python tests/make_postgis_v1.py

The load times stored in the dump are set to those of the SQLite fixture, so that
the two first-release stores hold the same and answer the wire record alike. The
dump names no schema: :func:`restore` replays it into whichever schema is first on
a connection's search path.
"""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlparse

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "store-v1-postgis.sql.gz"
LOADED_AT = "2026-12-03T07:50:50+00:00"
"""When the SQLite fixture's loads committed."""
PLACES = "name,kind,visits,open,latitude,longitude\nTower,castle,12.5,true,51.5081,-0.0759\nAbbey,church,7,false,51.4993,-0.1273\nNowhere,none,,,,\n"  # noqa: E501


def main(fixture: Path = FIXTURE) -> None:
    import psycopg

    from crimemap.load.generate.archive import generate
    from crimemap.load.generate.world import month_range
    from crimemap.load.policeuk import load_policeuk
    from crimemap.load.tables import load_table
    from crimemap.store.postgis import PostGISStore  # the first release's

    sys.path.insert(0, str(HERE))
    from pg_server import fresh_store_url

    url = fresh_store_url()
    schema = parse_qs(urlparse(url).query)["options"][0].split("search_path=")[1].split(",")[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate(work / "archive", months=month_range("2024-03", 2), crimes_per_month=1500, seed=11)
        (work / "places.csv").write_text(PLACES)
        store = PostGISStore(url)
        load_policeuk(store, [work / "archive"])
        load_table(store, work / "places.csv")
        store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE loads SET loaded_at = %s", (LOADED_AT,))
        conn.execute("UPDATE meta SET value = %s WHERE key = 'last_updated'", (LOADED_AT,))
        conn.execute("UPDATE feature_tables SET created = %s, modified = %s", (LOADED_AT, LOADED_AT))
    base = url.split("?")[0]
    dump = subprocess.run(
        ["pg_dump", "--no-owner", "--no-privileges", "--no-comments", f"--schema={schema}", base],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fixture.write_bytes(gzip.compress(_schema_free(dump, schema).encode(), mtime=0))
    print(f"wrote {fixture}")


def _schema_free(dump: str, schema: str) -> str:
    """The dump without its schema's name, comments, settings and psql's meta-commands."""
    kept = []
    for line in dump.splitlines():
        if line.startswith(
            ("--", "\\restrict", "\\unrestrict", "SET ", "SELECT pg_catalog.set_config", "CREATE SCHEMA")
        ):
            continue
        kept.append(line.replace(f"{schema}.", ""))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)) + "\n"


def restore(conn: object, fixture: Path = FIXTURE) -> None:
    """Replay the fixture on ``conn`` (a psycopg connection whose search path starts at an empty schema)."""
    import psycopg

    assert isinstance(conn, psycopg.Connection)
    text = gzip.decompress(fixture.read_bytes()).decode()
    statement: list[str] = []
    lines = iter(text.splitlines())
    with conn.transaction():
        # The first release's stops index needs btree_gist, which a current store creates when it opens:
        # the fixture must not depend on another test having opened one first.
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public")
        for line in lines:
            if line.startswith("COPY ") and line.endswith("FROM stdin;"):
                with conn.cursor().copy(line[:-1]) as copy:
                    for row in lines:
                        if row == "\\.":
                            break
                        copy.write(row + "\n")
                continue
            if line.startswith("--") or not line.strip():
                continue
            statement.append(line)
            if line.rstrip().endswith(";"):
                conn.execute("\n".join(statement))  # type: ignore[arg-type]
                statement = []


if __name__ == "__main__":
    main()
