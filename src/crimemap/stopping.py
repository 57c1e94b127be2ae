"""Stopping the command line with SIGTERM or SIGHUP runs its clean-up, as Ctrl-C (SIGINT) does.

Python turns SIGINT into ``KeyboardInterrupt``, so ``finally`` blocks run; SIGTERM (systemd, Docker,
``kill``) and SIGHUP (a terminal closed) end the process at once by default, leaving temporary stores
and ``/dev/shm`` folders behind. uvicorn catches SIGTERM to shut down gracefully, then restores the
handler it found and raises the signal again: with the handler below in place, that second delivery
becomes an exception too, the clean-up runs, and the outermost ``stops_cleanly`` ends the process
with the same signal, so a supervisor still sees "killed by SIGTERM". SIGHUP, which uvicorn leaves
alone, is turned into SIGTERM, so a server shuts down gracefully on it too.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Stopped(SystemExit):
    """The process was asked to stop by ``signum``; a ``SystemExit``, so nothing mistakes it for an error."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


def _as_sigterm(signum: int, frame: FrameType | None) -> None:
    signal.raise_signal(signal.SIGTERM)  # to uvicorn's handler while it serves, else to _raise_stopped


_HANDLERS = {signal.SIGTERM: _raise_stopped, signal.SIGHUP: _as_sigterm}


@contextmanager
def stops_cleanly() -> Iterator[None]:
    """Within the block SIGTERM (and SIGHUP, as SIGTERM) raise ``Stopped``, so every ``finally`` inside it runs.

    Nested blocks pass the exception on; the outermost one restores the default handler and raises
    the signal again once the clean-up is done, so the exit status is the signal's.
    """
    # A signal ignored on purpose (``nohup`` ignores SIGHUP) stays ignored.
    wanted = {sig: run for sig, run in _HANDLERS.items() if signal.getsignal(sig) != signal.SIG_IGN}
    previous = {sig: signal.signal(sig, run) for sig, run in wanted.items()}
    try:
        yield
    except Stopped as stopped:
        if previous.get(signal.Signals(stopped.signum)) is _raise_stopped:
            raise  # an enclosing block has clean-up of its own to run
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.raise_signal(stopped.signum)
        raise  # a handler that returns (SIG_IGN, or one of the caller's): exit as SystemExit
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
