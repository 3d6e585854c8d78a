"""Roster staging and snapshot bookkeeping: the set operations of a roster diff, in SQL."""

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from operator import itemgetter

from sqlalchemy import Connection, and_, delete, exists, func, insert, or_, select

from safevine.domain.custody_status import Placement
from safevine.domain.event_kinds import CustodyState
from safevine.store.schema import (
    custody_status,
    facilities,
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


def stage(connection: Connection, rows: Sequence[StagedRow]) -> None:
    """Write staged rows (in STAGE_COLUMNS order) the fastest way the driver offers:
    COPY on PostgreSQL, a plain executemany on SQLite. A national roster stages
    millions of rows, and this is most of what it costs the database."""
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


def drop_repeats(connection: Connection, batch_id: int) -> list[tuple[int, int]]:
    """Remove every entry after the first for an A-number; returns (line, first line) pairs."""
    first = (
        select(roster_entries.c.a_number, func.min(roster_entries.c.line).label("first"))
        .where(roster_entries.c.batch_id == batch_id, roster_entries.c.rejected == 0)
        .group_by(roster_entries.c.a_number)
        .having(func.count() > 1)
        .subquery()
    )
    repeats = connection.execute(
        select(roster_entries.c.id, roster_entries.c.line, first.c.first)
        .join(first, first.c.a_number == roster_entries.c.a_number)
        .where(
            roster_entries.c.batch_id == batch_id,
            roster_entries.c.rejected == 0,
            roster_entries.c.line != first.c.first,
        )
        .order_by(roster_entries.c.line)
    ).all()
    if repeats:
        connection.execute(
            delete(roster_entries).where(roster_entries.c.id.in_([r.id for r in repeats]))
        )
    return [(r.line, r.first) for r in repeats]


def staged_facilities(connection: Connection, batch_id: int) -> dict[int, str]:
    rows = connection.execute(
        select(facilities.c.id, facilities.c.code).where(
            exists().where(
                roster_entries.c.batch_id == batch_id,
                roster_entries.c.facility_id == facilities.c.id,
                roster_entries.c.rejected == 0,
            )
        )
    )
    return {int(i): code for i, code in rows}


# The fingerprint of a facility that lists nobody.
EMPTY_FINGERPRINT = hashlib.sha256().hexdigest()
# Facilities per statement in the grouped queries below (a bound parameter each).
FACILITY_CHUNK = 500


def staged_fingerprints(connection: Connection, batch_id: int) -> dict[int, tuple[str, int]]:
    """Per facility with accepted rows: the fingerprint of who is listed there (to
    recognise the same snapshot again) and how many, in one ordered pass over the batch."""
    # Streamed: on this statement only (Connection.execution_options would change the
    # connection for every later statement of the transaction).
    rows = connection.execute(
        select(roster_entries.c.facility_id, roster_entries.c.a_number)
        .where(
            roster_entries.c.batch_id == batch_id,
            roster_entries.c.rejected == 0,
            roster_entries.c.facility_id.is_not(None),
        )
        .order_by(roster_entries.c.facility_id, roster_entries.c.a_number)
        .execution_options(yield_per=20_000)
    )
    out: dict[int, tuple[str, int]] = {}
    for facility_id, group in groupby(rows, key=itemgetter(0)):
        listed = [a_number for _, a_number in group]
        out[int(facility_id)] = (hashlib.sha256("".join(listed).encode()).hexdigest(), len(listed))
    return out


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


def absentee_counts(
    connection: Connection, batch_id: int, facility_ids: Sequence[int]
) -> dict[int, int]:
    """Per facility, the people in custody there whom the staged snapshot does not list
    there (absent: nobody)."""
    out: dict[int, int] = {}
    for part in _chunked(sorted(facility_ids)):
        rows = connection.execute(
            select(custody_status.c.facility_id, func.count())
            .join(persons, persons.c.id == custody_status.c.person_id)
            .where(
                custody_status.c.facility_id.in_(part),
                custody_status.c.state == CustodyState.IN_CUSTODY.value,
                ~exists().where(
                    roster_entries.c.batch_id == batch_id,
                    roster_entries.c.facility_id == custody_status.c.facility_id,
                    roster_entries.c.a_number == persons.c.a_number,
                ),
            )
            .group_by(custody_status.c.facility_id)
        )
        out.update((int(f), int(n)) for f, n in rows)
    return out


def absentees_at(
    connection: Connection, batch_id: int, facility_ids: Sequence[int]
) -> list[tuple[int, str, datetime]]:
    """(facility, A-number, in custody since) of everyone in custody at these facilities
    whom the snapshot does not list anywhere, by facility then A-number."""
    if not facility_ids:
        return []
    rows = connection.execute(
        select(custody_status.c.facility_id, persons.c.a_number, custody_status.c.occurred_at)
        .join(persons, persons.c.id == custody_status.c.person_id)
        .where(
            custody_status.c.facility_id.in_(sorted(facility_ids)),
            custody_status.c.state == CustodyState.IN_CUSTODY.value,
            ~exists().where(
                roster_entries.c.batch_id == batch_id,
                roster_entries.c.a_number == persons.c.a_number,
            ),
        )
        .order_by(custody_status.c.facility_id, persons.c.a_number)
    )
    return [(int(f), a_number, since) for f, a_number, since in rows]


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
            roster_entries.c.rejected == 0,
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


def clear_staging(connection: Connection, batch_id: int) -> None:
    connection.execute(delete(roster_entries).where(roster_entries.c.batch_id == batch_id))
