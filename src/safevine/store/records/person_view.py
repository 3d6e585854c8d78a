"""The staff view of one person: everything, including protection and full history."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select

from safevine.domain.a_number import format_a_number
from safevine.store.schema import (
    custody_events,
    custody_status,
    facilities,
    person_names,
    persons,
    protection_changes,
)


@dataclass(frozen=True)
class HistoryEvent:
    event_id: str
    kind: str
    occurred_at: datetime
    facility_code: str | None
    facility_name: str | None
    details: dict[str, Any]
    origin: str
    received_at: datetime
    # Staff retracted it as recorded in error: it counts for nothing (migration 0022).
    retracted_at: datetime | None = None
    retracted_by: str | None = None
    retraction_reason: str | None = None


@dataclass(frozen=True)
class ProtectionChange:
    recorded_at: datetime
    as_of: datetime
    from_status: str
    to_status: str
    actor: str
    source: str
    reason: str | None


@dataclass(frozen=True)
class StaffPersonView:
    id: int
    a_number: str
    given_name: str | None
    family_name: str | None
    aliases: list[tuple[str, str]]
    date_of_birth: date | None
    country_of_birth: str | None
    protection: str
    screened_at: datetime | None
    state: str | None
    status_since: datetime | None
    facility_code: str | None
    facility_name: str | None
    history: list[HistoryEvent]
    protection_history: list[ProtectionChange]


def staff_view(connection: Connection, a_number: str) -> StaffPersonView | None:
    """Everything known about the person with this canonical A-number, or None."""
    person = connection.execute(select(persons).where(persons.c.a_number == a_number)).first()
    if person is None:
        return None
    status = connection.execute(
        select(
            custody_status.c.state,
            custody_status.c.occurred_at,
            facilities.c.code,
            facilities.c.name,
        )
        .outerjoin(facilities, facilities.c.id == custody_status.c.facility_id)
        .where(custody_status.c.person_id == person.id)
    ).first()
    aliases = [
        (r.given_name, r.family_name)
        for r in connection.execute(
            select(person_names.c.given_name, person_names.c.family_name)
            .where(person_names.c.person_id == person.id, person_names.c.is_primary == 0)
            .order_by(person_names.c.id)
        )
    ]
    history = [
        HistoryEvent(
            r.event_id,
            r.kind,
            r.occurred_at,
            r.code,
            r.name,
            r.details,
            r.origin,
            r.received_at,
            r.retracted_at,
            r.retracted_by,
            r.retraction_reason,
        )
        for r in connection.execute(
            select(
                custody_events.c.event_id,
                custody_events.c.kind,
                custody_events.c.occurred_at,
                facilities.c.code,
                facilities.c.name,
                custody_events.c.details,
                custody_events.c.origin,
                custody_events.c.received_at,
                custody_events.c.retracted_at,
                custody_events.c.retracted_by,
                custody_events.c.retraction_reason,
            )
            .outerjoin(facilities, facilities.c.id == custody_events.c.facility_id)
            .where(custody_events.c.person_id == person.id)
            .order_by(
                custody_events.c.occurred_at.desc(),
                custody_events.c.sequence.desc(),
                custody_events.c.event_id.desc(),
            )
        )
    ]
    changes = [
        ProtectionChange(
            r.recorded_at, r.as_of, r.from_status, r.to_status, r.actor, r.source, r.reason
        )
        for r in connection.execute(
            select(protection_changes)
            .where(protection_changes.c.person_id == person.id)
            .order_by(protection_changes.c.id)
        )
    ]
    return StaffPersonView(
        id=person.id,
        a_number=person.a_number,
        given_name=person.given_name,
        family_name=person.family_name,
        aliases=aliases,
        date_of_birth=person.date_of_birth,
        country_of_birth=person.country_of_birth,
        protection=person.protection,
        screened_at=person.screened_at,
        state=status.state if status else None,
        status_since=status.occurred_at if status else None,
        facility_code=status.code if status else None,
        facility_name=status.name if status else None,
        history=history,
        protection_history=changes,
    )


def view_json(view: StaffPersonView) -> dict[str, Any]:
    """The staff view as JSON, for `person show --json` and the staff API."""

    def iso(value: Any) -> Any:
        return value.isoformat() if hasattr(value, "isoformat") else value

    return {
        "id": view.id,
        "a_number": format_a_number(view.a_number),
        "given_name": view.given_name,
        "family_name": view.family_name,
        "aliases": [{"given_name": g, "family_name": f} for g, f in view.aliases],
        "date_of_birth": iso(view.date_of_birth),
        "country_of_birth": view.country_of_birth,
        "protection": view.protection,
        "screened_at": iso(view.screened_at),
        "custody_state": view.state,
        "status_since": iso(view.status_since),
        "facility_code": view.facility_code,
        "facility_name": view.facility_name,
        "history": [{k: iso(v) for k, v in vars(e).items()} for e in view.history],
        "protection_history": [
            {k: iso(v) for k, v in vars(c).items()} for c in view.protection_history
        ],
    }
