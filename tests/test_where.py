"""The Maps Engine ``where``/``select``/``orderBy`` language, as :mod:`crimemap.where` accepts it."""

from __future__ import annotations

import random

import pytest

from crimemap.query import (
    And,
    Circle,
    Compare,
    CompareNumber,
    Contains,
    In,
    IsNull,
    Not,
    Or,
    OrderKey,
    Polygon,
    Predicate,
    Within,
)
from crimemap.where import MAX_DEPTH, MAX_IN_VALUES, parse_where
from crimemap.where_columns import parse_order_by, parse_select
from crimemap.where_syntax import MAX_CLAUSE_CHARS, ColumnType, WhereError

NYC: dict[str, ColumnType] = {
    "YR": "double",
    "MO": "double",
    "X": "double",
    "Y": "double",
    "TOT": "double",
    "CR": "string",
}
"""The NYC Crime Map's table, as its own queries use it."""

SCHEMA: dict[str, ColumnType] = {
    **NYC,
    "N": "integer",
    "B": "boolean",
    "D": "datetime",
    "Crime type": "string",
    "IN": "string",
}

NYC_QUERY = (
    "MO=10 AND YR=2013 AND ST_INTERSECTS(geometry,ST_GEOMFROMTEXT('POLYGON((-73.920 40.772,"
    "-73.941 40.772,-73.941 40.767,-73.920 40.767,-73.920 40.772))')) AND X<>0 AND Y<>0"
)

SQUARE = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0))
SQUARE_WKT = "POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))"
A, B_, C = Compare("X", "=", 1), Compare("Y", "=", 2), Compare("TOT", "=", 3)


def where(text: str) -> Predicate:
    return parse_where(text, SCHEMA)


