"""CQL2 filters (text and JSON) become the same predicate trees as Maps Engine ``where`` clauses."""

from __future__ import annotations

import threading

import pytest

from crimemap.cql import MAX_NESTING, FilterError, parse_filter
from crimemap.query import And, Circle, Compare, In, IsNull, Like, Not, Or, Polygon, Predicate, Within
from crimemap.store.catalogue import CRIME_COLUMNS, ColumnType

CRIMES: dict[str, ColumnType] = {c.name: c.type for c in CRIME_COLUMNS}
TABLE: dict[str, ColumnType] = {**CRIMES, "ok": "boolean", "when": "datetime", "x": "double"}
BOX = Polygon(((-0.1, 51.5), (-0.09, 51.5), (-0.09, 51.52), (-0.1, 51.52), (-0.1, 51.5)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("crime_type = 'Burglary'", Compare("crime_type", "=", "Burglary")),
        ("'Burglary' = crime_type", Compare("crime_type", "=", "Burglary")),
        ("street_id <> 5", Compare("street_id", "<>", 5)),
        ("10 < id", Compare("id", ">", 10)),
        ("x >= -1.5e3", Compare("x", ">=", -1500.0)),
        ("id = 2.5", Compare("id", "=", 2.5)),
        ("ok = TRUE", Compare("ok", "=", True)),
        ("location LIKE 'On or near %'", Like("location", "On or near %")),
        ("location NOT LIKE '%Street'", Not(Like("location", "%Street"))),
        (
            "month BETWEEN '2016-01' AND '2016-03'",
            And((Compare("month", ">=", "2016-01"), Compare("month", "<=", "2016-03"))),
        ),  # fmt: skip
        ("category IN ('burglary', 'drugs')", In("category", ("burglary", "drugs"))),
        ("id NOT IN (1, 2)", Not(In("id", (1, 2)))),
        ("outcome_month IS NULL", IsNull("outcome_month")),
        ("outcome_month IS NOT NULL", Not(IsNull("outcome_month"))),
        ("when > TIMESTAMP('2015-01-01T00:00:00+00:00')", Compare("when", ">", "2015-01-01T00:00:00Z")),
        ("when >= DATE('2015-01-01')", Compare("when", ">=", "2015-01-01")),
        ("S_INTERSECTS(geometry, BBOX(-0.1, 51.5, -0.09, 51.52))", Within(BOX)),
        ("S_INTERSECTS(geometry, POLYGON((-0.1 51.5, -0.09 51.5, -0.09 51.52, -0.1 51.52, -0.1 51.5)))", Within(BOX)),
        ("S_INTERSECTS(geometry, POINT(-0.1 51.5))", Within(Circle((-0.1, 51.5), 0.0))),
        (
            "a = 1 OR b = 2".replace("a", "id").replace("b", "street_id"),
            Or((Compare("id", "=", 1), Compare("street_id", "=", 2))),
        ),  # fmt: skip
        ("id = 1 AND (id = 2 AND id = 3)", And((Compare("id", "=", 1), Compare("id", "=", 2), Compare("id", "=", 3)))),
        ("NOT (id = 1 OR ok = FALSE)", Not(Or((Compare("id", "=", 1), Compare("ok", "=", False))))),
    ],
)
def test_cql2_text_becomes_the_predicate_it_means(text: str, expected: Predicate) -> None:
    assert parse_filter(text, TABLE) == expected


def test_cql2_json_is_read_as_the_same_tree() -> None:
    text = '{"op": "and", "args": [{"op": "=", "args": [{"property": "month"}, "2017-01"]},'
    text += '{"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [-0.1, 51.5, -0.09, 51.52]}]}]}'
    assert parse_filter(text, TABLE, "cql2-json") == And((Compare("month", "=", "2017-01"), Within(BOX)))


def test_the_drafts_cql_text_that_gdal_sends_is_read_as_cql2_text() -> None:
    text = "(month = '2017-01') AND (crime_type = 'Burglary')"
    assert parse_filter(text, TABLE, "cql-text") == parse_filter(text, TABLE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope = 1", "unknown property 'nope'"),
        ("id = 'x'", "property 'id' is integer; compare it with a number"),
        ("crime_type = 3", "property 'crime_type' is string"),
        ("ok < TRUE", "can only be compared with = or <>"),
        ("id = street_id", "comparing two properties is not supported"),
        ("CASEI(crime_type) = 'x'", "CASEI is not supported"),
        ("id LIKE '1%'", "LIKE needs a string property"),
        ("id = 9007199254740993", "too large to compare exactly"),
        ("S_INTERSECTS(geometry, LINESTRING(0 0, 1 1))", "not LineString"),
        ("S_WITHIN(geometry, BBOX(0, 0, 1, 1))", "S_WITHIN is not supported"),
        ("S_INTERSECTS(geometry, BBOX(1, 0, 0, 1))", "west <= east"),
        ("S_INTERSECTS(geometry, POLYGON((0 0, 1 0, 1 1, 0 0), (0.1 0.1, 0.2 0.1, 0.2 0.2, 0.1 0.1)))", "holes"),
        ("S_INTERSECTS(geometry, POINT(200 0))", "longitude in -180..180"),
        ("geometry IS NULL", "geometry can only be used in S_INTERSECTS"),
        ("when = 'yesterday'", "is datetime"),
        ("id = ", "the filter is not CQL2 text: expected"),
        ("id = 1 AND", "(at character"),
        ("(" * (MAX_NESTING + 1) + "id = 1" + ")" * (MAX_NESTING + 1), "parentheses"),
        ("NOT " * (MAX_NESTING + 1) + "id = 1", "NOT operators"),
        ("id IN (" + ",".join(["1"] * 1001) + ")", "at most 1000 values"),
        ("id = 1" + " " * 20_000, "characters long"),
    ],
)
def test_a_filter_that_is_not_understood_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text, TABLE)
    assert message in caught.value.message
    assert caught.value.parameter == "filter"


def test_an_unknown_filter_lang_names_filter_lang() -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter("id = 1", TABLE, "ecql")
    assert caught.value.parameter == "filter-lang"


def test_the_deepest_filter_accepted_parses_in_a_server_thread() -> None:
    """The ``cql2`` parser recurses in native code: the nesting limit keeps it inside a worker thread's stack."""
    deepest = "NOT " * MAX_NESTING + "(" * MAX_NESTING + "id = 1" + ")" * MAX_NESTING
    results: list[Predicate] = []
    worker = threading.Thread(target=lambda: results.append(parse_filter(deepest, TABLE)))
    worker.start()
    worker.join(30)
    assert len(results) == 1
