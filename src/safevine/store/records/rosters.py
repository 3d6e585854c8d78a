"""Roster staging and snapshot bookkeeping: where the people of a snapshot are now, the
entries that may change something, and the set operations of a roster diff, in SQL."""

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    distinct,
    exists,
    func,
    insert,
    or_,
    select,
)

from safevine.domain.custody_status import Placement
from safevine.domain.event_kinds import CustodyState
from safevine.store.schema import (
    batch_holds,
    custody_status,
    facilities,
    held_status,
    ingest_batches,
    persons,
    roster_entries,
    roster_snapshots,
)


@dataclass(frozen=True)
class StagedEntry:
    id: int
    line: int
    facility_code: str
    a_number: str
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    country_of_birth: str | None
    placement: Placement | None


# The columns of a staged row, in the order `stage` takes them.
STAGE_COLUMNS = (
    "batch_id",
    "line",
    "facility_id",
    "a_number",
    "rejected",
    "given_name",
    "family_name",
    "date_of_birth",
    "country_of_birth",
)
StagedRow = tuple[int, int, int | None, str, int, str | None, str | None, date | None, str | None]
# Values of the `rejected` column (see the schema).
ACCEPTED, REJECTED, FACTS_ONLY = 0, 1, 2


def stage(connection: Connection, rows: Sequence[StagedRow]) -> None:
    """Write staged rows (in STAGE_COLUMNS order) the fastest way the driver offers:
    COPY on PostgreSQL, a plain executemany on SQLite. Only entries that may change
    something are staged, but a first snapshot into an empty store stages every row."""
    if not rows:
        return
    names = ", ".join(STAGE_COLUMNS)
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY roster_entries ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    if connection.dialect.name == "sqlite":
        # The text form SQLAlchemy's SQLite Date type stores.
        values: Sequence[tuple[object, ...]] = [
            (b, line, f, a, r, g, family, born.isoformat() if born else None, c)
            for b, line, f, a, r, g, family, born, c in rows
        ]
        marks = ", ".join("?" * len(STAGE_COLUMNS))
        # Only the constant column names above are interpolated; values are bound.
        statement = f"INSERT INTO roster_entries ({names}) VALUES ({marks})"  # noqa: S608
        connection.exec_driver_sql(statement, values)
        return
    connection.execute(
        insert(roster_entries), [dict(zip(STAGE_COLUMNS, row, strict=True)) for row in rows]
    )


def drop_repeats(connection: Connection, batch_id: int) -> list[tuple[int, int, int, str]]:
    """Remove every staged entry after the first for an A-number; returns (line, first
    line, facility, A-number) of each one removed."""
    first = (
        select(roster_entries.c.a_number, func.min(roster_entries.c.line).label("first"))
        .where(roster_entries.c.batch_id == batch_id, roster_entries.c.rejected == ACCEPTED)
        .group_by(roster_entries.c.a_number)
        .having(func.count() > 1)
        .subquery()
    )
    repeats = connection.execute(
        select(
            roster_entries.c.id,
            roster_entries.c.line,
            first.c.first,
            roster_entries.c.facility_id,
            roster_entries.c.a_number,
        )
        .join(first, first.c.a_number == roster_entries.c.a_number)
        .where(
            roster_entries.c.batch_id == batch_id,
            roster_entries.c.rejected == ACCEPTED,
            roster_entries.c.line != first.c.first,
        )
        .order_by(roster_entries.c.line)
    ).all()
    if repeats:
        connection.execute(
            delete(roster_entries).where(roster_entries.c.id.in_([r.id for r in repeats]))
        )
    return [(r.line, r.first, int(r.facility_id), r.a_number) for r in repeats]


# Rows per statement when looking up where the people of a snapshot are now.
PLACEMENT_CHUNK = 10_000

