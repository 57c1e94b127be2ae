"""Harvest a table of a Maps Engine-style API (``tables/{id}/features``) into a local feature table.

Pages of up to 1,000 features are read in turn, following ``nextPageToken``.
Each page is committed to the state file (:mod:`crimemap.harvest.state`)
together with the token of the next one, so a harvest stopped by a failure
resumes from the last saved page token. Once the last page is in, the table is
written to the store in one transaction by crimemap's GeoJSON loader
(:func:`crimemap.load.tables.load_table`), so its schema is inferred exactly as
``crimemap load`` infers a downloaded file's.

Decisions:

- **Feature ids.** Maps Engine features carry their id (``gx_id``) only when it
  is selected, so it is added to ``select``; without ``--select``, the table's
  columns are asked for once with ``include=schema`` (a parameter of the real
  API) to build a select list of every column plus ``gx_id``. The local table
  keeps the remote ids. A server that does not describe its schema is harvested
  without ``select`` and its features numbered in the order they came.
- **Retries.** ``503 backendError`` (and any 5xx, and Google's 403
  ``rateLimitExceeded``) is asked again with exponential backoff, as Google
  advised its clients; ``429`` waits for ``Retry-After``.
- **Keys.** ``key`` is sent with every call but never written to the state file.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from crimemap.harvest.http import RETRY_STATUSES, HarvestClient, HarvestError, HttpStats
from crimemap.harvest.state import HarvestState
from crimemap.load.errors import LoadError
from crimemap.load.tables import load_table
from crimemap.store.base import Store
from crimemap.wire import GX_ID, MAX_RESULTS

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
"""Google's 403 reasons that mean "slow down", not "forbidden"."""

FEATURES = "features"
"""The state file's record group holding the harvested features."""

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Progress = Callable[[int, str], None]


def google_error(response: httpx.Response) -> tuple[str, str]:
    """``(reason, message)`` of Google's error envelope, or ``("", text)`` for another body."""
    try:
        error = response.json()["error"]
        first = (error.get("errors") or [{}])[0]
        return str(first.get("reason", "")), str(error.get("message") or first.get("message", ""))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return "", response.text.strip()[:300]


def mapsengine_retry(response: httpx.Response) -> bool:
    """5xx (``backendError``), and 403 ``rateLimitExceeded``/``userRateLimitExceeded``."""
    if response.status_code in RETRY_STATUSES:
        return True
    return response.status_code == 403 and google_error(response)[0] in RATE_LIMIT_REASONS


@dataclass(frozen=True)
class MapsEngineHarvest:
    """What to harvest; :meth:`job` identifies it in the state file (without the key)."""

    table_id: str
    local_id: str | None = None
    select: str | None = None
    where: str | None = None
    page_size: int = MAX_RESULTS
    keep_ids: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= MAX_RESULTS:
            raise ValueError(f"the page size is 1 to {MAX_RESULTS:,} features")
        if not self.table_id.strip():
            raise ValueError("a table id is needed")

    @property
    def target(self) -> str:
        """The local table's id."""
        return self.local_id or self.table_id

    def job(self, base_url: str) -> dict[str, Any]:
        return {"api": "mapsengine", "url": base_url, **asdict(self)}


@dataclass
class MapsEngineSummary:
    url: str
    table_id: str
    local_id: str
    features: int = 0
    pages: int = 0
    resumed_pages: int = 0
    notes: list[str] = field(default_factory=list)
    http: HttpStats = field(default_factory=HttpStats)

    def describe(self, elapsed: float) -> str:
        lines = [
            f"harvested table {self.table_id} from {self.url} into {self.local_id}: {self.features:,} features"
            f" in {self.pages} pages, {elapsed:.1f} s",
            f"  {self.http.requests:,} requests, {self.http.retries} retried, {self.http.throttled} answered 429,"
            f" {self.http.waited:.1f} s spent waiting",
        ]
        if self.resumed_pages:
            lines.append(f"  resumed after page {self.resumed_pages}: earlier pages were not fetched again")
        lines.extend(f"  {note}" for note in self.notes)
        return "\n".join(lines)


def _name(name: str) -> str:
    """A column name as ``select`` writes it: plain, or in backticks."""
    return name if _PLAIN_NAME.fullmatch(name) else "`" + name.replace("`", "") + "`"


