"""Recording custody events: stored once by event id, with the derived status kept current.

`record_events` is the one way custody changes enter the store, for feeds, rosters and
staff alike, so every side effect of an event happens in the caller's transaction.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from safevine.domain.custody_event import CustodyEventInput
from safevine.domain.custody_status import CustodyStatus, StatusEvent, advance
from safevine.domain.errors import FieldError
from safevine.domain.event_content import EventContent, event_content
from safevine.domain.event_kinds import CustodyState, EventKind
from safevine.store.driver_sql import Driver
from safevine.store.records.facilities import facility_ids
from safevine.store.records.holds import keep_prior_status
from safevine.store.records.outbox import (
    Audience,
    notification_audience,
    write_event_notifications,
)
from safevine.store.records.persons import resolve_persons
from safevine.store.records.protection import apply_feed_protection
from safevine.store.schema import custody_events, custody_status


@dataclass(frozen=True)
class StoredEvent:
    pk: int
    person_id: int
    event: CustodyEventInput


@dataclass
class RecordedEvents:
    """What happened to each event handed to `record_events`."""

    stored: list[StoredEvent] = field(default_factory=list)
    duplicates: int = 0
    # (index into the events given, why it was not stored)
    errors: list[tuple[int, FieldError]] = field(default_factory=list)
    status_changes: int = 0
    notifications: int = 0


_REUSED = "was already used by a different event; event ids must be unique per event"
# What `_stored_hashes` reads for a retracted event instead of its hash (no hash is this;
# written out in its statement).
_RETRACTED = "retracted"


def _retracted(event_id: str) -> str:
    return (
        f"{event_id!r} was retracted by staff as recorded in error and stays retracted; "
        "send the correct event under a new event id"
    )


def record_events(
    connection: Connection,
    events: Sequence[CustodyEventInput],
    *,
    origin: str,
    now: datetime,
    source: str,
    batch_id: int | None = None,
    provisional: bool = False,
    meanwhile: Callable[[], object] | None = None,
    contents: Sequence[EventContent | None] | None = None,
) -> RecordedEvents:
    """Store new events, skip exact resends, and update each person's current status.

    `provisional` (a batch under judgement): notifications are written `held`, and each
    person's status from before the batch is kept so the public keeps seeing it until
    the batch is confirmed (see `records.holds`).

    An event whose id was seen with other content, whose facility is unknown or whose
    person facts contradict the record is returned in `errors` and changes nothing. So is
    an event whose id staff retracted (`records.retraction`), whatever it says: a feed
    sending it again never brings it back.

    An event id that repeats within `events` is judged once the events before it are
    recorded: each run of events in which no id repeats is recorded in turn. So a repeat
    is a duplicate (or a reuse) only of an event that was stored, never of one refused in
    the same call, and person facts are still merged in the order given. A repeat that is
    the very same input as an earlier one in its run (a file sent twice over, say) is not
    a new run: it fares as that one did, a duplicate if it was stored, the same reject if
    not, so a feed of one event a million times is still recorded in one pass.

    `meanwhile`, if given, is called once the last writes are on their way: on PostgreSQL
    the server applies them while it runs (`Driver.pipelined`), and they are done when this
    returns. It may run no statement. Not called when nothing was left to write.

    `contents`, if given, holds `event_content(event)` for each event (None: worked out
    here), as a feed works them out where it parses its records.
    """
    if contents is None:
        contents = [None] * len(events)
    elif len(contents) != len(events):
        raise ValueError(f"{len(contents)} contents for {len(events)} events")
    result = RecordedEvents()
    start = 0
    runs = _runs(events)
    for number, (end, echoes) in enumerate(runs, 1):
        firsts = [i for i in range(start, end) if i not in echoes]
        part = _record_run(
            connection,
            [events[i] for i in firsts],
            [contents[i] for i in firsts],
            origin=origin,
            now=now,
            batch_id=batch_id,
            provisional=provisional,
            source=source,
            meanwhile=meanwhile if number == len(runs) else None,
        )
        refused = {firsts[index]: error for index, error in part.errors}
        result.stored += part.stored
        result.duplicates += part.duplicates
        result.errors += list(refused.items())
        for echo, first in echoes.items():
            if first in refused:
                result.errors.append((echo, refused[first]))
            else:
                result.duplicates += 1
        result.status_changes += part.status_changes
        result.notifications += part.notifications
        start = end
    result.errors.sort(key=lambda found: found[0])
    return result


def _runs(events: Sequence[CustodyEventInput]) -> list[tuple[int, dict[int, int]]]:
    """Where each run of `events` ends, none holding an event id twice but as the same
    input again, with those repeats (index: index of the first) (nearly always one run:
    the whole sequence, with no repeats)."""
    runs: list[tuple[int, dict[int, int]]] = []
    firsts: dict[str, int] = {}
    echoes: dict[int, int] = {}
    for index, event in enumerate(events):
        first = firsts.get(event.event_id)
        if first is not None and events[first] == event:
            echoes[index] = first
            continue
        if first is not None:
            runs.append((index, echoes))
            firsts, echoes = {}, {}
        firsts[event.event_id] = index
    runs.append((len(events), echoes))
    return runs


def _record_run(
    connection: Connection,
    events: Sequence[CustodyEventInput],
    given: Sequence[EventContent | None],
    *,
    origin: str,
    now: datetime,
    source: str,
    batch_id: int | None,
    provisional: bool,
    meanwhile: Callable[[], object] | None = None,
) -> RecordedEvents:
    """`record_events` for events whose ids are all different."""
    result = RecordedEvents()
    if not events:
        return result
    contents = [event_content(e) if c is None else c for e, c in zip(events, given, strict=True)]
    hashes = [c.hash for c in contents]
    facility_map = facility_ids(connection, (e.facility_code for e in events if e.facility_code))
    seen = _stored_hashes(Driver(connection), [e.event_id for e in events])

    candidates: list[int] = []
    for index, event in enumerate(events):
        known = seen.get(event.event_id)
        if known is not None:
            if known == _RETRACTED:
                result.errors.append((index, FieldError("event_id", _retracted(event.event_id))))
            elif known == hashes[index]:
                result.duplicates += 1
            else:
                result.errors.append((index, FieldError("event_id", _REUSED)))
            continue
        if event.facility_code and event.facility_code not in facility_map:
            result.errors.append(
                (
                    index,
                    FieldError(
                        "facility_code",
                        f"{event.facility_code!r} is not a known facility; "
                        "load it with `safevine ingest facilities` first",
                    ),
                )
            )
            continue
        candidates.append(index)

    resolved = resolve_persons(connection, [events[i].person for i in candidates], now)
    accepted: list[tuple[int, int]] = []
    for index, person in zip(candidates, resolved, strict=True):
        if isinstance(person, FieldError):
            result.errors.append((index, person))
        else:
            accepted.append((index, person))
    if not accepted:
        return result

    driver = Driver(connection)
    received = driver.when(now)
    snapshot_batch = batch_id if provisional else None
    moving = sorted({p for i, p in accepted if events[i].kind != EventKind.HEARING_SCHEDULED})
    rows = [
        (
            events[i].event_id,
            person_id,
            events[i].kind.value,
            facility_map.get(events[i].facility_code or ""),
            driver.when(events[i].occurred_at),
            events[i].sequence,
            received,
            contents[i].details,
            hashes[i],
            origin,
            batch_id,
        )
        for i, person_id in accepted
    ]
    # PostgreSQL: what the writes need is read first (the current statuses, who wants to
    # hear) and the events' ids are taken from their sequence, so the writes go out
    # together and this process works on while the server applies them. SQLite: the
    # events are written first, so that the reads come after the transaction's first
    # write (pysqlite begins one only at a write), holding SQLite's write lock: no other
    # writer's status change can slip in between.
    audience: Audience | None = None
    if driver.postgresql:
        ids = driver.new_ids(custody_events, len(rows))
        current = _current_statuses(driver, moving)
        audience = notification_audience(
            connection,
            (person_id for _, person_id in accepted),
            (facility_map[code] for i, _ in accepted if (code := events[i].facility_code)),
        )
    with driver.pipelined():
        if driver.postgresql:
            driver.insert(
                custody_events,
                ("id", *_EVENT_COLUMNS),
                [(pk, *row) for pk, row in zip(ids, rows, strict=True)],
            )
        else:
            # The rows, then their ids read back by event id (unique): asking for the
            # rows' order back makes SQLite insert one row a statement.
            driver.insert(custody_events, _EVENT_COLUMNS, rows)
            pk_of = _event_pks(driver, [events[i].event_id for i, _ in accepted])
            ids = [pk_of[events[i].event_id] for i, _ in accepted]
            current = _current_statuses(driver, moving)
        result.stored = [
            StoredEvent(pk, person_id, events[i])
            for pk, (i, person_id) in zip(ids, accepted, strict=True)
        ]
        # Each event's time as stored, for the statuses they set: written once.
        written = {row[0]: row[4] for row in rows}
        advanced = _update_status(
            connection, result.stored, current, facility_map, written, now, snapshot_batch
        )
        result.status_changes = len(
            {s.person_id for s in result.stored if s.event.event_id in advanced}
        )
        # Victims hear about changes that are now the person's status, and about hearings;
        # a late event only fills in history.
        news = [
            (
                s.pk,
                s.person_id,
                {
                    "kind": s.event.kind.value,
                    "occurred_at": s.event.occurred_at,
                    "facility_id": facility_map.get(s.event.facility_code or ""),
                    "details": s.event.details,
                },
            )
            for s in result.stored
            if s.event.event_id in advanced or s.event.kind == EventKind.HEARING_SCHEDULED
        ]
        result.notifications = write_event_notifications(
            connection, news, now, snapshot_batch, audience
        )
        if meanwhile is not None:
            meanwhile()
    for stored in result.stored:
        asserted = stored.event.person.protection
        if asserted is not None:
            apply_feed_protection(
                connection,
                stored.person_id,
                asserted,
                source=source,
                as_of=stored.event.occurred_at,
                now=now,
                batch_id=batch_id,
            )
    result.errors.sort(key=lambda item: item[0])
    return result


_EVENT_COLUMNS = (
    "event_id",
    "person_id",
    "kind",
    "facility_id",
    "occurred_at",
    "sequence",
    "received_at",
    "details",
    "content_hash",
    "origin",
    "batch_id",
)


def _event_pks(driver: Driver, event_ids: Sequence[str]) -> dict[str, int]:
    return {
        event_id: int(pk)
        for event_id, pk in driver.rows(
            "SELECT event_id, id FROM custody_events WHERE event_id = ANY(?::text[])",
            [driver.keys(event_ids)],
        )
    }


def _stored_hashes(driver: Driver, event_ids: Sequence[str]) -> dict[str, str]:
    """Each stored event's content hash by event id; `_RETRACTED` for a retracted one."""
    return dict(
        driver.rows(
            "SELECT event_id, CASE WHEN retracted_at IS NOT NULL THEN 'retracted' "
            "ELSE content_hash END FROM custody_events WHERE event_id = ANY(?::text[])",
            [driver.keys(sorted(set(event_ids)))],
        )
    )


