"""An answer from the embedded store is read as of one moment, even when it takes several statements.

A mile's crimes are read range of cells by range of cells, a count in parts: each a statement of its
own. A load that commits while a reader is between two of them must not give the reader half the old
month and half the new.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from crimemap import geo
from crimemap.load.generate.archive import generate
from crimemap.load.generate.world import DENSEST_CENTRE
from crimemap.load.policeuk import load_policeuk
from crimemap.query import Circle, CrimeQuery
from crimemap.stats_query import parse_stats
from crimemap.store.sqlite import SQLiteStore

MONTH = "2024-03"
MILE = CrimeQuery(month=MONTH, area=Circle(DENSEST_CENTRE, 2 * geo.ONE_MILE_M))
COUNTS = parse_stats(group="category", months=MONTH, bbox="-0.3,51.4,0.05,51.6")


def _seen(store: SQLiteStore) -> tuple[Any, ...]:
    crimes = store.crimes_json(MILE, 10_001)
    outcomes = store.outcomes_json(MILE, 10_001)
    return (crimes.found, crimes.body), (outcomes.found, outcomes.body), tuple(store.stats(COUNTS))


def test_a_reader_during_a_reload_sees_the_old_month_or_the_new_never_half_of_each(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    generate(first, months=[MONTH], crimes_per_month=40_000, seed=1)
    generate(second, months=[MONTH], crimes_per_month=40_000, seed=2)
    store = SQLiteStore(tmp_path / "store.sqlite")
    load_policeuk(store, [first])
    old = _seen(store)
    seen: list[tuple[Any, ...]] = []
    failed: list[BaseException] = []

    def reload() -> None:
        try:
            for archive in (second, first, second):
                load_policeuk(store, [archive])
        except BaseException as e:  # noqa: BLE001 - reported below
            failed.append(e)

    loader = threading.Thread(target=reload)
    loader.start()
    while loader.is_alive():
        seen.append(_seen(store))
    loader.join()
    new = _seen(store)
    store.close()
    assert not failed
    assert all(n != o for n, o in zip(new, old, strict=True)), "the two archives differ in every part read"
    assert len(seen) > 3, "the reader read while the reloads ran"
    for part in range(len(old)):
        assert all(s[part] in (old[part], new[part]) for s in seen), f"a reader saw a month half replaced ({part})"
