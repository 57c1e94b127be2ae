"""OGC API - Features: crimemap beside pygeoapi on the same generated crimes, measured in the same run.

    pip install -e '.[bench]'
    python benchmarks/bench_ogc.py                                 # 1 month x 500,000 crimes
    python benchmarks/bench_ogc.py --crimes-per-month 100000 --seconds 3   # a quick look

What it does, all by itself:

1. generates one month of synthetic police.uk crimes (cached in ``bench-data/``) and
   loads it into an embedded (SQLite) store and into PostGIS (a throwaway cluster, as
   the tests start one, or ``--postgres URL``);
2. copies the crimes, all 18 columns, into a plain PostGIS table for pygeoapi
   (``month`` as a date for its ``datetime`` filter, a GiST index on the point, b-tree
   indexes on ``month`` and the id): pygeoapi's best case;
3. starts ``crimemap serve`` on each store (1 worker, response cache off) and
   pygeoapi (PyPI, its Starlette app under uvicorn, 1 worker) on its table;
4. measures, over HTTP on loopback, with the same client for every server:
   - a dense ``bbox`` page: a square of 1.6 km around the densest centre (central
     London) and ``datetime`` the month, at the default ``limit`` (10) and at 1,000;
   - a sparse ``bbox`` page (a small town), default ``limit``;
   - paging the month by ``next`` links at ``limit=1000`` (features/s; pygeoapi pages
     by offset, and is given the same time budget and measured over the pages it
     reached, which flatters it);
   each as p50 latency and requests/s with 8 concurrent clients.

Prints one line per measure: crimemap (embedded), crimemap (PostGIS), pygeoapi, and
the ratio embedded / pygeoapi beside the issue's targets (>= 20x on the dense page at
concurrency 8, >= 10x paging features/s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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
from crimemap.query import FeatureQuery  # noqa: E402
from crimemap.store.catalogue import CRIME_COLUMNS, CRIMES_TABLE  # noqa: E402
from crimemap.store.postgis import PostGISStore  # noqa: E402
from crimemap.store.sqlite import SQLiteStore  # noqa: E402
from crimemap_server import Server  # noqa: E402

BENCH_DATA = HERE.parent / "bench-data"
MONTH = "2024-06"
PYGEOAPI_TABLE = "pygeoapi_crimes"
CONCURRENCY = 8

_PG_TYPES = {"integer": "bigint", "double": "double precision", "string": "text"}


# -- data --------------------------------------------------------------------------------------------------


def prepare(crimes_per_month: int) -> Path:
    """The archive and the embedded store, generated and loaded once (cached in bench-data/)."""
    archive = BENCH_DATA / f"ogc-archive-1x{crimes_per_month}"
    store = BENCH_DATA / f"ogc-1x{crimes_per_month}.sqlite"
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
            names = ", ".join(c.name for c in columns)
            with conn.cursor().copy(f"COPY {PYGEOAPI_TABLE} ({names}, geom) FROM STDIN") as copy:
                for f in st.features(FeatureQuery(CRIMES_TABLE)):
                    values = list(f.properties)
                    values[2] = f"{values[2]}-01"  # month as a date
                    point = f"SRID=4326;POINT({f.lng} {f.lat})" if f.lng is not None else None
                    copy.write_row([*values, point])
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
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/collections", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("pygeoapi did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# -- measuring --------------------------------------------------------------------------------------------------


def items(base: str, prefix: str, **params: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{base}{prefix}/collections/{CRIMES_TABLE}/items?{query}"


def latency_ms(url: str, repeat: int) -> tuple[float, int]:
    """p50 milliseconds of GET ``url`` (after two warm-ups) and how many features it returned."""
    with httpx.Client(timeout=120) as client:
        returned = 0
        for _ in range(2):
            response = client.get(url)
            response.raise_for_status()
            returned = len(orjson.loads(response.content)["features"])
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(url).raise_for_status()
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, returned


def requests_per_second(url: str, seconds: float) -> float:
    done = [0] * CONCURRENCY
    stop = time.perf_counter() + seconds

    def client(i: int) -> None:
        with httpx.Client(timeout=120) as c:
            while time.perf_counter() < stop:
                c.get(url).raise_for_status()
                done[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CONCURRENCY)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - started)


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
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each concurrency run")
    parser.add_argument("--repeat", type=int, default=30, help="requests per latency measure")
    parser.add_argument("--paging-budget", type=float, default=60.0, help="seconds each server may page for")
    parser.add_argument("--postgres", help="postgresql:// URL of an empty database with PostGIS")
    args = parser.parse_args()

    store_path = prepare(args.crimes_per_month)
    url = postgres_url(args.postgres)
    load_postgis(url, BENCH_DATA / f"ogc-archive-1x{args.crimes_per_month}")
    west, south, east, north = geo.circle_bbox(*DENSEST_CENTRE, 800)
    dense = f"{west},{south},{east},{north}"
    town = next(t for t in TOWNS if t.weight == min(x.weight for x in TOWNS))
    w2, s2, e2, n2 = geo.circle_bbox(town.lng, town.lat, 300)
    sparse = f"{w2},{s2},{e2},{n2}"

    folder = Path(tempfile.mkdtemp(prefix="bench-ogc-"))
    servers: dict[str, tuple[str, Callable[[], None]]] = {}
    cases = {
        "dense bbox page, limit 10": {"bbox": dense, "datetime": f"{MONTH}-01T00:00:00Z/{MONTH}-30T23:59:59Z"},
        "dense bbox page, limit 1000": {"bbox": dense, "datetime": f"{MONTH}-01T00:00:00Z/{MONTH}-30T23:59:59Z",
                                        "limit": 1000},
        "sparse bbox page, limit 10": {"bbox": sparse, "datetime": f"{MONTH}-01T00:00:00Z/{MONTH}-30T23:59:59Z"},
    }  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    try:
        crimemap_embedded = Server(str(store_path), workers=1, cache_mb=0)
        servers["crimemap (embedded)"] = (crimemap_embedded.url + "/ogc", crimemap_embedded.stop)
        crimemap_postgis = Server(url, workers=1, cache_mb=0)
        servers["crimemap (PostGIS)"] = (crimemap_postgis.url + "/ogc", crimemap_postgis.stop)
        pygeoapi = PygeoapiServer(url, folder)
        servers["pygeoapi (PostGIS)"] = (pygeoapi.url, pygeoapi.stop)
        for name, (base, _) in servers.items():
            print(f"measuring {name} ...", flush=True)
            row: dict[str, float] = {}
            for case, params in cases.items():
                ms, returned = latency_ms(items(base, "", **params), args.repeat)
                row[f"{case}: p50 ms"] = ms
                row[f"{case}: features"] = returned
                row[f"{case}: requests/s at concurrency {CONCURRENCY}"] = requests_per_second(
                    items(base, "", **params), args.seconds
                )
            month = f"{MONTH}-01T00:00:00Z/{MONTH}-30T23:59:59Z"
            rate, read, finished = paging(items(base, "", limit=1000, datetime=month), args.paging_budget)
            row["paging the month at limit 1000: features/s"] = rate
            row["paging the month at limit 1000: features read"] = read
            row["paging the month at limit 1000: reached the end (1 = yes)"] = float(finished)
            results[name] = row
    finally:
        for _, stop in servers.values():
            stop()
        shutil.rmtree(folder, ignore_errors=True)
    report(results, args.crimes_per_month)
    print(f"HTTP floor, same client: a bare uvicorn app, 1 worker, a ready {FLOOR_BYTES:,}-byte body (a page of ten),"
          f" {CONCURRENCY} clients: {bare_app_requests_per_second(args.seconds):,.0f} requests/s")  # fmt: skip


FLOOR_BYTES = 6_000


def bare_app_requests_per_second(seconds: float) -> float:
    """What this client gets from a uvicorn app that does nothing but answer: the floor of the concurrency figures."""
    from bench_api_policeuk import BareApp

    bare = BareApp(FLOOR_BYTES, workers=1)
    try:
        url = f"http://127.0.0.1:{bare.port}/"
        requests_per_second(url, 1.0)
        return requests_per_second(url, seconds)
    finally:
        bare.stop()


TARGETS = {
    f"dense bbox page, limit 10: requests/s at concurrency {CONCURRENCY}": 20.0,
    "paging the month at limit 1000: features/s": 10.0,
}


def report(results: dict[str, dict[str, float]], crimes: int) -> None:
    names = list(results)
    print(f"\n# OGC API - Features, one month of {crimes:,} crimes; 1 worker each, loopback, response cache off")
    header = f"{'measure':<62}" + "".join(f"{n:>22}" for n in names) + f"{'embedded/pygeoapi':>19}  target"
    print(header)
    for measure in results[names[0]]:
        values = [results[n][measure] for n in names]
        ratio = values[0] / values[-1] if values[-1] else float("inf")
        if "p50 ms" in measure:
            ratio = values[-1] / values[0] if values[0] else float("inf")  # times faster
        target = TARGETS.get(measure)
        shown = f"{ratio:>18.1f}x" if "features read" not in measure and "reached" not in measure else " " * 19
        mark = f"  >= {target:g}x {'met' if ratio >= target else 'NOT MET'}" if target else ""
        print(f"{measure:<62}" + "".join(f"{v:>22,.1f}" for v in values) + shown + mark)


if __name__ == "__main__":
    main()
