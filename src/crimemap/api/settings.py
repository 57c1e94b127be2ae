"""Server settings, shared by the app and the API modules that read them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Settings:
    """Server settings; every one is documented in the README's configuration table."""

    rate_limit: bool = False
    rate_per_second: float = 15.0
    rate_burst: int = 30
    api_keys: frozenset[str] = field(default_factory=frozenset)
    bearer_tokens: frozenset[str] = field(default_factory=frozenset)
    cache_mb: int = 64