# The hot reads of a national sweep, a row per person, read with the driver's own cursor
# (SQLAlchemy's result rows would cost more than the database does). One bound list each:
# JSON on SQLite, an array on PostgreSQL. Only constant SQL; every value is bound.
_PLACEMENTS = {
    "sqlite": (
        "SELECT p.a_number, p.id, CASE WHEN s.state = :state THEN s.facility_id END, "
        "p.given_name, p.family_name, p.date_of_birth, p.country_of_birth "
        "FROM json_each(:wanted) AS w CROSS JOIN persons AS p ON p.a_number = w.value "
        "LEFT JOIN custody_status AS s ON s.person_id = p.id"
    ),
    # LATERAL with LIMIT 1 (the A-number is unique) keeps PostgreSQL to one index probe
    # per A-number: told the list's length, it would rather scan every person.
    "postgresql": (
        "SELECT w.a_number, p.id, p.at, p.given_name, p.family_name, p.born, "
        "p.country_of_birth FROM unnest(%(wanted)s::text[]) AS w(a_number) "
        "CROSS JOIN LATERAL (SELECT persons.id, "
        "CASE WHEN s.state = %(state)s THEN s.facility_id END AS at, persons.given_name, "
        "persons.family_name, to_char(persons.date_of_birth, 'YYYY-MM-DD') AS born, "
        "persons.country_of_birth "
        "FROM persons LEFT JOIN custody_status AS s ON s.person_id = persons.id "
        "WHERE persons.a_number = w.a_number LIMIT 1) AS p"
    ),
}
_IN_CUSTODY_AT = {
    "sqlite": (
        "SELECT person_id, facility_id FROM custody_status "
        "WHERE state = :state AND facility_id IN (SELECT value FROM json_each(:wanted))"
    ),
    "postgresql": (
        "SELECT person_id, facility_id FROM custody_status "
        "WHERE state = %(state)s AND facility_id = ANY(%(wanted)s)"
    ),
}
_IN_CUSTODY = {
    "postgresql": "SELECT person_id, facility_id FROM custody_status WHERE state = %(state)s",
}


def _params(connection: Connection, wanted: list[Any] | None = None) -> dict[str, object]:
    params: dict[str, object] = {"state": CustodyState.IN_CUSTODY.value}
    if wanted is not None:
        params["wanted"] = json.dumps(wanted) if connection.dialect.name == "sqlite" else wanted
    return params


def _cursor(connection: Connection, name: str | None = None) -> Any:
    """A cursor of the driver's own, in the connection's transaction; on PostgreSQL a
    server-side one when named."""
    driver = connection.connection.driver_connection
    assert driver is not None
    if name is not None and connection.dialect.name == "postgresql":
        return driver.cursor(name=name)
    return driver.cursor()


# Where a person is and what is on record of them, as the driver returns it: A-number, id,
# the facility they are in custody at (None when not in custody), given and family name,
# date of birth (ISO text) and country.
Placed = tuple[str, int, int | None, str | None, str | None, str | None, str | None]


def placements(connection: Connection, a_numbers: Sequence[str]) -> dict[str, Placed]:
    """Per known A-number: where the person is, and the facts on record (see Placed), so
    a row that lists them where they are can be checked against the record unstaged."""
    found: dict[str, Placed] = {}
    for start in range(0, len(a_numbers), PLACEMENT_CHUNK):
        cursor = _cursor(connection)
        try:
            cursor.execute(
                _PLACEMENTS[connection.dialect.name],
                _params(connection, list(a_numbers[start : start + PLACEMENT_CHUNK])),
            )
            rows = cursor.fetchall()
        finally:
            cursor.close()
        found.update(zip(map(itemgetter(0), rows), rows, strict=True))
    return found


def last_person_id(connection: Connection) -> int:
    return int(connection.execute(select(func.max(persons.c.id))).scalar() or 0)


def held_persons(connection: Connection) -> Iterator[int]:
    """Everyone whose status a held roster batch changed: resolving that hold restores
    their status, so what they were when a snapshot was read may not stand."""
    rows = connection.execute(
        select(held_status.c.person_id)
        .join(batch_holds, batch_holds.c.batch_id == held_status.c.batch_id)
        .join(ingest_batches, ingest_batches.c.id == batch_holds.c.batch_id)
        .where(batch_holds.c.state == "held", ingest_batches.c.kind == "roster")
        .execution_options(yield_per=20_000)
    )
    for (person_id,) in rows:
        yield int(person_id)


def any_roster_held(connection: Connection) -> bool:
    """Whether any roster batch is held for review (most of the time none is)."""
    return (
        connection.execute(
            select(batch_holds.c.id)
            .join(ingest_batches, ingest_batches.c.id == batch_holds.c.batch_id)
            .where(batch_holds.c.state == "held", ingest_batches.c.kind == "roster")
            .limit(1)
        ).first()
        is not None
    )


# Facilities per statement in the grouped queries below (a bound parameter each).
FACILITY_CHUNK = 500


