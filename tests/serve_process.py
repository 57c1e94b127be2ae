"""``crimemap serve`` as a user runs it: a real process on a free loopback port, stopped after the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(store: str | Path, *options: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """The base URL of ``crimemap serve --store STORE OPTIONS...``, once its workers answer ``/health``."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crimemap", "serve", "--store", str(store), "--port", str(port), *options],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its workers are stopped with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"crimemap serve did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def hangup_as_by_default() -> None:
    """In the child: SIGHUP handled by default, as in a terminal, even when the tests run under ``nohup``.

    A process inherits an ignored signal, and crimemap keeps SIGHUP ignored on purpose when it was
    (``nohup crimemap serve``): without this, the tests of stopping by SIGHUP would test ``nohup``.
    """
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@contextmanager
def demo(tmp: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``crimemap demo OPTIONS...`` with its temporary files under ``tmp``: (base URL, process) once it answers.

    Stopped with Ctrl-C (SIGINT), as a user stops it; the caller may do so first.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crimemap", "demo", "--port", str(port), *options],
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=hangup_as_by_default,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"crimemap demo did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.stderr:
            proc.stderr.close()
