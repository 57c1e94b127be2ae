"""Every recorded answer stays what it was: the wire record of ``tests/golden/wire.json``.

Thousands of police.uk, Maps Engine and download requests (see
:mod:`wire_requests`) are replayed on both stores over HTTP and compared with
the digests recorded before the fast path: the embedded store must answer
byte for byte as it did; PostGIS must answer byte for byte as it did, or, where
no API defines an order, with the same crimes, outcomes or features in another
order (a walk through pages is compared as a whole).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from conftest import LiveServer
from crimemap.api.app import Settings
from crimemap.store.base import Store
from wire_datasets import DATASETS, load_dataset
from wire_requests import GOLDEN_SECRET, changed_answers

pytestmark = pytest.mark.heavy  # thousands of requests replayed on each store: scheduled first under xdist

GOLDEN = orjson.loads((Path(__file__).parent / "golden" / "wire.json").read_bytes())


@pytest.fixture(scope="module", params=DATASETS)
def dataset(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[Store], Store]]:
    name: str = request.param
    scratch = tmp_path_factory.mktemp(f"wire-{name}")

    def load(store: Store) -> Store:
        return load_dataset(store, name, scratch)

    load.name = name  # type: ignore[attr-defined]
    yield load


def test_every_recorded_answer_is_unchanged(
    dataset: Callable[[Store], Store],
    store: Store,
    live_server: Callable[..., LiveServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name: str = dataset.name  # type: ignore[attr-defined]
    golden = GOLDEN[name]
    monkeypatch.setenv("CRIMEMAP_TOKEN_SECRET", GOLDEN_SECRET)
    loaded = dataset(store)
    server = live_server(loaded, Settings(cache_mb=0))
    changed = changed_answers(server.client, golden)
    if loaded is not store:
        loaded.close()
    assert not changed, f"{len(changed)} answers changed, e.g.:\n" + "\n".join(changed[:10])