def test_the_nyc_crime_map_query_parses_exactly_as_sent() -> None:
    ring = ((-73.92, 40.772), (-73.941, 40.772), (-73.941, 40.767), (-73.92, 40.767), (-73.92, 40.772))
    assert parse_where(NYC_QUERY, NYC) == And(
        (
            Compare("MO", "=", 10),
            Compare("YR", "=", 2013),
            Within(Polygon(ring)),
            Compare("X", "<>", 0),
            Compare("Y", "<>", 0),
        )
    )


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        # comparisons, every operator, either side of the column
        ("X = 1", Compare("X", "=", 1)),
        ("X <> 1", Compare("X", "<>", 1)),
        ("X != 1", Compare("X", "<>", 1)),
        ("X < 1", Compare("X", "<", 1)),
        ("X > 1", Compare("X", ">", 1)),
        ("X <= 1", Compare("X", "<=", 1)),
        ("X >= 1", Compare("X", ">=", 1)),
        ("X=1", Compare("X", "=", 1)),
        ("5 < X", Compare("X", ">", 5)),
        ("5 >= X", Compare("X", "<=", 5)),
        ("5 = X", Compare("X", "=", 5)),
        ("'a' < CR", Compare("CR", ">", "a")),
        # numbers keep int vs float as typed
        ("YR = 2013", Compare("YR", "=", 2013)),
        ("YR = 2013.0", Compare("YR", "=", 2013.0)),
        ("N = 2015", Compare("N", "=", 2015)),
        ("N = 2015.5", Compare("N", "=", 2015.5)),
        ("X = -73.92", Compare("X", "=", -73.92)),
        ("X = - 3", Compare("X", "=", -3)),
        ("X = +3", Compare("X", "=", 3)),
        ("X = .5", Compare("X", "=", 0.5)),
        ("X = 5.", Compare("X", "=", 5.0)),
        ("X = 1e3", Compare("X", "=", 1000.0)),
        ("X = 1.5E+3", Compare("X", "=", 1500.0)),
        ("X = -2e-2", Compare("X", "=", -0.02)),
        ("N = 007", Compare("N", "=", 7)),
        ("N = 9223372036854775807", Compare("N", "=", 2**63 - 1)),
        # strings
        ("CR = 'ROBBERY'", Compare("CR", "=", "ROBBERY")),
        ("CR = 'it''s'", Compare("CR", "=", "it's")),
        ("CR = ''", Compare("CR", "=", "")),
        ("CR = 'a AND b OR c; --'", Compare("CR", "=", "a AND b OR c; --")),
        ("CR >= 'B'", Compare("CR", ">=", "B")),
        ("CR CONTAINS 'rob'", Contains("CR", "rob")),
        ("CR contains 'it''s'", Contains("CR", "it's")),
        # booleans and datetimes
        ("B = TRUE", Compare("B", "=", True)),
        ("B <> false", Compare("B", "<>", False)),
        ("B IN (TRUE, FALSE)", In("B", (True, False))),
        ("D >= '2013-01-01'", Compare("D", ">=", "2013-01-01")),
        ("D < '2013-01-31T12:30:00Z'", Compare("D", "<", "2013-01-31T12:30:00Z")),
        ("D IN ('2013-01-01', '2013-02-01 00:00')", In("D", ("2013-01-01", "2013-02-01 00:00"))),
        # IN, NOT IN, IS NULL, IS NOT NULL, NOT
        ("MO IN (1, 2, 3)", In("MO", (1, 2, 3))),
        ("MO IN (1)", In("MO", (1,))),
        ("MO in (1,-2.5,3e1)", In("MO", (1, -2.5, 30.0))),
        ("CR IN ('ROBBERY', 'BURGLARY')", In("CR", ("ROBBERY", "BURGLARY"))),
        ("MO NOT IN (1, 2)", Not(In("MO", (1, 2)))),
        ("NOT MO IN (1, 2)", Not(In("MO", (1, 2)))),
        ("CR IS NULL", IsNull("CR")),
        ("CR is null", IsNull("CR")),
        ("CR IS NOT NULL", Not(IsNull("CR"))),
        ("NOT X = 1", Not(A)),
        ("NOT NOT X = 1", Not(Not(A))),
        ("NOT (X = 1 AND Y = 2)", Not(And((A, B_)))),
        # column names: case-sensitive, quotable; keywords case-insensitive
        ("\"Crime type\" = 'x'", Compare("Crime type", "=", "x")),
        ("`Crime type` = 'x'", Compare("Crime type", "=", "x")),
        ("\"IN\" = 'x'", Compare("IN", "=", "x")),
        ('"X" = 1', A),
        ("X = 1 and Y = 2 Or TOT = 3", Or((And((A, B_)), C))),
        # whitespace and parentheses
        ("  X = 1  ", A),
        ("X\t=\n1", A),
        ("(X = 1)", A),
        ("((X = 1))", A),
        ("(X = 1) AND (Y = 2)", And((A, B_))),
    ],
)
def test_supported_clauses_parse_to_predicates(clause: str, expected: Predicate) -> None:
    assert where(clause) == expected


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        (f"ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('{SQUARE_WKT}'))", Within(Polygon(SQUARE))),
        (f"ST_INTERSECTS(ST_GEOMFROMTEXT('{SQUARE_WKT}'), geometry)", Within(Polygon(SQUARE))),
        (f"st_intersects(geometry, st_geomfromtext('{SQUARE_WKT}'))", Within(Polygon(SQUARE))),
        (f"ST_INTERSECTS(\"geometry\", ST_GEOMFROMTEXT('{SQUARE_WKT}'))", Within(Polygon(SQUARE))),
        # the ring is closed if the client did not close it
        (
            "ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('POLYGON((0 0, 1 0, 1 1, 0 1))'))",
            Within(Polygon(SQUARE)),
        ),
        (
            "ST_INTERSECTS(geometry,ST_GEOMFROMTEXT('polygon ( ( 0 0 ,1 0,1 1,0 1 ) ) '))",
            Within(Polygon(SQUARE)),
        ),
        (
            "ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('POLYGON((-180 -90, 180 -90, 180 90))'))",
            Within(Polygon(((-180.0, -90.0), (180.0, -90.0), (180.0, 90.0), (-180.0, -90.0)))),
        ),
        ("ST_DISTANCE(geometry, ST_POINT(-0.1, 51.5)) < 500", Within(Circle((-0.1, 51.5), 500.0))),
        ("ST_DISTANCE(geometry, ST_POINT(-0.1, 51.5)) <= 1e3", Within(Circle((-0.1, 51.5), 1000.0))),
        ("ST_DISTANCE(geometry, ST_POINT(-0.1, 51.5)) > 500", Not(Within(Circle((-0.1, 51.5), 500.0)))),
        ("ST_DISTANCE(geometry, ST_POINT(-0.1, 51.5)) >= 0", Not(Within(Circle((-0.1, 51.5), 0.0)))),
        ("ST_DISTANCE(ST_POINT(1.23, 4.56), geometry) < 100", Within(Circle((1.23, 4.56), 100.0))),
        ("st_distance(geometry,st_point(1,2))<100", Within(Circle((1.0, 2.0), 100.0))),
        ("100 > ST_DISTANCE(geometry, ST_POINT(1, 2))", Within(Circle((1.0, 2.0), 100.0))),
        ("100 < ST_DISTANCE(geometry, ST_POINT(1, 2))", Not(Within(Circle((1.0, 2.0), 100.0)))),
        (
            "CR = 'ROBBERY' AND ST_DISTANCE(geometry, ST_POINT(1, 2)) < 100",
            And((Compare("CR", "=", "ROBBERY"), Within(Circle((1.0, 2.0), 100.0)))),
        ),
    ],
)
def test_spatial_functions_parse_to_within(clause: str, expected: Predicate) -> None:
    assert where(clause) == expected


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("X = 1 OR Y = 2 AND TOT = 3", Or((A, And((B_, C))))),
        ("X = 1 AND Y = 2 OR TOT = 3", Or((And((A, B_)), C))),
        ("(X = 1 OR Y = 2) AND TOT = 3", And((Or((A, B_)), C))),
        ("NOT X = 1 AND Y = 2", And((Not(A), B_))),
        ("NOT X = 1 OR Y = 2", Or((Not(A), B_))),
        ("NOT (X = 1 OR Y = 2)", Not(Or((A, B_)))),
    ],
)
def test_not_binds_tighter_than_and_which_binds_tighter_than_or(clause: str, expected: Predicate) -> None:
    assert where(clause) == expected


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("X = 1 AND Y = 2 AND TOT = 3", And((A, B_, C))),
        ("(X = 1 AND Y = 2) AND TOT = 3", And((A, B_, C))),
        ("X = 1 AND (Y = 2 AND TOT = 3)", And((A, B_, C))),
        ("X = 1 OR (Y = 2 OR TOT = 3)", Or((A, B_, C))),
        ("((X = 1 OR Y = 2)) OR TOT = 3", Or((A, B_, C))),
        ("X = 1 AND (Y = 2 OR TOT = 3)", And((A, Or((B_, C))))),
    ],
)
def test_nested_and_or_are_flattened(clause: str, expected: Predicate) -> None:
    assert where(clause) == expected


