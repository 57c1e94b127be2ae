"""The police.uk API's response shapes, for the OpenAPI documentation at ``/docs`` only.

Responses are built as plain dicts by :mod:`crimemap.api.policeuk_json` and
never validated against these models at run time (that would cost more than
building them); the tests check the real bodies field by field instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Street(BaseModel):
    id: int = Field(description="The map point's id: the location_id of crimes-at-location.")
    name: str = Field(description='Approximately where the crime happened: "On or near Peacock Lane".')


class Location(BaseModel):
    latitude: str = Field(description='Six decimals, as a string: "52.640961".')
    street: Street
    longitude: str = Field(description='Six decimals, as a string: "-1.126371".')


class OutcomeStatus(BaseModel):
    category: str = Field(description='The latest outcome\'s full name, e.g. "Under investigation".')
    date: str = Field(description="YYYY-MM")


class Crime(BaseModel):
    category: str = Field(description="The crime category slug.")
    location_type: str = Field(description='"Force", or "BTP" for a British Transport Police location.')
    location: Location | None = Field(description="null for crimes-no-location.")
    context: str
    outcome_status: OutcomeStatus | None
    persistent_id: str = Field(description='64 hex characters; "" for anti-social behaviour.')
    id: int
    location_subtype: str
    month: str = Field(description="YYYY-MM")


class CrimeRecord(BaseModel):
    """A crime as the outcomes methods nest it."""

    category: str
    persistent_id: str
    location_subtype: str
    location_type: str
    location: Location | None
    context: str
    month: str
    id: int


class OutcomeCategory(BaseModel):
    code: str = Field(description='The outcome\'s code, e.g. "no-further-action".')
    name: str


class Outcome(BaseModel):
    category: OutcomeCategory
    date: str = Field(description="YYYY-MM")
    person_id: Any = Field(description="Always null.")


class OutcomeAtLocation(Outcome):
    crime: CrimeRecord


class CrimeOutcomes(BaseModel):
    crime: CrimeRecord
    outcomes: list[Outcome] = Field(description="Oldest first.")


class CrimeCategory(BaseModel):
    url: str = Field(description="The slug to use in crimes-street/{category}.")
    name: str


class StreetDate(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    date: str = Field(description="YYYY-MM")
    stop_and_search: list[str] = Field(
        alias="stop-and-search", description="The forces with stop-and-search data that month (ids)."
    )


class LastUpdated(BaseModel):
    date: str | None = Field(description="The first day of the latest month, YYYY-MM-DD.")


class ForceSummary(BaseModel):
    id: str
    name: str


class Force(ForceSummary):
    description: str | None
    url: str | None
    telephone: str | None
    engagement_methods: list[Any]


class Error(BaseModel):
    status: int
    error: str = Field(description="The status code's reason phrase.")
    message: str = Field(description="What was wrong with the request.")
    hint: str | None = Field(default=None, description="How to put it right, when there is a way.")


class OutcomeObject(BaseModel):
    id: str = Field(description='The outcome\'s id, e.g. "bu-arrest"; "" for an empty outcome.')
    name: str = Field(description="The outcome as the file words it.")


class Stop(BaseModel):
    """A stop and search, in the field order of data.police.uk's answers."""

    age_range: str | None
    outcome: str = Field(description='The outcome as the file words it; "" when the file gives none.')
    involved_person: bool | None = Field(description="false for a vehicle-only search.")
    self_defined_ethnicity: str | None
    gender: str | None
    legislation: str | None
    outcome_linked_to_object_of_search: bool | None
    datetime: str = Field(description="ISO 8601 with offset, as in the file (UTC): it may fall in the month before.")
    removal_of_more_than_outer_clothing: bool | None
    outcome_object: OutcomeObject
    location: Location | None = Field(description="null for a stop published without a location.")
    operation: bool | None = Field(description="Whether it was part of a policing operation.")
    officer_defined_ethnicity: str | None
    type: str | None = Field(description='"Person search", "Person and Vehicle search" or "Vehicle search".')
    operation_name: str | None
    object_of_search: str | None
