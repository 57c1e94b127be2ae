"""OGC API - Features: crimemap beside tipg and pygeoapi on the same generated crimes, measured in the same run.

    pip install -e '.[bench]'
    python benchmarks/bench_ogc.py                                 # 1 month x 500,000 crimes
    python benchmarks/bench_ogc.py --crimes-per-month 100000 --seconds 3   # a quick look
    python benchmarks/bench_ogc.py --tipg-python /path/to/venv/bin/python  # tipg from its own environment

What it does, all by itself:

1. generates one month of synthetic police.uk crimes (cached in ``bench-data/``) and
   loads it into an embedded (SQLite) store and into PostGIS (a throwaway cluster, as
   the tests start one, or ``--postgres URL``);
2. copies the crimes, all 18 columns, into a plain PostGIS table for pygeoapi
   (``month`` as a date for its ``datetime`` filter, a GiST index on the point, b-tree
   indexes on ``month`` and the id): pygeoapi's best case;
3. starts ``crimemap serve`` on each store (``--workers``, 2 by default; response cache
   off), tipg 1.6.1 (FastAPI + asyncpg, ``tipg.main:app`` under uvicorn) and pygeoapi
   (its Starlette app under uvicorn) on that table, the same number of workers each;
   tipg or pygeoapi is left out, with a note, where it is not installed;
4. measures, over HTTP on loopback, with ``wrk`` (a C load generator, so that the
   client does not hide the server):
   - the densest mile: a square of 1.6 km around the densest centre (central London),
     ``datetime`` the month, every crime in it (``limit=10000``), and its first ten;
   - a sparse ``bbox`` page (a small town), default ``limit``;
   each as p50 latency at one connection and requests/s at 1 and at 8 connections,
   each beside its floor: a bare uvicorn app (same workers) answering a ready body of
   the same size as crimemap's answer, measured in the same run;
5. pages the month by ``next`` links at ``limit=1000`` (features/s, httpx; tipg and
   pygeoapi page by offset, and are given the same time budget and measured over the
   pages they reached, which flatters them).

Prints one line per measure: each server, the floor, and crimemap (embedded) / tipg and
crimemap (PostGIS) / crimemap (embedded) beside the issue's targets (>= 20x tipg on the
dense page at 1 and 8 connections, >= 5x sparse; PostGIS within 1.5x of the embedded).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from crimemap import geo  # noqa: E402
from crimemap.load.generate.archive import generate  # noqa: E402
from crimemap.load.generate.world import DENSEST_CENTRE, TOWNS, month_range  # noqa: E402
from crimemap.load.policeuk import load_policeuk  # noqa: E402
from crimemap.store.catalogue import CRIME_COLUMNS, CRIMES_TABLE  # noqa: E402
from crimemap.store.postgis import PostGISStore  # noqa: E402
from crimemap.store.postgis.tables import CRIME_COLUMNS_SQL  # noqa: E402
from crimemap.store.sqlite import SQLiteStore  # noqa: E402
from crimemap_server import Server, free_port, start, stop  # noqa: E402

BENCH_DATA = HERE.parent / "bench-data"
MONTH = "2024-06"
PYGEOAPI_TABLE = "pygeoapi_crimes"
CONCURRENCY = 8
WORKERS = 2

_PG_TYPES = {"integer": "bigint", "double": "double precision", "string": "text"}


# -- data --------------------------------------------------------------------------------------------------


def prepare(crimes_per_month: int, data: Path = BENCH_DATA) -> Path:
    """The archive and the embedded store, generated and loaded once (cached in ``data``, bench-data/ by default)."""
    archive = data / f"ogc-archive-1x{crimes_per_month}"
    store = data / f"ogc-1x{crimes_per_month}.sqlite"
    if not archive.exists():
        print(f"generating {crimes_per_month:,} crimes ...", flush=True)
        generate(archive, months=month_range(MONTH, 1), crimes_per_month=crimes_per_month, seed=1)
    if not store.exists():
        print("loading the embedded store ...", flush=True)
        with SQLiteStore(store) as st:
            load_policeuk(st, [archive])
    return store


def load_postgis(url: str, archive: Path) -> None:
    """Load crimemap's PostGIS store, then copy its crimes into a plain table for pygeoapi."""
    print("loading PostGIS and pygeoapi's table ...", flush=True)
    with PostGISStore(url) as st:
        load_policeuk(st, [archive])
        columns = list(CRIME_COLUMNS)
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            defs = ", ".join(
                f"{c.name} {'date' if c.name == 'month' else _PG_TYPES[c.type]}"
                + (" PRIMARY KEY" if c.name == "id" else "")
                for c in columns
            )
            conn.execute(f"CREATE TABLE {PYGEOAPI_TABLE} ({defs}, geom geometry(Point, 4326))")
            # Copied inside PostgreSQL, each column as crimemap reads it (a stream through Python
            # outlasts the store's read time limit on 500,000 crimes).
            names = ", ".join(c.name for c in columns)
            exprs = {name: column.expr for name, column in CRIME_COLUMNS_SQL.items()}
            exprs["month"] = f"({exprs['month']} || '-01')::date"
            values = ", ".join(exprs[c.name] for c in columns)
            conn.execute(
                f"INSERT INTO {PYGEOAPI_TABLE} ({names}, geom) SELECT {values},"
                " CASE WHEN lng IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(lng, lat), 4326) END FROM crimes"
            )
            conn.execute(f"CREATE INDEX ON {PYGEOAPI_TABLE} USING gist (geom)")
            conn.execute(f"CREATE INDEX ON {PYGEOAPI_TABLE} (month)")
            conn.execute(f"ANALYZE {PYGEOAPI_TABLE}")