_POLY = "ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('{}'))"


@pytest.mark.parametrize(
    ("clause", "fragment", "position"),
    [
        # SQL injection and anything SQL-but-not-Maps-Engine
        ("X=1; DROP TABLE t", "';' is not allowed", 3),
        ("X=1 --", "comments are not allowed", 4),
        ("X=1 /* hi */", "comments are not allowed", 4),
        ("1=1", "constant conditions are not allowed", 0),
        ("'a'='a'", "constant conditions are not allowed", 0),
        ("X=1 OR 1=1", "constant conditions are not allowed", 7),
        ("X = (SELECT 1)", "expected a value, found '('", 4),
        ("X IN (SELECT X FROM t)", "expected a value, found 'SELECT'", 6),
        ("X LIKE 'a'", "after column 'X', found 'LIKE'", 2),
        ("CR = 'a' UNION SELECT 1", "expected AND, OR or the end of the clause, found 'UNION'", 9),
        ("X = Y", "comparing two columns is not supported", 4),
        ("X = 1 + 1", "expected AND, OR or the end of the clause, found '+'", 6),
        ("X == 1", "expected a value, found '='", 3),
        ("X = 0x10", "malformed number '0x10'", 4),
        ("X = 1.2.3", "malformed number '1.2.3'", 4),
        ("X = 10abc", "malformed number '10abc'", 4),
        ("X = @p", "unexpected character '@'", 4),
        ("X = 1 \\", "unexpected character '\\\\'", 6),
        # structure
        ("", "empty", None),
        ("   ", "empty", None),
        ("X = 1 AND", "expected a condition, found the end of the clause", 9),
        ("AND X = 1", "expected a condition, found 'AND'", 0),
        ("X = 1 OR OR Y = 2", "expected a condition, found 'OR'", 9),
        ("X = 1 Y = 2", "expected AND, OR or the end of the clause, found 'Y'", 6),
        ("X", "after column 'X', found the end of the clause", 1),
        ("X =", "expected a value, found the end of the clause", 3),
        ("TRUE", "expected a comparison operator", 4),
        ("(X = 1", "expected ')' to close the '(' at character 1", 6),
        ("((X = 1)", "expected ')' to close the '(' at character 1", 8),
        ("X = 1)", "unbalanced ')'", 5),
        ("()", "expected a condition, found ')'", 1),
        ("CR = 'abc", "unterminated string", 5),
        ("CR = 'it''s", "unterminated string", 5),
        ('"CR = 1', "unterminated quoted column name", 0),
        ("X IS 5", "expected NULL or NOT NULL after IS", 5),
        ("X IS NOT 5", "expected NULL or NOT NULL after IS", 9),
        ("X NOT LIKE 'a'", "expected IN after NOT", 6),
        ("X IN 1", "expected '(' after IN", 5),
        ("X IN ()", "IN needs at least one value", 6),
        ("X IN (1, 2", "expected ',' or ')' in the IN list", 10),
        ("X IN (1,)", "expected a value, found ')'", 8),
        ("X IN (1 2)", "expected ',' or ')' in the IN list, found '2'", 8),
        ("X = NULL", "NULL is not a value; test for missing values with IS NULL", 4),
        ("X IN (1, NULL)", "NULL is not a value", 9),
        # names
        ("Z = 1", "unknown column 'Z'", 0),
        ("yr = 2013", "unknown column 'yr' (did you mean 'YR'? column names are case-sensitive)", 0),
        ('CR = "ROBBERY"', "double quotes name a column; write strings in single quotes", 5),
        ("geometry = 1", "geometry can only be used inside ST_INTERSECTS or ST_DISTANCE", 0),
        ("geometry IS NULL", "geometry can only be used inside", 0),
        ("IN = 'x'", "expected a condition, found 'IN'", 0),
        ("LOWER(CR) = 'a'", "unknown function 'LOWER'; supported: ST_INTERSECTS, ST_DISTANCE", 0),
        ("ST_POINT(1, 2) = 1", "ST_POINT can only be used inside ST_DISTANCE", 0),
        ("X = ST_GEOMFROMTEXT('POINT(1 2)')", "ST_GEOMFROMTEXT can only be used inside ST_INTERSECTS", 4),
        # types
        ("X = 'abc'", "column 'X' is double; compare it with a number, not the string 'abc'", 4),
        ("X = '5'", "compare it with a number", 4),
        ("N = 'abc'", "column 'N' is integer; compare it with a number", 4),
        ("X = TRUE", "compare it with a number, not the boolean TRUE", 4),
        ("CR = true", "column 'CR' is string; compare it with a quoted string such as 'TRUE'", 5),
        ("CR IN ('a', FALSE)", "column 'CR' is string", 12),
        ("B = 1", "column 'B' is boolean; compare it with TRUE or FALSE, not the number 1", 4),
        ("B = 'true'", "column 'B' is boolean", 4),
        ("B < TRUE", "boolean column 'B' can only be compared with = or <>", 4),
        ("D = 2013", "column 'D' is datetime; compare it with a quoted ISO 8601 date", 4),
        ("D = 'yesterday'", "column 'D' is datetime", 4),
        ("D = '2013-13-01'", "column 'D' is datetime", 4),
        ("X CONTAINS 'a'", "CONTAINS needs a string column; 'X' is double", 0),
        ("CR CONTAINS 5", "expected a quoted string after CONTAINS", 12),
        ("X = 1e999", "number 1e999 is out of range", 4),
        ("N = 9223372036854775808", "integer 9223372036854775808 is out of range", 4),
        ("N = " + "9" * 5000, "is out of range", 4),
        # spatial
        (
            "ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('POLYGON((0 0, 1 0, 1 1))')) = TRUE",
            "cannot be compared",
            69,
        ),
        ("X = ST_INTERSECTS(geometry, geometry)", "cannot be compared", 4),
        ("ST_INTERSECTS(geometry, geometry)", "takes geometry and ST_GEOMFROMTEXT(...) as arguments", 24),
        ("ST_INTERSECTS(X, ST_GEOMFROMTEXT('POLYGON((0 0, 1 0, 1 1))'))", "found 'X'", 14),
        ("ST_INTERSECTS(GEOMETRY, ST_GEOMFROMTEXT('POLYGON((0 0, 1 0, 1 1))'))", "found 'GEOMETRY'", 14),
        ("ST_INTERSECTS(geometry)", "expected ',' between the arguments of ST_INTERSECTS", 22),
        ("ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('POLYGON((0 0, 1 0, 1 1))')", "to close ST_INTERSECTS", 67),
        ("ST_INTERSECTS(geometry, ST_GEOMFROMTEXT(X))", "takes one quoted WKT POLYGON", 40),
        (_POLY.format("POINT(1 2)"), "only POLYGON is supported in ST_GEOMFROMTEXT, not POINT", 41),
        (_POLY.format("MULTIPOLYGON(((0 0, 1 0, 1 1)))"), "only POLYGON is supported", 41),
        (_POLY.format("LINESTRING(0 0, 1 1)"), "only POLYGON is supported", 41),
        (_POLY.format("POLYGON((0 0, 4 0, 4 4), (1 1, 2 1, 2 2))"), "holes are not supported", 64),
        (_POLY.format("POLYGON EMPTY"), "empty POLYGON", 49),
        (_POLY.format("POLYGON((0 0, 1 0))"), "at least 3 distinct points", 58),
        (_POLY.format("POLYGON((0 0, 1 0, 0 0, 1 0))"), "at least 3 distinct points", 68),
        (_POLY.format("POLYGON((0 0 0, 1 0 0, 1 1 0))"), "only 2-D points", 54),
        (
            _POLY.format("POLYGON Z ((0 0 0, 1 0 0, 1 1 0))"),
            "expected '(' after POLYGON in WKT, found 'Z'",
            49,
        ),
        (_POLY.format("POLYGON((0 0, 1 0, 1))"), "expected a latitude in WKT, found ')'", 61),
        (_POLY.format("POLYGON((0 0, 1 0, 1 1)"), "expected ')' to close POLYGON in WKT, found the end", 64),
        (_POLY.format("POLYGON((0 0, 1 0, 1 1))) x"), "expected the end of the WKT", 65),
        (_POLY.format("POLYGON((0 0; 1 0, 1 1))"), "unexpected ';' in WKT", 53),
        (_POLY.format("POLYGON((181 0, 1 0, 1 1))"), "longitude 181 is outside -180..180", 50),
        (_POLY.format("POLYGON((0 -91, 1 0, 1 1))"), "latitude -91 is outside -90..90", 52),
        (_POLY.format("POLYGON((0 1e999, 1 0, 1 1))"), "latitude 1e999 is outside", 52),
        ("ST_DISTANCE(geometry, ST_POINT(1, 2)) = 100", "can only be compared with <, <=, > or >=", 0),
        ("ST_DISTANCE(geometry, ST_POINT(1, 2)) < -1", "a number of metres >= 0, not the number -1", 40),
        ("ST_DISTANCE(geometry, ST_POINT(1, 2)) < '5'", "a number of metres >= 0, not the string '5'", 40),
        ("ST_DISTANCE(geometry, ST_POINT(1, 2)) < X", "must be compared with a number of metres", 40),
        ("ST_DISTANCE(geometry, ST_POINT(1, 2))", "expected a comparison operator", 37),
        ("ST_DISTANCE(geometry, ST_POINT(1, 2)) IS NULL", "expected a comparison operator", 38),
        ("ST_DISTANCE(geometry, ST_POINT(181, 2)) < 1", "longitude 181 is outside -180..180", 31),
        ("ST_DISTANCE(geometry, ST_POINT(1, -90.5)) < 1", "latitude -90.5 is outside -90..90", 34),
        ("ST_DISTANCE(geometry, ST_POINT('1', 2)) < 1", "ST_POINT takes a numeric longitude", 31),
        ("ST_DISTANCE(geometry, ST_POINT(1)) < 1", "between the longitude and latitude of ST_POINT", 32),
        ("ST_DISTANCE(geometry, ST_POINT(1, 2, 3)) < 1", "to close ST_POINT", 35),
        ("ST_DISTANCE(ST_POINT(1, 2), ST_POINT(1, 2)) < 1", "takes geometry and ST_POINT(...)", 28),
        (
            "ST_DISTANCE(geometry, ST_GEOMFROMTEXT('POLYGON((0 0, 1 0, 1 1))')) < 1",
            "ST_DISTANCE takes geometry and ST_POINT(...) as arguments",
            22,
        ),
    ],
)
def test_malformed_clauses_are_refused_with_what_and_where(clause: str, fragment: str, position: int | None) -> None:
    with pytest.raises(WhereError) as caught:
        where(clause)
    error = caught.value
    assert fragment in str(error)
    assert error.parameter == "where"
    assert error.position == position
    if position is not None:
        assert str(error).endswith(f"(at character {position + 1})")