def _current_statuses(driver: Driver, person_ids: Sequence[int]) -> dict[int, CustodyStatus]:
    """Each of these people's status as stored, by person id (none for a person with none)."""
    current: dict[int, CustodyStatus] = {}
    if not person_ids:
        return current
    found = driver.rows(
        "SELECT s.person_id, s.state, f.code, s.occurred_at, s.sequence, s.event_id "
        "FROM custody_status s LEFT JOIN facilities f ON f.id = s.facility_id "
        "WHERE s.person_id = ANY(?::bigint[])",
        [driver.keys(person_ids)],
    )
    for person_id, state, code, occurred, sequence, event_id in found:
        since = driver.moment(occurred)
        assert since is not None
        current[person_id] = CustodyStatus(
            CustodyState(state), code, since, event_id, (since, sequence, event_id)
        )
    return current


def _update_status(
    connection: Connection,
    stored: Sequence[StoredEvent],
    current: dict[int, CustodyStatus],
    facility_map: dict[str, int],
    written: dict[str, Any],
    now: datetime,
    snapshot_batch: int | None = None,
) -> set[str]:
    """Advance each person's status by their new events, from `current` (their statuses
    as stored, `_current_statuses`; advanced in place); returns the ids of the events
    that advanced a status when they arrived. `written`: each stored event's time, as its
    row holds it."""
    driver = Driver(connection)
    moving = [s for s in stored if s.event.kind != EventKind.HEARING_SCHEDULED]
    pk_of: dict[str, int] = {}
    changed: set[int] = set()
    advanced: set[str] = set()
    for s in moving:
        e = s.event
        before = current.get(s.person_id)
        after = advance(
            before, StatusEvent(e.event_id, e.kind, e.occurred_at, e.sequence, e.facility_code)
        )
        if after is not before and after is not None:
            current[s.person_id] = after
            pk_of[e.event_id] = s.pk
            changed.add(s.person_id)
            advanced.add(e.event_id)
    if snapshot_batch is not None and changed:
        keep_prior_status(connection, snapshot_batch, sorted(changed))
    statuses = []
    updated = driver.when(now)
    for person_id in sorted(changed):
        status = current[person_id]
        # Set by one of these events, so since its time, already written.
        since, left = written[status.event_id], status.left_custody_at
        statuses.append(
            (
                person_id,
                status.state.value,
                facility_map.get(status.facility_code or ""),
                pk_of[status.event_id],
                status.event_id,
                since,
                status.order_key[1],
                since if left == status.since else driver.when(left),
                updated,
            )
        )
    driver.upsert(custody_status, "person_id", _STATUS_COLUMNS, statuses)
    return advanced


_STATUS_COLUMNS = (
    "person_id",
    "state",
    "facility_id",
    "event_pk",
    "event_id",
    "occurred_at",
    "sequence",
    "left_custody_at",
    "updated_at",
)