def postgres_url(given: str | None) -> str:
    if given:
        return given
    import pg_server  # a throwaway cluster, or $CRIMEMAP_TEST_POSTGRES

    try:
        return pg_server.server().fresh_url()
    except pg_server.Unavailable as e:
        raise SystemExit(f"no PostgreSQL for the benchmark: {e}") from None


# -- pygeoapi ------------------------------------------------------------------------------------------------


class PygeoapiServer:
    """pygeoapi's Starlette app under uvicorn (1 worker) over the crimes table, on a free loopback port."""

    def __init__(self, url: str, folder: Path) -> None:
        import yaml

        parts = urlsplit(url)
        options = parse_qs(parts.query).get("options", [""])[0]
        schema = options.split("search_path=")[1].split(",")[0] if "search_path=" in options else "public"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "server": {
                "bind": {"host": "127.0.0.1", "port": self.port},
                "url": self.url,
                "mimetype": "application/json; charset=UTF-8",
                "encoding": "utf-8",
                "languages": ["en-US"],
                "limits": {"default_items": 10, "max_items": 10_000},
                "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
            },
            "logging": {"level": "ERROR"},
            "metadata": {
                "identification": {
                    "title": "bench",
                    "description": "bench",
                    "keywords": ["crime"],
                    "keywords_type": "theme",
                    "terms_of_service": "none",
                    "url": self.url,
                },
                "license": {"name": "OGL", "url": self.url},
                "provider": {"name": "bench", "url": self.url},
                "contact": {
                    k: "bench"
                    for k in (
                        "name",
                        "position",
                        "address",
                        "city",
                        "stateorprovince",
                        "postalcode",
                        "country",
                        "phone",
                        "fax",
                        "email",
                        "url",
                        "hours",
                        "instructions",
                    )
                }
                | {"role": "pointOfContact"},
            },  # fmt: skip
            "resources": {
                CRIMES_TABLE: {
                    "type": "collection",
                    "title": "crimes",
                    "description": "police.uk crimes",
                    "keywords": ["crime"],
                    "links": [],
                    "extents": {
                        "spatial": {"bbox": [-8, 49, 2, 61], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
                    },
                    "providers": [
                        {
                            "type": "feature",
                            "name": "PostgreSQL",
                            "data": {
                                "host": parts.hostname,
                                "port": parts.port or 5432,
                                "dbname": parts.path.lstrip("/"),
                                "user": parts.username or "postgres",
                                "password": parts.password or "",
                                "search_path": [schema, "public"],
                            },
                            "id_field": "id",
                            "table": PYGEOAPI_TABLE,
                            "geom_field": "geom",
                            "time_field": "month",
                        }
                    ],
                }
            },
        }
        config_path, openapi_path = folder / "pygeoapi.yml", folder / "openapi.yml"
        config_path.write_text(yaml.safe_dump(config))
        env = {**os.environ, "PYGEOAPI_CONFIG": str(config_path), "PYGEOAPI_OPENAPI": str(openapi_path)}
        exe = shutil.which("pygeoapi") or str(Path(sys.executable).parent / "pygeoapi")
        subprocess.run([exe, "openapi", "generate", str(config_path), "--output-file", str(openapi_path)],
                       env=env, check=True, capture_output=True)  # fmt: skip
        command = [sys.executable, "-m", "uvicorn", "pygeoapi.starlette_app:APP", "--port", str(self.port),
                   "--workers", "1", "--log-level", "warning"]  # fmt: skip
        self.process = start(command, self.url + "/collections", "pygeoapi", env)

    def stop(self) -> None:
        stop(self.process)


