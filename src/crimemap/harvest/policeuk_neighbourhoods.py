"""Harvest neighbourhoods and forces' details from a police.uk-style API into the store.

police.uk publishes neighbourhood boundaries in bulk (a zip of KML files,
:mod:`crimemap.load.neighbourhoods`); everything else about neighbourhoods and
forces exists only behind its API. This copies it, as the documents the API
serves (:mod:`crimemap.neighbourhoods`), from police.uk itself or from another
crimemap:

- ``--data neighbourhoods``: for each force, ``/{force}/neighbourhoods``, then
  for each neighbourhood its details, ``people``, ``events`` and ``priorities``;
- ``--data forces``: for each force, ``/forces/{force}`` and ``/forces/{force}/people``.

It is paced and retried by :class:`~crimemap.harvest.http.HarvestClient` (15
requests a second by default, police.uk's limit; a 429 waits as asked) and
resumable as the crime harvest is (:mod:`crimemap.harvest.state`): each
neighbourhood's four answers are one unit of the state file, and a force's
documents are written to the store together, replacing that force's
harvested documents (never its boundaries), once all its neighbourhoods are
fetched. A force the remote API does not know (404) is skipped with a note; a
listed neighbourhood whose details it then answers 404 is left out, and a 404 for
a team, events or priorities is stored as none (``[]``), each with a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from crimemap import neighbourhoods, vocab
from crimemap.harvest.http import RETRY_STATUSES, HarvestClient, HarvestError, HttpStats, retry_statuses
from crimemap.harvest.state import HarvestState
from crimemap.harvest.tiling import Progress, error_message
from crimemap.load.neighbourhoods import rename_neighbourhoods
from crimemap.store.base import Store

DATA = ("neighbourhoods", "forces")
"""What ``--data`` may name besides crimes and stops."""

RETRY = retry_statuses(RETRY_STATUSES)
"""Any 5xx is worth another try here: these methods have no 503 of too many results."""

NEIGHBOURHOOD_DOCUMENTS = (
    (neighbourhoods.DETAILS, ""),
    (neighbourhoods.PEOPLE, "/people"),
    (neighbourhoods.EVENTS, "/events"),
    (neighbourhoods.PRIORITIES, "/priorities"),
)
"""A neighbourhood's documents and the path after ``/{force}/{neighbourhood}`` that serves each."""


@dataclass(frozen=True)
class NeighbourhoodsHarvest:
    """What to harvest: ``data`` (one of :data:`DATA`) of ``forces`` (every force when empty)."""

    data: str
    forces: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.data not in DATA:
            raise ValueError(f"--data takes crimes, stops, all, neighbourhoods or forces; got {self.data!r}")
        for force in self.forces:
            if force not in vocab.FORCE_BY_ID:
                raise ValueError(f"unknown force {force!r}; the forces are listed at /api/forces")

    @property
    def every_force(self) -> tuple[str, ...]:
        return self.forces or tuple(f.id for f in vocab.FORCES)

    def job(self, base_url: str) -> dict[str, Any]:
        return {"api": f"policeuk-{self.data}", "url": base_url, "forces": list(self.every_force)}


@dataclass
class NeighbourhoodsSummary:
    base_url: str
    data: str
    forces: int = 0
    neighbourhoods: int = 0
    documents: int = 0
    resumed: int = 0
    skipped: list[str] = field(default_factory=list)
    http: HttpStats = field(default_factory=HttpStats)

    def describe(self, elapsed: float) -> str:
        what = f"{self.neighbourhoods:,} neighbourhoods of {self.forces} forces" if self.data == "neighbourhoods" else (
            f"the details and senior officers of {self.forces} forces"
        )  # fmt: skip
        lines = [
            f"harvested {what} ({self.documents:,} documents) from {self.base_url} in {elapsed:.1f} s"
            f" ({self.http.requests:,} requests"
            + (f", {self.resumed:,} units done before" if self.resumed else "")
            + (f", {self.http.throttled} throttled" if self.http.throttled else "")
            + ")"
        ]
        return "\n".join(lines + self.skipped)


