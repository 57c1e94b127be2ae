"""The time budget of the request a thread works for, and whether its client is still there.

Reads have a time budget (``CRIMEMAP_STATEMENT_TIMEOUT``, 10 s): each store stops a statement that runs
past it. Preparing a polygon a client sent (testing its ring, repairing it, classifying its cells) is
Python and GEOS work that no statement timeout sees, so the server gives each request a
:class:`Deadline` (:mod:`crimemap.api.deadlines`) and that work calls :func:`check` between its steps:
past the budget it raises :class:`~crimemap.store.base.ReadTimeout`, which every API answers with its
503, and once the client has hung up :class:`~crimemap.store.base.ClientGone`, so that nobody's work
goes on for nobody. Outside a request (a load, an export, a test) :func:`check` does nothing.

    >>> with request_deadline(10.0) as deadline:
    ...     check()  # well within the budget
    >>> deadline.gone.set()
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from crimemap.errors import ClientGone, ReadTimeout

BUDGET_ENV = "CRIMEMAP_STATEMENT_TIMEOUT"
"""Seconds a read, or the preparation of a request's polygon, may run (default 10), on both stores."""
DEFAULT_BUDGET_S = 10.0


def budget_s() -> float:
    """The time budget, as set in the environment (read each time, so a process can change it)."""
    return float(os.environ.get(BUDGET_ENV) or DEFAULT_BUDGET_S)


@dataclass(frozen=True)
class Deadline:
    """When a request's budget is spent (``time.monotonic()``), and an event set when its client hangs up."""

    at: float
    budget_s: float
    gone: threading.Event = field(default_factory=threading.Event)

    def stopped(self) -> bool:
        """Whether the work must stop: the budget is spent or the client is gone (cheap: called in loops)."""
        return self.gone.is_set() or time.monotonic() > self.at

    def check(self) -> None:
        """Raise ``ClientGone`` or ``ReadTimeout`` when the work must stop."""
        if self.gone.is_set():
            raise ClientGone("the client hung up; the work for it was stopped")
        if time.monotonic() > self.at:
            raise ReadTimeout(
                f"the query took longer than {self.budget_s:g} s and was stopped; ask for a smaller area or fewer rows"
            )


_CURRENT: ContextVar[Deadline | None] = ContextVar("crimemap_deadline", default=None)


def current() -> Deadline | None:
    """The deadline of the request this code works for (threads of the pool inherit it), or None."""
    return _CURRENT.get()


def check() -> None:
    """Stop the current request's work (see :meth:`Deadline.check`) when its budget is spent or its client gone."""
    deadline = _CURRENT.get()
    if deadline is not None:
        deadline.check()


@contextmanager
def request_deadline(seconds: float) -> Iterator[Deadline]:
    """Run the block (and the threads it starts through the pool) under a budget of ``seconds`` from now."""
    deadline = Deadline(time.monotonic() + seconds, seconds)
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)
