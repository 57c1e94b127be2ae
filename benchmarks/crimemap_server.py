"""``crimemap serve`` in a subprocess on a free loopback port, for the HTTP benchmarks."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import httpx


def crimemap_command() -> list[str]:
    """How to run the ``crimemap`` command line: the installed script, else this Python."""
    exe = shutil.which("crimemap")
    return [exe] if exe else [sys.executable, "-m", "crimemap"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(command: list[str], ready_url: str, name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``command`` (a server) and wait up to a minute until ``ready_url`` answers 200."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(ready_url, timeout=5).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            stop(process)
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ask the server to stop; kill it if it has not within 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


class Server:
    """A real server over a store, started and waited for; ``stop()`` ends it."""

    def __init__(self, store_path: str, workers: int = 1, cache_mb: int = 0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [*crimemap_command(), "serve", "--store", store_path, "--port", str(self.port)]
        command += ["--workers", str(workers), "--cache-mb", str(cache_mb)]
        self.process = start(command, self.url + "/health", "the server")

    def stop(self) -> None:
        stop(self.process)
