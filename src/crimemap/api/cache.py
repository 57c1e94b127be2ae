"""A bounded in-memory cache of response bodies, invalidated by every load.

Busy map views ask for the same area again and again (every visitor of a
page centred on a town asks for the same mile). Rendering such a body costs
milliseconds of Python per thousand crimes; a cached one costs microseconds.
Keys include the store's generation (:meth:`crimemap.store.base.Store.generation`),
so a load makes every earlier entry unreachable, and the oldest entries are
dropped once the bodies exceed the configured size.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import NamedTuple


class Body(NamedTuple):
    """A cached answer: its bytes, and the ``Content-Encoding`` they are in (None: as rendered)."""

    data: bytes
    encoding: str | None = None


class ResponseCache:
    """Least-recently-used bodies up to ``max_bytes`` in all; ``max_bytes=0`` disables it."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, Body] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_render(self, key: Hashable, render: Callable[[], Body]) -> Body:
        """The cached body for ``key``, or ``render()``'s, kept when it fits.

        Bodies are kept as they will be sent: compressed, when the key names
        an encoding (:mod:`crimemap.api.compression`), so a hit costs no work.
        """
        if self.max_bytes <= 0:
            return render()
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return body
            self.misses += 1
        body = render()
        if len(body.data) <= self.max_bytes // 4:
            with self._lock:
                if key not in self._entries:
                    self._entries[key] = body
                    self.size += len(body.data)
                while self.size > self.max_bytes:
                    _, old = self._entries.popitem(last=False)
                    self.size -= len(old.data)
        return body