# -- tipg ---------------------------------------------------------------------------------------------------


class TipgServer:
    """tipg (``tipg.main:app`` under uvicorn) over the same table pygeoapi reads, on a free loopback port.

    ``python`` is an interpreter that has tipg 1.6.1 (``pip install -e '.[bench]'``
    installs it beside crimemap; ``--tipg-python`` names another environment's).
    tipg's id of the table is ``<schema>.<table>``.
    """

    def __init__(self, url: str, python: str, workers: int) -> None:
        parts = urlsplit(url)
        options = parse_qs(parts.query).get("options", [""])[0]
        schema = options.split("search_path=")[1].split(",")[0] if "search_path=" in options else "public"
        self.collection = f"{schema}.{PYGEOAPI_TABLE}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": parts._replace(query="").geturl(),
            "TIPG_DB_SCHEMAS": json.dumps([schema]),
            "TIPG_DB_TABLES": json.dumps([f"{schema}.{PYGEOAPI_TABLE}"]),
            "TIPG_MAX_FEATURES_PER_QUERY": "10000",
        }
        command = [python, "-m", "uvicorn", "tipg.main:app", "--port", str(self.port), "--workers", str(workers),
                   "--log-level", "warning"]  # fmt: skip
        self.process = start(command, f"{self.url}/collections/{self.collection}", "tipg", env)

    def stop(self) -> None:
        stop(self.process)


