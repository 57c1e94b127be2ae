"""The ``crimemap`` command line: load, generate, info, stats, serve, demo, export.

Long work shows a progress bar on a terminal and stays quiet in scripts
(``--quiet`` silences the summary too).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from crimemap import __version__, cli_help
from crimemap.console import QuietOption, StoreOption, err, fail, out, progress_bar
from crimemap.stopping import stops_cleanly
from crimemap.store import StoreError, default_store_location, open_store
from crimemap.store.engines import is_server_store

app = cli_help.App(
    help="Police-recorded crime data: load it, store it, serve it through the APIs your tools speak.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        out.print(f"crimemap {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print crimemap's version.")
    ] = False,
) -> None:
    """Police-recorded crime data: load it, store it, serve it through the APIs your tools speak."""


@app.command()
def load(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="police.uk CSV files (street, outcomes, stop-and-search), archive folders or zips;"
            " force boundaries (KML); GeoJSON/CSV tables.",
            metavar="PATH...",
        ),
    ],
    store: StoreOption = None,
    table: Annotated[
        str | None, typer.Option(help="Table id for a GeoJSON/CSV table (default: the file name).")
    ] = None,
    title: Annotated[
        str | None,
        typer.Option(help="Title of a GeoJSON/CSV table, shown by the map and clients (default: the file name)."),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Load police.uk archives (street, outcomes and stop-and-search files), force boundaries or feature tables.

    All or nothing: a file that fails leaves the store as it was.
    """
    from crimemap.load import dispatch

    try:
        with open_store(store) as st:
            started = time.perf_counter()
            summary = dispatch.load_paths(st, paths, table=table, title=title, progress=progress_bar, quiet=quiet)
            elapsed = time.perf_counter() - started
    except (dispatch.LoadError, StoreError, ValueError, sqlite3.Error) as e:  # sqlite3's: the writing process
        raise fail(f"{e}\nnothing was loaded; the store is as it was") from None
    if not quiet:
        out.print(summary.describe(elapsed), highlight=False)


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the archive into.")],
    months: Annotated[int, typer.Option(help="How many months.")] = 3,
    last: Annotated[str, typer.Option(help="The newest month, YYYY-MM.")] = "2024-06",
    crimes_per_month: Annotated[int, typer.Option(help="Crimes in each month, across all forces.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 1,
    zipped: Annotated[bool, typer.Option("--zip", help="Write one zip per month, as data.police.uk does.")] = False,
    stops_per_month: Annotated[
        int | None, typer.Option(help="Stops and searches in each month (default: a tenth of the crimes; 0: none).")
    ] = None,
    neighbourhoods: Annotated[
        int, typer.Option(help="Also write about this many police neighbourhoods, as neighbourhoods.zip (0: none).")
    ] = 0,
    quiet: QuietOption = False,
) -> None:
    """Write synthetic police.uk archives (street, outcomes and stop-and-search files) of any size."""
    from crimemap.load.generate.archive import generate as run
    from crimemap.load.generate.world import month_range

    try:
        month_list = month_range(last, months)
    except ValueError as e:
        raise fail(str(e)) from None
    with progress_bar(months * crimes_per_month, "generating", quiet) as advance:
        summary = run(
            out_dir, months=month_list, crimes_per_month=crimes_per_month, seed=seed, zipped=zipped,
            stops_per_month=crimes_per_month // 10 if stops_per_month is None else stops_per_month,
            progress=advance,
        )  # fmt: skip
    if not quiet:
        out.print(
            f"wrote {summary.crimes:,} crimes, {summary.outcomes:,} outcomes and {summary.stops:,} stops and searches"
            f" in {len(summary.files)} files"
            f" to {out_dir}",
            highlight=False,
        )
    if neighbourhoods > 0:
        from crimemap.load.generate.neighbourhoods import write_neighbourhoods

        made = write_neighbourhoods(out_dir / "neighbourhoods.zip", neighbourhoods, seed)
        if not quiet:
            out.print(f"wrote {made:,} neighbourhoods to {out_dir / 'neighbourhoods.zip'}", highlight=False)


@app.command()
def upgrade(store: StoreOption = None, quiet: QuietOption = False) -> None:
    """Bring a store written by an older crimemap up to date, in place, in one transaction.

    Any command that opens the store for writing (load, serve) does this too;
    read-only commands (info, export) refuse an older store and name this one.
    """
    location = store or default_store_location()
    try:
        if is_server_store(location):
            open_store(location).close()  # a PostGIS store is upgraded when it is opened
            if not quiet:
                out.print(f"{location}: up to date", highlight=False)
            return
        from crimemap.store.sqlite import upgrade as upgrade_file

        with progress_bar(None, "upgrading the store", quiet) as advance:
            seen = [0]

            def progress(done: int, total: int) -> None:
                advance(done - seen[0], f"{done:,} of {total:,} crimes")
                seen[0] = done

            changed = upgrade_file(location, progress)
    except StoreError as e:
        raise fail(str(e)) from None
    if not quiet:
        out.print(f"{location}: {'upgraded' if changed else 'already up to date'}", highlight=False)


@app.command()
def info(store: StoreOption = None) -> None:
    """What is stored: months, forces, crime counts and feature tables."""
    try:
        st = open_store(store, readonly=not is_server_store(store or default_store_location()))
    except StoreError as e:
        raise fail(str(e)) from None
    with st:
        months = st.months()
        out.print(f"store: {st.url}", highlight=False)
        if months:
            out.print(
                f"police.uk crimes: {sum(m.crimes for m in months):,} in {len(months)} months",
                highlight=False,
            )
            for m in months:
                out.print(f"  {m.month}  {m.crimes:>9,}  {', '.join(m.forces)}", highlight=False)
        else:
            out.print("police.uk crimes: none", highlight=False)
        stop_months = st.stop_months()
        if stop_months:
            out.print(
                f"police.uk stops and searches: {sum(m.crimes for m in stop_months):,} in {len(stop_months)} months",
                highlight=False,
            )
            for m in stop_months:
                out.print(f"  {m.month}  {m.crimes:>9,}  {', '.join(m.forces)}", highlight=False)
        for t in st.tables():
            out.print(f"table {t.id}: {t.feature_count:,} features ({t.name})", highlight=False)


@app.command()
def stats(
    group: Annotated[
        str | None,
        typer.Option(
            help="Group by any of month,category,force,outcome,lsoa,cell,neighbourhood (crimes) or month,force,"
            "type,outcome,object,cell,neighbourhood (stops), comma-separated."
        ),
    ] = None,
    months: Annotated[str | None, typer.Option(help="YYYY-MM or YYYY-MM..YYYY-MM (default: all).")] = None,
    category: Annotated[str | None, typer.Option(help="Category slugs, comma-separated (crimes only).")] = None,
    force: Annotated[str | None, typer.Option(help="Force ids, comma-separated.")] = None,
    bbox: Annotated[str | None, typer.Option(help="Only crimes or stops in minlng,minlat,maxlng,maxlat.")] = None,
    poly: Annotated[str | None, typer.Option(help="Only crimes or stops in a polygon: lat,lng:lat,lng:...")] = None,
    neighbourhood: Annotated[
        str | None,
        typer.Option(help="Only crimes or stops in a stored neighbourhood: force/id, e.g. leicestershire/NC04."),
    ] = None,
    zoom: Annotated[str | None, typer.Option(help="With --group cell: the web map zoom of the grid.")] = None,
    data: Annotated[
        str, typer.Option(help="crimes (as GET /stats/crimes) or stops (stops and searches, as GET /stats/stops).")
    ] = "crimes",
    fmt: Annotated[
        str | None, typer.Option("--format", help="table, csv or json (default: table on a terminal, else csv).")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Count crimes or stops, grouped and filtered as GET /stats/crimes and /stats/stops do: a table or CSV."""
    from crimemap.neighbourhood_stats import count_crimes, count_stops, grouping
    from crimemap.stats_output import GroupedQuery, csv_columns, csv_rows, csv_text, json_bytes
    from crimemap.stats_query import StatsError, parse_stats
    from crimemap.stats_stops_query import StopStatsQuery, parse_stop_stats

    if data not in ("crimes", "stops"):
        raise fail(f"--data is crimes or stops, not {data!r}", 2)
    if data == "stops" and category:
        raise fail("--category: stops and searches have no category (--data stops)", 2)
    query: GroupedQuery
    try:
        if data == "stops":
            query = grouping(parse_stop_stats)(group=group, months=months, force=force, bbox=bbox, poly=poly, zoom=zoom)
        else:
            query = grouping(parse_stats)(
                group=group, months=months, category=category, force=force, bbox=bbox, poly=poly, zoom=zoom
            )
    except StatsError as e:
        raise fail(f"--{e.parameter}: {e.message}", 2) from None
    kind = fmt or ("table" if sys.stdout.isatty() else "csv")
    if kind not in ("table", "csv", "json"):
        raise fail(f"--format is table, csv or json, not {kind!r}", 2)
    location = store or default_store_location()
    try:
        with open_store(location, readonly=not is_server_store(location)) as st:
            if neighbourhood:
                from crimemap.neighbourhoods import in_neighbourhood

                query = in_neighbourhood(st, query, neighbourhood)
            rows = count_stops(st, query) if isinstance(query, StopStatsQuery) else count_crimes(st, query)
    except StatsError as e:
        raise fail(f"--{e.parameter}: {e.message}", 2) from None
    except StoreError as e:
        raise fail(str(e)) from None
    if kind == "csv":
        sys.stdout.write(csv_text(query, rows))
    elif kind == "json":
        sys.stdout.write(json_bytes(query, rows).decode() + "\n")
    else:
        from rich.table import Table

        table = Table(*csv_columns(query), box=None, header_style="bold")
        for column in table.columns[-1:]:
            column.justify = "right"
        for fields in csv_rows(query, rows):
            table.add_row(*(f"{v:,}" if i == len(fields) - 1 else str(v) for i, v in enumerate(fields)))
        out.print(table)


@app.command()
def serve(
    store: StoreOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each opens the store).")] = 1,
    rate_limit: Annotated[
        bool, typer.Option(help="Limit each client to 15 requests/s, bursts of 30, as police.uk does.")
    ] = False,
    api_key: Annotated[list[str] | None, typer.Option(help="Accepted Maps Engine API key (repeatable).")] = None,
    bearer_token: Annotated[
        list[str] | None, typer.Option(help="Accepted OAuth bearer token for tables/{id} (repeatable).")
    ] = None,
    cache_mb: Annotated[int, typer.Option(help="Memory for cached responses, per worker; 0 turns caching off.")] = 64,
    public_policeuk: Annotated[
        bool, typer.Option(help="Keep the police.uk API open to all when --api-key is given.")
    ] = False,
    trust_proxy: Annotated[
        list[str] | None,
        typer.Option(help="Address of a proxy whose X-Forwarded-For is trusted (repeatable; default: none)."),
    ] = None,
    basemap: Annotated[
        str,
        typer.Option(
            help="The map's base map: osm (OpenStreetMap's tiles), none, a tile URL template .../{z}/{x}/{y}.png,"
            " or a local .pmtiles file (served by crimemap, for offline sites)."
        ),
    ] = "osm",
) -> None:
    """Serve the store over HTTP: the police.uk API, the Maps Engine API, OGC API - Features, downloads and the map."""
    import shutil

    import uvicorn
    from pydantic import ValidationError

    from crimemap.api.protocols import HTTP_PROTOCOL
    from crimemap.api.web.routes import basemap as check_basemap
    from crimemap.settings import Settings

    location = store or default_store_location()
    try:
        settings = Settings(  # the options; the environment for the settings without one (rate figures, tiles...)
            store=location,
            rate_limit=rate_limit,
            api_keys=frozenset(api_key or []),
            bearer_tokens=frozenset(bearer_token or []),
            cache_mb=cache_mb,
            public_policeuk=public_policeuk,
            basemap=str(Path(basemap).resolve()) if basemap.endswith(".pmtiles") else basemap,
        )
        check_basemap(basemap)
    except ValidationError as e:
        wrong = "; ".join(f"{Settings.variable(str(x['loc'][0]))}: {x['msg']}" for x in e.errors())
        raise fail(f"a CRIMEMAP_* variable is not a valid setting: {wrong}", 2) from None
    except ValueError as e:
        raise fail(str(e), 2) from None
    try:
        open_store(location).close()  # create or check it before workers start
    except StoreError as e:
        raise fail(str(e)) from None
    with stops_cleanly():  # SIGTERM too removes the shared folder
        shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
        shared = Path(tempfile.mkdtemp(prefix=f"crimemap-serve-{os.getpid()}-", dir=shm))
        settings = settings.model_copy(
            update={
                "rate_state": str(shared / "rate-limit.sqlite"),  # one set of buckets for all workers
                "token_secret": settings.token_secret or os.urandom(32).hex(),  # one page-token key for all workers
            }
        )
        os.environ.update(settings.environment())  # what each worker's Settings() reads back
        err.print(f"serving {location} on http://{host}:{port}/ (API docs at /docs)", highlight=False)
        try:
            uvicorn.run(
                "crimemap.api.server:app_from_environment",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="warning",
                http=HTTP_PROTOCOL,
                # X-Forwarded-For names the client only when it comes from a proxy the operator named.
                proxy_headers=bool(trust_proxy),
                forwarded_allow_ips=",".join(trust_proxy) if trust_proxy else "",
            )
        finally:
            shutil.rmtree(shared, ignore_errors=True)


@app.command()
def demo(
    store: Annotated[
        Path | None,
        typer.Option(help="Where to build the demo store (default: a temporary file, deleted when the demo stops)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    crimes_per_month: Annotated[int, typer.Option(help="Synthetic crimes per month.")] = 50_000,
    months: Annotated[int, typer.Option(help="Synthetic months.")] = 3,
    force: Annotated[bool, typer.Option("--force", help="Replace the file at --store if there is one.")] = False,
    basemap: Annotated[str, typer.Option(help="The map's base map, as for serve.")] = "osm",
) -> None:
    """Generate a sample archive into a fresh store and serve it (try /api/crimes-street/all-crime?...).

    The generated archive is deleted once loaded; a temporary store is deleted when the demo stops.
    """
    import shutil

    from crimemap.load.generate.neighbourhoods import DEFAULT_COUNT
    from crimemap.load.generate.world import DENSEST_CENTRE

    if store is not None and store.exists() and not force:
        raise fail(
            f"{store} exists: the demo builds a fresh store there, replacing it; choose another --store,"
            " or add --force to replace it"
        )
    with stops_cleanly():  # SIGTERM too deletes the temporary store
        workdir = Path(tempfile.mkdtemp(prefix="crimemap-demo-"))
        try:
            location = store or workdir / "demo.sqlite"
            for old in (location, Path(f"{location}-wal"), Path(f"{location}-shm")):
                old.unlink(missing_ok=True)
            with tempfile.TemporaryDirectory(prefix="crimemap-demo-archive-") as archive:
                generate(
                    Path(archive),
                    months=months,
                    crimes_per_month=crimes_per_month,
                    neighbourhoods=DEFAULT_COUNT,
                    quiet=False,
                )
                load([Path(archive)], store=str(location), quiet=False)
            _load_nyc_tables(str(location))
            _load_boundaries(str(location))
            lng, lat = DENSEST_CENTRE
            err.print(
                f"try: curl 'http://{host}:{port}/api/crimes-street/all-crime?lat={lat:.6f}&lng={lng:.6f}'",
                highlight=False,
            )
            serve(store=str(location), host=host, port=port, basemap=basemap)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


@app.command()
def export(
    table: Annotated[str, typer.Argument(help="The table id (`crimemap info` lists them).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; '-' or none for standard output.")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="geojson, csv, gpkg, parquet or fgb (default: from the file name)."),
    ] = None,
    where: Annotated[str | None, typer.Option(help="A Maps Engine where clause, e.g. 'MO=2'.")] = None,
    select: Annotated[str | None, typer.Option(help="Columns to write, comma-separated.")] = None,
    store: StoreOption = None,
    quiet: QuietOption = False,
) -> None:
    """Write a whole table as GeoJSON, CSV, GeoPackage, GeoParquet or FlatGeobuf, in constant memory."""

    from crimemap import export as exporting
    from crimemap.export.plan import ExportError, plan_export

    location = store or default_store_location()
    started = time.perf_counter()
    try:
        with open_store(location, readonly=not is_server_store(location)) as st:
            plan = plan_export(st, table, where, select)
            kind = exporting.format_for(output, fmt)
            total = plan.table.feature_count if plan.where is None else None
            with progress_bar(total, f"exporting {table}", quiet or output is None) as advance:
                size = exporting.write_export(st, plan, kind, output, progress=advance)
    except BrokenPipeError:  # `crimemap export T | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None
    except (ExportError, StoreError, OSError) as e:
        raise fail(str(e)) from None
    if not quiet and output is not None and str(output) != "-":
        elapsed = time.perf_counter() - started
        err.print(f"wrote {output} ({size:,} bytes, {kind}) in {elapsed:.1f} s", highlight=False)


NYC_TITLES = {
    "02378420399528461352-11853667273131550346": "NYC Crime Map: crimes per place and month",
    "02378420399528461352-17772055697785505571": "NYC Crime Map: crimes per place, month and type",
}
"""Titles of the NYC Crime Map's two Maps Engine tables, which are named by their 40-digit ids."""


def _load_nyc_tables(location: str, folder: Path | None = None) -> None:
    """Load the NYC Crime Map tables into the demo, with titles, when the shared data sit beside the checkout."""
    folder = folder or Path(__file__).resolve().parents[3] / "shared" / "data" / "nyc-crime-map" / "2015-05-08"
    files = sorted(folder.glob("*.geojson")) if folder.is_dir() else []
    for file in files:
        try:
            load([file], store=location, title=NYC_TITLES.get(file.stem), quiet=False)
        except typer.Exit:
            pass


def _load_boundaries(location: str) -> None:
    """Load the police force boundaries into the demo when the shared data sit beside the checkout."""
    folder = Path(__file__).resolve().parents[3] / "shared" / "data" / "boundaries" / "forces"
    if folder.is_dir():
        try:
            load([folder], store=location, quiet=False)
        except typer.Exit:
            pass


def main() -> None:  # pragma: no cover
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)


from crimemap.harvest.cli import register as _register_harvest  # noqa: E402

_register_harvest(app)