def test_a_where_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        where("X = 'abc'")


def test_clause_length_is_limited() -> None:
    longest = "CR = '" + "a" * (MAX_CLAUSE_CHARS - 7) + "'"
    assert len(longest) == MAX_CLAUSE_CHARS
    assert where(longest) == Compare("CR", "=", "a" * (MAX_CLAUSE_CHARS - 7))
    with pytest.raises(WhereError, match=f"the limit is {MAX_CLAUSE_CHARS}"):
        where(longest + " ")


def test_nesting_depth_is_limited() -> None:
    assert where("(" * MAX_DEPTH + "X = 1" + ")" * MAX_DEPTH) == A
    with pytest.raises(WhereError, match=f"more than {MAX_DEPTH} deep"):
        where("(" * (MAX_DEPTH + 1) + "X = 1" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(WhereError, match=f"more than {MAX_DEPTH} deep"):
        where("NOT " * (MAX_DEPTH + 1) + "X = 1")


def test_in_list_size_is_limited() -> None:
    values = ", ".join(str(i) for i in range(MAX_IN_VALUES))
    assert where(f"N IN ({values})") == In("N", tuple(range(MAX_IN_VALUES)))
    with pytest.raises(WhereError, match=f"at most {MAX_IN_VALUES} values"):
        where(f"N IN ({values}, 1000)")


def test_long_chains_of_conditions_do_not_recurse() -> None:
    clause = " AND ".join(["X = 1"] * 1500)
    assert where(clause) == And((A,) * 1500)


def test_a_schema_with_an_unknown_type_is_a_server_error_not_a_where_error() -> None:
    with pytest.raises(ValueError, match="unknown type 'float'") as caught:
        parse_where("X = 1", {"X": "float"})  # type: ignore[dict-item]
    assert not isinstance(caught.value, WhereError)


def test_random_garbage_only_ever_raises_where_error() -> None:
    pieces = [
        "X", "CR", "geometry", "=", "<>", "<", ">=", "(", ")", ",", "'a'", "'", '"', "1", "-", "2.5",
        "1e9", "AND", "OR", "NOT", "IN", "IS", "NULL", "CONTAINS", "TRUE", "ST_DISTANCE", "ST_POINT",
        "ST_INTERSECTS", "ST_GEOMFROMTEXT", "'POLYGON((0 0, 1 0, 1 1))'", ";", "--", " ",
    ]  # fmt: skip
    rng = random.Random(4)
    for _ in range(3000):
        clause = " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        try:
            where(clause)
        except WhereError:
            pass


# ---- select ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ("YR", "MO", "X", "Y", "TOT", "CR")),
        ("", ("YR", "MO", "X", "Y", "TOT", "CR")),
        ("  ", ("YR", "MO", "X", "Y", "TOT", "CR")),
        ("CR", ("CR",)),
        ("geometry,CR,TOT,MO,YR,X,Y", ("geometry", "CR", "TOT", "MO", "YR", "X", "Y")),
        ("YR, geometry , MO", ("YR", "geometry", "MO")),
        ('"CR", `X`', ("CR", "X")),
    ],
)
def test_select_names_columns_in_order(text: str | None, expected: tuple[str, ...]) -> None:
    assert parse_select(text, NYC) == expected