def has_module(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


class FloorApp:
    """A bare uvicorn app (``workers`` of them) answering every GET with a ready body of ``size`` bytes."""

    def __init__(self, size: int, workers: int, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        script = folder / f"floor_{size}.py"
        script.write_text(
            f"body = b'[' + b'x' * {max(0, size - 2)} + b']'\n"
            "async def app(scope, receive, send):\n"
            "    if scope['type'] != 'http':\n"
            "        return\n"
            "    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type',"
            " b'application/geo+json'), (b'content-length', str(len(body)).encode())]})\n"
            "    await send({'type': 'http.response.body', 'body': body})\n"
        )
        command = [sys.executable, "-m", "uvicorn", "--app-dir", str(folder), f"{script.stem}:app",
                   "--port", str(self.port), "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url, timeout=5)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the floor app did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# -- measuring --------------------------------------------------------------------------------------------------


def items(base: str, collection: str, **params: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{base}/collections/{collection}/items?{query}"


def wrk(url: str, connections: int, seconds: float) -> tuple[float, float]:
    """Requests/s and p50 milliseconds of GET ``url`` from ``wrk`` at ``connections`` connections."""
    threads = min(connections, 2)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--latency", "--timeout", "30s",
         url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    if rate is None or p50 is None or "Non-2xx" in out:
        raise RuntimeError(f"wrk could not measure {url}:\n{out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    return float(rate.group(1)), float(p50.group(1)) * scale


def answer(url: str) -> tuple[int, int]:
    """How many features ``url`` answers, and the size of its body in bytes."""
    response = httpx.get(url, timeout=120).raise_for_status()
    return len(orjson.loads(response.content)["features"]), len(response.content)


def paging(first: str, budget_s: float) -> tuple[float, int, bool]:
    """Features/s following ``next`` links from ``first``; features read; whether the end was reached."""
    features = 0
    url: str | None = first
    started = time.perf_counter()
    with httpx.Client(timeout=300) as client:
        while url is not None:
            body = orjson.loads(client.get(url).raise_for_status().content)
            features += len(body["features"])
            url = next((x["href"] for x in body.get("links", []) if x["rel"] == "next"), None)
            if time.perf_counter() - started > budget_s:
                break
    return features / (time.perf_counter() - started), features, url is None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crimes-per-month", type=int, default=500_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each wrk run")
    parser.add_argument("--workers", type=int, default=WORKERS, help="workers of every server (and of the floor)")
    parser.add_argument("--paging-budget", type=float, default=20.0, help="seconds each server may page for")
    parser.add_argument("--postgres", help="postgresql:// URL of an empty database with PostGIS")
    parser.add_argument("--tipg-python", default=sys.executable, help="a Python that has tipg 1.6.1")
    parser.add_argument("--data", type=Path, default=BENCH_DATA, help="where the archive and store are cached")
    args = parser.parse_args()

    store_path = prepare(args.crimes_per_month, args.data)
    url = postgres_url(args.postgres)
    load_postgis(url, args.data / f"ogc-archive-1x{args.crimes_per_month}")
    west, south, east, north = geo.circle_bbox(*DENSEST_CENTRE, 800)
    dense = f"{west},{south},{east},{north}"
    town = next(t for t in TOWNS if t.weight == min(x.weight for x in TOWNS))
    w2, s2, e2, n2 = geo.circle_bbox(town.lng, town.lat, 300)
    sparse = f"{w2},{s2},{e2},{n2}"
    month = f"{MONTH}-01T00:00:00Z/{MONTH}-30T23:59:59Z"
    cases = {
        "densest mile, every crime (limit 10000)": {"bbox": dense, "datetime": month, "limit": 10_000},
        "densest mile, first 10": {"bbox": dense, "datetime": month},
        "sparse town, first 10": {"bbox": sparse, "datetime": month},
    }

    folder = Path(tempfile.mkdtemp(prefix="bench-ogc-"))
    servers: dict[str, tuple[str, str, Callable[[], None]]] = {}
    results: dict[str, dict[str, float]] = {}
    try:
        embedded = Server(str(store_path), workers=args.workers, cache_mb=0)
        servers["crimemap (embedded)"] = (embedded.url + "/ogc", CRIMES_TABLE, embedded.stop)
        postgis = Server(url, workers=args.workers, cache_mb=0)
        servers["crimemap (PostGIS)"] = (postgis.url + "/ogc", CRIMES_TABLE, postgis.stop)
        if has_module(args.tipg_python, "tipg"):
            tipg = TipgServer(url, args.tipg_python, args.workers)
            servers["tipg 1.6.1 (PostGIS)"] = (tipg.url, tipg.collection, tipg.stop)
        else:
            print(f"tipg is not installed for {args.tipg_python}: left out (pip install tipg==1.6.1)", flush=True)
        if shutil.which("pygeoapi") or (Path(sys.executable).parent / "pygeoapi").exists():
            pygeoapi = PygeoapiServer(url, folder)
            servers["pygeoapi (PostGIS)"] = (pygeoapi.url, CRIMES_TABLE, pygeoapi.stop)
        else:
            print("pygeoapi is not installed: left out (pip install -e '.[bench]')", flush=True)
        sizes = {case: answer(items(embedded.url + "/ogc", CRIMES_TABLE, **params)) for case, params in cases.items()}
        for name, (base, collection, _) in servers.items():
            print(f"measuring {name} ...", flush=True)
            results[name] = measure({case: items(base, collection, **p) for case, p in cases.items()}, args.seconds)
            rate, read, finished = paging(items(base, collection, limit=1000, datetime=month), args.paging_budget)
            results[name]["paging the month at limit 1000: features/s"] = rate
        print("measuring the floor (a bare app, a ready body of the same size) ...", flush=True)
        floor: dict[str, float] = {}
        for case, (_, size) in sizes.items():
            app = FloorApp(size, args.workers, folder)
            try:
                floor |= measure({case: app.url}, args.seconds)
            finally:
                app.stop()
        results["floor (bare app)"] = floor
    finally:
        for _, _, stop_server in servers.values():
            stop_server()
        shutil.rmtree(folder, ignore_errors=True)
    report(results, sizes, args.crimes_per_month, args.workers)


def measure(urls: dict[str, str], seconds: float) -> dict[str, float]:
    """Each case's p50 at one connection and requests/s at 1 and at :data:`CONCURRENCY` connections (wrk)."""
    row: dict[str, float] = {}
    for case, url in urls.items():
        wrk(url, 1, 1.0)  # warm up
        rate, p50 = wrk(url, 1, seconds)
        row[f"{case}: p50 ms, 1 connection"] = p50
        row[f"{case}: requests/s, 1 connection"] = rate
        row[f"{case}: requests/s, {CONCURRENCY} connections"] = wrk(url, CONCURRENCY, seconds)[0]
    return row


TARGETS = {
    f"densest mile, every crime (limit 10000): requests/s, {c}": 20.0 for c in ("1 connection", "8 connections")
} | {f"sparse town, first 10: requests/s, {c}": 5.0 for c in ("1 connection", "8 connections")}
"""crimemap (embedded) / tipg, at least (issue 17)."""


def report(results: dict[str, dict[str, float]], sizes: dict[str, tuple[int, int]], crimes: int, workers: int) -> None:
    names = list(results)
    print(f"\n# OGC API - Features, one month of {crimes:,} crimes; {workers} workers each, loopback, wrk,"
          " response cache off")  # fmt: skip
    for case, (features, size) in sizes.items():
        print(f"#   {case}: {features:,} features, {size:,} bytes")
    width = max(len(n) for n in names) + 2
    print(f"{'measure':<66}" + "".join(f"{n:>{width}}" for n in names) + "  embedded/tipg  PostGIS/embedded")
    for measure_name in results[names[0]]:
        values = [results[n].get(measure_name, float("nan")) for n in names]
        digits = 2 if "p50" in measure_name else 1
        line = f"{measure_name:<66}" + "".join(f"{v:>{width},.{digits}f}" for v in values)
        mine, pg = results[names[0]][measure_name], results[names[1]][measure_name]
        tipg = results.get("tipg 1.6.1 (PostGIS)", {}).get(measure_name)
        faster = "p50" in measure_name
        if tipg:
            ratio = tipg / mine if faster else mine / tipg
            target = TARGETS.get(measure_name)
            mark = f" (>= {target:g}x {'met' if ratio >= target else 'NOT MET'})" if target else ""
            line += f"  {ratio:>12.1f}x{mark}"
        else:
            line += f"  {'-':>13}"
        slower = pg / mine if faster else mine / pg
        line += f"  {slower:>15.2f}x{' (<= 1.5x met)' if slower <= 1.5 else ' (<= 1.5x NOT MET)'}"
        print(line)
    p50 = results[names[0]].get("densest mile, every crime (limit 10000): p50 ms, 1 connection", float("nan"))
    print(f"densest mile p50 (embedded): {p50:.2f} ms; target <= 2.5 ms: {'met' if p50 <= 2.5 else 'NOT MET'}")


if __name__ == "__main__":
    main()
