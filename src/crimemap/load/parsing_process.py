"""The parsing process of a large police.uk load: it reads and prepares the groups while this process writes.

Batches cross one pipe whose only write end is the child's: this process closes
its copy once the child has started, so when the child dies (the OOM killer, a
segfault, a script that spawns it without an ``if __name__ == "__main__":`` guard)
the pipe ends, even halfway through a message, and the load raises
:class:`~crimemap.load.errors.LoadError` instead of waiting forever. The child
runs ahead by at most :data:`RUN_AHEAD` batches (a sending thread of its own
drains them into the pipe), so memory stays flat.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from crimemap.lifeline import exit_with_parent
from crimemap.load import pipeline
from crimemap.load.errors import LoadError

RUN_AHEAD = 6
"""Prepared batches the parsing process may hold ready beyond the one being received."""

CHECK_EVERY_S = 1.0
"""How often a load waiting for its next batch checks that the parsing process is alive."""

_DONE = None
"""What the parsing process's main thread hands its sending thread after the last batch."""


@contextmanager
def parse_in_worker(
    groups: list[pipeline.Group], prepare: pipeline.Prepare
) -> Iterator[Iterator[tuple[pipeline.Group, Iterator[Any]]]]:
    """Read and prepare the groups in a child process, started now, handing batches back in order.

    Started before the load's writer opens, the child's start (about half a
    second of importing) runs beside the writer's own (the ADBC driver's
    process, :mod:`crimemap.store.sqlite.load_connection`). The child is ended
    on leaving, whether or not its groups were all read. A parse error in the
    child is raised here as the same :class:`LoadError`; a child that dies
    raises one naming its exit code or signal.
    """
    ctx = mp.get_context("spawn")
    receiving, sending = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_worker_main, args=(groups, prepare, sending, os.getpid()), daemon=True)
    try:
        worker.start()
    finally:
        sending.close()  # the child's copy is now the only write end: its death ends the pipe
    try:
        yield _groups(groups, receiving, worker)
    finally:
        worker.kill()
        worker.join()
        receiving.close()


def _groups(
    groups: list[pipeline.Group], receiving: Connection, worker: Any
) -> Iterator[tuple[pipeline.Group, Iterator[Any]]]:
    for group in groups:

        def batches() -> Iterator[Any]:
            while True:
                tag, payload = _receive(receiving, worker)
                if tag == "batch":
                    yield payload
                elif tag == "end":
                    return
                else:
                    raise LoadError(payload)

        yield group, batches()


def _receive(receiving: Connection, worker: Any) -> tuple[str, Any]:
    """The child's next message; :class:`LoadError` once it has died with nothing more sent."""
    while not receiving.poll(CHECK_EVERY_S):
        if not worker.is_alive():  # the pipe should have ended with it: this is the belt to those braces
            raise _died(worker)
    try:
        message: tuple[str, Any] = receiving.recv()
    except (EOFError, OSError):
        raise _died(worker) from None
    return message


def _died(worker: Any) -> LoadError:
    worker.join(CHECK_EVERY_S)
    return LoadError(f"the parsing process died ({_how_it_ended(worker.exitcode)}) before it read every file")


def _how_it_ended(exitcode: int | None) -> str:
    """``killed by signal 9 (SIGKILL)``, ``exit code 1``: what a user can look up in the system's log."""
    if exitcode is None:
        return "it closed its pipe and did not exit"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            return f"killed by signal {-exitcode}"
        return f"killed by signal {-exitcode}, {name}"
    return f"exit code {exitcode}"


def _worker_main(groups: list[pipeline.Group], prepare: pipeline.Prepare, sending: Connection, parent_pid: int) -> None:
    exit_with_parent(parent_pid)  # a killed load must not leave its parser running
    outbox: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=RUN_AHEAD)
    sender = threading.Thread(target=_send_all, args=(outbox, sending), name="send-batches", daemon=True)
    sender.start()
    for message in _messages(groups, prepare):
        outbox.put(message)
    outbox.put(_DONE)
    sender.join()


def _messages(groups: list[pipeline.Group], prepare: pipeline.Prepare) -> Iterator[tuple[str, Any]]:
    """Every group's batches, each group closed by ``end``; a failure is the last message."""
    state = pipeline.ReadState()
    for group in groups:
        try:
            for batch in pipeline.group_batches(group, prepare, state):
                yield "batch", batch
        except LoadError as e:
            yield "error", str(e)
            return
        except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it
            where = ", ".join(s.label for s in group.sources)
            yield "error", f"{where}: {type(e).__name__}: {e}"
            return
        yield "end", None


def _send_all(outbox: queue.Queue[tuple[str, Any] | None], sending: Connection) -> None:
    """Pickle and send each message while the main thread prepares the next ones."""
    while (message := outbox.get()) is not _DONE:
        sending.send(message)
    sending.close()
