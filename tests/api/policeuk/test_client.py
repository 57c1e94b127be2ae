"""A client library published on PyPI for data.police.uk, pointed at crimemap, gets the right answers.

``police-api-client`` (module ``police_api``) takes its base URL as a
constructor option; nothing else changes. Its polygon queries are POSTs.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import police_api
import pytest

from api.policeuk.test_crimes import (
    CITY_EDGE,
    CONCAVE,
    MONTH,
    in_polygon,
    keys,
    month_rows,
    street_rows,
    within_mile,
)
from conftest import LiveServer


@pytest.fixture
def api(policeuk_server: LiveServer) -> Any:
    return police_api.PoliceAPI(base_url=f"{policeuk_server.url}/api/", timeout=30)


def _keys(crimes: list[Any]) -> Counter[tuple[str, str, str, str, str]]:
    return Counter(
        (c.persistent_id, c.category.id, c.location.latitude, c.location.longitude, c.location.name) for c in crimes
    )


def test_client_point_query_matches_the_one_mile_computation(api: Any) -> None:
    crimes = api.get_crimes_point(*CITY_EDGE, date=MONTH)
    assert _keys(crimes) == keys(within_mile(month_rows(MONTH), *CITY_EDGE))
    burglaries = api.get_crimes_point(*CITY_EDGE, date=MONTH, category="burglary")
    assert {c.category.name for c in burglaries} == {"Burglary"}


def test_client_area_query_posts_the_polygon_and_matches(api: Any) -> None:
    crimes = api.get_crimes_area(CONCAVE, date=MONTH)
    assert crimes and _keys(crimes) == keys(in_polygon(month_rows(MONTH), CONCAVE))


def test_client_crimes_at_location_and_no_location(api: Any) -> None:
    crime = api.get_crimes_point(*CITY_EDGE, date=MONTH)[0]
    at = api.get_crimes_location(crime.location.id, date=MONTH)
    here = [r for r in month_rows(MONTH) if r.key[2:] == (crime.location.latitude, crime.location.longitude,
                                                          crime.location.name)]  # fmt: skip
    assert _keys(at) == keys(here)
    nowhere = api.get_crimes_no_location("city-of-london", date=MONTH)
    expected = [r for r in street_rows() if r.month == MONTH and r.force_file == "city-of-london" and not r.located]
    assert len(nowhere) == len(expected) > 0 and {c.month for c in nowhere} == {MONTH}
    assert len({c.id for c in nowhere}) == len(nowhere)


def test_client_crime_outcomes(api: Any) -> None:
    crime = next(c for c in api.get_crimes_point(*CITY_EDGE, date=MONTH) if c.outcome_status)
    fetched = api.get_crime(crime.persistent_id)
    assert fetched.persistent_id == crime.persistent_id
    assert fetched.outcomes and fetched.outcomes[-1].category.name == crime.outcome_status.category.name


def test_client_metadata(api: Any) -> None:
    assert api.get_latest_date() == "2020-01"
    assert api.get_dates() == sorted({r.month for r in street_rows()}, reverse=True)
    names = {c.id: c.name for c in api.get_crime_categories(date=MONTH)}
    assert names["violent-crime"] == "Violence and sexual offences" and "all-crime" not in names
    assert "City of London Police" in {f.name for f in api.get_forces()}
    assert api.get_force("essex").name == "Essex Police"


def test_client_sees_errors_as_api_errors(api: Any) -> None:
    with pytest.raises(police_api.APIError) as err:
        api.get_crimes_point(*CITY_EDGE, date=MONTH, category="burglery")
    assert err.value.status_code == 404
    assert "unknown crime category" in err.value.response.json()["message"]
