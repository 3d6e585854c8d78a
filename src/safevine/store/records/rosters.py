"""Roster staging and snapshot bookkeeping: the set operations of a roster diff, in SQL."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, and_, delete, exists, func, insert, select

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


def stage(connection: Connection, rows: Sequence[dict[str, object]]) -> None:
    if rows:
        connection.execute(insert(roster_entries), list(rows))


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


def staged_count(connection: Connection, batch_id: int, facility_ids: Sequence[int]) -> int:
    """Accepted rows listed at these facilities."""
    if not facility_ids:
        return 0
    return int(
        connection.execute(
            select(func.count())
            .select_from(roster_entries)
            .where(
                roster_entries.c.batch_id == batch_id,
                roster_entries.c.rejected == 0,
                roster_entries.c.facility_id.in_(facility_ids),
            )
        ).scalar_one()
    )


def staged_hash(connection: Connection, batch_id: int, facility_id: int) -> str:
    """Fingerprint of who is listed at one facility, to recognise the same snapshot again."""
    digest = hashlib.sha256()
    rows = connection.execute(
        select(roster_entries.c.a_number)
        .where(
            roster_entries.c.batch_id == batch_id,
            roster_entries.c.facility_id == facility_id,
            roster_entries.c.rejected == 0,
        )
        .order_by(roster_entries.c.a_number)
    )
    for (a_number,) in rows:
        digest.update(a_number.encode())
    return digest.hexdigest()


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


def staged_entries(
    connection: Connection, batch_id: int, after_id: int, limit: int
) -> list[StagedEntry]:
    """The next `limit` staged entries, each with the person's current placement."""
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
            roster_entries.c.id > after_id,
        )
        .order_by(roster_entries.c.id)
        .limit(limit)
    )
    return [
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
        for r in rows
    ]


def absentees(
    connection: Connection, batch_id: int, facility_id: int, after: str, limit: int
) -> list[tuple[str, datetime]]:
    """(A-number, in custody since) of people in custody at the facility but not listed,
    in A-number order after `after`, at most `limit` of them."""
    rows = connection.execute(
        select(persons.c.a_number, custody_status.c.occurred_at)
        .join(custody_status, custody_status.c.person_id == persons.c.id)
        .where(
            custody_status.c.facility_id == facility_id,
            custody_status.c.state == CustodyState.IN_CUSTODY.value,
            persons.c.a_number > after,
            ~exists().where(
                roster_entries.c.batch_id == batch_id,
                roster_entries.c.a_number == persons.c.a_number,
            ),
        )
        .order_by(persons.c.a_number)
        .limit(limit)
    )
    return [(a_number, since) for a_number, since in rows]


def record_snapshot(
    connection: Connection,
    facility_id: int,
    taken_at: datetime,
    digest: str,
    batch_id: int,
    now: datetime,
    listed: int | None = None,
) -> None:
    connection.execute(
        insert(roster_snapshots).values(
            facility_id=facility_id,
            taken_at=taken_at,
            content_hash=digest,
            batch_id=batch_id,
            applied_at=now,
            listed=listed,
        )
    )


def clear_staging(connection: Connection, batch_id: int) -> None:
    connection.execute(delete(roster_entries).where(roster_entries.c.batch_id == batch_id))


def in_custody_count(connection: Connection, facility_id: int) -> int:
    return int(
        connection.execute(
            select(func.count())
            .select_from(custody_status)
            .where(
                custody_status.c.facility_id == facility_id,
                custody_status.c.state == CustodyState.IN_CUSTODY.value,
            )
        ).scalar_one()
    )


def absentee_count(connection: Connection, batch_id: int, facility_id: int) -> int:
    """People in custody at the facility whom the staged snapshot does not list there."""
    return int(
        connection.execute(
            select(func.count())
            .select_from(custody_status)
            .join(persons, persons.c.id == custody_status.c.person_id)
            .where(
                custody_status.c.facility_id == facility_id,
                custody_status.c.state == CustodyState.IN_CUSTODY.value,
                ~exists().where(
                    roster_entries.c.batch_id == batch_id,
                    roster_entries.c.facility_id == facility_id,
                    roster_entries.c.a_number == persons.c.a_number,
                ),
            )
        ).scalar_one()
    )