def in_custody_counts(connection: Connection, facility_ids: Sequence[int]) -> dict[int, int]:
    """How many people are in custody at each facility (absent: nobody)."""
    out: dict[int, int] = {}
    for part in _chunked(sorted(facility_ids)):
        rows = connection.execute(
            select(custody_status.c.facility_id, func.count())
            .where(
                custody_status.c.facility_id.in_(part),
                custody_status.c.state == CustodyState.IN_CUSTODY.value,
            )
            .group_by(custody_status.c.facility_id)
        )
        out.update((int(f), int(n)) for f, n in rows)
    return out


def staged_in_custody_counts(
    connection: Connection, batch_id: int, facility_ids: Sequence[int]
) -> dict[int, int]:
    """Per facility, the people in custody there now whom a staged entry (accepted or
    not) lists there (absent: nobody). Entries staged for their facts only are left out:
    their people were counted as they were read."""
    out: dict[int, int] = {}
    for part in _chunked(sorted(facility_ids)):
        rows = connection.execute(
            select(custody_status.c.facility_id, func.count(distinct(persons.c.id)))
            .select_from(roster_entries)
            .join(persons, persons.c.a_number == roster_entries.c.a_number)
            .join(custody_status, custody_status.c.person_id == persons.c.id)
            .where(
                roster_entries.c.batch_id == batch_id,
                roster_entries.c.rejected != FACTS_ONLY,
                roster_entries.c.facility_id.in_(part),
                custody_status.c.facility_id == roster_entries.c.facility_id,
                custody_status.c.state == CustodyState.IN_CUSTODY.value,
            )
            .group_by(custody_status.c.facility_id)
        )
        out.update((int(f), int(n)) for f, n in rows)
    return out


def people_in_custody(
    connection: Connection, facility_ids: Sequence[int], size: int, *, many: bool = False
) -> Iterator[list[tuple[int, int]]]:
    """(person, facility) of everyone in custody at these facilities, `size` at a time, in
    one streamed pass (a server-side cursor on PostgreSQL). For `many` facilities,
    PostgreSQL reads everyone in custody, some elsewhere, for the caller to pass over:
    asked for them by facility, it would visit the rows in index order, a page read per
    row, where it can read the table once. SQLite reads its covering index either way."""
    dialect = connection.dialect.name
    if many and dialect == "postgresql":
        statement, params = _IN_CUSTODY[dialect], _params(connection)
    else:
        statement, params = _IN_CUSTODY_AT[dialect], _params(connection, sorted(facility_ids))
    cursor = _cursor(connection, "roster_in_custody")
    try:
        cursor.execute(statement, params)
        while part := cursor.fetchmany(size):
            yield part
    finally:
        cursor.close()


def absentees(
    connection: Connection, batch_id: int, facility_ids: Sequence[int], person_ids: Sequence[int]
) -> list[tuple[int, str, datetime]]:
    """(facility, A-number, in custody since) of those of these people who are still in
    custody at one of these facilities and whom no staged entry lists."""
    out: list[tuple[int, str, datetime]] = []
    for part in _chunked(sorted(person_ids)):
        rows = connection.execute(
            select(custody_status.c.facility_id, persons.c.a_number, custody_status.c.occurred_at)
            .join(persons, persons.c.id == custody_status.c.person_id)
            .where(
                custody_status.c.person_id.in_(part),
                custody_status.c.facility_id.in_(sorted(facility_ids)),
                custody_status.c.state == CustodyState.IN_CUSTODY.value,
                ~exists().where(
                    roster_entries.c.batch_id == batch_id,
                    roster_entries.c.a_number == persons.c.a_number,
                ),
            )
        )
        out.extend((int(f), a_number, since) for f, a_number, since in rows)
    return out


def record_snapshots(
    connection: Connection,
    snapshots: Sequence[tuple[int, str, int]],
    taken_at: datetime,
    batch_id: int,
    now: datetime,
) -> None:
    """Record applied snapshots, (facility, fingerprint, how many it listed) each."""
    if snapshots:
        connection.execute(
            insert(roster_snapshots),
            [
                {
                    "facility_id": facility_id,
                    "taken_at": taken_at,
                    "content_hash": digest,
                    "batch_id": batch_id,
                    "applied_at": now,
                    "listed": listed,
                }
                for facility_id, digest, listed in snapshots
            ],
        )


def _chunked(values: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), FACILITY_CHUNK):
        yield values[start : start + FACILITY_CHUNK]


