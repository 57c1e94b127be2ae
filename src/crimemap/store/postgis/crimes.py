"""The PostGIS store's police.uk reads: crimes and outcomes by month, area, map point and id.

The busy answers are made inside PostgreSQL from what was prepared at load time
(:mod:`crimemap.store.postgis.schema`), the way the embedded store makes them
(:mod:`crimemap.store.sqlite.crimes`): an area becomes the ranges of grid cells it
covers (:mod:`crimemap.geometry.areas`), each read along the ``(month, cell, id)``
index; the rows of ranges not wholly inside pass the same exact test in the SQL
(:func:`crimemap.store.postgis.dialect.exact_sql`); and each range's ready-made
JSON objects are joined by ``string_agg`` in ``(cell, id)`` order and handed back
as bytes, ready to be joined into the body. So both stores answer byte for byte
alike.

The 10,000-crime rule asks for 10,001 crimes: every read stops there. A wide
area (a polygon of thousands of cells) is first counted, up to that limit, range
after range in cell order, and its JSON joined only when it holds fewer, so a
refused area is never read whole; its ranges are found a band of grid rows at a
time and sent a few hundred to a statement, so it is not even classified whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

from crimemap import geo, vocab
from crimemap.geometry import areas
from crimemap.months import format_month, parse_month
from crimemap.policeuk_json import outcome_at_location
from crimemap.query import Circle, CrimeQuery
from crimemap.records import Crime, OutcomeEvent, Street
from crimemap.store.base import JsonList
from crimemap.store.catalogue import MonthSummary
from crimemap.store.compiler import Geometry
from crimemap.store.postgis.connection import Cursor, Database, retry_replay_conflict
from crimemap.store.postgis.dialect import exact_sql
from crimemap.store.records import FORCE_IDS, crime_from_row, pid_bytes, pid_key

CRIME_SELECT = (
    "c.id, c.month, c.force, c.falls_within, c.lng, c.lat, c.street_id, c.street_name, c.lsoa_code, c.lsoa_name,"
    " c.category, c.pid, c.location_subtype, c.context, c.outcome, c.outcome_month"
)
"""A crime's columns in the order of :data:`crimemap.store.records.CRIME_FIELDS`."""

CRIME_GEOMETRY = Geometry(unit=("c.x", "c.y", "c.z"), lng="c.lng", lat="c.lat")
OUTCOME_GEOMETRY = Geometry(lng="o.lng", lat="o.lat")

RANGES_PER_STATEMENT = 256
"""Cell ranges joined in one statement: every range of a mile, a polygon a band or two at a time."""


# -- how a query walks the grid ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """What a scan of one of the two tables needs: its name, alias, point columns and index order."""

    name: str
    alias: str
    geometry: Geometry
    order: str


CRIMES = _Table("crimes", "c", CRIME_GEOMETRY, "c.cell, c.id")
OUTCOMES = _Table("outcomes", "o", OUTCOME_GEOMETRY, "o.cell, o.force, o.seq")

RANGES = "unnest(%s::bigint[], %s::bigint[], %s::boolean[]) WITH ORDINALITY AS r(lo, hi, inside, k)"
"""The cell ranges of a statement, each with its place among them (``k``)."""


@dataclass
class _Scan:
    """One statement's share of a query: the rows of a table it reads.

    The rows are those of the table under its own alias, restricted to the
    month, the cells (``cells``, which names ``r.lo``, ``r.hi`` and ``r.inside``
    when there are ``ranges``), the exact area test and the query's other
    ``terms``. Each cell range is read by a ``LATERAL`` subquery, so that the
    planner can only walk the ``(month, cell, ...)`` index range by range,
    whatever it guesses of the ranges (a plain join let it scan whole months).
    ``wide``: it covers so many cells that it may well hold more crimes than an
    answer may have (see :func:`crimes_json`).
    """

    table: _Table
    month: int
    cells: str
    cell_params: list[Any]
    terms: str = ""
    terms_params: tuple[Any, ...] = ()
    ranges: tuple[list[int], list[int], list[bool]] | None = None
    wide: bool = False

    def rows(self, columns: str, tail: str = "") -> tuple[str, list[Any]]:
        """``SELECT columns`` of the rows of one range (or of the whole scan, without ranges), then ``tail``."""
        a = self.table.alias
        sql = f"SELECT {columns} FROM {self.table.name} {a} WHERE {a}.month = %s AND {self.cells}{self.terms}{tail}"
        return sql, [self.month, *self.cell_params, *self.terms_params]

    def source(self, columns: str) -> tuple[str, list[Any]]:
        """A FROM clause yielding the scan's rows under the table's alias, range by range, each in index order."""
        a = self.table.alias
        rows, params = self.rows(columns, f" ORDER BY {self.table.order}")
        if self.ranges is None:
            return f"({rows}) AS {a}", params
        return f"{RANGES} CROSS JOIN LATERAL ({rows}) AS {a}", [*self.ranges, *params]


