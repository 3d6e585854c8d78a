"""Evaluating every facility's feed health (the rule is `domain.feed_health`): what has
arrived from each, its state now, and each change of state recorded with its time and
audited. The time comes from the caller, so tests move it.

Per facility, the last event is found by one index probe (facility, received_at), and
the last roster and its last change from the facility's recent snapshots: no history is
read whole.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from safevine.domain.feed_health import (
    Arrivals,
    Health,
    HealthRules,
    learned_cadence,
    state_of,
)
from safevine.store.records.audit import append
from safevine.store.schema import (
    custody_events,
    facilities,
    facility_health,
    facility_health_changes,
    roster_snapshots,
)

# Recent snapshots read per facility: enough to learn a cadence and see the last change.
RECENT = 20


@dataclass(frozen=True)
class Change:
    facility_id: int
    code: str
    before: Health | None
    after: Health
    at: datetime


def _roster(connection: Connection, facility_id: int) -> tuple[list[datetime], datetime | None]:
    """The facility's recent snapshot arrivals (newest first) and when its roster last
    changed (the oldest arrival of the newest run of identical snapshots)."""
    rows = connection.execute(
        select(roster_snapshots.c.applied_at, roster_snapshots.c.content_hash)
        .where(roster_snapshots.c.facility_id == facility_id)
        .order_by(roster_snapshots.c.applied_at.desc())
        .limit(RECENT)
    ).all()
    if not rows:
        return [], None
    changed = rows[0].applied_at
    for row in rows[1:]:
        if row.content_hash != rows[0].content_hash:
            break
        changed = row.applied_at
    return [r.applied_at for r in rows], changed


def _events(connection: Connection, facility_id: int) -> list[datetime]:
    return list(
        connection.execute(
            select(custody_events.c.received_at)
            .where(custody_events.c.facility_id == facility_id)
            .order_by(custody_events.c.received_at.desc())
            .limit(RECENT)
        ).scalars()
    )


def evaluate(connection: Connection, now: datetime, rules: HealthRules) -> list[Change]:
    """Every facility's state now; the changes, recorded and audited in this transaction."""
    known: dict[int, Any] = {
        row.facility_id: row for row in connection.execute(select(facility_health))
    }
    changes: list[Change] = []
    for facility_id, code in connection.execute(
        select(facilities.c.id, facilities.c.code).order_by(facilities.c.id)
    ).all():
        rosters, changed = _roster(connection, facility_id)
        events = _events(connection, facility_id)
        arrivals = Arrivals(rosters[0] if rosters else None, changed, events[0] if events else None)
        row = known.get(facility_id)
        previous = Health(row.state) if row else None
        held = Health(row.held) if row is not None and row.held else None
        state = state_of(
            arrivals,
            learned_cadence(rosters, rules.roster_every, rules),
            learned_cadence(events, rules.events_every, rules),
            now,
            rules,
            previous,
            held,
        )
        if row is None:
            connection.execute(
                insert(facility_health).values(
                    facility_id=facility_id, state=state.value, since=now, evaluated_at=now
                )
            )
        else:
            values: dict[str, Any] = {"evaluated_at": now}
            if state != previous:
                values.update(state=state.value, since=now)
            connection.execute(
                update(facility_health)
                .where(facility_health.c.facility_id == facility_id)
                .values(**values)
            )
        if state != previous and not (previous is None and state == Health.CURRENT):
            changes.append(Change(facility_id, code, previous, state, now))
    for change in changes:
        connection.execute(
            insert(facility_health_changes).values(
                facility_id=change.facility_id,
                from_state=change.before.value if change.before else None,
                to_state=change.after.value,
                at=change.at,
            )
        )
        append(
            connection,
            actor="safevine",
            action="feed_health",
            target=f"facility:{change.code}",
            reason=f"{change.before.value if change.before else 'new'} -> {change.after.value}",
            at=change.at,
        )
    return changes


def hold(
    connection: Connection,
    actor: str,
    facility_id: int,
    held: Health | None,
    reason: str,
    now: datetime,
) -> None:
    """Staff mark a facility paused or closed on purpose (or lift it: `held` None)."""
    assert held in (None, Health.PAUSED, Health.CLOSED)
    connection.execute(
        update(facility_health)
        .where(facility_health.c.facility_id == facility_id)
        .values(held=held.value if held else None, held_reason=reason if held else None)
    )
    append(
        connection,
        actor=actor,
        action="feed_health_hold",
        target=f"facility:{facility_id}",
        reason=f"{held.value if held else 'lifted'}: {reason}",
        at=now,
    )


def counts(connection: Connection) -> dict[str, int]:
    return {
        state: int(n)
        for state, n in connection.execute(
            select(facility_health.c.state, func.count()).group_by(facility_health.c.state)
        )
    }
