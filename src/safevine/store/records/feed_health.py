"""Evaluating every facility's feed health (the rule is `domain.feed_health`): what has
arrived from each, its state now, and each change of state recorded with its time and
audited; each outage (down, until data arrives again) kept with its start. The time comes
from the caller, so tests move it.

What each facility last sent is read by index probes (events by facility and arrival,
snapshots by facility and time), never by reading a history whole: on PostgreSQL in one
LATERAL statement for every facility, on SQLite (in process, no round trips) one probe
per facility. Only what changed is written back, in one statement per kind of change.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    func,
    insert,
    select,
    update,
)

from safevine.domain.feed_health import (
    Arrivals,
    Cadence,
    Health,
    HealthChange,
    HealthRules,
    cadence_of,
    last_data,
    state_of,
)
from safevine.store.member_of import chunked
from safevine.store.records.audit import Entry, append, append_many
from safevine.store.schema import (
    facilities,
    facility_health,
    facility_health_changes,
    feed_outages,
)
from safevine.store.types import sqlite_utc

# Recent arrivals read per facility: enough to learn a cadence and see the last change.
RECENT = 20
EVALUATOR = "safevine"


@dataclass(frozen=True)
class Evaluation:
    changes: list[HealthChange]
    # Outages that ended in this run (their registrants are told the feed is back).
    ended: list[int]


@dataclass
class _Sent:
    rosters: list[tuple[datetime, str]]  # (applied_at, content_hash), newest first
    events: list[datetime]  # newest first


def _minutes(value: int | None) -> timedelta | None:
    return timedelta(minutes=value) if value else None


def _recent(connection: Connection, ids: Sequence[int], limit: int) -> dict[int, _Sent]:
    """The last `limit` roster snapshots and events of each facility in `ids`."""
    sent = {facility_id: _Sent([], []) for facility_id in ids}
    if not ids:
        return sent
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if connection.dialect.name == "postgresql":
            # Every facility's in one LATERAL statement a stream, read on the DB-API
            # cursor of this transaction: psycopg's own conversion of the rows, without
            # the SQL layer's per-row processing, which cost more than the reads.
            chosen = (list(ids), limit)
            for facility_id, applied, digest in cursor.execute(_PG_ROSTERS, chosen):
                sent[facility_id].rosters.append((applied, digest))
            for facility_id, received in cursor.execute(_PG_EVENTS, chosen):
                sent[facility_id].events.append(received)
            for item in sent.values():
                item.rosters.sort(reverse=True)
                item.events.sort(reverse=True)
            return sent
        # SQLite: one probe a facility, on the same cursor. Through the SQL layer the
        # 6,000 probes of a national evaluation cost more than the reads do.
        for facility_id, item in sent.items():
            item.rosters = [
                (sqlite_utc(applied), digest)
                for applied, digest in cursor.execute(_SQLITE_ROSTERS, (facility_id, limit))
            ]
            item.events = [
                sqlite_utc(received)
                for (received,) in cursor.execute(_SQLITE_EVENTS, (facility_id, limit))
            ]
    finally:
        cursor.close()
    return sent


# By the indexes (facility_id, taken_at) and (facility_id, received_at). PostgreSQL's
# session zone is UTC (store/engine.py), so its moments arrive as UTC.
_PG_ROSTERS = (
    "SELECT f.id, r.applied_at, r.content_hash FROM unnest(%s::bigint[]) AS f(id) "
    "CROSS JOIN LATERAL (SELECT applied_at, content_hash FROM roster_snapshots "
    "WHERE facility_id = f.id ORDER BY taken_at DESC LIMIT %s) AS r"
)
_PG_EVENTS = (
    "SELECT f.id, e.received_at FROM unnest(%s::bigint[]) AS f(id) "
    "CROSS JOIN LATERAL (SELECT received_at FROM custody_events "
    "WHERE facility_id = f.id ORDER BY received_at DESC LIMIT %s) AS e"
)
_SQLITE_ROSTERS = (
    "SELECT applied_at, content_hash FROM roster_snapshots WHERE facility_id = ? "
    "ORDER BY taken_at DESC LIMIT ?"
)
_SQLITE_EVENTS = (
    "SELECT received_at FROM custody_events WHERE facility_id = ? ORDER BY received_at DESC LIMIT ?"
)


def _arrivals(sent: _Sent) -> Arrivals:
    """The last roster, when the roster last changed (the oldest of the newest run of
    identical snapshots), and the last event."""
    if not sent.rosters:
        return Arrivals(None, None, sent.events[0] if sent.events else None)
    newest, digest = sent.rosters[0]
    changed = newest
    for applied_at, content_hash in sent.rosters[1:]:
        if content_hash != digest:
            break
        changed = applied_at
    return Arrivals(newest, changed, sent.events[0] if sent.events else None)


# A learned cadence is learned again, from new arrivals, at most this often...
RELEARN_EVERY = timedelta(hours=1)
# ...and at most this many such routine relearnings in one evaluation, the longest waiting
# first: facilities learned together (the first evaluation) would otherwise all read
# their history again in the same evaluation an hour later. What must be read now
# (`_MUST`) is never put off.
RELEARN_AT_ONCE = 250

_MUST, _DUE = "must", "due"


def _relearn(place: Any, row: Any, latest: _Sent, now: datetime) -> str | None:
    """Whether the facility's history must be read (`_MUST`): never evaluated, its set
    cadences changed since, or what it last sent is gone; or may be (`_DUE`): an hour since
    its cadence was learned and something arrived after."""
    if row is None or row.cadence_at is None or row.roster_every_minutes is None:
        return _MUST
    if place.updated_at > row.cadence_at:
        return _MUST
    last_roster = latest.rosters[0][0] if latest.rosters else None
    last_event = latest.events[0] if latest.events else None
    for seen, known in ((last_roster, row.last_roster), (last_event, row.last_event)):
        # Older than what was last seen (removed or corrected): what was known is stale.
        if known is not None and (seen is None or seen < known):
            return _MUST
    arrived = any(m is not None and m > row.cadence_at for m in (last_roster, last_event))
    return _DUE if arrived and now - row.cadence_at >= RELEARN_EVERY else None


def _to_read(
    places: Sequence[Any], known: dict[int, Any], latest: dict[int, _Sent], now: datetime
) -> list[int]:
    """The facilities whose history is read in this evaluation (`_relearn`)."""
    must: list[int] = []
    due: list[tuple[datetime, int]] = []
    for place in places:
        row = known.get(place.id)
        why = _relearn(place, row, latest[place.id], now)
        if why == _MUST:
            must.append(place.id)
        elif why == _DUE and row is not None:  # due: evaluated before
            due.append((row.cadence_at, place.id))
    due.sort()
    return must + [facility_id for _, facility_id in due[:RELEARN_AT_ONCE]]


def _following(row: Any, latest: _Sent) -> Arrivals:
    """What arrived, from the last probes and what the last evaluation knew: the roster's
    run of identical snapshots goes on while its content is the same."""
    if not latest.rosters:
        return Arrivals(None, None, latest.events[0] if latest.events else None)
    newest, digest = latest.rosters[0]
    changed = row.last_roster_change if digest == row.last_roster_hash else newest
    return Arrivals(newest, changed or newest, latest.events[0] if latest.events else None)


def _whole_minutes(span: timedelta) -> int:
    return max(1, round(span.total_seconds() / 60))


def evaluate(connection: Connection, now: datetime, rules: HealthRules) -> Evaluation:
    """Every facility's state now. Changes are recorded and audited, and outages begun
    and ended, in this transaction; the caller adds the notices and alerts they cause."""
    places = connection.execute(
        select(
            facilities.c.id,
            facilities.c.code,
            facilities.c.name,
            facilities.c.roster_every_minutes,
            facilities.c.events_every_minutes,
            facilities.c.down_after_minutes,
            facilities.c.updated_at,
        ).order_by(facilities.c.id)
    ).all()
    known: dict[int, Any] = {
        row.facility_id: row for row in connection.execute(select(facility_health))
    }
    # One probe a stream per facility finds what arrived last; the history a cadence is
    # learned from is read only where it is due again (`_relearn`).
    latest = _recent(connection, [p.id for p in places], 1)
    history = _recent(connection, _to_read(places, known, latest, now), RECENT)
    new_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changes: list[HealthChange] = []
    for place in places:
        row = known.get(place.id)
        if place.id in history:
            item = history[place.id]
            arrivals = _arrivals(item)
            cadence = cadence_of(
                [applied for applied, _ in item.rosters],
                item.events,
                rules,
                _minutes(place.roster_every_minutes),
                _minutes(place.events_every_minutes),
                _minutes(place.down_after_minutes),
            )
            learned_at = now
        else:
            assert row is not None  # never evaluated: its history is read (`_relearn`)
            arrivals = _following(row, latest[place.id])
            cadence = Cadence(
                _minutes(place.roster_every_minutes) or timedelta(minutes=row.roster_every_minutes),
                _minutes(place.events_every_minutes) or timedelta(minutes=row.events_every_minutes),
                _minutes(place.down_after_minutes) or rules.down_after,
                place.roster_every_minutes is None or place.events_every_minutes is None,
            )
            learned_at = row.cadence_at
        previous = Health(row.state) if row else None
        held = Health(row.held) if row is not None and row.held else None
        state = state_of(arrivals, cadence, now, previous, held)
        values = _values(arrivals, cadence, now)
        values["last_roster_hash"] = (
            latest[place.id].rosters[0][1] if latest[place.id].rosters else None
        )
        values["cadence_at"] = learned_at
        if row is None:
            new_rows.append(
                {
                    **values,
                    "facility_id": place.id,
                    "state": state,
                    "since": now,
                    "evaluated_at": now,
                }
            )
        elif state != previous or any(getattr(row, k) != v for k, v in values.items()):
            # Only what changed is written; the time of evaluation is set for all at once.
            updates.append(
                {
                    **values,
                    "b_facility": place.id,
                    "state": state,
                    "since": now if state != previous else row.since,
                }
            )
        if state != previous and not (previous is None and state == Health.CURRENT):
            changes.append(
                HealthChange(
                    place.id, place.code, place.name, previous, state, now, values["last_data"]
                )
            )
    if new_rows:
        connection.execute(insert(facility_health), new_rows)
    if updates:
        connection.execute(
            update(facility_health).where(facility_health.c.facility_id == bindparam("b_facility")),
            updates,
        )
    connection.execute(update(facility_health).values(evaluated_at=now))
    ended = _outages(connection, changes, known, now)
    if changes:
        connection.execute(
            insert(facility_health_changes),
            [
                {
                    "facility_id": change.facility_id,
                    "from_state": change.before.value if change.before else None,
                    "to_state": change.after.value,
                    "at": change.at,
                }
                for change in changes
            ],
        )
        append_many(
            connection,
            [
                Entry(
                    EVALUATOR,
                    "feed_health",
                    f"facility:{change.code}",
                    f"{change.before.value if change.before else 'new'} -> {change.after.value}",
                )
                for change in changes
            ],
            now,
        )
    return Evaluation(changes, ended)


def _values(arrivals: Arrivals, cadence: Cadence, now: datetime) -> dict[str, Any]:
    return {
        "last_roster": arrivals.last_roster,
        "last_roster_change": arrivals.last_roster_change,
        "last_event": arrivals.last_event,
        "last_data": last_data(arrivals, cadence, now),
        "roster_every_minutes": _whole_minutes(cadence.roster_every),
        "events_every_minutes": _whole_minutes(cadence.events_every),
        "cadence_learned": int(cadence.learned),
    }


def _outages(
    connection: Connection, changes: list[HealthChange], known: dict[int, Any], now: datetime
) -> list[int]:
    """An outage begins when a facility goes down and ends when data arrives again; the
    ids of those that ended."""
    under_way = {
        facility_id: int(row.outage_id) for facility_id, row in known.items() if row.outage_id
    }
    starting = [c for c in changes if c.after == Health.DOWN and c.facility_id not in under_way]
    ending = [
        c
        for c in changes
        if c.after in (Health.RECOVERED, Health.CURRENT) and c.facility_id in under_way
    ]
    began: dict[int, int] = {}
    if starting:
        made = connection.execute(
            insert(feed_outages).returning(feed_outages.c.facility_id, feed_outages.c.id),
            [
                {"facility_id": c.facility_id, "began_at": now, "last_data": c.last_data}
                for c in starting
            ],
        )
        began = {int(facility_id): int(outage) for facility_id, outage in made}
        connection.execute(
            update(facility_health)
            .where(facility_health.c.facility_id == bindparam("b_facility"))
            .values(outage_id=bindparam("b_outage")),
            [{"b_facility": f, "b_outage": o} for f, o in began.items()],
        )
    ended = [under_way[c.facility_id] for c in ending]
    _end_outages(connection, {c.facility_id: under_way[c.facility_id] for c in ending}, now)
    return ended


def _end_outages(connection: Connection, outages: dict[int, int], now: datetime) -> None:
    """End these outages (facility id -> outage id)."""
    for part in chunked(sorted(outages)):
        connection.execute(
            update(feed_outages)
            .where(feed_outages.c.id.in_([outages[f] for f in part]))
            .values(ended_at=now)
        )
        connection.execute(
            update(facility_health)
            .where(facility_health.c.facility_id.in_(part))
            .values(outage_id=None)
        )


def open_outages(connection: Connection) -> dict[int, int]:
    """Facility id -> outage id for every outage under way."""
    return {
        int(facility_id): int(outage_id)
        for facility_id, outage_id in connection.execute(
            select(facility_health.c.facility_id, facility_health.c.outage_id).where(
                facility_health.c.outage_id.is_not(None)
            )
        )
    }


def hold(
    connection: Connection,
    actor: str,
    facility_id: int,
    held: Health | None,
    reason: str,
    now: datetime,
) -> int | None:
    """Staff mark a facility paused or closed on purpose (or lift it: `held` None). An
    outage under way ends with the hold (no alert, no notice follows it); its id is
    returned so the caller can withdraw the notices not yet sent."""
    assert held in (None, Health.PAUSED, Health.CLOSED)
    row = connection.execute(
        select(facility_health.c.outage_id, facility_health.c.state).where(
            facility_health.c.facility_id == facility_id
        )
    ).first()
    if row is None:
        connection.execute(
            insert(facility_health).values(
                facility_id=facility_id, state=Health.CURRENT, since=now, evaluated_at=now
            )
        )
    connection.execute(
        update(facility_health)
        .where(facility_health.c.facility_id == facility_id)
        .values(
            held=held.value if held else None,
            held_reason=reason if held else None,
            held_by=actor if held else None,
            held_at=now if held else None,
        )
    )
    if held is not None and (row is None or row.state != held):
        # Held from now: the change is recorded as evaluation records its own.
        connection.execute(
            update(facility_health)
            .where(facility_health.c.facility_id == facility_id)
            .values(state=held.value, since=now)
        )
        connection.execute(
            insert(facility_health_changes).values(
                facility_id=facility_id,
                from_state=row.state if row is not None else None,
                to_state=held.value,
                at=now,
            )
        )
    outage = int(row.outage_id) if row is not None and row.outage_id and held else None
    if outage is not None:
        _end_outages(connection, {facility_id: outage}, now)
        # Held on purpose: no resumed notice follows this outage.
        connection.execute(
            update(feed_outages).where(feed_outages.c.id == outage).values(followed_up_at=now)
        )
    code = connection.execute(
        select(facilities.c.code).where(facilities.c.id == facility_id)
    ).scalar_one()
    append(
        connection,
        actor=actor,
        action="feed_health_hold",
        target=f"facility:{code}",
        reason=f"{held.value if held else 'lifted'}: {reason}",
        at=now,
    )
    return outage


def set_cadence(
    connection: Connection,
    actor: str,
    facility_id: int,
    minutes: dict[str, int | None],
    now: datetime,
) -> None:
    """Staff set (or, with None, return to learning) a facility's cadences in minutes:
    keys roster_every_minutes, events_every_minutes, down_after_minutes."""
    allowed = {"roster_every_minutes", "events_every_minutes", "down_after_minutes"}
    assert set(minutes) <= allowed
    connection.execute(
        update(facilities).where(facilities.c.id == facility_id).values(**minutes, updated_at=now)
    )
    code = connection.execute(
        select(facilities.c.code).where(facilities.c.id == facility_id)
    ).scalar_one()
    told = ", ".join(
        f"{key}={value if value else 'learned'}" for key, value in sorted(minutes.items())
    )
    append(
        connection,
        actor=actor,
        action="feed_cadence",
        target=f"facility:{code}",
        reason=told,
        at=now,
    )


def counts(connection: Connection) -> dict[str, int]:
    """Facilities by state, a facility held by staff counted as held."""
    state = func.coalesce(facility_health.c.held, facility_health.c.state)
    return {
        str(name): int(n)
        for name, n in connection.execute(select(state, func.count()).group_by(state))
    }


@dataclass(frozen=True)
class FacilityHealth:
    """One row of the staff feed health page."""

    facility_id: int
    code: str
    name: str
    city: str | None
    state: str  # the judged state, or paused/closed when held
    since: datetime
    last_roster: datetime | None
    last_event: datetime | None
    last_data: datetime | None
    roster_every_minutes: int | None
    events_every_minutes: int | None
    cadence_learned: bool
    held_reason: str | None
    held_by: str | None
    evaluated_at: datetime

    def as_json(self) -> dict[str, Any]:
        """As the staff API and `safevine feed-health list --json` give it."""

        def when(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            "facility": self.code,
            "name": self.name,
            "city": self.city,
            "state": self.state,
            "since": self.since.isoformat(),
            "last_roster": when(self.last_roster),
            "last_event": when(self.last_event),
            "last_received": when(self.last_data),
            "roster_every_minutes": self.roster_every_minutes,
            "events_every_minutes": self.events_every_minutes,
            "cadence_learned": self.cadence_learned,
            "held_reason": self.held_reason,
            "held_by": self.held_by,
            "evaluated_at": self.evaluated_at.isoformat(),
        }


WORST_FIRST = ["down", "late", "recovered", "paused", "current", "closed"]


def listing(connection: Connection, code: str | None = None) -> list[FacilityHealth]:
    """Every evaluated facility (or the one with `code`), worst first (down, late,
    recovered, paused, current, closed), then the longest silent."""
    query = select(
        facilities.c.id,
        facilities.c.code,
        facilities.c.name,
        facilities.c.city,
        func.coalesce(facility_health.c.held, facility_health.c.state).label("state"),
        facility_health.c.since,
        facility_health.c.last_roster,
        facility_health.c.last_event,
        facility_health.c.last_data,
        facility_health.c.roster_every_minutes,
        facility_health.c.events_every_minutes,
        facility_health.c.cadence_learned,
        facility_health.c.held_reason,
        facility_health.c.held_by,
        facility_health.c.evaluated_at,
    ).join(facility_health, facility_health.c.facility_id == facilities.c.id)
    if code is not None:
        query = query.where(facilities.c.code == code)
    rows = connection.execute(query).all()
    found = [
        FacilityHealth(
            int(r.id),
            r.code,
            r.name,
            r.city,
            r.state,
            r.since,
            r.last_roster,
            r.last_event,
            r.last_data,
            r.roster_every_minutes,
            r.events_every_minutes,
            bool(r.cadence_learned),
            r.held_reason,
            r.held_by,
            r.evaluated_at,
        )
        for r in rows
    ]
    return sorted(
        found,
        key=lambda f: (
            WORST_FIRST.index(f.state) if f.state in WORST_FIRST else 0,
            f.last_data.timestamp() if f.last_data else 0.0,
            f.code,
        ),
    )


@dataclass(frozen=True)
class StateChange:
    before: str | None
    after: str
    at: datetime


@dataclass(frozen=True)
class Outage:
    began_at: datetime
    ended_at: datetime | None
    last_data: datetime | None
    delay_notices: int
    resumed_notices: int


def history(
    connection: Connection, facility_id: int, limit: int = 50
) -> tuple[list[StateChange], list[Outage]]:
    """A facility's latest changes of state and outages, newest first."""
    changes = [
        StateChange(r.from_state, r.to_state, r.at)
        for r in connection.execute(
            select(facility_health_changes)
            .where(facility_health_changes.c.facility_id == facility_id)
            .order_by(facility_health_changes.c.at.desc(), facility_health_changes.c.id.desc())
            .limit(limit)
        )
    ]
    outages = [
        Outage(r.began_at, r.ended_at, r.last_data, r.delay_notices, r.resumed_notices)
        for r in connection.execute(
            select(feed_outages)
            .where(feed_outages.c.facility_id == facility_id)
            .order_by(feed_outages.c.began_at.desc())
            .limit(limit)
        )
    ]
    return changes, outages
