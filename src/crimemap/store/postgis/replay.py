"""How far a hot standby's replay lags: seconds it has made no progress while received WAL waits.

PostgreSQL's own measure, the time since the last transaction the standby
replayed, is wrong during a load: a load is one long transaction, so its WAL
streams and replays for minutes without a commit, and that clock runs the
whole time although the standby serves every committed answer as freshly as
the primary does. What a load balancer needs to know is whether replay has
stalled: so a :class:`ReplayClock` remembers, between health checks, the
replay position it last saw and when it last moved. The lag is 0 when the
standby has replayed all it received; otherwise the time since replay last
moved, and never more than PostgreSQL's own measure (a first look, with no
earlier position to compare, is that measure).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Lsn = int


def lsn(text: str) -> Lsn:
    """A WAL position (``'16/B374D848'``) as a number."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


class ReplayClock:
    """Seconds a standby's replay has not moved while WAL it received waits (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._replayed: Lsn | None = None
        self._moved_at = 0.0

    def lag(self, received: Lsn, replayed: Lsn, since_last_commit: float | None) -> float:
        """The lag, given the positions received and replayed and the seconds since the last replayed commit."""
        now = self._clock()
        with self._lock:
            first_look = self._replayed is None
            if self._replayed != replayed:
                self._replayed, self._moved_at = replayed, now
            if replayed >= received:
                return 0.0
            stalled = now - self._moved_at
        if since_last_commit is None:
            return stalled
        return since_last_commit if first_look else min(stalled, since_last_commit)
