"""Who may read what: one access model for every route, decided by the server's settings.

Without API keys or bearer tokens configured, everything is open, as on a
laptop. A *credential* is ``key=K`` with a configured API key, or
``Authorization: Bearer T`` with a configured bearer token.

- **API keys lock the data.** Once any API key is configured (``--api-key``), every route that
  returns a table's rows needs a credential: the Maps Engine features (403 without a key, 400
  ``keyInvalid`` for another), the downloads (the same), and the police.uk API (401 without, 403
  for a wrong one) unless the operator keeps it open with ``--public-policeuk``.
- **Any credential configured locks the names.** The table resources ``/mapsengine/v1/tables`` and
  ``tables/{id}`` always need a bearer token (401), as Maps Engine's did; ``/health`` tells anyone
  its status and version, and what is stored (months, forces, tables) only to a credential once
  keys or tokens are configured.
- **OGC API - Features** answers with table names and rows alike, so once any key or token is
  configured its collections, queryables and items need a credential (401 without, 403 for one
  this server does not accept, as OGC exceptions); its landing page, conformance and API definition
  stay open. QGIS, GDAL and OWSLib send either: ``key=K`` in the URL, or the ``Authorization`` header.
- ``/``, ``/static/...``, ``/docs`` and ``/openapi.json`` hold no data and stay open.

Keys are compared in constant time.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

from crimemap.api.mapsengine.errors import (
    invalid_credentials,
    key_invalid,
    key_required,
    login_required,
)
from crimemap.api.mapsengine.params import single
from crimemap.api.ogc.errors import OGCError
from crimemap.api.policeuk.errors import PoliceUKError
from crimemap.settings import Settings


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def credentials_configured(settings: Settings) -> bool:
    """Whether the operator has configured any API key or bearer token: then table names need a credential."""
    return bool(settings.api_keys or settings.bearer_tokens)


def one_of(value: str, accepted: frozenset[str]) -> bool:
    """Whether ``value`` is in ``accepted``, comparing in constant time."""
    found = False
    for candidate in accepted:
        found |= hmac.compare_digest(value.encode(), candidate.encode())
    return found


def bearer(request: Request) -> str | None:
    """The bearer token of the ``Authorization`` header, '' for another scheme, None without the header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _key(request: Request) -> str | None:
    keys = request.query_params.getlist("key")
    return keys[0] if len(keys) == 1 else None


def has_credential(request: Request) -> bool:
    """A configured key in ``key`` or a configured bearer token."""
    settings = settings_of(request)
    token, key = bearer(request), _key(request)
    return bool((token and one_of(token, settings.bearer_tokens)) or (key and one_of(key, settings.api_keys)))


def require_bearer(request: Request) -> None:
    """A configured bearer token, or the real API's 401."""
    token = bearer(request)
    if token is None:
        raise login_required()
    if not token or not one_of(token, settings_of(request).bearer_tokens):
        raise invalid_credentials()


def require_table_access(request: Request) -> None:
    """For a table's rows (features, downloads): a key once keys are configured; a bearer token will do too."""
    settings = settings_of(request)
    if not settings.api_keys:
        return
    token = bearer(request)
    if token and one_of(token, settings.bearer_tokens):
        return
    key = single(request.query_params, "key")  # twice is a 400 naming the parameter
    if key is None or key == "":
        raise key_required()
    if not one_of(key, settings.api_keys):
        raise key_invalid()


async def require_policeuk_access(request: Request) -> None:
    """The police.uk API: open unless API keys are configured and ``--public-policeuk`` is off."""
    settings = settings_of(request)
    if settings.public_policeuk or not settings.api_keys or has_credential(request):
        return
    hint = "add key=YOUR_KEY to the query string, or send the header Authorization: Bearer YOUR_TOKEN"
    if bearer(request) is None and not request.query_params.getlist("key"):
        raise PoliceUKError(401, "this server needs an API key or a bearer token", hint, {"WWW-Authenticate": "Bearer"})
    raise PoliceUKError(403, "the API key or bearer token is not one this server accepts", hint)


def require_ogc_access(request: Request) -> None:
    """OGC API collections and items: a credential once any key or token is configured."""
    settings = settings_of(request)
    if not credentials_configured(settings) or has_credential(request):
        return
    hint = "add key=YOUR_KEY to the URL, or send the header Authorization: Bearer YOUR_TOKEN"
    if bearer(request) is None and not request.query_params.getlist("key"):
        raise OGCError(401, "Unauthorized", f"this server needs an API key or a bearer token: {hint}",
                       {"WWW-Authenticate": "Bearer"})  # fmt: skip
    raise OGCError(403, "Forbidden", f"the API key or bearer token is not one this server accepts: {hint}")