WIDE_CELLS = 2_000
"""Cells beyond which a statement first counts its crimes, and joins their JSON only when they are not too many.

A mile is about 150 cells; a town's polygon thousands."""


def _scans(query: CrimeQuery, table: _Table, terms: str = "", terms_params: tuple[Any, ...] = ()) -> Iterator[_Scan]:
    """The statements' shares of a query of one month (see the module docstring)."""
    month = parse_month(query.month or "")
    a = table.alias
    if not query.located:
        yield _Scan(table, month, f"{a}.cell = -1", [], terms, terms_params)
        return
    if query.area is None:
        if query.street_id is not None:
            # The crimes of a map point lie in its cell: found by the point, kept by their street id.
            cells = f"{a}.cell = (SELECT cell FROM streets WHERE id = %s)"
            yield _Scan(table, month, cells, [query.street_id], terms, terms_params)
        else:
            yield _Scan(table, month, f"{a}.cell >= 0", [], terms, terms_params)
        return
    test_params: list[Any] = []
    test = exact_sql(query.area, table.geometry, test_params)
    cells = f"{a}.cell BETWEEN r.lo AND r.hi AND (r.inside OR {test})"
    ranges = areas.area_ranges(query.area)
    while chunk := list(islice(ranges, RANGES_PER_STATEMENT)):
        bounds = ([r.lo for r in chunk], [r.hi for r in chunk], [r.inside for r in chunk])
        wide = sum(r.hi - r.lo + 1 for r in chunk) > WIDE_CELLS
        yield _Scan(table, month, cells, test_params, terms, terms_params, bounds, wide)


def _filters(query: CrimeQuery) -> tuple[str, tuple[Any, ...]] | None:
    """SQL terms for the category, force and map point; None when a category or force is unknown."""
    terms, params = [""], []
    if query.category is not None:
        cat = vocab.CATEGORY_BY_SLUG.get(query.category)
        if cat is None:
            return None
        terms.append("c.category = %s")
        params.append(cat.code)
    if query.force is not None:
        force = vocab.FORCE_BY_ID.get(query.force)
        if force is None:
            return None
        terms.append("c.force = %s")
        params.append(force.code)
    if query.street_id is not None:
        if not -(1 << 63) <= query.street_id < 1 << 63:
            return None
        terms.append("c.street_id = %s")
        params.append(query.street_id)
    return " AND ".join(terms), tuple(params)


def _crime_scans(query: CrimeQuery) -> Iterator[_Scan]:
    """The statements of a crimes query of one month."""
    filters = _filters(query)
    if filters is None:
        return
    yield from _scans(query, CRIMES, *filters)


# -- crimes-street, crimes-at-location, crimes-no-location -----------------------------------------------


@retry_replay_conflict
def crimes_json(db: Database, query: CrimeQuery, limit: int) -> JsonList:
    """The police.uk JSON of the crimes of one month (see :meth:`crimemap.store.base.Store.crimes_json`).

    ``found`` counts up to ``limit``; the body is whole when ``found`` is below
    it, and left out when it is not (the API refuses such an answer). A wide
    area (a town's polygon) is counted first, up to the limit, and its JSON
    joined only when it holds fewer crimes: measured, that spares nine tenths of
    a refused polygon's time, and costs a sixth more for one under the cap.
    """
    if limit <= 0:
        return JsonList(0, b"[]")
    parts: list[bytes] = [b"["]  # pieces and commas: the body is made with one copy
    found = 0
    with db.cursor(json=True) as cur:
        pending = _crime_scans(query)
        first = next(pending, None)
        scans: Iterable[_Scan] = chain([first], pending) if first is not None else ()
        if first is not None and first.wide:
            counted = _counted(cur, scans, limit)
            if counted is None:
                return JsonList(limit, b"")
            scans = counted
        for scan in scans:
            for n, piece in _joined(cur, scan, limit - found):
                found += n
                if found >= limit:
                    return JsonList(found, b"")
                parts += (piece, b",")
    if len(parts) == 1:
        return JsonList(0, b"[]")
    parts[-1] = b"]"
    return JsonList(found, b"".join(parts))


JOINED = "count(*), string_agg(c.json, ',' ORDER BY c.cell, c.id)"


