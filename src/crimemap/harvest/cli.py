"""``crimemap harvest policeuk|mapsengine``: the harvesters on the command line.

Registered on the main app by :func:`register`. A progress bar shows on a
terminal, nothing in scripts; a summary follows unless ``--quiet``. Work done
is kept in a state file (default: beside the store) until the harvest
completes, so the same command run again after a failure or Ctrl-C continues
where it stopped.

Printing and the progress bar come from :mod:`crimemap.console`, as for every command.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from crimemap import cli_help
from crimemap.console import QuietOption, StoreOption, fail, out, progress_bar
from crimemap.harvest import mapsengine, policeuk, policeuk_neighbourhoods, policeuk_stops, tiling
from crimemap.harvest.http import DEFAULT_RATE, HarvestClient, HarvestError
from crimemap.harvest.state import HarvestState, StateMismatch, default_state_path
from crimemap.store import StoreError, default_store_location, open_store

StateOption = Annotated[
    Path | None,
    typer.Option(
        help="The state file that makes a harvest resumable. Default: <store>.harvest.sqlite beside the store.",
        show_default=False,
    ),
]
RestartOption = Annotated[
    bool, typer.Option("--restart", help="Discard an unfinished harvest's state file and start over.")
]
RateOption = Annotated[float, typer.Option(help="Requests a second at most (police.uk allows 15); 0 for no limit.")]


@contextmanager
def _harvesting(state_path: Path) -> Iterator[None]:
    """Turn failures and Ctrl-C into messages that say how to continue."""

    def hint(e: BaseException) -> str:
        if isinstance(e, StateMismatch) or not state_path.exists():
            return ""
        return (
            f"\nwork done so far is saved in {state_path}: run the same command again to continue"
            " (--restart to start over)"
        )

    try:
        yield
    except (HarvestError, StoreError) as e:
        raise fail(f"{e}{hint(e)}") from None
    except KeyboardInterrupt as e:
        raise fail(f"interrupted{hint(e)}", 130) from None


def _run(
    location: str | None,
    state: Path | None,
    base: str,
    job: dict[str, Any],
    restart: bool,
    client: Callable[[], HarvestClient],
    work: Callable[..., Any],
) -> tuple[Any, float]:
    """Open the store, the client and the state file; run ``work(store, client, state)``; clean up."""
    location = location or default_store_location()
    state_path = state or default_state_path(location)
    started = time.perf_counter()
    with _harvesting(state_path):
        with open_store(location) as st, HarvestState(state_path, job, restart=restart) as saved, client() as c:
            summary = work(st, c, saved)
        saved.finish()
    return summary, time.perf_counter() - started


def harvest_policeuk(
    base_url: Annotated[
        str, typer.Argument(help="The server: https://data.police.uk or http://HOST:PORT (a trailing /api is fine).")
    ],
    bbox: Annotated[
        str | None,
        typer.Option(help="The area: minlng,minlat,maxlng,maxlat in degrees (crimes and stops).", show_default=False),
    ] = None,
    months: Annotated[
        str | None,
        typer.Option(
            help="Months: 2017-01..2017-06 (inclusive), 2017-01,2017-03 or 2017-01 (crimes and stops).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        str | None,
        typer.Option(
            help="Store every crime under this force, e.g. city-of-london (police.uk's crimes do not say"
            " which force recorded them). Default: the force whose stored boundary holds each crime."
            " With --data neighbourhoods or forces: the forces to harvest, comma-separated (default: all).",
            show_default=False,
        ),
    ] = None,
    category: Annotated[str, typer.Option(help="A crime category slug, or all-crime.")] = "all-crime",
    store: StoreOption = None,
    state: StateOption = None,
    restart: RestartOption = False,
    rate: RateOption = DEFAULT_RATE,
    tile_size: Annotated[float, typer.Option(help="Largest tile asked for, in degrees.")] = tiling.DEFAULT_TILE_SIZE,
    min_tile_size: Annotated[
        float, typer.Option(help="Tiles past 10,000 crimes are split down to this size, in degrees.")
    ] = tiling.MIN_TILE_SIZE,
    no_location: Annotated[
        bool,
        typer.Option("--no-location/--skip-no-location", help="Also harvest the force's crimes-no-location."),
    ] = True,
    data: Annotated[
        str,
        typer.Option(
            help="What to harvest: crimes (crimes-street), stops (stops-street and stops-no-location), all (both);"
            " neighbourhoods (each force's neighbourhoods: details, team, events, priorities) or forces"
            " (each force's details and senior officers)."
        ),
    ] = "crimes",
    quiet: QuietOption = False,
) -> None:
    """Harvest street-level crimes, or stops and searches, of an area and months from a police.uk-style API;
    or neighbourhoods, or forces' details."""
    if data in policeuk_neighbourhoods.DATA:
        _harvest_neighbourhoods(base_url, data, force, store, state, restart, rate, quiet)
        return
    if data not in ("crimes", "stops", "all"):
        raise fail(f"--data takes crimes, stops, all, neighbourhoods or forces; got {data!r}", 2)
    if bbox is None or months is None:
        raise fail(f"--data {data} needs --bbox and --months: the area and the months to harvest", 2)
    if data in ("stops", "all"):
        if force is None:
            raise fail(
                f"--data {data} needs --force: stops and searches are harvested one force at a time"
                " (they are not placed by the stored boundaries, as crimes are)",
                2,
            )
        _harvest_stops(base_url, bbox, months, force, store, state, restart, rate, tile_size, min_tile_size,
                       no_location, quiet)  # fmt: skip
        if data == "stops":
            return

    try:
        what = policeuk.PoliceUKHarvest(
            tiling.BBox.parse(bbox), policeuk.parse_months(months), force, category,
            tile_size, min_tile_size, no_location,
        )  # fmt: skip
    except ValueError as e:
        raise fail(str(e), 2) from None
    base = policeuk.api_root(base_url)

    def work(st: Any, client: HarvestClient, saved: HarvestState) -> policeuk.PoliceUKSummary:
        total = len(what.months) * policeuk.units_per_month(what, st)
        with progress_bar(total, f"harvesting {base}", quiet) as advance:
            return policeuk.harvest_policeuk(st, client, what, saved, advance)

    summary, elapsed = _run(
        store, state, base, what.job(base), restart,
        lambda: HarvestClient(base, rate=rate or None, retry=tiling.POLICEUK_RETRY), work,
    )  # fmt: skip
    if not quiet:
        out.print(summary.describe(elapsed), highlight=False)


