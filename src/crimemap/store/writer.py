"""The writer interface: how loaders put records into a store, one all-or-nothing load at a time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from crimemap.records import Crime, Feature, OutcomeRecord, Stop
from crimemap.store.catalogue import TableInfo


class StoreWriter(ABC):
    """Writes of one load: all of them commit together, or none does.

    Obtained from :meth:`Store.writer`; leaving the ``with`` block by an
    exception rolls everything back, so a failed load leaves the store as it was.

    Loading is split in two so that it can use two cores: :meth:`prepare`, a
    pure function a worker process runs on each batch of parsed records
    (turning them into whatever the store inserts fastest), and
    :meth:`replace_prepared`, which the writing process runs on those batches.
    """

    @staticmethod
    def prepare(kind: str, records: Any) -> Any:
        """Turn a batch for insertion: a :class:`~crimemap.store.batches.CrimeBatch` (kind ``street``),
        an :class:`~crimemap.store.batches.OutcomeBatch` (``outcomes``), or a list of records of either;
        or a list of :class:`Stop` (``stops``, see :mod:`crimemap.store.stop_rows`).

        Runs in a worker process: it must be a picklable function of its
        arguments. The default passes the batch through unchanged.
        """
        return records

    def expect(self, rows: int) -> None:
        """A hint, before the first write: about how many rows this load brings.

        A store may switch to a bulk strategy for a load that is large beside
        what it holds (build an index once at the end instead of row by row).
        """
        return None

    groups_months: bool = False
    """Whether this store wants a month's street files together (see :meth:`replace_group`)."""

    @abstractmethod
    def replace_prepared(self, kind: str, month: str, force: str, batches: Iterable[Any]) -> int:
        """Replace what is stored of ``kind`` for ``month`` and ``force`` by the prepared batches."""

    def replace_group(self, kind: str, month: str, forces: tuple[str, ...], batches: Iterable[Any]) -> dict[str, int]:
        """Replace ``kind`` of ``month`` for each of ``forces`` at once; rows stored per force.

        The loader groups a month's street files only for stores that set
        :attr:`groups_months`; others get one force at a time.
        """
        if len(forces) != 1:
            raise NotImplementedError("this store replaces one force at a time")
        return {forces[0]: self.replace_prepared(kind, month, forces[0], batches)}

    def replace_crimes(self, month: str, force: str, crimes: Iterable[Crime]) -> int:
        """Replace every crime of ``month`` reported by ``force``; returns rows written."""
        return self.replace_prepared("street", month, force, [self.prepare("street", list(crimes))])

    def replace_outcomes(self, month: str, force: str, outcomes: Iterable[OutcomeRecord]) -> int:
        """Replace the outcomes file of ``month`` and ``force``; returns rows written."""
        return self.replace_prepared("outcomes", month, force, [self.prepare("outcomes", list(outcomes))])

    def replace_stops(self, month: str, force: str, stops: Iterable[Stop]) -> int:
        """Replace the stop-and-search file of ``month`` and ``force``; returns rows written."""
        return self.replace_prepared("stops", month, force, [self.prepare("stops", list(stops))])

    @abstractmethod
    def replace_table(self, info: TableInfo, features: Iterable[Feature]) -> int:
        """Create or replace a feature table; ``properties`` follow ``info.columns``."""

    def put_documents(self, documents: Iterable[tuple[str, str, str, bytes]]) -> int:
        """Store police.uk documents ``(force, neighbourhood, kind, body)``, replacing those of the same key.

        See :mod:`crimemap.store.documents`; ``neighbourhood`` is ``''`` for a force's own documents.
        """
        raise NotImplementedError("this store keeps no police.uk documents")

    def delete_documents(self, force: str, kind: str) -> None:
        """Forget every document of ``kind`` of ``force`` (before a reload puts the new ones)."""
        raise NotImplementedError("this store keeps no police.uk documents")
