"""Pages of items: one page of features read and rendered as GeoJSON, and the cursors of its links.

:func:`read_page` is the one call that turns a checked request into a page of
GeoJSON features; it reads through the :class:`~crimemap.store.base.Store`
interface today and is the seam where a store that renders GeoJSON in SQL can
be put instead, without touching parameters, cursors or links.

Paging is by keyset, as the Maps Engine tokens do (:mod:`crimemap.api.page_tokens`):
a ``cursor`` is a signed (HMAC) position: how many features came before the
page, the sort values and id of the feature the page follows, and the starts of
up to :data:`HISTORY` earlier pages. ``next`` continues strictly after the last
feature served, so paging a collection while it is reloaded never repeats or
skips a feature that stays; ``prev`` goes back to a start the cursor remembers.
Past that history (a client that walked back more than :data:`HISTORY` pages),
``prev`` finds the start again by reading ids forward from the beginning,
:data:`SEEK_BATCH` at a time: correct, but it costs a read of everything before.
"""

from __future__ import annotations

from dataclasses import dataclass

from crimemap.api.ogc.errors import invalid
from crimemap.api.ogc.params import ItemsRequest
from crimemap.api.page_tokens import PageTokens, TokenError
from crimemap.errors import PageCursorGone
from crimemap.export.geojson import geojson_page
from crimemap.query import FeatureQuery, Scalar
from crimemap.store.base import Store
from crimemap.store.catalogue import TableInfo
from crimemap.store.geojson_sql import Layout

HISTORY = 16
"""Starts of earlier pages a cursor carries, so that ``prev`` is a keyset read too."""

SEEK_BATCH = 10_000
_VERSION = 1

Cursor = tuple[Scalar, ...]


@dataclass(frozen=True)
class Position:
    """Where a page starts: ``served`` features before it, and after which one (None: the ``served``-th)."""

    served: int = 0
    after: Cursor | None = None
    back: tuple[Cursor | None, ...] = ()
    """Where the pages before it started, the nearest first."""


@dataclass(frozen=True)
class Page:
    """A page of features as GeoJSON, the cursor of its last feature, and whether more follow."""

    features: list[bytes]
    last: Cursor | None
    more: bool


def read_page(store: Store, table: TableInfo, request: ItemsRequest, after: Cursor | None) -> Page:
    """The features of ``request`` after ``after`` (``request.limit`` of them) as GeoJSON with ids.

    Written by the engine where the store can (:func:`crimemap.export.geojson.geojson_page`).
    """
    names = request.names
    fetch = names + tuple(k.column for k in request.order_by if k.column not in names)
    query = FeatureQuery(table.id, request.where, fetch, request.order_by, after, request.limit + 1)
    try:
        found = geojson_page(store, query, Layout(names))
    except PageCursorGone as e:
        raise invalid("cursor", str(e)) from None
    except ValueError:  # a cursor that does not fit the query's order
        raise invalid("cursor", "the cursor does not fit this query; start again from the first page") from None
    more = len(found.features) > request.limit
    features = found.features[: request.limit]
    last = tuple(found.cursors[len(features) - 1]) if features else None
    return Page(features, last, more)


def seek(store: Store, table: TableInfo, request: ItemsRequest, skip: int) -> Cursor | None:
    """The cursor after the first ``skip`` features of ``request`` (None when there are not that many)."""
    keys = tuple(k.column for k in request.order_by)
    after: Cursor | None = None
    while skip > 0:
        batch = min(skip, SEEK_BATCH)
        query = FeatureQuery(table.id, request.where, keys, request.order_by, after, batch)
        features = list(store.features(query))
        if not features:
            return None
        last = features[-1]
        after = (*last.properties, last.gx_id)
        skip -= len(features)
        if len(features) < batch:
            return after if skip <= 0 else None
    return after


class Cursors:
    """Issues and opens the ``cursor`` of next/prev links, signed with the server's page-token secret."""

    def __init__(self, tokens: PageTokens) -> None:
        self._tokens = tokens

    @staticmethod
    def _domain(table: TableInfo) -> str:
        return "ogc:" + table.id

    def open(self, table: TableInfo, request: ItemsRequest) -> Position:
        """The position ``request.cursor`` names (the first page without one); 400 ``cursor`` if forged or foreign."""
        if request.cursor is None:
            return Position()
        try:
            value = self._tokens.unseal(
                self._domain(table),
                request.fingerprint,
                request.cursor,
                "the cursor was not issued for this collection and query (bbox, datetime, filter, properties,"
                " sortby and limit must stay as the link has them), or the server restarted",
            )
            version, served, after, back = value
            if version != _VERSION or not isinstance(served, int) or served < 0:
                raise TokenError("the cursor is from another version of crimemap")
            keys = len(request.order_by) + 1
            starts = [after, *back]
            if any(s is not None and (not isinstance(s, list) or len(s) != keys) for s in starts):
                raise TokenError("the cursor does not fit this query")
        except (TokenError, ValueError, TypeError) as e:
            raise invalid("cursor", str(e) or "the cursor is not one this server issued") from None
        return Position(served, _tuple(after), tuple(_tuple(b) for b in back))

    def next(self, table: TableInfo, request: ItemsRequest, at: Position, start: Cursor | None, page: Page) -> str:
        """The cursor of the page after ``page``, which started after ``start``."""
        back = (start, *at.back)[:HISTORY]
        return self._seal(table, request, Position(at.served + len(page.features), page.last, back))

    def prev(self, table: TableInfo, request: ItemsRequest, at: Position) -> str | None:
        """The cursor of the page before the one at ``at`` (None on the first page)."""
        if at.served == 0:
            return None
        served = max(0, at.served - request.limit)
        if served == 0:
            return self._seal(table, request, Position())
        if at.back:
            return self._seal(table, request, Position(served, at.back[0], at.back[1:]))
        return self._seal(table, request, Position(served, None, ()))

    def _seal(self, table: TableInfo, request: ItemsRequest, at: Position) -> str:
        value = [_VERSION, at.served, _list(at.after), [_list(b) for b in at.back]]
        return self._tokens.seal(self._domain(table), request.fingerprint, value)


def _tuple(value: list[Scalar] | None) -> Cursor | None:
    return tuple(value) if value is not None else None


def _list(value: Cursor | None) -> list[Scalar] | None:
    return list(value) if value is not None else None
