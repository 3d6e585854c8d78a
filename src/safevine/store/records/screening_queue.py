"""The screening queue: people not yet screened, who stay hidden until someone is.

Longest waiting first, so nobody is forgotten at the back; optionally at one facility
(where the person is now held or was last seen).
"""

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, Connection, and_, func, literal_column, select

from safevine.domain.protection import Protection
from safevine.store.decoy import real_persons
from safevine.store.schema import custody_status, facilities, persons


@dataclass(frozen=True)
class Waiting:
    id: int
    a_number: str
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    country_of_birth: str | None
    facility_code: str | None
    facility_name: str | None
    custody_state: str | None
    waiting_since: datetime


@dataclass(frozen=True)
class QueueSummary:
    size: int
    oldest: datetime | None


# A literal, not a parameter: only then may SQLite (and PostgreSQL's generic plans) answer
# from the partial index of those waiting, `ix_persons_unscreened`.
_WAITING = persons.c.protection == literal_column(f"'{Protection.UNSCREENED.value}'")


def _unscreened() -> ColumnElement[bool]:
    return and_(_WAITING, real_persons())


def summary(connection: Connection) -> QueueSummary:
    size, oldest = connection.execute(
        select(func.count(), func.min(persons.c.created_at)).where(_unscreened())
    ).one()
    return QueueSummary(int(size), oldest)


def waiting(
    connection: Connection, facility_code: str | None = None, limit: int = 200
) -> list[Waiting]:
    query = (
        select(
            persons.c.id,
            persons.c.a_number,
            persons.c.given_name,
            persons.c.family_name,
            persons.c.date_of_birth,
            persons.c.country_of_birth,
            facilities.c.code.label("facility_code"),
            facilities.c.name.label("facility_name"),
            custody_status.c.state.label("custody_state"),
            persons.c.created_at.label("waiting_since"),
        )
        .select_from(
            persons.outerjoin(custody_status, custody_status.c.person_id == persons.c.id).outerjoin(
                facilities, facilities.c.id == custody_status.c.facility_id
            )
        )
        .where(_unscreened())
        .order_by(persons.c.created_at, persons.c.id)
        .limit(limit)
    )
    if facility_code:
        query = query.where(facilities.c.code == facility_code)
    return [Waiting(**row._mapping) for row in connection.execute(query)]


def facilities_waiting(connection: Connection) -> list[tuple[str, str, int]]:
    """Facilities with people waiting: code, name and how many, for a filter."""
    rows = connection.execute(
        select(facilities.c.code, facilities.c.name, func.count())
        .select_from(
            persons.join(custody_status, custody_status.c.person_id == persons.c.id).join(
                facilities, facilities.c.id == custody_status.c.facility_id
            )
        )
        .where(_unscreened())
        .group_by(facilities.c.code, facilities.c.name)
        .order_by(facilities.c.name)
    ).all()
    return [(code, name, int(count)) for code, name, count in rows]
