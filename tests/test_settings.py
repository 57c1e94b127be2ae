"""One settings object: every field documented, read back from the environment as written, and carried by
``crimemap serve`` to each of its workers."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from crimemap.settings import Settings
from crimemap.store.sqlite import SQLiteStore
from serve_process import free_port, serving

ROOT = Path(__file__).resolve().parents[1]


def _configuration_table() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("field", list(Settings.model_fields))
def test_every_setting_is_in_the_readme_configuration_table(field: str) -> None:
    rows = [line for line in _configuration_table().splitlines() if line.startswith("|")]
    assert any(f"`{Settings.variable(field)}" in row for row in rows), Settings.variable(field)


def test_the_settings_written_to_the_environment_read_back_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    written = Settings(
        store="postgresql:///crimes",
        rate_limit=True,
        rate_per_second=0.5,
        rate_burst=3,
        rate_state="/dev/shm/buckets.sqlite",
        api_keys=frozenset({"k1", "k2"}),
        bearer_tokens=frozenset({"t1"}),
        cache_mb=0,
        public_policeuk=True,
        basemap="none",
        token_secret="s",
        node_modules=Path("/opt/node_modules"),
        tile_url="https://tiles.example.org/{z}/{x}/{y}.png",
        tile_attribution="Tiles",
        max_replica_lag=2.5,
    )
    assert all(getattr(written, f) != field.default for f, field in Settings.model_fields.items())
    for name, value in written.environment().items():
        monkeypatch.setenv(name, value)
    assert Settings() == written


def test_the_variables_are_those_the_readme_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRIMEMAP_API_KEYS", "a,b")
    monkeypatch.setenv("CRIMEMAP_RATE_LIMIT", "1")
    monkeypatch.setenv("CRIMEMAP_PUBLIC_POLICEUK", "0")
    monkeypatch.setenv("CRIMEMAP_CACHE_MB", "8")
    read = Settings()
    assert (read.api_keys, read.rate_limit, read.public_policeuk) == (frozenset({"a", "b"}), True, False)
    assert read.cache_mb == 8


def test_an_empty_variable_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields:
        monkeypatch.setenv(Settings.variable(field), "")
    assert Settings() == Settings.model_construct()


def test_a_malformed_variable_stops_serve_with_a_clear_error(tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite")
    SQLiteStore(store).close()
    done = subprocess.run(
        [sys.executable, "-m", "crimemap", "serve", "--store", store, "--port", str(free_port())],
        env={**os.environ, "CRIMEMAP_CACHE_MB": "lots"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "a CRIMEMAP_* variable is not a valid setting: CRIMEMAP_CACHE_MB: " in done.stderr
    assert "Traceback" not in done.stderr


def _fresh_connection_get(url: str, **params: str) -> int:
    with httpx.Client(timeout=30) as client:  # a new connection each time: the kernel picks the worker
        return client.get(url, params=params, headers={"Connection": "close"}).status_code


def test_serve_options_reach_every_worker(tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite")
    SQLiteStore(store).close()
    with serving(store, "--workers", "3", "--api-key", "K", "--bearer-token", "T") as url:
        with ThreadPoolExecutor(8) as pool:
            without = list(pool.map(lambda _: _fresh_connection_get(f"{url}/api/forces"), range(30)))
            with_key = list(pool.map(lambda _: _fresh_connection_get(f"{url}/api/forces", key="K"), range(30)))
            health = list(pool.map(lambda _: httpx.get(f"{url}/health", headers={"Connection": "close"}), range(30)))
    assert without == [401] * 30
    assert with_key == [200] * 30
    assert all("tables" not in r.json() for r in health)  # keys configured: what is stored needs a credential


def test_each_worker_reads_the_one_settings_object_serve_wrote(tmp_path: Path) -> None:
    """A variable set outside serve for a setting serve has an option for is replaced by the option's value."""
    store = str(tmp_path / "s.sqlite")
    SQLiteStore(store).close()
    with serving(store, "--workers", "2", env={"CRIMEMAP_API_KEYS": "stale"}) as url:
        codes = [_fresh_connection_get(f"{url}/api/forces") for _ in range(20)]
    assert codes == [200] * 20  # no --api-key: no keys, whatever the variable said