def last_snapshots(
    connection: Connection, facility_ids: Sequence[int]
) -> dict[int, tuple[datetime, str, int | None]]:
    """Per facility, the newest applied snapshot's time, fingerprint and head count."""
    newest = (
        select(roster_snapshots.c.facility_id, func.max(roster_snapshots.c.taken_at).label("t"))
        .where(roster_snapshots.c.facility_id.in_(facility_ids))
        .group_by(roster_snapshots.c.facility_id)
        .subquery()
    )
    rows = connection.execute(
        select(
            roster_snapshots.c.facility_id,
            roster_snapshots.c.taken_at,
            roster_snapshots.c.content_hash,
            roster_snapshots.c.listed,
        ).join(
            newest,
            and_(
                newest.c.facility_id == roster_snapshots.c.facility_id,
                newest.c.t == roster_snapshots.c.taken_at,
            ),
        )
    )
    return {int(r.facility_id): (r.taken_at, r.content_hash, r.listed) for r in rows}


def staged_entries(connection: Connection, batch_id: int, size: int) -> Iterator[list[StagedEntry]]:
    """The staged entries that may change a placement (everyone but those in custody at
    the facility listing them), each with the person's current placement, `size` at a
    time, in one streamed pass: paging with LIMIT would have the planner re-read the whole
    batch for every page. Each person is staged once (see `drop_repeats`), so what one
    part records cannot change the placements of a later one."""
    listed = facilities.alias("listed")
    rows = connection.execute(
        select(
            roster_entries,
            listed.c.code.label("listed_code"),
            custody_status.c.state,
            custody_status.c.occurred_at,
            facilities.c.code.label("at_code"),
        )
        .join(listed, listed.c.id == roster_entries.c.facility_id)
        .outerjoin(persons, persons.c.a_number == roster_entries.c.a_number)
        .outerjoin(custody_status, custody_status.c.person_id == persons.c.id)
        .outerjoin(facilities, facilities.c.id == custody_status.c.facility_id)
        .where(
            roster_entries.c.batch_id == batch_id,
            roster_entries.c.rejected == ACCEPTED,
            # Someone in custody at the facility that lists them has nothing to derive
            # (whatever the time of their status), so the diff never sees them.
            or_(
                custody_status.c.person_id.is_(None),
                custody_status.c.state != CustodyState.IN_CUSTODY.value,
                custody_status.c.facility_id.is_(None),
                custody_status.c.facility_id != roster_entries.c.facility_id,
            ),
        )
        .order_by(roster_entries.c.id)
        .execution_options(yield_per=size)
    )
    for part in rows.partitions():
        yield [
            StagedEntry(
                r.id,
                r.line,
                r.listed_code,
                r.a_number,
                r.given_name,
                r.family_name,
                r.date_of_birth,
                r.country_of_birth,
                Placement(CustodyState(r.state), r.at_code, r.occurred_at) if r.state else None,
            )
            for r in part
        ]


@dataclass(frozen=True)
class FactsEntry:
    line: int
    facility_id: int
    a_number: str
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    country_of_birth: str | None


def facts_entries(
    connection: Connection, batch_id: int, size: int, *, settled: bool = False
) -> Iterator[list[FactsEntry]]:
    """The entries staged for their facts only, `size` at a time, in one streamed pass;
    with `settled`, also the accepted entries of people in custody now where the entry
    lists them, which the diff passes over (`staged_entries`)."""
    wanted = roster_entries.c.rejected == FACTS_ONLY
    if settled:
        in_place = exists().where(
            persons.c.a_number == roster_entries.c.a_number,
            custody_status.c.person_id == persons.c.id,
            custody_status.c.state == CustodyState.IN_CUSTODY.value,
            custody_status.c.facility_id == roster_entries.c.facility_id,
        )
        wanted = or_(wanted, and_(roster_entries.c.rejected == ACCEPTED, in_place))
    rows = connection.execute(
        select(
            roster_entries.c.line,
            roster_entries.c.facility_id,
            roster_entries.c.a_number,
            roster_entries.c.given_name,
            roster_entries.c.family_name,
            roster_entries.c.date_of_birth,
            roster_entries.c.country_of_birth,
        )
        .where(roster_entries.c.batch_id == batch_id, wanted)
        .order_by(roster_entries.c.id)
        .execution_options(yield_per=size)
    )
    for part in rows.partitions():
        yield [FactsEntry(*r) for r in part]


def clear_staging(connection: Connection, batch_id: int) -> None:
    connection.execute(delete(roster_entries).where(roster_entries.c.batch_id == batch_id))
