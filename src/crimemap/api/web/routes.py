"""The crime map page: ``GET /`` and its assets under ``GET /static/...``.

The page (``crimemap/web/index.html``, ``app.js``, ``style.css``) is a client
of the police.uk API served beside it: it asks ``/api/crimes-street-dates`` and
``/api/crime-categories`` for its dropdowns and ``/api/crimes-street/{category}``
with a ``poly`` of the visible area after every map move. Nothing is built.

Leaflet and leaflet.markercluster are npm packages (``package.json`` at the
repository root; ``npm ci`` installs them into ``node_modules/``); they are
served from there, never copied into the repository::

    /static/app.js                                  crimemap/web/app.js
    /static/lib/leaflet/leaflet.js                  node_modules/leaflet/dist/leaflet.js
    /static/lib/leaflet.markercluster/MarkerCluster.css

``node_modules`` is the setting ``node_modules`` (``$CRIMEMAP_NODE_MODULES``) when set, else the
repository root's, else the working directory's. It is looked up at every request (the machine's
settings are read again: :func:`node_modules`), so ``npm ci`` while the server runs is enough.
Without Leaflet the page still loads, and says to run ``npm ci``.

The base map is a setting (``crimemap serve --basemap``, :class:`Settings.basemap`):

- ``osm``: OpenStreetMap's raster tiles, with their attribution (what ``crimemap
  serve`` uses unless told otherwise);
- a tile URL template (``https://tiles.example.org/{z}/{x}/{y}.png``), credited
  with ``$CRIMEMAP_TILE_ATTRIBUTION``;
- a local ``.pmtiles`` file (a Protomaps vector base map, for sites without the
  internet): served by crimemap itself at ``/basemap.pmtiles`` (with HTTP range
  requests) and drawn by ``protomaps-leaflet``;
- ``none``: no base map; the force boundaries are drawn alone, and the map says so.

Without the setting (an app made in a test, say), ``$CRIMEMAP_TILE_URL`` names a
tile server if set; otherwise there is no base map and the page makes no request
to any other host.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from crimemap.api.policeuk.errors import error_response
from crimemap.echo import echo
from crimemap.settings import Settings

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
"""The page and its own assets, shipped as package data."""

REPO_ROOT = Path(__file__).resolve().parents[4]
"""The repository root, when crimemap runs from a checkout (``src/crimemap/api/web/routes.py``)."""

NODE_MODULES_ENV = Settings.variable("node_modules")
TILE_URL_ENV = Settings.variable("tile_url")
TILE_ATTRIBUTION_ENV = Settings.variable("tile_attribution")

OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
PMTILES_PATH = "/basemap.pmtiles"

LIBRARIES: dict[str, tuple[str, ...]] = {
    "leaflet": ("leaflet.css", "leaflet.js"),
    "leaflet.markercluster": ("MarkerCluster.css", "leaflet.markercluster.js"),
    "chart.js": ("chart.umd.js",),
    "protomaps-leaflet": ("protomaps-leaflet.js",),
}
"""The npm packages the page uses and the files of their ``dist/`` it loads, in order."""

ASSET_FOLDERS: dict[str, str] = {
    "leaflet": "dist",
    "leaflet.markercluster": "dist",
    "chart.js": "dist",
    "protomaps-leaflet": "dist",
    "swagger-ui-dist": "",
}
"""Every npm package served under ``/static/lib/<package>/``, and the folder of it that is served."""

_LIBS_MARK = "<!-- crimemap:libraries -->"
_CONFIG_MARK = "<!-- crimemap:config -->"
_NO_CACHE = {"Cache-Control": "no-cache"}


def install(app: FastAPI) -> None:
    """Mount the page on ``app`` (called by :func:`crimemap.api.app.create_app`)."""
    app.add_api_route("/", page, methods=["GET", "HEAD"], include_in_schema=False, response_class=HTMLResponse)
    app.add_api_route("/static/{path:path}", asset, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route(PMTILES_PATH, pmtiles, methods=["GET", "HEAD"], include_in_schema=False)


def page(request: Request) -> HTMLResponse:
    """``index.html`` with the libraries that are installed and the page's settings filled in."""
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    html = html.replace(_LIBS_MARK, _library_tags(node_modules()))
    html = html.replace(_CONFIG_MARK, _config_tag(basemap(request.app.state.settings.basemap)))
    return HTMLResponse(html, headers=_NO_CACHE)


def basemap(setting: str | None) -> dict[str, str | None]:
    """What the page draws under the crimes: ``{"kind": "tiles"|"pmtiles"|"none", "url", "attribution"}``.

    Raises ``ValueError`` for a setting that is none of ``osm``, ``none``, a URL
    template with ``{z}``, ``{x}`` and ``{y}``, or an existing ``.pmtiles`` file.
    """
    machine = Settings()
    credit = machine.tile_attribution
    if setting is None:
        url = machine.tile_url
        return {"kind": "tiles" if url else "none", "url": url, "attribution": credit}
    value = setting.strip()
    if value.lower() == "none":
        return {"kind": "none", "url": None, "attribution": None}
    if value.lower() == "osm":
        return {"kind": "tiles", "url": OSM_TILES, "attribution": OSM_ATTRIBUTION}
    if value.lower().endswith(".pmtiles") and "://" not in value:
        if not Path(value).is_file():
            raise ValueError(f"--basemap {value}: no such PMTiles file")
        return {"kind": "pmtiles", "url": PMTILES_PATH, "attribution": credit or OSM_ATTRIBUTION}
    if all(part in value for part in ("{z}", "{x}", "{y}")):
        return {"kind": "tiles", "url": value, "attribution": credit}
    raise ValueError(
        f"--basemap {value!r}: give osm, none, a tile URL template with {{z}}, {{x}} and {{y}}, or a .pmtiles file"
    )


