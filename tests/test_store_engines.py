"""The registry of store engines (crimemap.store.engines): a location's URL scheme picks the engine for all callers."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimemap.cli import app
from crimemap.harvest.state import default_state_path
from crimemap.store import open_store
from crimemap.store.engines import POSTGIS, SQLITE, engine_for, is_server_store
from crimemap.store.sqlite import SQLiteStore
from pg_server import fresh_store_url


@pytest.mark.parametrize("url", ["postgresql://u@db/crimes", "postgres://db/crimes", "postgresql:///crimes?host=/tmp"])
def test_postgresql_and_postgres_urls_select_the_postgis_engine(url: str) -> None:
    assert engine_for(url) is POSTGIS
    assert is_server_store(url)


@pytest.mark.parametrize(
    "location", ["/data/crimes.sqlite", "crimes.sqlite", "postgres-copy.sqlite", "postgresql.sqlite", "sqlite:///x.db"]
)
def test_file_paths_and_unknown_schemes_select_the_sqlite_engine(location: str) -> None:
    assert engine_for(location) is SQLITE
    assert not is_server_store(location)


def test_open_store_opens_a_file_path_as_a_sqlite_store(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "crimes.sqlite")) as store:
        assert isinstance(store, SQLiteStore)
        assert store.months() == []


def test_open_store_opens_a_postgresql_url_as_a_postgis_store() -> None:
    from crimemap.store.postgis import PostGISStore

    with open_store(fresh_store_url()) as store:
        assert isinstance(store, PostGISStore)
        assert store.months() == []


def test_a_harvest_of_a_server_store_keeps_its_state_in_the_working_folder() -> None:
    assert default_state_path("postgres://db/crimes").parent == Path(".")
    assert default_state_path("postgres-copy.sqlite") == Path("postgres-copy.sqlite.harvest.sqlite")


def test_info_opens_a_file_whose_name_starts_with_postgres_read_only(tmp_path: Path) -> None:
    """Only a URL is a server: a SQLite file named postgres-... is opened read-only, so a missing one is not made."""
    location = tmp_path / "postgres-copy.sqlite"
    result = CliRunner().invoke(app, ["info", "--store", str(location)])
    assert result.exit_code == 1
    assert f"no store at {location}" in result.output
    assert not location.exists()
