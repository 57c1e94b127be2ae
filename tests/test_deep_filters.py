"""Filters within the documented limits are answered; beyond them, a 400 in the API's envelope (issue 19, item 3).

An OGC ``filter`` of 50 ``NOT``s (the README allowed 64 levels) was a 500, SQLite's "parser stack
overflow"; 1,000 ``OR`` terms (within the 16 KiB limit) were "Expression tree is too large", a 503 from
the Maps Engine ``where``. The stores now compile ``NOT NOT x`` as ``x`` and long chains in groups, so
any number of NOTs and any chain that fits the length limit is answered; what SQLite's parser cannot
take, AND and OR nested in one another more than ``MAX_LOGIC_DEPTH`` levels, is refused with a 400. Every
test runs on both stores (``policeuk_server`` serves the real files).
"""

from __future__ import annotations

import pytest

from conftest import LiveServer
from crimemap.query import MAX_LOGIC_DEPTH, And, Compare, Not, Or, logic_depth
from crimemap.where import MAX_DEPTH, parse_where
from crimemap.where_syntax import MAX_CLAUSE_CHARS, ColumnType

ITEMS = "/ogc/collections/policeuk-crimes/items"
FEATURES = "/mapsengine/v1/tables/policeuk-crimes/features"
JUNE = "month = '2016-06'"
SCHEMA: dict[str, ColumnType] = {"id": "integer", "month": "string"}


def nots(n: int, inner: str = JUNE) -> str:
    return "NOT " * n + inner


def ors(n: int) -> str:
    """``n`` ORed conditions, the last of them June's: the answer is June's crimes."""
    return " OR ".join([*(f"id = {i}" for i in range(1, n)), JUNE])


def alternating(levels: int) -> str:
    """AND and OR nested ``levels`` deep, each under a NOT, true for June's crimes (ids are never 0)."""
    text = JUNE
    for i in range(levels):
        text = f"NOT (id = 0 OR NOT ({text}))" if i % 2 else f"NOT (id <> 0 AND NOT ({text}))"
    return text


def ogc_ids(server: LiveServer, text: str) -> list[int]:
    response = server.client.get(ITEMS, params={"filter": text, "limit": 10_000})
    assert response.status_code == 200, response.text
    return sorted(f["id"] for f in response.json()["features"])


def maps_engine_ids(server: LiveServer, text: str) -> list[int]:
    response = server.client.get(FEATURES, params={"where": text, "maxResults": 1_000})
    assert response.status_code == 200, response.text
    return sorted(f["properties"]["id"] for f in response.json()["features"])


@pytest.fixture(scope="module")
def june(policeuk_server: LiveServer) -> list[int]:
    found = ogc_ids(policeuk_server, JUNE)
    assert 0 < len(found) < 1_000
    return found


def test_the_depth_counted_is_and_or_nested_in_one_another() -> None:
    assert all(logic_depth(parse_where(alternating(n), SCHEMA)) == n for n in (1, 2, MAX_LOGIC_DEPTH))
    a = Compare("id", "=", 1)
    assert logic_depth(a) == 0
    assert logic_depth(Not(Not(Not(a)))) == 0
    assert logic_depth(Or(tuple([a] * 1_000))) == 1
    assert logic_depth(And((a, And((a, And((a, a))))))) == 1, "a chain of ANDs is one level"
    assert logic_depth(And((a, Not(And((a, a)))))) == 2, "the store does not merge a chain through a NOT"
    assert logic_depth(And((a, Or((a, And((a, a))))))) == 3


@pytest.mark.parametrize("count", [50, 64])
def test_an_ogc_filter_of_up_to_64_nots_is_answered(policeuk_server: LiveServer, june: list[int], count: int) -> None:
    assert ogc_ids(policeuk_server, nots(count)) == (june if count % 2 == 0 else [])
    assert ogc_ids(policeuk_server, nots(count - 1, f"NOT ({JUNE})")) == june
    bracketed = "NOT (" * count + JUNE + ")" * count
    assert ogc_ids(policeuk_server, bracketed) == june


@pytest.mark.parametrize("count", [50, 64])
def test_a_maps_engine_where_of_up_to_64_nots_is_answered(
    policeuk_server: LiveServer, june: list[int], count: int
) -> None:
    assert count <= MAX_DEPTH
    assert maps_engine_ids(policeuk_server, nots(count)) == june


def test_a_thousand_or_terms_are_answered_by_both_apis(policeuk_server: LiveServer, june: list[int]) -> None:
    text = ors(1_000)
    assert len(text) <= MAX_CLAUSE_CHARS
    assert ogc_ids(policeuk_server, text) == june
    assert maps_engine_ids(policeuk_server, text) == june
    chained = " AND ".join([*(f"id <> {i}" for i in range(1, 1_000)), JUNE])
    assert ogc_ids(policeuk_server, chained) == june
    assert maps_engine_ids(policeuk_server, chained) == june


def test_and_or_nested_as_deep_as_documented_is_answered(policeuk_server: LiveServer, june: list[int]) -> None:
    text = alternating(MAX_LOGIC_DEPTH)
    assert ogc_ids(policeuk_server, text) == june
    assert maps_engine_ids(policeuk_server, text) == june
    download = policeuk_server.client.get("/download/policeuk-crimes.csv", params={"where": text})
    assert download.status_code == 200 and download.text.count("\n") == len(june) + 1


@pytest.mark.parametrize("levels", [MAX_LOGIC_DEPTH + 1, 32, 64])
def test_and_or_nested_deeper_is_400_in_each_apis_envelope(policeuk_server: LiveServer, levels: int) -> None:
    text = alternating(levels)
    ogc = policeuk_server.client.get(ITEMS, params={"filter": text})
    assert ogc.status_code == 400, ogc.text
    assert ogc.json()["code"] == "InvalidParameterValue"
    assert "nests" in ogc.json()["description"] and "deep" in ogc.json()["description"]
    for response in (
        policeuk_server.client.get(FEATURES, params={"where": text}),
        policeuk_server.client.get("/download/policeuk-crimes.csv", params={"where": text}),
    ):
        assert response.status_code == 400, response.text
        error = response.json()["error"]["errors"][0]
        assert error["reason"] == "invalid" and error["location"] == "where"
        assert "nests" in error["message"] and "deep" in error["message"]
