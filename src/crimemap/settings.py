"""Server settings, shared by the app and the API modules that read them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Settings:
    """Server settings; every one is documented in the README's configuration table."""

    rate_limit: bool = False
    rate_per_second: float = 15.0
    rate_burst: int = 30
    rate_state: str | None = None
    """A file of token buckets shared by the server's workers; None keeps them in memory."""
    api_keys: frozenset[str] = field(default_factory=frozenset)
    bearer_tokens: frozenset[str] = field(default_factory=frozenset)
    cache_mb: int = 64
    public_policeuk: bool = False
    """Keep the police.uk API open when keys or tokens are configured (``--public-policeuk``)."""
    basemap: str | None = None
    """The web map's base map: ``osm``, ``none``, a tile URL template or a ``.pmtiles`` file (see api/web.py)."""
