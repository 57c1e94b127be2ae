"""police.uk documents: JSON answers kept as they were published, in either store.

Some of what the police.uk API serves is not a table of features but a small
document per force or per neighbourhood (a neighbourhood's details, team,
events and priorities; a force's details and senior officers; a boundary's
points as the strings published). Both stores keep them in one table,
``policeuk_documents``, keyed by ``(force, neighbourhood, kind)``:
``neighbourhood`` is ``''`` for a force's own documents. The body is the JSON
as it is served. The SQL is the same in both stores but for the placeholder,
so it is written once here (:class:`Documents`), as the query compiler is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DOCUMENTS_TABLE = "policeuk_documents"

DDL = f"""
CREATE TABLE IF NOT EXISTS {DOCUMENTS_TABLE} (
    force TEXT NOT NULL,
    neighbourhood TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (force, kind, neighbourhood)
)"""
"""The table, in SQL both SQLite and PostgreSQL accept."""

Document = tuple[str, str, str, bytes]
"""``(force, neighbourhood, kind, body)``; ``neighbourhood`` is ``''`` for a force's documents."""


def _text(body: Any) -> bytes:
    return bytes(body) if isinstance(body, (bytes, bytearray, memoryview)) else str(body).encode()


class Documents:
    """The statements of ``policeuk_documents`` in one engine's placeholder (``?`` or ``%s``)."""

    def __init__(self, placeholder: str) -> None:
        p = placeholder
        self.select_one = f"SELECT body FROM {DOCUMENTS_TABLE} WHERE force = {p} AND neighbourhood = {p} AND kind = {p}"
        self.select_kind = (
            f"SELECT force, neighbourhood, body FROM {DOCUMENTS_TABLE} WHERE kind = {p} ORDER BY force, neighbourhood"
        )
        self.select_kind_of_force = (
            f"SELECT force, neighbourhood, body FROM {DOCUMENTS_TABLE} WHERE kind = {p} AND force = {p}"
            " ORDER BY neighbourhood"
        )
        self.upsert = (
            f"INSERT INTO {DOCUMENTS_TABLE} (force, neighbourhood, kind, body) VALUES ({p}, {p}, {p}, {p})"
            " ON CONFLICT (force, kind, neighbourhood) DO UPDATE SET body = excluded.body"
        )
        self.delete_kind_of_force = f"DELETE FROM {DOCUMENTS_TABLE} WHERE force = {p} AND kind = {p}"

    def one(self, rows: list[Any]) -> bytes | None:
        return _text(rows[0][0]) if rows else None

    def many(self, rows: Iterable[Any]) -> list[tuple[str, str, bytes]]:
        return [(str(force), str(nbhd), _text(body)) for force, nbhd, body in rows]

    def kind_query(self, kind: str, force: str | None) -> tuple[str, tuple[str, ...]]:
        if force is None:
            return self.select_kind, (kind,)
        return self.select_kind_of_force, (kind, force)

    @staticmethod
    def rows(documents: Iterable[Document]) -> list[tuple[str, str, str, str]]:
        return [(force, nbhd, kind, _text(body).decode()) for force, nbhd, kind, body in documents]
