"""How both stores read text in predicates: ``CONTAINS`` over all of Unicode, numbers written as text.

Each test runs on both stores and checks them against Python's own answer, so
the two stores also agree with each other.
"""

from __future__ import annotations

import re

import pytest

from crimemap.query import NUMBER_TEXT, CompareNumber, Contains, FeatureQuery, Not, Or, Predicate
from crimemap.records import Feature
from crimemap.store.base import Store
from crimemap.store.catalogue import Column, TableInfo

NAMES = [
    "CAFÉ ROYAL", "café de paris", "Cafe Nero", "ÆTHELRED WAY", "STRAßE", "ΟΔΟΣ ΑΘΗΝΑΣ", "Ωmega Court",
    "KÖLN HBF", "ДОМ", "İstanbul Kebab", "plain ascii",
]  # fmt: skip
PLACES = TableInfo("places", "Places", (Column("name", "string"),))


@pytest.fixture
def places(store: Store) -> Store:
    with store.writer() as w:
        w.replace_table(PLACES, [Feature(i, 0.0, 0.0, (n,)) for i, n in enumerate(NAMES, start=1)])
    return store


def _ids(store: Store, table: str, where: Predicate) -> list[int]:
    return [f.gx_id for f in store.features(FeatureQuery(table, where=where))]


@pytest.mark.parametrize("needle", ["É", "é", "CAFÉ", "æ", "ß", "ö", "ω", "ΑΘΗΝ", "дом", "Ä", "cafe"])
def test_contains_ignores_case_in_all_of_unicode(places: Store, needle: str) -> None:
    expected = [i for i, n in enumerate(NAMES, start=1) if needle.lower() in n.lower()]
    assert _ids(places, "places", Contains("name", needle)) == expected


def test_contains_finds_an_accented_capital_in_a_capitalised_name(places: Store) -> None:
    assert _ids(places, "places", Contains("name", "É")) == [1, 2]  # "CAFÉ ROYAL", "café de paris"


YEARS = ["2013", "2013.0", "2014", "-1.5", ".5", "2e3", " 2013", "2013 ", "twenty", "", "0x10", "1e99999", "013"]
YEAR_TABLE = TableInfo("years", "Years", (Column("YR", "string"),))


@pytest.fixture
def years(store: Store) -> Store:
    rows = [Feature(i, 0.0, 0.0, (v,)) for i, v in enumerate(YEARS, start=1)]
    rows.append(Feature(len(YEARS) + 1, 0.0, 0.0, (None,)))
    with store.writer() as w:
        w.replace_table(YEAR_TABLE, rows)
    return store


def _numeric(text: str) -> float | None:
    return float(text) if re.fullmatch(NUMBER_TEXT, text) else None


@pytest.mark.parametrize(
    ("op", "value"),
    [("=", 2013), ("=", 2013.0), ("<>", 2013), ("<", 0), (">", 2013), (">=", 2000), ("<=", 0.5), ("=", 13)],
)
def test_a_number_compares_with_the_numeric_text_of_a_string_column(years: Store, op: str, value: float) -> None:
    compare = {
        "=": lambda a, b: a == b, "<>": lambda a, b: a != b, "<": lambda a, b: a < b,
        ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
    }[op]  # fmt: skip
    expected = [i for i, v in enumerate(YEARS, start=1) if (n := _numeric(v)) is not None and compare(n, value)]
    assert _ids(years, "years", CompareNumber("YR", op, value)) == expected  # type: ignore[arg-type]


def test_text_that_is_not_a_number_never_matches_either_way(years: Store) -> None:
    either = Or((CompareNumber("YR", "=", 2013), Not(CompareNumber("YR", "=", 2013))))
    numeric = [i for i, v in enumerate(YEARS, start=1) if _numeric(v) is not None]
    assert _ids(years, "years", either) == numeric
    assert _ids(years, "years", CompareNumber("YR", "=", 2013)) == [1, 2]