def _joined(cur: Cursor, scan: _Scan, limit: int) -> list[tuple[int, bytes]]:
    """``(crimes, their JSON objects joined by commas)`` of each cell range of a scan holding any, in order.

    Each range's JSON is joined on its own (at most ``limit`` crimes): measured,
    a dozen middle-sized values cost PostgreSQL and libpq 40% less than one
    large one, and their sorts are small.
    """
    if scan.ranges is None:
        rows, params = scan.rows("c.cell, c.id, c.json", " LIMIT %s")
        return cur.execute(f"SELECT {JOINED} FROM ({rows}) AS c HAVING count(*) > 0", [*params, limit]).fetchall()
    rows, params = scan.rows("c.cell, c.id, c.json", " LIMIT %s")
    sql = f"SELECT x.* FROM {RANGES} CROSS JOIN LATERAL (SELECT {JOINED} FROM ({rows}) AS c) AS x(n, body)"
    return cur.execute(f"{sql} WHERE x.n > 0 ORDER BY r.k", [*scan.ranges, *params, limit]).fetchall()


def _counted(cur: Cursor, scans: Iterable[_Scan], limit: int) -> list[_Scan] | None:
    """The statements of a query, read through once to count its crimes; None when they reach ``limit``."""
    found = 0
    read = []
    for scan in scans:
        source, params = scan.source("1")
        row = cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM {source} LIMIT %s) s", [*params, limit - found])
        found += row.fetchone()[0]  # type: ignore[index]
        if found >= limit:
            return None
        read.append(scan)
    return read


@retry_replay_conflict
def crimes_exceed(db: Database, query: CrimeQuery, n: int) -> bool:
    """Whether more than ``n`` crimes match: a count that stops at ``n + 1``."""
    with db.cursor() as cur:
        return _counted(cur, _crime_scans(query), n + 1) is None


def crimes(db: Database, query: CrimeQuery, outcome_name: Callable[[int], str | None]) -> Iterator[Crime]:
    """Crime records matching ``query``, in ``(month, cell, id)`` order, stopping at ``query.limit``."""
    limit = query.limit
    if query.month is None:
        for m in stored_months(db):
            for crime in crimes(db, _with(query, month=m, limit=limit), outcome_name):
                yield crime
                if limit is not None:
                    limit -= 1
            if limit is not None and limit <= 0:
                return
        return
    for scan in _crime_scans(query):
        if limit is not None and limit <= 0:
            return
        source, params = scan.source(f"{CRIME_SELECT}, c.cell")
        sql = f"SELECT {CRIME_SELECT} FROM {source} ORDER BY c.cell, c.id"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        for row in db.stream(sql, params):
            yield crime_from_row(row, outcome_name)
            if limit is not None:
                limit -= 1


def _with(query: CrimeQuery, *, month: str, limit: int | None) -> CrimeQuery:
    from dataclasses import replace

    return replace(query, month=month, limit=limit)


def stored_months(db: Database) -> list[str]:
    """Every month with crimes stored, oldest first."""
    rows = db.all("SELECT DISTINCT month FROM loads WHERE kind = 'street' ORDER BY month")
    return [format_month(m) for (m,) in rows]


def months(db: Database) -> list[MonthSummary]:
    rows = db.all(
        "SELECT month, array_agg(force ORDER BY force), sum(rows)::bigint FROM loads"
        " WHERE kind = 'street' GROUP BY month ORDER BY month DESC"
    )
    return [MonthSummary(format_month(m), tuple(FORCE_IDS[f] for f in forces), n) for m, forces, n in rows]


# -- outcomes-at-location --------------------------------------------------------------------------------

_OUTCOME_ORDER = "ORDER BY s.o_cell, s.o_force, s.o_seq, s.c_month, s.c_cell, s.c_id"
"""An outcome's place: its cell, its file, its row there; then its crimes' places (a pid stored twice)."""


CRIME_OF_OUTCOME = "SELECT * FROM crimes c WHERE c.pid_key = o.pid_key AND c.pid = o.pid OFFSET 0"
"""An outcome's crimes, looked up by persistent id; ``OFFSET 0`` keeps the lookup one index probe per outcome
(as a plain join, a generic plan could hash the whole crimes table instead)."""


def _outcome_scans(query: CrimeQuery, crime_columns: str) -> Iterator[tuple[str, list[Any]]]:
    """Statements reading the outcomes of ``query.month`` in ``query.area``, each joined to its crimes."""
    area_only = CrimeQuery(month=query.month, area=query.area)
    for scan in _scans(area_only, OUTCOMES):
        source, params = scan.source("o.cell, o.force, o.seq, o.outcome, o.month, o.pid_key, o.pid")
        yield (
            "SELECT o.cell AS o_cell, o.force AS o_force, o.seq AS o_seq,"
            f" c.month AS c_month, c.cell AS c_cell, c.id AS c_id, {crime_columns}"
            f" FROM {source} LEFT JOIN LATERAL ({CRIME_OF_OUTCOME}) AS c ON TRUE",
            params,
        )


