"""Page tokens: opaque, tamper-evident keyset cursors.

A token carries how many features were served so far (for ``limit``) and the
keyset cursor: the sort values and ``gx_id`` of the last feature served. It is
``base64url(payload || mac)`` where ``mac`` is the first 16 bytes of
HMAC-SHA256 over the table id, the query's fingerprint (``where``, ``select``,
``orderBy``, ``intersects``, ``limit`` as parsed) and the payload, under the
server's secret. So a token cannot be forged or edited, and a token used with
another table or query is refused (400 ``invalid`` ``pageToken``) instead of
returning the wrong page.

The secret is the setting ``token_secret`` (``$CRIMEMAP_TOKEN_SECRET``) when set (``crimemap serve`` sets a
random one for its worker processes); otherwise a random one per process, so
tokens do not survive a restart unless the variable is set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from crimemap.query import Scalar
from crimemap.settings import Settings

_VERSION = 1
_MAC_BYTES = 16
_MAX_TOKEN_CHARS = 4096


class TokenError(ValueError):
    """A page token that this server did not issue for this query."""


@dataclass(frozen=True)
class Page:
    """Where a page starts: features served before it, and the cursor after the last of them."""

    served: int
    after: tuple[Scalar, ...]


def secret_of(settings: Settings) -> bytes:
    """The settings' ``token_secret`` (``$CRIMEMAP_TOKEN_SECRET``) as bytes, else 32 random bytes for this process."""
    configured = settings.token_secret
    return configured.encode() if configured else secrets.token_bytes(32)


class PageTokens:
    """Issues and checks page tokens under one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, table: str, fingerprint: str, payload: bytes) -> bytes:
        message = orjson.dumps([table, fingerprint]) + b"\0" + payload
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, table: str, fingerprint: str, page: Page) -> str:
        return self.seal(table, fingerprint, [_VERSION, page.served, list(page.after)])

    def read(self, table: str, fingerprint: str, token: str) -> Page:
        """The page a token points at; :class:`TokenError` if it was altered or is for another query."""
        version, served, after = self.unseal(
            table,
            fingerprint,
            token,
            "the page token was not issued for this table and query (where, select, orderBy,"
            " intersects and limit must stay the same while paging), or the server restarted",
        )
        if version != _VERSION:
            raise TokenError("the page token is from another version of crimemap")
        return Page(int(served), tuple(after))

    def seal(self, table: str, fingerprint: str, value: object) -> str:
        """``value`` (JSON) as a token that only this secret, ``table`` and ``fingerprint`` open again."""
        payload = orjson.dumps(value)
        raw = payload + self._mac(table, fingerprint, payload)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def unseal(self, table: str, fingerprint: str, token: str, mismatch: str) -> Any:
        """The value :meth:`seal` put in ``token``; :class:`TokenError` (``mismatch`` when the MAC fails) if none."""
        if not token or len(token) > _MAX_TOKEN_CHARS:
            raise TokenError("the page token is empty or too long")
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise TokenError("the page token is not one this server issued") from None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(table, fingerprint, payload)):
            raise TokenError(mismatch)
        return orjson.loads(payload)
