"""Write ``tests/golden/wire.json``: every request of :mod:`wire_requests` and its answer's digest.

Run from the project root, only when answers are meant to change::

    python tests/make_wire_golden.py

It loads each data set (the real police.uk files and NYC tables from
``../shared/data``, and a small generated archive) into both stores, answers
every request on both, and refuses to write if the two stores disagree.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ["CRIMEMAP_TOKEN_SECRET"] = "wire-golden"

from fastapi.testclient import TestClient  # noqa: E402

from crimemap.api.app import Settings, create_app  # noqa: E402
from pg_server import fresh_store_url  # noqa: E402
from wire_datasets import DATASETS, load_dataset  # noqa: E402
from wire_requests import answer_digest, wire_requests  # noqa: E402


def answers(store, requests):  # type: ignore[no-untyped-def]
    client = TestClient(create_app(store, Settings(cache_mb=0)))
    out = {}
    for i, r in enumerate(requests):
        for key, status, digest, unordered in answer_digest(client, r):
            out[f"{i}{key[len(r.key) :]}"] = [status, digest, unordered]
    return out


def main() -> None:
    from crimemap.store.postgis import PostGISStore
    from crimemap.store.sqlite import SQLiteStore

    golden = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in DATASETS:
            lite = load_dataset(SQLiteStore(Path(tmp) / f"{name}.sqlite"), name, Path(tmp))
            requests = wire_requests(lite)
            first = answers(lite, requests)
            if name == "upgraded":  # a SQLite file: nothing to compare with
                pg, second = lite, first
            else:
                pg = load_dataset(PostGISStore(fresh_store_url()), name, Path(tmp))
                second = answers(pg, requests)
            differ = [k for k in first if [first[k][0], first[k][2]] != [second[k][0], second[k][2]]]
            if differ or first.keys() != second.keys():
                raise SystemExit(f"{name}: the stores disagree on {len(differ)} answers, e.g. {differ[:3]}")
            golden[name] = {
                "requests": [[r.method, r.path, list(map(list, r.form)), r.follow_pages] for r in requests],
                "answers": {k: [s, d, second[k][1], u] for k, (s, d, u) in first.items()},
            }
            print(f"{name}: {len(requests)} requests, {len(first)} answers", flush=True)
            lite.close()
            pg.close()
    out = HERE / "golden" / "wire.json"
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(orjson.dumps(golden, option=orjson.OPT_SORT_KEYS))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
