"""Each request's time budget, and its work stopped when its client hangs up (:mod:`crimemap.deadline`).

:class:`RequestDeadlines` gives every HTTP request a :class:`~crimemap.deadline.Deadline` of the time
budget, from when it arrives, which the work for it (in the event loop or in the thread pool, which
inherits it) checks between its steps. It also listens for the client's hang-up while the request is
answered: uvicorn reports it as an ``http.disconnect`` message, but only to a ``receive()`` that is
waiting, so a task waits for it beside the application, passing the request's body through one message
at a time, and sets the deadline's ``gone`` event when the client goes. (Starlette's
``request.is_disconnected()`` asks the same question, but only when asked, from the event loop.)
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crimemap import deadline

_DISCONNECT: Message = {"type": "http.disconnect"}


class RequestDeadlines:
    """ASGI middleware: the request's deadline for its work, and its ``gone`` event set when the client goes."""

    def __init__(self, app: ASGIApp, store: Any = None) -> None:
        self.app = app
        self.store = store

    def _budget_s(self) -> float:
        """The store's own budget where it was opened with one (PostGIS), else the environment's."""
        own = getattr(self.store, "statement_timeout_s", None)
        return float(own) if own is not None else deadline.budget_s()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with deadline.request_deadline(self._budget_s()) as request:
            messages: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)
            watcher = asyncio.create_task(_watch(receive, messages, request.gone))

            async def passed_on() -> Message:
                if request.gone.is_set() and messages.empty():
                    return _DISCONNECT
                return await messages.get()

            try:
                await self.app(scope, passed_on, send)
            finally:
                watcher.cancel()


async def _watch(receive: Receive, messages: asyncio.Queue[Message], gone: threading.Event) -> None:
    """Pass the body on a message at a time (one ahead at most), then wait for the hang-up."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        await messages.put(message)
        if not message.get("more_body", False):
            await receive()  # after the body, only the hang-up (or the answer's end) comes
            break
    gone.set()
    if messages.empty():
        messages.put_nowait(_DISCONNECT)