class _Run:
    def __init__(
        self,
        client: HarvestClient,
        store: Store,
        state: HarvestState,
        what: MapsEngineHarvest,
        key: str | None,
        progress: Progress,
    ) -> None:
        self.client = client
        self.store = store
        self.state = state
        self.what = what
        self.key = key
        self.progress = progress
        self.path = f"/tables/{quote(what.table_id, safe='')}/features"
        self.summary = MapsEngineSummary(client.base_url, what.table_id, what.target, http=client.stats)

    def get(self, params: dict[str, str | None], token: str | None = None) -> dict[str, Any]:
        sent = {k: v for k, v in {**params, "key": self.key, "pageToken": token}.items() if v is not None}
        response = self.client.request("GET", self.path, params=sent, retry=mapsengine_retry)
        if response.status_code != 200:
            reason, message = google_error(response)
            hint = ""
            if token is not None and response.status_code == 400:
                hint = (
                    "; the server no longer accepts the saved page token (did it restart?):"
                    " give --restart to harvest the table from its first page"
                )
            raise HarvestError(
                f"{self.client.url(self.path)}: {response.status_code} {reason or response.reason_phrase}:"
                f" {message}{hint}"
            )
        try:
            body = response.json()
        except ValueError:
            raise HarvestError(f"{response.request.url}: the answer is not JSON: {response.text[:200]!r}") from None
        if not isinstance(body, dict) or not isinstance(body.get("features"), list):
            raise HarvestError(f"{self.client.url(self.path)}: the answer is not a FeatureCollection")
        return body

    def selection(self) -> str | None:
        """The ``select`` sent with every page (see the module docstring on feature ids)."""
        what = self.what
        if what.select:
            names = [n.strip().strip('`"') for n in what.select.split(",")]
            return what.select if not what.keep_ids or GX_ID in names else f"{what.select},{GX_ID}"
        if not what.keep_ids:
            return None
        probe = self.get({"maxResults": "1", "include": "schema", "where": what.where, "version": "published"})
        columns = (probe.get("schema") or {}).get("columns") or []
        names = [str(c["name"]) for c in columns if isinstance(c, dict) and c.get("name")]
        if not names:
            self.summary.notes.append(
                "the server did not describe the table (include=schema): features are numbered in the order"
                " they came, not by their remote ids"
            )
            return None
        return ",".join(_name(n) for n in [*names, *([] if GX_ID in names else [GX_ID])])

    def run(self) -> MapsEngineSummary:
        state, what = self.state, self.what
        if state.get("select_decided") is None:
            state.commit(meta={"select": self.selection(), "select_decided": True})
        params = {
            "maxResults": str(what.page_size),
            "select": state.get("select"),
            "where": what.where,
            "version": "published",
        }
        pages, count = state.get("pages", 0), state.get("features", 0)
        token: str | None = state.get("next_token")
        self.summary.resumed_pages = pages
        if pages:
            self.progress(count, f"resuming after page {pages}")
        while not state.get("complete", False):
            body = self.get(params, token)
            features = body["features"]
            following = body.get("nextPageToken") or None
            if following is not None and following == token:
                raise HarvestError(f"{self.client.url(self.path)}: the server gave the same page token twice")
            records = [(f"{count + i:012d}", orjson.dumps(f)) for i, f in enumerate(features)]
            pages, count, token = pages + 1, count + len(features), following
            meta = {"pages": pages, "features": count, "next_token": token, "complete": token is None}
            state.commit(f"page:{pages}", group=FEATURES, records=records, meta=meta)
            self.progress(len(features), f"page {pages}")
        self.summary.pages = pages
        self.summary.features = self._load()
        return self.summary

    def _load(self) -> int:
        """Write the harvested features to the store as one table, through the GeoJSON loader."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", self.what.target)
        with tempfile.TemporaryDirectory(prefix="crimemap-harvest-", dir=self.state.path.parent) as folder:
            path = Path(folder) / f"{safe}.geojson"
            with path.open("wb") as out:
                out.write(b'{"type":"FeatureCollection","features":[')
                for n, payload in enumerate(self.state.records(FEATURES)):
                    out.write(b"," + payload if n else payload)
                out.write(b"]}")
            try:
                loaded = load_table(self.store, path, table_id=self.what.target, name=self.what.target)
            except LoadError as e:
                raise HarvestError(f"the harvested features cannot be stored: {e}") from None
        self.summary.notes.extend(loaded.notes)
        return int(loaded)


def api_root(url: str) -> str:
    """The API's root from a server's address: ``https://www.googleapis.com`` -> ``.../mapsengine/v1``.

    >>> api_root("http://127.0.0.1:8000")
    'http://127.0.0.1:8000/mapsengine/v1'
    """
    url = url.rstrip("/")
    return url if url.endswith("/mapsengine/v1") else url + "/mapsengine/v1"


def harvest_mapsengine(
    store: Store,
    client: HarvestClient,
    what: MapsEngineHarvest,
    state: HarvestState,
    *,
    key: str | None = None,
    progress: Progress | None = None,
) -> MapsEngineSummary:
    """Harvest one table from the Maps Engine API at ``client.base_url`` (``.../mapsengine/v1``).

    ``state`` must be opened with ``what.job(client.base_url)``; a harvest
    found there continues from its saved page token. ``progress(n, note)`` is
    called with each page's feature count. Raises :class:`HarvestError`; pages
    fetched so far stay in ``state``.
    """
    return _Run(client, store, state, what, key, progress or (lambda n, note: None)).run()


__all__ = [
    "MapsEngineHarvest",
    "MapsEngineSummary",
    "api_root",
    "google_error",
    "harvest_mapsengine",
    "mapsengine_retry",
]