def _harvest_stops(
    base_url: str, bbox: str, months: str, force: str, store: str | None, state: Path | None, restart: bool,
    rate: float, tile_size: float, min_tile_size: float, no_location: bool, quiet: bool,
) -> None:  # fmt: skip
    """``crimemap harvest policeuk --data stops``: :mod:`crimemap.harvest.policeuk_stops`."""
    try:
        what = policeuk_stops.StopsHarvest(
            tiling.BBox.parse(bbox), policeuk.parse_months(months), force, tile_size, min_tile_size, no_location
        )
    except ValueError as e:
        raise fail(str(e), 2) from None
    base = policeuk.api_root(base_url)

    def work(st: Any, client: HarvestClient, saved: HarvestState) -> policeuk_stops.StopsSummary:
        total = len(what.months) * policeuk_stops.units_per_month(what)
        with progress_bar(total, f"harvesting stops from {base}", quiet) as advance:
            return policeuk_stops.harvest_stops(st, client, what, saved, advance)

    summary, elapsed = _run(
        store, state, base, what.job(base), restart,
        lambda: HarvestClient(base, rate=rate or None, retry=tiling.POLICEUK_RETRY), work,
    )  # fmt: skip
    if not quiet:
        out.print(summary.describe(elapsed), highlight=False)


def _harvest_neighbourhoods(
    base_url: str, data: str, force: str | None, store: str | None, state: Path | None, restart: bool, rate: float,
    quiet: bool,
) -> None:  # fmt: skip
    """``crimemap harvest policeuk --data neighbourhoods|forces``: :mod:`crimemap.harvest.policeuk_neighbourhoods`."""
    forces = tuple(f.strip() for f in force.split(",") if f.strip()) if force else ()
    try:
        what = policeuk_neighbourhoods.NeighbourhoodsHarvest(data, forces)
    except ValueError as e:
        raise fail(str(e), 2) from None
    base = policeuk.api_root(base_url)

    def work(st: Any, client: HarvestClient, saved: HarvestState) -> policeuk_neighbourhoods.NeighbourhoodsSummary:
        with progress_bar(len(what.every_force), f"harvesting {data} from {base}", quiet) as advance:
            return policeuk_neighbourhoods.harvest_neighbourhoods(st, client, what, saved, advance)

    summary, elapsed = _run(
        store, state, base, what.job(base), restart,
        lambda: HarvestClient(base, rate=rate or None, retry=policeuk_neighbourhoods.RETRY), work,
    )  # fmt: skip
    if not quiet:
        out.print(summary.describe(elapsed), highlight=False)


def harvest_mapsengine(
    base_url: Annotated[
        str,
        typer.Argument(
            help="The server: https://www.googleapis.com or http://HOST:PORT (a trailing /mapsengine/v1 is fine)."
        ),
    ],
    table_id: Annotated[str, typer.Argument(help="The remote table's id.")],
    key: Annotated[str | None, typer.Option(help="API key sent as `key` (never saved).", show_default=False)] = None,
    select: Annotated[
        str | None, typer.Option(help="Columns to harvest, e.g. YR,MO,CR,geometry (default: all).")
    ] = None,
    where: Annotated[str | None, typer.Option(help="A Maps Engine where clause, e.g. 'YR = 2015'.")] = None,
    table: Annotated[str | None, typer.Option(help="The local table's id (default: the remote table's id).")] = None,
    store: StoreOption = None,
    state: StateOption = None,
    restart: RestartOption = False,
    rate: RateOption = DEFAULT_RATE,
    quiet: QuietOption = False,
) -> None:
    """Harvest a whole table (or a selection) from a Maps Engine-style API into a local feature table."""

    try:
        what = mapsengine.MapsEngineHarvest(table_id, table, select, where)
    except ValueError as e:
        raise fail(str(e), 2) from None
    base = mapsengine.api_root(base_url)

    def work(st: Any, client: HarvestClient, saved: HarvestState) -> mapsengine.MapsEngineSummary:
        with progress_bar(None, f"harvesting {table_id}", quiet) as advance:
            return mapsengine.harvest_mapsengine(st, client, what, saved, key=key, progress=advance)

    summary, elapsed = _run(
        store, state, base, what.job(base), restart,
        lambda: HarvestClient(base, rate=rate or None, retry=mapsengine.mapsengine_retry), work,
    )  # fmt: skip
    if not quiet:
        out.print(summary.describe(elapsed), highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``crimemap harvest policeuk`` and ``crimemap harvest mapsengine`` to ``app``."""
    harvest = cli_help.App(
        help="Harvest a remote police.uk or Maps Engine API into the store, resumably.",
        no_args_is_help=True,
    )
    harvest.command("policeuk")(harvest_policeuk)
    harvest.command("mapsengine")(harvest_mapsengine)
    app.add_typer(harvest, name="harvest")


__all__ = ["harvest_mapsengine", "harvest_policeuk", "register"]