def test_select_accepts_columns_named_like_keywords_and_quoted_names() -> None:
    assert parse_select('IN, "Crime type", N', SCHEMA) == ("IN", "Crime type", "N")


@pytest.mark.parametrize(
    ("text", "fragment", "position"),
    [
        ("ZZ", "unknown column 'ZZ'", 0),
        ("YR, cr", "unknown column 'cr' (did you mean 'CR'?", 4),
        ("*", "select=* is not supported; leave select out", None),
        ("YR,,MO", "expected a column name, found ','", 3),
        ("YR,", "expected a column name, found the end", 3),
        (",YR", "expected a column name, found ','", 0),
        ("YR MO", "expected ',' after column 'YR', found 'MO'", 3),
        ("YR, YR", "column 'YR' is selected twice", 4),
        ("YR; DROP TABLE t", "';' is not allowed", 2),
        ("count(YR)", "expected ',' or the end of select, found '('", 5),
        ("'YR'", "expected a column name, found the string 'YR'", 0),
        ("x" * (MAX_CLAUSE_CHARS + 1), "the limit is", None),
    ],
)
def test_malformed_select_is_refused(text: str, fragment: str, position: int | None) -> None:
    with pytest.raises(WhereError) as caught:
        parse_select(text, NYC)
    assert fragment in str(caught.value)
    assert caught.value.parameter == "select"
    assert caught.value.position == position


