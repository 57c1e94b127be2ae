"""The server's settings: one object, read from ``CRIMEMAP_*`` variables, built by ``crimemap serve`` from its options.

``crimemap serve`` makes a :class:`Settings` from its options (and the
environment, for the settings it has no option for) and hands it to its worker
processes in one way: :meth:`Settings.environment` spells every field as the
variable ``CRIMEMAP_<FIELD>`` that ``Settings()`` reads back in each worker
(:func:`crimemap.api.server.app_from_environment`). The field names are the
contract, written once, here; the README's configuration table lists every
field (a test checks it).

>>> Settings(api_keys=frozenset({"k2", "k1"}), cache_mb=0).environment()["CRIMEMAP_API_KEYS"]
'k1,k2'
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "CRIMEMAP_"


class Settings(BaseSettings):
    """Server settings; every one is documented in the README's configuration table.

    Each field is also the variable ``CRIMEMAP_<FIELD>`` (``CRIMEMAP_RATE_LIMIT=1``); lists are
    comma-separated (``CRIMEMAP_API_KEYS=k1,k2``); an empty variable is the default.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, extra="ignore")

    store: str | None = None
    """The store the server's workers open: a SQLite file or a ``postgresql://`` URL (None: the default store)."""
    rate_limit: bool = False
    rate_per_second: float = 15.0
    rate_burst: int = 30
    rate_state: str | None = None
    """A file of token buckets shared by the server's workers; None keeps them in memory."""
    api_keys: Annotated[frozenset[str], NoDecode] = frozenset()
    bearer_tokens: Annotated[frozenset[str], NoDecode] = frozenset()
    cache_mb: int = 64
    public_policeuk: bool = False
    """Keep the police.uk API open when keys or tokens are configured (``--public-policeuk``)."""
    basemap: str | None = None
    """The web map's base map: ``osm``, ``none``, a tile URL template or a ``.pmtiles`` file (see api/web)."""
    token_secret: str | None = None
    """The key that signs page tokens and cursors; None: a random one per process (``serve`` sets one for all)."""
    node_modules: Path | None = None
    """Where Leaflet and Swagger UI are installed; None: the checkout's or the working folder's ``node_modules``."""
    tile_url: str | None = None
    """A tile URL template for the map when no base map is set (an app made in code)."""
    tile_attribution: str | None = None
    """The credit shown for a tile server or PMTiles file."""
    max_replica_lag: float | None = None
    """Seconds a hot standby's replay may stall, with WAL waiting, before ``/health`` answers 503 (None: no bound)."""

    @field_validator("api_keys", "bearer_tokens", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """``"k1,k2"`` (as the variable holds it) is the set of both; any other value is left to pydantic."""
        if isinstance(value, str):
            return frozenset(v for v in value.split(",") if v)
        return value

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of ``field``: ``variable("api_keys") == "CRIMEMAP_API_KEYS"``."""
        if field not in cls.model_fields:
            raise KeyError(field)
        return f"{ENV_PREFIX}{field.upper()}"

    def environment(self) -> dict[str, str]:
        """Every field as the ``CRIMEMAP_*`` variable that ``Settings()`` reads back as the same value.

        Fields left at None are spelt as empty variables, which read back as None.
        """
        return {self.variable(name): _spelt(getattr(self, name)) for name in type(self).model_fields}


def _spelt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    return str(value)
