"""Applying a roster snapshot: stage it, check it is not stale, derive events, record them.

A rejected row never causes a false release: if its A-number can be read, that person
counts as listed; if not, departures are withheld for its facility (or for every facility
in the snapshot when the facility cannot be read either), and the summary says so.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, Engine, select

from safevine.domain.a_number import normalise_a_number
from safevine.domain.batch_thresholds import Thresholds, shrank, too_many_leaving
from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.errors import FieldError
from safevine.domain.names import PersonName
from safevine.ingest.batch_run import CHUNK, begin, chunks, finish, keep_rejects, now
from safevine.ingest.parsed import Parsed
from safevine.ingest.roster_csv import RosterEntry, parse_roster_csv
from safevine.ingest.roster_diff import arrival, departure
from safevine.ingest.summary import IngestSummary
from safevine.store.records import rosters
from safevine.store.records.batches import Reject
from safevine.store.records.events import record_events
from safevine.store.records.facilities import facility_ids
from safevine.store.records.holds import discard, hold_batch, open_holds_for_facilities
from safevine.store.schema import facilities

Scope = Literal["listed", "all"]
# Rows staged a transaction: staging is thrown away whole if the run stops, so larger
# transactions lose nothing.
STAGE_CHUNK = 10_000
# Facilities whose absentees are read in one statement.
DEPARTURE_FACILITIES = 100


class StaleSnapshotError(Exception):
    """The snapshot is older than one already applied, or contradicts one of the same time."""


@dataclass
class _Staging:
    taken_at: datetime | None = None
    withheld: set[int] = field(default_factory=set)
    withhold_all: bool = False
    # Derive as a batch under judgement: notifications held, prior statuses kept public.
    provisional: bool = False
    # Facility ids by code, looked up once a snapshot, and the codes that are not known.
    facilities: dict[str, int] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    # Accepted rows per facility to apply.
    listed: dict[int, int] = field(default_factory=dict)


def ingest_roster(
    engine: Engine,
    lines: Iterable[bytes],
    *,
    source: str,
    scope: Scope = "listed",
    declared: Sequence[str] = (),
    snapshot_at: datetime | None = None,
    thresholds: Thresholds | None = None,
) -> IngestSummary:
    """Apply a snapshot of who is in custody where.

    `scope="listed"` covers the facilities named in the file plus `declared` ones (so an
    emptied facility can be stated); `"all"` covers every facility. Raises
    UnreadableSourceError before any change for an unusable file; a stale snapshot is refused
    with status `refused` and changes nothing.
    """
    parsed = parse_roster_csv(lines, source)
    summary = begin(engine, "roster", source)
    staging = _Staging(taken_at=snapshot_at)
    assert summary.batch_id is not None
    batch_id = summary.batch_id
    try:
        for chunk in chunks(parsed, STAGE_CHUNK):
            with engine.begin() as connection:
                _stage_chunk(connection, summary, staging, chunk)
        with engine.begin() as connection:
            repeats = rosters.drop_repeats(connection, batch_id)
            keep_rejects(
                connection,
                summary,
                [
                    Reject(
                        line,
                        "a_number",
                        f"is listed twice in this snapshot (first on line {first})",
                        "",
                    )
                    for line, first in repeats
                ],
            )
            summary.applied -= len(repeats)
            in_scope = _scope(connection, batch_id, scope, declared)
            to_apply = _fresh(connection, summary, staging, batch_id, in_scope)
            _resolve_earlier_holds(connection, summary, to_apply)
            rule = _judge(
                connection, staging, batch_id, to_apply, thresholds or Thresholds.from_env()
            )
        staging.provisional = rule is not None
        if staging.taken_at is not None and to_apply:
            _derive(engine, summary, staging, batch_id, to_apply)
        if rule is not None:
            with engine.begin() as connection:
                summary.hold_id = hold_batch(connection, batch_id, rule, now())
            summary.status = "held"
            summary.notes.append(
                f"held for review (hold {summary.hold_id}): {rule}; "
                "no notification goes out until it is released"
            )
    except StaleSnapshotError as error:
        summary.status = "refused"
        summary.applied = 0
        summary.notes.append(str(error))
    finally:
        with engine.begin() as connection:
            rosters.clear_staging(connection, batch_id)
    return finish(engine, summary)


def _stage_chunk(
    connection: Connection,
    summary: IngestSummary,
    staging: _Staging,
    chunk: list[Parsed[RosterEntry]],
) -> None:
    summary.total += len(chunk)
    assert summary.batch_id is not None
    codes = {code for p in chunk if (code := _code(p))}
    unseen = codes - staging.facilities.keys() - staging.unknown
    if unseen:
        found = facility_ids(connection, unseen)
        staging.facilities.update(found)
        staging.unknown.update(unseen - found.keys())
    known = staging.facilities
    rows: list[rosters.StagedRow] = []
    rejects: list[Reject] = []
    for p in chunk:
        entry = p.value
        if entry is not None and staging.taken_at is None:
            staging.taken_at = entry.taken_at
        error: FieldError | None = None
        if entry is None:
            error = FieldError(p.field, p.reason)
        elif entry.taken_at != staging.taken_at:
            error = FieldError(
                "snapshot_at", "differs from the rest of this snapshot; one file holds one snapshot"
            )
        elif entry.facility_code not in known:
            error = FieldError(
                "facility_code",
                f"{entry.facility_code!r} is not a known facility; "
                "load it with `safevine ingest facilities` first",
            )
        if error is None and entry is not None:
            rows.append(_row(summary.batch_id, p.line, known[entry.facility_code], entry.person, 0))
            summary.applied += 1
            continue
        rejects.append(
            Reject(p.line, error.field if error else "", error.reason if error else "", p.raw)
        )
        facility_id = known.get(_code(p) or "")
        a_number = _a_number(p)
        if a_number is not None:
            rows.append(_row(summary.batch_id, p.line, facility_id, PersonFacts(a_number), 1))
        elif facility_id is not None:
            staging.withheld.add(facility_id)
        else:
            staging.withhold_all = True
    rosters.stage(connection, rows)
    keep_rejects(connection, summary, rejects)


def _code(p: Parsed[RosterEntry]) -> str | None:
    if p.value is not None:
        return p.value.facility_code
    code = p.record.get("facility_code")
    return code.strip().upper() if isinstance(code, str) and code.strip() else None


def _a_number(p: Parsed[RosterEntry]) -> str | None:
    if p.value is not None:
        return p.value.person.a_number
    try:
        return normalise_a_number(str(p.record.get("a_number") or ""))
    except FieldError:
        return None


def _row(
    batch_id: int, line: int, facility_id: int | None, person: PersonFacts, rejected: int
) -> rosters.StagedRow:
    name = person.name
    return (
        batch_id,
        line,
        facility_id,
        person.a_number,
        rejected,
        name.given if name else None,
        name.family if name else None,
        person.date_of_birth,
        person.country_of_birth,
    )


def _scope(
    connection: Connection, batch_id: int, scope: Scope, declared: Sequence[str]
) -> dict[int, str]:
    if scope == "all":
        return {
            int(i): c for i, c in connection.execute(select(facilities.c.id, facilities.c.code))
        }
    found = rosters.staged_facilities(connection, batch_id)
    named = facility_ids(connection, (c.upper() for c in declared))
    unknown = sorted({c.upper() for c in declared} - set(named))
    if unknown:
        raise StaleSnapshotError(f"declared facility code(s) {', '.join(unknown)} are not known")
    found.update({i: c for c, i in named.items()})
    return found


def _fresh(
    connection: Connection,
    summary: IngestSummary,
    staging: _Staging,
    batch_id: int,
    in_scope: dict[int, str],
) -> dict[int, tuple[str, str]]:
    """Facilities to apply, with their fingerprints; raises StaleSnapshot for a stale one."""
    if staging.taken_at is None:
        if in_scope:
            raise StaleSnapshotError(
                "the snapshot has no valid rows and no --snapshot-at to date it"
            )
        return {}
    last = rosters.last_snapshots(connection, list(in_scope))
    fingerprints = rosters.staged_fingerprints(connection, batch_id)
    apply: dict[int, tuple[str, str]] = {}
    already = 0
    for facility_id, code in sorted(in_scope.items(), key=lambda item: item[1]):
        digest, listed = fingerprints.get(facility_id, (rosters.EMPTY_FINGERPRINT, 0))
        previous = last.get(facility_id)
        if previous is not None and staging.taken_at < previous[0]:
            raise StaleSnapshotError(
                f"snapshot of {code} at {staging.taken_at.isoformat()} is older than the one "
                f"applied for {previous[0].isoformat()}; nothing was changed"
            )
        if previous is not None and staging.taken_at == previous[0]:
            if previous[1] != digest:
                raise StaleSnapshotError(
                    f"a different snapshot of {code} for {staging.taken_at.isoformat()} was "
                    "already applied; nothing was changed"
                )
            summary.notes.append(f"{code}: this snapshot was already applied")
            already += listed
            continue
        apply[facility_id] = (code, digest)
        staging.listed[facility_id] = listed
    summary.duplicates += already
    summary.applied -= already
    return apply


def _resolve_earlier_holds(
    connection: Connection, summary: IngestSummary, apply: dict[int, tuple[str, str]]
) -> None:
    """A newer snapshot of a facility settles an older one held for review: the held one's
    changes are reverted (no alert about them ever goes out), and this one is judged
    against the state from before it."""
    for hold_id in open_holds_for_facilities(connection, sorted(apply)):
        discard(
            connection,
            hold_id,
            actor="safevine",
            now=now(),
            state="resolved",
            note=f"resolved by roster batch {summary.batch_id}",
        )
        summary.notes.append(
            f"hold {hold_id} resolved by this snapshot: its changes were "
            "reverted and no alert about them was sent"
        )


def _judge(
    connection: Connection,
    staging: _Staging,
    batch_id: int,
    apply: dict[int, tuple[str, str]],
    thresholds: Thresholds,
) -> str | None:
    """The rule this snapshot trips before anything is derived from it, or None."""
    last = rosters.last_snapshots(connection, list(apply))
    counted = [f for f in apply if not (staging.withhold_all or f in staging.withheld)]
    populations = rosters.in_custody_counts(connection, counted)
    leaving_at = rosters.absentee_counts(connection, batch_id, counted)
    for facility_id, (code, _) in sorted(apply.items(), key=lambda item: item[1][0]):
        listed = staging.listed.get(facility_id, 0)
        previous = last.get(facility_id)
        if previous is not None and shrank(listed, previous[2], thresholds):
            return (
                f"the snapshot of {code} lists {listed} people, under "
                f"{thresholds.shrink_share:.0%} of the {previous[2]} listed last time"
            )
        if staging.withhold_all or facility_id in staging.withheld:
            continue
        population = populations.get(facility_id, 0)
        leaving = leaving_at.get(facility_id, 0)
        if too_many_leaving(leaving, population, thresholds):
            return (
                f"{leaving} of the {population} people in custody at {code} would leave "
                "custody or move in one snapshot"
            )
    return None


def _derive(
    engine: Engine,
    summary: IngestSummary,
    staging: _Staging,
    batch_id: int,
    apply: dict[int, tuple[str, str]],
) -> None:
    taken_at = staging.taken_at
    assert taken_at is not None
    codes = {code for code, _ in apply.values()}
    # Read in one streamed pass on its own connection; each part is recorded in its own
    # transaction on another.
    with engine.connect() as reader:
        for entries in rosters.staged_entries(reader, batch_id, CHUNK):
            events, lines = [], []
            for e in entries:
                if e.facility_code not in codes:
                    continue
                name = (
                    PersonName(e.given_name, e.family_name)
                    if e.given_name and e.family_name
                    else None
                )
                person = PersonFacts(e.a_number, name, (), e.date_of_birth, e.country_of_birth)
                event = arrival(person, e.facility_code, taken_at, e.placement)
                if event is not None:
                    events.append(event)
                    lines.append(e.line)
            if events:
                with engine.begin() as connection:
                    rejected = _record(
                        connection, summary, events, lines, batch_id, staging.provisional
                    )
                summary.applied -= rejected
    ordered = sorted(apply.items(), key=lambda item: item[1][0])
    departing = []
    for facility_id, (code, _) in ordered:
        if staging.withhold_all or facility_id in staging.withheld:
            summary.notes.append(
                f"{code}: departures withheld: rows without a readable A-number were rejected"
            )
        else:
            departing.append(facility_id)
    _departures(engine, summary, staging, batch_id, {f: apply[f][0] for f in departing})
    with engine.begin() as connection:
        rosters.record_snapshots(
            connection,
            [(f, digest, staging.listed.get(f, 0)) for f, (_, digest) in ordered],
            taken_at,
            batch_id,
            now(),
        )


def _departures(
    engine: Engine,
    summary: IngestSummary,
    staging: _Staging,
    batch_id: int,
    codes: dict[int, str],
) -> None:
    """Release everyone in custody at these facilities whom the snapshot does not list,
    DEPARTURE_FACILITIES facilities a read and CHUNK events a transaction."""
    taken_at = staging.taken_at
    assert taken_at is not None
    order = sorted(codes, key=codes.__getitem__)
    events: list[CustodyEventInput] = []
    for start in range(0, len(order), DEPARTURE_FACILITIES):
        part = order[start : start + DEPARTURE_FACILITIES]
        rank = {f: n for n, f in enumerate(part)}
        with engine.begin() as connection:
            gone = rosters.absentees_at(connection, batch_id, part)
        gone.sort(key=lambda row: (rank[row[0]], row[1]))
        for facility_id, a_number, since in gone:
            event = departure(a_number, codes[facility_id], taken_at, since)
            if event is not None:
                events.append(event)
            if len(events) >= CHUNK:
                _record_departures(engine, summary, staging, batch_id, events)
                events = []
    _record_departures(engine, summary, staging, batch_id, events)


def _record_departures(
    engine: Engine,
    summary: IngestSummary,
    staging: _Staging,
    batch_id: int,
    events: list[CustodyEventInput],
) -> None:
    if events:
        with engine.begin() as connection:
            _record(connection, summary, events, [0] * len(events), batch_id, staging.provisional)


def _record(
    connection: Connection,
    summary: IngestSummary,
    events: list[CustodyEventInput],
    lines: list[int],
    batch_id: int,
    provisional: bool,
) -> int:
    """Record derived events; returns how many were rejected (kept as rejects)."""
    if not events:
        return 0
    outcome = record_events(
        connection,
        events,
        origin="roster",
        now=now(),
        source=summary.source,
        batch_id=batch_id,
        provisional=provisional,
    )
    summary.derived_events += len(outcome.stored)
    keep_rejects(
        connection,
        summary,
        [
            Reject(lines[i], error.field.removeprefix("person."), error.reason, "")
            for i, error in outcome.errors
        ],
    )
    return len(outcome.errors)