# ---- orderBy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ()),
        ("", ()),
        ("YR", (OrderKey("YR"),)),
        ("YR ASC", (OrderKey("YR"),)),
        ("YR DESC", (OrderKey("YR", descending=True),)),
        ("YR desc, MO asc, X", (OrderKey("YR", True), OrderKey("MO"), OrderKey("X"))),
        ('"YR" DESC', (OrderKey("YR", True),)),
    ],
)
def test_order_by_lists_sort_keys(text: str | None, expected: tuple[OrderKey, ...]) -> None:
    assert parse_order_by(text, NYC) == expected


@pytest.mark.parametrize(
    ("text", "fragment", "position"),
    [
        ("ZZ", "unknown column 'ZZ'", 0),
        ("yr DESC", "did you mean 'YR'?", 0),
        ("geometry", "cannot order by geometry", 0),
        ("YR UP", "expected ASC, DESC or ',' after column 'YR', found 'UP'", 3),
        ("YR DESC DESC", "expected ',' or the end of orderBy, found 'DESC'", 8),
        ("YR,", "expected a column name, found the end", 3),
        ("YR, YR DESC", "column 'YR' appears twice", 4),
        ("YR -- x", "comments are not allowed", 3),
        ("1", "expected a column name, found '1'", 0),
    ],
)
def test_malformed_order_by_is_refused(text: str, fragment: str, position: int | None) -> None:
    with pytest.raises(WhereError) as caught:
        parse_order_by(text, NYC)
    assert fragment in str(caught.value)
    assert caught.value.parameter == "orderBy"
    assert caught.value.position == position


