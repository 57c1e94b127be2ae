"""Helper processes that end when the process that started them dies.

``crimemap load`` parses in a child process (113 MB for a big archive). After
a ``kill -9`` of the load, nothing tells that child to stop: it, and the
``multiprocessing`` resource tracker that outlives it, would run on as orphans.
A child calls :func:`exit_with_parent` first thing: on Linux the kernel sends
it ``SIGKILL`` when its parent dies (``PR_SET_PDEATHSIG``), and everywhere a
watchdog thread ends it once it has been handed to another parent. The
resource tracker exits by itself once no process holds its pipe.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.25
"""How often the watchdog looks at the parent."""


def exit_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` (the process that started it) is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog alone will do
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="exit-with-parent", daemon=True).start()


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL_S)
    os._exit(1)