class _Run:
    def __init__(
        self, client: HarvestClient, store: Store, state: HarvestState, what: NeighbourhoodsHarvest, progress: Progress
    ) -> None:
        self.client = client
        self.store = store
        self.state = state
        self.what = what
        self.progress = progress
        self.summary = NeighbourhoodsSummary(client.base_url, what.data, http=client.stats)

    def run(self) -> NeighbourhoodsSummary:
        for force in self.what.every_force:
            if self.what.data == "forces":
                self._force(force)
            else:
                self._neighbourhoods(force)
        return self.summary

    # -- fetching ---------------------------------------------------------------------------------------
    def _get(self, path: str) -> Any | None:
        """The JSON of a GET, or None for a 404; anything else but 200 stops the harvest."""
        response = self.client.request("GET", path, retry=RETRY)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise HarvestError(f"GET {response.request.url}: {error_message(response)}")
        try:
            return response.json()
        except ValueError:
            raise HarvestError(f"{response.request.url}: the answer is not JSON: {response.text[:200]!r}") from None

    def _expect(self, value: Any, kind: type, path: str) -> Any:
        if not isinstance(value, kind):
            raise HarvestError(f"{self.client.url(path)}: expected a JSON {kind.__name__}, got {value!r:.200}")
        return value

    # -- forces -------------------------------------------------------------------------------------------
    def _force(self, force: str) -> None:
        unit = f"{force}/force"
        if self.state.status(unit):
            self.summary.resumed += 1
            self.summary.forces += 1
            self.progress(1, f"{force} (done before)")
            return
        details = self._get(f"/forces/{force}")
        people = self._get(f"/forces/{force}/people")
        if details is None:
            self.summary.skipped.append(f"{force}: {self.client.base_url} does not know this force; skipped")
        else:
            documents = [
                (force, "", neighbourhoods.FORCE, orjson.dumps(self._expect(details, dict, f"/forces/{force}"))),
                (force, "", neighbourhoods.FORCE_PEOPLE, orjson.dumps(self._expect(people or [], list, "people"))),
            ]
            with self.store.writer() as writer:
                writer.put_documents(documents)
            self.summary.forces += 1
            self.summary.documents += len(documents)
        self.state.commit(unit)
        self.progress(1, force)

    # -- neighbourhoods ---------------------------------------------------------------------------------
    def _neighbourhoods(self, force: str) -> None:
        if self.state.status(f"{force}/written"):
            self.summary.resumed += 1
            self.summary.forces += 1
            self.progress(1, f"{force} (done before)")
            return
        listed = self._listed(force)
        if listed is None:
            self.summary.skipped.append(f"{force}: {self.client.base_url} has no neighbourhoods of this force; skipped")
            self.state.commit(f"{force}/written")
            self.progress(1, force)
            return
        for nbhd in listed:
            self._neighbourhood(force, nbhd)
        self._write(force, listed)
        self.progress(1, force)

    def _listed(self, force: str) -> list[str] | None:
        """The ids of the force's neighbourhoods (its list kept in the state file), or None for a 404."""
        unit = f"{force}/list"
        if self.state.status(unit):
            body = next(iter(self.state.records(f"{force}/list")))
        else:
            answer = self._get(f"/{force}/neighbourhoods")
            if answer is None:
                return None
            body = orjson.dumps(self._expect(answer, list, f"/{force}/neighbourhoods"))
            self.state.commit(unit, group=f"{force}/list", records=[("list", body)])
        try:
            return [str(n["id"]) for n in orjson.loads(body)]
        except (KeyError, TypeError) as e:
            raise HarvestError(f"/{force}/neighbourhoods: not a list of {{id, name}} ({e})") from None

    def _neighbourhood(self, force: str, nbhd: str) -> None:
        unit = f"{force}/n/{nbhd}"
        if self.state.status(unit):
            self.summary.resumed += 1
            return
        base = f"/{force}/{quote(nbhd, safe='')}"
        records: list[tuple[str, bytes]] = []
        for kind, suffix in NEIGHBOURHOOD_DOCUMENTS:
            answer = self._get(base + suffix)
            if answer is None and kind == neighbourhoods.DETAILS:
                self.summary.skipped.append(f"{force}/{nbhd}: listed, but {base} is 404; left out")
                break
            if answer is None:  # a team, events or priorities the remote has no page for: none
                self.summary.skipped.append(f"{force}/{nbhd}: {base + suffix} is 404; stored as []")
                answer = []
            expected = dict if kind == neighbourhoods.DETAILS else list
            records.append((f"{nbhd}\x00{kind}", orjson.dumps(self._expect(answer, expected, base + suffix))))
        self.state.commit(unit, group=force, records=records)

    def _write(self, force: str, listed: list[str]) -> None:
        """Replace the force's harvested documents by this harvest's, in one transaction."""
        documents = [(force, "", neighbourhoods.LIST, next(iter(self.state.records(f"{force}/list"))))]
        for key, body in self.state.keyed_records(force):
            nbhd, kind = key.split("\x00")
            documents.append((force, nbhd, kind, body))
        names = {str(n["id"]): str(n["name"]) for n in orjson.loads(documents[0][3])}
        with self.store.writer() as writer:
            for kind in (neighbourhoods.LIST, *(k for k, _ in NEIGHBOURHOOD_DOCUMENTS)):
                writer.delete_documents(force, kind)
            writer.put_documents(documents)
            rename_neighbourhoods(self.store, writer, force, names)
        self.state.commit(f"{force}/written", drop=force)
        self.summary.forces += 1
        self.summary.neighbourhoods += len({nbhd for _, nbhd, kind, _ in documents if kind == neighbourhoods.DETAILS})
        self.summary.documents += len(documents)


def harvest_neighbourhoods(
    store: Store,
    client: HarvestClient,
    what: NeighbourhoodsHarvest,
    state: HarvestState,
    progress: Progress | None = None,
) -> NeighbourhoodsSummary:
    """Harvest ``what`` from the police.uk API at ``client.base_url`` (``.../api``) into ``store``.

    ``state`` must be opened with ``what.job(client.base_url)``. Raises
    :class:`HarvestError`; what was done stays in ``state``.
    """
    return _Run(client, store, state, what, progress or (lambda n, note: None)).run()


__all__ = ["DATA", "NeighbourhoodsHarvest", "NeighbourhoodsSummary", "harvest_neighbourhoods"]