# -- string columns compared with numbers (GeoJSON tables keep their strings) ---------------------------

NYC_2014: dict[str, ColumnType] = {name: "string" for name in ("YR", "MO", "X", "Y", "TOT")}
"""The 2014 downloads of the NYC tables: every value a JSON string ("YR": "2013")."""


def test_the_nyc_query_on_string_columns_compares_their_numeric_text() -> None:
    parsed = parse_where(NYC_QUERY, NYC_2014)
    assert isinstance(parsed, And)
    assert parsed.operands[:2] == (CompareNumber("MO", "=", 10), CompareNumber("YR", "=", 2013))
    assert parsed.operands[3:] == (CompareNumber("X", "<>", 0), CompareNumber("Y", "<>", 0))


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("CR = 5", CompareNumber("CR", "=", 5)),
        ("5 < CR", CompareNumber("CR", ">", 5)),
        ("CR >= -2.5", CompareNumber("CR", ">=", -2.5)),
        ("CR = '5'", Compare("CR", "=", "5")),
        ("CR IN (1, 2)", Or((CompareNumber("CR", "=", 1), CompareNumber("CR", "=", 2)))),
        ("CR IN ('a', 5)", Or((In("CR", ("a",)), CompareNumber("CR", "=", 5)))),
        ("CR IN (7)", CompareNumber("CR", "=", 7)),
        ("CR NOT IN ('a', 'b')", Not(In("CR", ("a", "b")))),
    ],
)
def test_a_string_column_compared_with_a_number_compares_numeric_text(clause: str, expected: Predicate) -> None:
    assert where(clause) == expected
