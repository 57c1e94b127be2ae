"""The requests whose answers must never change by accident: the wire's regression record.

:func:`wire_requests` lists, for a loaded store, a few thousand requests across
every method of the police.uk API, the Maps Engine API and the downloads,
chosen deterministically from what the store holds (its map points, persistent
ids, months, forces and tables). :func:`answer_digest` reduces an answer to
its status and the SHA-256 of its body; for Maps Engine pages the opaque
``nextPageToken`` is followed and left out of the digest, since tokens are
signed with a per-server secret and may change form.

``tests/golden/wire.json`` holds the digests that the code of 2026-11-29 gave
(``python tests/make_wire_golden.py`` wrote it); ``test_wire_golden.py``
replays every request on both stores and compares. Regenerate it only for a
change of answers that is meant, and say so in the commit.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from crimemap.store.base import Store
from crimemap.store.catalogue import CRIMES_TABLE

GOLDEN_SECRET = "wire-golden"
"""``CRIMEMAP_TOKEN_SECRET`` while replaying: tokens stay valid across the pages of one walk."""


@dataclass(frozen=True)
class WireRequest:
    method: str
    path: str
    form: tuple[tuple[str, str], ...] = ()
    follow_pages: bool = False

    @property
    def key(self) -> str:
        form = "&".join(f"{k}={v}" for k, v in self.form)
        return f"{self.method} {self.path}" + (f" [{form}]" if form else "")


def _q(text: str) -> str:
    return quote(text, safe=",:")


def wire_requests(store: Store, seed: int = 1) -> list[WireRequest]:
    """The requests to replay on ``store`` (see the module docstring)."""
    rng = random.Random(seed)
    months = [m.month for m in store.months()]
    requests: list[WireRequest] = []
    add = requests.append
    get = lambda path: add(WireRequest("GET", path))  # noqa: E731
    get("/api/crimes-street-dates")
    get("/api/forces")
    for month in [None, *months]:
        date = f"&date={month}" if month else ""
        # Points: map points of the month and random places around them.
        crimes = _sample_crimes(store, month or months[0], rng, 20)
        for c in crimes:
            if c.lat is None or c.lng is None:
                continue
            lat, lng = c.lat + rng.uniform(-0.01, 0.01), c.lng + rng.uniform(-0.01, 0.01)
            category = rng.choice(["all-crime", "all-crime", c.category, "burglary", "anti-social-behaviour"])
            get(f"/api/crimes-street/{category}?lat={lat:.6f}&lng={lng:.6f}{date}")
            get(f"/api/crimes-at-location?location_id={c.street_id}{date}")
            get(f"/api/crimes-at-location?lat={c.lat:.6f}&lng={c.lng:.6f}{date}")
            get(f"/api/outcomes-at-location?location_id={c.street_id}{date}")
            get(f"/api/outcomes-at-location?lat={lat:.6f}&lng={lng:.6f}{date}")
            if c.persistent_id:
                get(f"/api/outcomes-for-crime/{c.persistent_id}")
            ring = _random_ring(rng, lng, lat)
            poly = ":".join(f"{y:.6f},{x:.6f}" for x, y in ring)
            get(f"/api/crimes-street/all-crime?poly={_q(poly)}{date}")
            add(
                WireRequest(
                    "POST", f"/api/crimes-street/{category}", (("poly", poly), *((("date", month),) if month else ()))
                )
            )
            get(f"/api/outcomes-at-location?poly={_q(poly)}{date}")
        forces = sorted({c.force for c in crimes})
        for force in forces:
            get(f"/api/crimes-no-location?force={force}{date}")
            get(f"/api/crimes-no-location?force={force}&category=burglary{date}")
        get(f"/api/crime-categories?date={month or months[0]}")
        # The whole country: a 503 (or all of a small month).
        get(f"/api/crimes-street/all-crime?poly=49.8,-8.7:49.8,2.0:61.0,2.0:61.0,-8.7{date}")
    # Errors, as the API words them.
    for path in (
        "/api/crimes-street/all-crime?lat=91&lng=0",
        "/api/crimes-street/all-crime?lat=x&lng=0",
        "/api/crimes-street/not-a-category?lat=51.5&lng=-0.1",
        "/api/crimes-street/all-crime?lat=51.5&lng=-0.1&date=2017-13",
        "/api/crimes-street/all-crime?poly=51.5,-0.1:51.6,-0.1",
        "/api/crimes-at-location?location_id=abc",
        "/api/crimes-at-location?location_id=1",
        "/api/crimes-no-location?force=nowhere",
        "/api/outcomes-for-crime/" + "0" * 64,
        "/api/forces/nowhere",
    ):
        get(path)
    # Maps Engine pages and downloads on every table.
    for table in store.tables():
        base = f"/mapsengine/v1/tables/{table.id}/features"
        add(WireRequest("GET", f"{base}?maxResults=1000", follow_pages=True))
        add(WireRequest("GET", f"{base}?maxResults=317&select=geometry", follow_pages=True))
        names = [c.name for c in table.columns]
        for _ in range(12):
            chosen = rng.sample(names, min(len(names), rng.randint(1, 5)))
            select = ",".join(chosen + (["geometry"] if rng.random() < 0.5 else []))
            order = rng.choice(names)
            desc = rng.choice(["", "%20DESC"])
            get(f"{base}?select={_q(select)}&orderBy={_q(order)}{desc}&maxResults=200")
        for where in _where_clauses(store, table.id, rng):
            add(WireRequest("GET", f"{base}?where={_q(where)}&maxResults=500", follow_pages=True))
        for gx_id in _sample_ids(store, table.id, rng, 5):
            get(f"{base}/{gx_id}")
            get(f"{base}/{gx_id}?select={_q(rng.choice(names))}")
        for fmt in ("geojson", "csv"):
            get(f"/download/{table.id}.{fmt}")
            where = next(iter(_where_clauses(store, table.id, rng)), None)
            if where:
                get(f"/download/{table.id}.{fmt}?where={_q(where)}&select={_q(','.join(names[:3]))}")
    get(f"/mapsengine/v1/tables/{CRIMES_TABLE}/features?where={_q('nonsense ==')}")
    get("/mapsengine/v1/tables/no-such-table/features")
    return requests


def _sample_crimes(store: Store, month: str, rng: random.Random, n: int) -> list:  # type: ignore[type-arg]
    from crimemap.query import CrimeQuery

    located = list(store.crimes(CrimeQuery(month=month)))
    located.sort(key=lambda c: c.id)
    return rng.sample(located, min(n, len(located)))


def _sample_ids(store: Store, table_id: str, rng: random.Random, n: int) -> list[int]:
    from crimemap.query import FeatureQuery

    ids = sorted(f.gx_id for f in store.features(FeatureQuery(table_id, columns=())))
    return rng.sample(ids, min(n, len(ids)))


def _random_ring(rng: random.Random, lng: float, lat: float) -> list[tuple[float, float]]:
    """A random simple polygon of 3 to 9 points round (lng, lat), up to a few km across."""
    import math

    n = rng.randint(3, 9)
    size = rng.choice([0.002, 0.01, 0.03])
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))
    return [
        (lng + size * rng.uniform(0.3, 1) * math.cos(a), lat + size * rng.uniform(0.3, 1) * math.sin(a)) for a in angles
    ]


def _where_clauses(store: Store, table_id: str, rng: random.Random) -> list[str]:
    if table_id == CRIMES_TABLE:
        months = [m.month for m in store.months()]
        return [
            f"month = '{months[0]}' AND category = 'burglary'",
            "crime_type = 'Burglary' OR crime_type = 'Robbery'",
            "location_type = 'BTP'",
            "last_outcome_category IS NULL AND street_id IS NOT NULL",
            "location CONTAINS 'street' AND month >= '2016-06'",
            "category IN ('drugs', 'shoplifting') AND NOT (month = '2016-01')",
            "ST_DISTANCE(geometry, ST_POINT(-0.09, 51.515)) < 400",
            "ST_INTERSECTS(geometry, ST_GEOMFROMTEXT("
            "'POLYGON((-0.1 51.51, -0.08 51.51, -0.08 51.52, -0.1 51.52, -0.1 51.51))'))",
            "outcome_month > month",
            "reported_by = 'City of London Police' AND crime_id <> ''",
        ]
    return ["MO = 3", "YR = 2015 AND X <> 0", "TOT > 2 OR MO IN (1, 12)", "CR CONTAINS 'LARCENY'"]


def answer_digest(client: httpx.Client, request: WireRequest) -> Iterator[tuple[str, int, str, str]]:
    """``(key, status, exact digest, unordered digest)`` for the request and each page that follows it.

    The exact digest is the SHA-256 of the body; the unordered one is that of
    the body with its list of crimes, outcomes or features (or its CSV rows)
    sorted, for answers whose order no API defines. A walk through pages gets
    one more entry, ``<key> [all pages]``, whose unordered digest covers the
    features of every page (the pages themselves then have none).
    """
    if request.method == "POST":
        response = client.post(request.path, data=dict(request.form))
    else:
        response = client.get(request.path)
    paging = request.follow_pages and response.status_code == 200
    yield request.key, response.status_code, _digest(response.content), "" if paging else _unordered(response)
    if not paging:
        return
    features = list(response.json()["features"])
    page = 1
    while token := response.json().get("nextPageToken"):
        sep = "&" if "?" in request.path else "?"
        response = client.get(f"{request.path}{sep}pageToken={quote(token, safe='')}")
        yield f"{request.key} page {page}", response.status_code, _digest(response.content), ""
        if response.status_code != 200:
            break
        features.extend(response.json()["features"])
        page += 1
    yield f"{request.key} [all pages]", response.status_code, "", _canonical_digest(features)


def changed_answers(client: httpx.Client, golden: dict[str, Any]) -> list[str]:
    """What differs from a recorded data set (``{"requests": ..., "answers": ...}``), one line per answer.

    An answer is the same when its status is, and its body byte for byte (or, for a
    walk through pages, the features of every page in any order).
    """
    changed: list[str] = []
    for i, (method, path, form, follow) in enumerate(golden["requests"]):
        req = WireRequest(method, path, tuple((k, v) for k, v in form), follow)
        for key, status, exact, unordered in answer_digest(client, req):
            recorded = golden["answers"].get(f"{i}{key[len(req.key) :]}")
            if recorded is None:
                changed.append(f"{key}: not recorded")
                continue
            want_status, want_exact, _, want_unordered = recorded  # the third: PostGIS's answer then
            same = status == want_status and (
                (exact != "" and exact == want_exact)  # the body, byte for byte
                or (exact == "" and unordered == want_unordered)  # a whole walk through pages
            )
            if not same:
                changed.append(f"{key}: status {status} (was {want_status})")
    return changed


_TOKEN = re.compile(rb',"nextPageToken":"[^"]*"')


def _digest(body: bytes) -> str:
    return _short(hashlib.sha256(_TOKEN.sub(b"", body)))


def _short(digest: hashlib._Hash) -> str:
    """64 bits of a digest: plenty to notice a changed answer, and a small record."""
    return digest.hexdigest()[:16]


def _unordered(response: httpx.Response) -> str:
    import orjson

    body = _TOKEN.sub(b"", response.content)
    kind = response.headers.get("content-type", "")
    if kind.startswith("text/csv"):
        head, _, rest = body.partition(b"\r\n")
        return _short(hashlib.sha256(head + b"\r\n" + b"\r\n".join(sorted(rest.split(b"\r\n")))))
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _digest(body)

    if isinstance(value, list):
        return _canonical_digest(value)
    if isinstance(value, dict) and isinstance(value.get("features"), list):
        value["features"] = _canonical(value["features"])
    return _short(hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)))


def _canonical(items: list) -> list:  # type: ignore[type-arg]
    import orjson

    return sorted(items, key=lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))


def _canonical_digest(items: list) -> str:  # type: ignore[type-arg]
    import orjson

    return _short(hashlib.sha256(orjson.dumps(_canonical(items), option=orjson.OPT_SORT_KEYS)))
