"""Read ahead: the store's driver reads the next batch in a thread while the writer renders this one.

The ADBC drivers and pyarrow's compute functions let go of the GIL while they
work, so reading (SQLite or PostgreSQL's C code) and rendering (Arrow's C++)
overlap on two cores. At most ``depth`` batches wait between them, so memory
still holds a few batches, however large the table.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced by a thread of their own up to ``depth`` ahead of the caller.

    An exception in the thread is raised to the caller where it would have been;
    a caller that stops early (a client that hangs up) stops the thread and
    closes ``items``.
    """
    waiting: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    break
            else:
                put(_DONE)
        except BaseException as e:  # handed to the caller, who raises it
            put(e)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="crimemap-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = waiting.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
