"""police.uk request parameters turned into query values, or into the error the real API gives.

Each function takes the raw text of a parameter (``None`` when absent) and
returns what a :class:`~crimemap.query.CrimeQuery` needs, raising a
:class:`~crimemap.api.policeuk.errors.PoliceUKError` with a message that names the
parameter and what was wrong: 400 for malformed text, 404 for a well-formed
name nothing answers to.
"""

from __future__ import annotations

from crimemap import geo, numerals, vocab
from crimemap.api.policeuk.errors import PoliceUKError, bad_request, not_found
from crimemap.echo import echo
from crimemap.months import format_month, parse_month
from crimemap.query import Area, Circle, Polygon
from crimemap.rings import RingError, check_ring
from crimemap.store.base import Store


def month(store: Store, text: str | None) -> str | None:
    """``date`` as ``YYYY-MM``; absent means the latest stored month (``None`` for an empty store).

    >>> month(None, "2017-1")  # type: ignore[arg-type]
    Traceback (most recent call last):
    ...
    crimemap.api.policeuk.errors.PoliceUKError: date must be YYYY-MM, got '2017-1'
    """
    if text is None:
        return store.latest_month()
    return month_or_none(text)


def month_or_none(text: str | None) -> str | None:
    """``date`` as ``YYYY-MM``, or ``None`` when absent."""
    if text is None:
        return None
    try:
        return format_month(parse_month(text))
    except ValueError as e:
        raise bad_request(str(e), "give the month as YYYY-MM, e.g. date=2017-01") from None


def category(slug: str | None) -> str | None:
    """A crime category slug; ``all-crime`` (and an absent one) is ``None``: every category."""
    if slug is None or slug == vocab.ALL_CRIME:
        return None
    if slug not in vocab.CATEGORY_BY_SLUG:
        raise not_found(f"unknown crime category {echo(slug)}", "see the categories at /api/crime-categories")
    return slug


def force(force_id: str | None) -> str:
    """A force id (required)."""
    if force_id is None or not force_id.strip():
        raise bad_request("force is required", "e.g. force=city-of-london; see the forces at /api/forces")
    if force_id not in vocab.FORCE_BY_ID:
        raise not_found(f"unknown force {echo(force_id)}", "the forces are listed at /api/forces")
    return force_id


def point(lat: str | None, lng: str | None) -> tuple[float, float] | None:
    """``(lng, lat)`` from ``lat`` and ``lng``, or ``None`` when neither is given."""
    if lat is None and lng is None:
        return None
    if lat is None or lng is None:
        raise bad_request("lat and lng must be given together", "e.g. lat=51.513&lng=-0.093")
    try:
        return geo.parse_latlng(lat, lng)
    except ValueError as e:
        raise bad_request(str(e), "lat and lng are decimal degrees, e.g. lat=51.513&lng=-0.093") from None


MAX_POLY_POINTS = 10_000
"""The most ``lat,lng`` pairs a ``poly`` may have: the work of a polygon grows with its points."""


def polygon(poly: str) -> Polygon:
    """A custom area; over :data:`MAX_POLY_POINTS` points is a 400, refused before any parsing."""
    points = len(poly.strip().strip(":").split(":"))
    if points > MAX_POLY_POINTS:
        raise bad_request(
            f"poly has {points:,} points; at most {MAX_POLY_POINTS:,} are accepted",
            "simplify the area's outline, or split it into smaller areas",
        )
    try:
        ring = geo.parse_poly(poly)
    except ValueError as e:
        raise bad_request(f"poly: {e}", "poly is lat,lng pairs separated by colons: 52.2,0.5:52.7,0.2:...") from None
    try:
        check_ring(ring)
    except RingError as e:
        raise bad_request(f"poly: {e}", "draw the area without crossing its own outline") from None
    return Polygon(ring)


def area(lat: str | None, lng: str | None, poly: str | None) -> Area:
    """A custom area (``poly``) or the 1-mile circle round ``lat``/``lng``: exactly one of them."""
    centre = point(lat, lng)
    if poly is not None:
        if centre is not None:
            raise bad_request("give either poly or lat and lng, not both")
        return polygon(poly)
    if centre is None:
        raise bad_request("lat and lng, or poly, are required", "e.g. lat=51.513&lng=-0.093, or poly=...")
    return Circle(centre, geo.ONE_MILE_M)


MAX_LOCATION_ID = 2**63 - 1
"""The largest id a store can hold (a signed 64-bit integer); map point ids use 52 bits."""


def location_id(text: str) -> int:
    """A map point's id; one no store could hold (2^63 and up) is a 404 like any other unknown id."""
    try:
        value = numerals.whole(text)
    except ValueError:
        raise bad_request(f"location_id must be an integer, got {echo(text)}") from None
    if value < 0:
        raise bad_request(f"location_id must be a non-negative integer, got {echo(text)}")
    if value > MAX_LOCATION_ID:
        raise unknown_location(text)
    return value


def unknown_location(text: str) -> PoliceUKError:
    return not_found(f"unknown location {echo(text)}", "location ids are street.id in crime results")


def street(store: Store, location: str | None, lat: str | None, lng: str | None) -> int | None:
    """The map point of ``location_id``, or the one nearest to ``lat``/``lng`` (``None``: no map points).

    An unknown ``location_id`` is a 404.
    """
    centre = point(lat, lng)
    if location is not None:
        if centre is not None:
            raise bad_request("give either location_id or lat and lng, not both")
        found = store.street(location_id(location))
        if found is None:
            raise unknown_location(location)
        return found.id
    if centre is None:
        raise bad_request("location_id, or lat and lng, are required", "e.g. location_id=884343")
    nearest = store.nearest_street(*centre)
    return nearest.id if nearest is not None else None