def pmtiles(request: Request) -> Response:
    """The configured PMTiles base map, with HTTP range requests (how PMTiles readers read it)."""
    setting = request.app.state.settings.basemap
    if not setting or not setting.strip().lower().endswith(".pmtiles") or not Path(setting.strip()).is_file():
        return error_response(404, "no PMTiles base map is configured", "crimemap serve --basemap FILE.pmtiles")
    file = Path(setting.strip())
    return _range_checked(FileResponse(file, media_type="application/vnd.pmtiles", stat_result=file.stat()), request)


def asset(path: str, request: Request) -> Response:
    """A file of the page (``/static/app.js``) or of an installed library (``/static/lib/leaflet/...``).

    Browsers revalidate every time (``no-cache``) and get 304 while the file is unchanged, so an
    edited ``app.js`` or a new ``npm ci`` shows at the next reload.
    """
    file = _library_file(path) if path.startswith("lib/") else _inside(WEB_DIR, path)
    if file is None or file.name == "index.html":
        return _not_found(path)
    response = FileResponse(file, stat_result=file.stat(), headers=_NO_CACHE)
    etag = response.headers["etag"]
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers={"ETag": etag, **_NO_CACHE})
    return _range_checked(response, request)


def _range_checked(response: FileResponse, request: Request) -> Response:
    """``response``, or the police.uk envelope's 400 or 416 for a ``Range`` it cannot serve.

    Starlette's FileResponse answers those itself, in plain text (416 with no body);
    its own parser decides here, so what is refused is exactly what it would refuse.
    """
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if wanted is None or request.method not in ("GET", "HEAD") or response.stat_result is None:
        return response
    if if_range is not None and not response._should_use_range(if_range):
        return response
    size = response.stat_result.st_size
    try:
        FileResponse._parse_range_header(wanted, size)
    except MalformedRangeHeader as e:
        return error_response(
            400, f"the Range {echo(wanted)} cannot be read: {e.content}", "ask for bytes=FIRST-LAST, e.g. bytes=0-1023"
        )
    except RangeNotSatisfiable:
        return error_response(
            416,
            f"the range {echo(wanted)} starts past the end of the file ({size:,} bytes)",
            "ask for bytes=FIRST-LAST within the file, or no Range for the whole file",
            {"Content-Range": f"bytes */{size}"},
        )
    return response


def node_modules() -> Path | None:
    """The ``node_modules`` folder that holds Leaflet, or None when it is not installed."""
    configured = Settings().node_modules
    candidates = [configured] if configured else [REPO_ROOT / "node_modules", Path.cwd() / "node_modules"]
    for folder in candidates:
        if (folder / "leaflet" / "dist" / "leaflet.js").is_file():
            return folder
    return None


def _library_file(path: str) -> Path | None:
    """``lib/<package>/<file>`` -> ``node_modules/<package>/dist/<file>`` for the packages in ASSET_FOLDERS."""
    package, _, rest = path.removeprefix("lib/").partition("/")
    folder = node_modules()
    if package not in ASSET_FOLDERS or folder is None:
        return None
    return _inside(folder / package / ASSET_FOLDERS[package], rest)


def _inside(base: Path, relative: str) -> Path | None:
    """``base / relative`` when that is a file inside ``base`` (no ``..`` or absolute escapes)."""
    if not relative:
        return None
    try:
        base = base.resolve()
        file = (base / relative).resolve()
        return file if file.is_relative_to(base) and file.is_file() else None
    except (OSError, ValueError):  # a NUL byte, a name too long for the file system
        return None


def _library_tags(folder: Path | None) -> str:
    """``<link>`` and ``<script>`` tags for each installed library; none when Leaflet is missing."""
    if folder is None:
        return ""
    tags = []
    for package, files in LIBRARIES.items():
        if not (folder / package / "dist" / files[-1]).is_file():
            continue
        for name in files:
            url = f"/static/lib/{package}/{name}"
            tags.append(
                f'<link rel="stylesheet" href="{url}">' if name.endswith(".css") else f'<script src="{url}"></script>'
            )
    return "\n  ".join(tags)


def _config_tag(base: dict[str, str | None]) -> str:
    """The page's settings as JSON in a ``<script type="application/json">`` (``<`` escaped)."""
    config = {
        "tileUrl": base["url"] if base["kind"] == "tiles" else None,
        "tileAttribution": base["attribution"] if base["kind"] == "tiles" else None,
        "basemap": base,
    }
    body = orjson.dumps(config).decode().replace("<", "\\u003c")
    return f'<script id="crimemap-config" type="application/json">{body}</script>'


def _not_found(path: str) -> Response:
    hint = ""
    if path.startswith("lib/"):
        hint = "the map's libraries are npm packages: run `npm ci` in the crimemap repository"
    return error_response(404, f"no file /static/{path}", hint)