@retry_replay_conflict
def outcomes_json(db: Database, query: CrimeQuery, limit: int, kind_json: Callable[[int], bytes]) -> JsonList:
    """The ``outcomes-at-location`` answer (see :meth:`crimemap.store.base.Store.outcomes_json`).

    Outcomes are counted whether or not their crime is stored (the 10,000 rule
    counts them all), and only those with a stored crime are shown, each cut from
    its crime's JSON by :func:`crimemap.policeuk_json.outcome_at_location`.
    """
    if query.month is None or limit <= 0:
        return JsonList(0, b"[]")
    mtext = format_month(parse_month(query.month)).encode()
    street_id = query.street_id
    shown: list[bytes] = []
    count = 0
    with db.cursor(json=True) as cur:
        for inner, params in _outcome_scans(query, "o.outcome, c.json, c.street_id"):
            rows = cur.execute(
                f"SELECT s.outcome, s.json, s.street_id FROM ({inner} LIMIT %s) s {_OUTCOME_ORDER}",
                [*params, limit - count],
            ).fetchall()
            count += len(rows)
            if count >= limit:
                return JsonList(count, b"")
            for kind, crime, crime_street in rows:
                if crime is not None and (street_id is None or crime_street == street_id):
                    shown.append(outcome_at_location(kind_json(kind), mtext, crime))
    return JsonList(count, b"[" + b",".join(shown) + b"]")


def outcomes(db: Database, query: CrimeQuery, outcome_name: Callable[[int], str | None]) -> Iterator[OutcomeEvent]:
    """Outcome events of ``query.month`` in ``query.area``; with ``street_id``, those whose crime is at that point."""
    if query.month is None:
        return
    limit = query.limit
    columns = f"o.outcome, o.month AS o_month, {CRIME_SELECT}"
    for inner, params in _outcome_scans(query, columns):
        sql = f"SELECT s.* FROM ({inner}) s {_OUTCOME_ORDER}"
        for row in db.stream(sql, params):
            fields = row[8:]
            crime = crime_from_row(fields, outcome_name) if fields[0] is not None else None
            if query.street_id is not None and (crime is None or crime.street_id != query.street_id):
                continue
            yield OutcomeEvent(outcome_name(row[6]) or "", format_month(row[7]), crime)
            if limit is not None:
                limit -= 1
                if limit <= 0:
                    return


# -- map points and single crimes --------------------------------------------------------------------------


def find_street(db: Database, street_id: int) -> Street | None:
    if not -(1 << 63) <= street_id < 1 << 63:
        return None
    row = db.one("SELECT id, name, lng, lat FROM streets WHERE id = %s", (street_id,))
    return Street(*row) if row else None


def nearest_street(db: Database, lng: float, lat: float) -> Street | None:
    """The map point nearest to a point, searching growing circles (by great-circle distance, then id).

    The distance is :func:`crimemap.geo.haversine_m`, computed here as the
    embedded store computes it, so that both choose the same point at a tie.
    """
    for radius in (200.0, 1_000.0, 5_000.0, 25_000.0):
        ranges = areas.circle_ranges(Circle((lng, lat), radius))
        rows = db.all(
            "SELECT t.id, t.name, t.lng, t.lat FROM unnest(%s::bigint[], %s::bigint[]) AS r(lo, hi)"
            " JOIN streets t ON t.cell BETWEEN r.lo AND r.hi",
            [[r.lo for r in ranges], [r.hi for r in ranges]],
        )
        best: tuple[float, int, Street] | None = None
        for row in rows:
            d = geo.haversine_m(lng, lat, row[2], row[3])
            if d <= radius and (best is None or (d, row[0]) < best[:2]):
                best = (d, row[0], Street(*row))
        if best is not None:
            return best[2]
    return None


def crime_by_persistent_id(db: Database, persistent_id: str, outcome_name: Callable[[int], str | None]) -> Crime | None:
    pid = pid_bytes(persistent_id)
    if pid is None:
        return None
    row = db.one(
        f"SELECT {CRIME_SELECT} FROM crimes c WHERE c.pid_key = %s AND c.pid = %s"
        " ORDER BY c.month DESC, c.cell, c.id LIMIT 1",
        (pid_key(pid), pid),
    )
    return crime_from_row(row, outcome_name) if row else None


def outcome_history(db: Database, persistent_id: str, outcome_name: Callable[[int], str | None]) -> list[OutcomeEvent]:
    pid = pid_bytes(persistent_id)
    if pid is None:
        return []
    rows = db.all(
        "SELECT DISTINCT outcome, month FROM outcomes WHERE pid_key = %s AND pid = %s ORDER BY month, outcome",
        (pid_key(pid), pid),
    )
    return [OutcomeEvent(outcome_name(o) or "", format_month(m)) for o, m in rows]
