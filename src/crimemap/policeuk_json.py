"""The police.uk API's JSON, field for field: the protocol's one home for its wire format.

The stores encode each crime's JSON object once, when it is loaded
(:func:`crime_json`), and answer ``crimes-street`` by joining those ready-made
objects; the functions here also build whole responses from records, for
stores and methods without such a fast path. Responses are plain dicts handed
to ``orjson.dumps`` in one call: no model object per crime. Coordinates are strings with six decimals and ids are
integers, as data.police.uk sends them::

    {"category": "burglary", "location_type": "Force",
     "location": {"latitude": "51.513000", "street": {"id": 884343, "name": "On or near Wood Street"},
                  "longitude": "-0.093000"},
     "context": "", "outcome_status": {"category": "Under investigation", "date": "2017-01"},
     "persistent_id": "3f1e...b478", "id": 54164419, "location_subtype": "", "month": "2017-01"}

Many crimes of one response share a map point, so each point's ``location``
object is built once per response and shared (a street id is a hash of the
point's coordinates and name, so one id is one location).

``outcome_status.date`` is the month of the crime's latest outcome; when no
outcomes file dated it (a street file loaded without its outcomes files), it
is the crime's own month, the earliest the outcome can have been recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any, TypeAlias

import orjson

from crimemap import vocab
from crimemap.records import Crime, OutcomeEvent, Stop
from crimemap.vocab_stops import involved_person, stop_outcome_id

JSONObject: TypeAlias = dict[str, Any]


class _Locations(dict[int | None, JSONObject]):
    """The ``location`` objects of one response, by street id."""

    def of(self, c: Crime) -> JSONObject | None:
        if c.lat is None or c.lng is None:
            return None
        loc = self.get(c.street_id)
        if loc is None:
            loc = self[c.street_id] = {
                "latitude": f"{c.lat:.6f}",
                "street": {"id": c.street_id, "name": c.street_name},
                "longitude": f"{c.lng:.6f}",
            }
        return loc


def crimes_json(crimes: Iterable[Crime]) -> bytes:
    """A ``crimes-street`` / ``crimes-at-location`` / ``crimes-no-location`` response body.

    The hot path of the API (2,000 crimes for a town centre's mile): fields
    are unpacked from each record's tuple in one step (in :class:`Crime`'s
    field order), the fastest way to read them, and each map point's
    ``location`` is built once.

    >>> from crimemap.records import Crime
    >>> c = Crime(1, "2017-01", "city-of-london", "City of London Police", -0.09, 51.5, 7, "On or near X",
    ...           "", "", "drugs", "", "Force", "", "", None, None)
    >>> crimes_json([c])[:80]
    b'[{"category":"drugs","location_type":"Force","location":{"latitude":"51.500000",'
    """
    locations: dict[int | None, JSONObject | None] = {}
    body: list[JSONObject] = []
    append = body.append
    for (
        cid,
        month,
        _,
        _,
        lng,
        lat,
        sid,
        street,
        _,
        _,
        category,
        pid,
        ltype,
        subtype,
        context,
        outcome,
        om,
    ) in crimes:
        location = locations.get(sid)
        if location is None and lat is not None and lng is not None:
            location = locations[sid] = {
                "latitude": f"{lat:.6f}",
                "street": {"id": sid, "name": street},
                "longitude": f"{lng:.6f}",
            }
        append(
            {
                "category": category,
                "location_type": ltype,
                "location": location,
                "context": context,
                "outcome_status": {"category": outcome, "date": om or month} if outcome else None,
                "persistent_id": pid,
                "id": cid,
                "location_subtype": subtype,
                "month": month,
            }
        )
    return orjson.dumps(body)


def crime_json(c: Crime) -> bytes:
    """One crime's object of a ``crimes-street`` answer: what stores keep ready beside each crime.

    >>> from crimemap.records import Crime
    >>> c = Crime(1, "2017-01", "city-of-london", "City of London Police", -0.09, 51.5, 7, "On or near X",
    ...           "", "", "drugs", "", "Force", "", "", None, None)
    >>> crime_json(c) == crimes_json([c])[1:-1]
    True
    """
    return crimes_json((c,))[1:-1]


def crime_record(c: Crime, locations: _Locations | None = None) -> JSONObject:
    """A crime as ``outcomes-for-crime`` and ``outcomes-at-location`` nest it (no ``outcome_status``)."""
    return {
        "category": c.category,
        "persistent_id": c.persistent_id,
        "location_subtype": c.location_subtype,
        "location_type": c.location_type,
        "location": (locations if locations is not None else _Locations()).of(c),
        "context": c.context,
        "month": c.month,
        "id": c.id,
    }


@lru_cache(maxsize=256)
def outcome_category(name: str) -> JSONObject:
    """``{"code", "name"}`` of an outcome's display name, as the outcomes methods show it.

    >>> outcome_category("Offender fined")
    {'code': 'fined', 'name': 'Offender fined'}
    """
    return {"code": vocab.outcome_by_name(name).slug, "name": name}


def outcome_object(outcome: str, month: str) -> JSONObject:
    return {"category": outcome_category(outcome), "date": month, "person_id": None}


def crime_history(crime: Crime, events: list[OutcomeEvent]) -> list[JSONObject]:
    """A crime's outcomes, oldest first; the street file's last outcome stands in for a missing history.

    A crime loaded without its outcomes files still says how it ended (the
    street file's "Last outcome category"); the real API would list that
    outcome, so it is listed, dated as ``outcome_status`` is.
    """
    if not events and crime.outcome:
        return [outcome_object(crime.outcome, crime.outcome_month or crime.month)]
    return [outcome_object(e.outcome, e.month) for e in events]


def outcomes_for_crime_json(crime: Crime, events: list[OutcomeEvent]) -> bytes:
    """An ``outcomes-for-crime/{persistent_id}`` response body."""
    return orjson.dumps({"crime": crime_record(crime), "outcomes": crime_history(crime, events)})


def outcomes_at_location_json(events: Iterable[OutcomeEvent]) -> bytes:
    """An ``outcomes-at-location`` response body; outcomes whose crime is not stored are left out."""
    locations = _Locations()
    return orjson.dumps(
        [
            {**outcome_object(e.outcome, e.month), "crime": crime_record(e.crime, locations)}
            for e in events
            if e.crime is not None
        ]
    )


def outcome_at_location(kind: bytes, month: bytes, crime: bytes) -> bytes:
    """An outcome of ``outcomes-at-location``: its category object, month, and its crime's nested record.

    The crime's record is cut from its ``crimes-street`` object, which holds
    ``category, location_type, location, context, outcome_status, persistent_id,
    id, location_subtype, month``, into the record's order ``category,
    persistent_id, location_subtype, location_type, location, context, month,
    id``. Each member is found by its key preceded by a comma, which cannot occur
    inside a JSON string (a quote there is escaped).

    Measured: cutting in SQL (``instr``/``substr``) cost three times as much as here.
    """
    a = crime.index(b',"location_type":')
    b = crime.index(b',"outcome_status":', a)
    p = crime.index(b',"persistent_id":', b)
    d = crime.index(b',"id":', p)
    e = crime.index(b',"location_subtype":', d)
    f = crime.index(b',"month":', e)
    return b"".join(
        (b'{"category":', kind, b',"date":"', month, b'","person_id":null,"crime":',
         crime[:a], crime[p:d], crime[e:f], crime[a:b], crime[f:-1], crime[d:e], b"}}")
    )  # fmt: skip


# -- a whole column of crimes at once (loading) -------------------------------------------------------


def location_json(lng: float, lat: float, street_id: int, street_name: str) -> str:
    """A map point's ``location`` object, as :func:`crimes_json` writes it."""
    return orjson.dumps(
        {"latitude": f"{lat:.6f}", "street": {"id": street_id, "name": street_name}, "longitude": f"{lng:.6f}"}
    ).decode()


def status_json(outcome: str, date: str) -> str:
    """A crime's ``outcome_status`` object, as :func:`crimes_json` writes it."""
    return orjson.dumps({"category": outcome, "date": date}).decode()


def crime_json_column(
    month: str,
    ids: Any,
    categories: Any,
    btp: Any,
    locations: Any,
    contexts: Any,
    statuses: Any,
    pids: Any,
    subtypes: Any,
) -> Any:
    """Every crime's :func:`crime_json` of a batch of one month, made column by column (byte for byte the same).

    ``ids`` (int64), ``categories`` (category codes) and ``btp`` (booleans) are
    numpy arrays; the rest are pyarrow string arrays: ``locations`` and
    ``statuses`` hold each crime's ``location`` and ``outcome_status`` JSON
    (or ``null``), made once per map point and per outcome by the caller with
    :func:`location_json` and :func:`status_json`; ``contexts`` and
    ``subtypes`` are the raw texts, encoded here once per distinct value.
    The pieces are joined by pyarrow, in C++, with no Python per crime.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    slugs = [c.slug for c in vocab.CATEGORIES]
    heads = [
        f'{{"category":"{slug}","location_type":"{ltype}","location":' for ltype in ("Force", "BTP") for slug in slugs
    ]
    head_index = categories.astype(np.int64) + np.where(btp, len(slugs), 0)
    head = pa.array(heads, pa.string()).take(pa.array(head_index))

    def encoded(values: Any, before: str, after: str) -> Any:
        coded = values.dictionary_encode()
        texts = [before + orjson.dumps(v).decode() + after for v in coded.dictionary.to_pylist()]
        return pa.array(texts, pa.string()).take(coded.indices)

    context = encoded(contexts, ',"context":', ',"outcome_status":')
    subtype = encoded(subtypes, ',"location_subtype":', f',"month":"{month}"}}')
    id_text = pc.cast(pa.array(ids), pa.string())
    return pc.binary_join_element_wise(
        head, locations, context, statuses, ',"persistent_id":"', pids, '","id":', id_text, subtype, ""
    )


# -- stop and search -------------------------------------------------------------------------------

LOCATION_MARK = b',"location":null,'
"""Where a stop's ``location`` sits in its JSON made without one (a key follows a comma only outside strings)."""


def _text(value: str) -> str | None:
    return value or None


def stop_object(s: Stop, location: JSONObject | None) -> JSONObject:
    """A stop of the ``stops-*`` answers, in the order and with the types of the real API.

    Empty text is null, but an empty outcome is ``""`` with an ``outcome_object`` of
    empty strings, as police.uk answers it; ``involved_person`` follows from the type.
    """
    return {
        "age_range": _text(s.age_range),
        "outcome": s.outcome,
        "involved_person": involved_person(s.type),
        "self_defined_ethnicity": _text(s.self_defined_ethnicity),
        "gender": _text(s.gender),
        "legislation": _text(s.legislation),
        "outcome_linked_to_object_of_search": s.outcome_linked_to_object_of_search,
        "datetime": s.datetime,
        "removal_of_more_than_outer_clothing": s.removal_of_more_than_outer_clothing,
        "outcome_object": {"id": stop_outcome_id(s.outcome), "name": s.outcome},
        "location": location,
        "operation": s.operation,
        "officer_defined_ethnicity": _text(s.officer_defined_ethnicity),
        "type": _text(s.type),
        "operation_name": _text(s.operation_name),
        "object_of_search": _text(s.object_of_search),
    }


def stop_location(lng: float, lat: float, street_id: int | None, name: str) -> JSONObject:
    """A stop's ``location``: its coordinates (six decimals, as strings) and its map point."""
    return {"latitude": f"{lat:.6f}", "street": {"id": street_id, "name": name}, "longitude": f"{lng:.6f}"}


def stops_json(stops: Iterable[Stop]) -> bytes:
    """A ``stops-street`` / ``stops-at-location`` / ``stops-no-location`` / ``stops-force`` body."""
    body = []
    for s in stops:
        located = s.lng is not None and s.lat is not None
        location = stop_location(s.lng, s.lat, s.street_id, s.street_name) if located else None  # type: ignore[arg-type]
        body.append(stop_object(s, location))
    return orjson.dumps(body)


def stop_json_parts(s: Stop) -> tuple[bytes, bytes]:
    """A stop's JSON object cut where its ``location`` goes: what stores keep, made once per stop.

    The store puts the location between the two parts when it knows the map
    point (:func:`stop_location_json`), or ``null``.

    >>> from crimemap.records import Stop
    >>> s = Stop(1, "2019-12", "essex", "Person search", "2019-12-01T01:48:53+00:00", None, "", None, None,
    ...          None, "", "Male", "18-24", "", "White", "", "Controlled drugs", "Arrest", True, False)
    >>> head, tail = stop_json_parts(s)
    >>> head + b"null" + tail == stops_json([s])[1:-1]
    True
    """
    whole = orjson.dumps(stop_object(s, None))
    at = whole.index(LOCATION_MARK) + len(LOCATION_MARK) - len(b"null,")
    return whole[:at], whole[at + len(b"null") :]


def stop_location_json(lng: float, lat: float, street_id: int | None, name: str) -> bytes:
    """The ``location`` object of a located stop, as bytes to put between its JSON's parts."""
    return orjson.dumps(stop_location(lng, lat, street_id, name))


def stop_place_parts(lng: float, lat: float) -> tuple[str, str]:
    """A located stop's ``location`` cut where its map point's id and name go: what the file's coordinates
    decide, so a store only puts in ``<id>,"name":<name>`` (a whole column at once).

    >>> head, tail = stop_place_parts(-0.08162, 51.516814)
    >>> whole = stop_location_json(-0.08162, 51.516814, 12, "On or near X")
    >>> (head + '12,"name":"On or near X"' + tail).encode() == whole
    True
    """
    return f'{{"latitude":"{lat:.6f}","street":{{"id":', f'}},"longitude":"{lng:.6f}"}}'
