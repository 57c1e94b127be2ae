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


class ResponseCache:
    """Least-recently-used bodies up to ``max_bytes`` in all; ``max_bytes=0`` disables it."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_render(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """The cached body for ``key``, or ``render()``'s, kept when it fits."""
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
        if len(body) <= self.max_bytes // 4:
            with self._lock:
                if key not in self._entries:
                    self._entries[key] = body
                    self.size += len(body)
                while self.size > self.max_bytes:
                    _, old = self._entries.popitem(last=False)
                    self.size -= len(old)
        return body
