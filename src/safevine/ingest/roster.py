"""Applying a roster snapshot: read it, check it is not stale, derive events, record them.

The snapshot is read in chunks, and each chunk's people are looked up where they are now.
A row that lists someone in custody at the facility that lists them changes nothing: it
is only counted (a national sweep is almost all such rows). Every other row is staged, and
events are derived from the staged rows. What the snapshot says of each known person is
kept as a few bits in one byte per person id, so finding who left custody needs no staged
row for the people who stayed, and memory does not grow with the snapshot.

A rejected row never causes a false release: if its A-number can be read, that person
counts as listed; if not, departures are withheld for its facility (or for every facility
in the snapshot when the facility cannot be read either), and the summary says so.
"""

import tempfile
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Literal

from sqlalchemy import Connection, Engine, select

from safevine.domain.batch_thresholds import Thresholds, shrank, too_many_leaving
from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.names import PersonName
from safevine.ingest.batch_run import CHUNK, begin, finish, keep_rejects, now
from safevine.ingest.roster_csv import RosterChunk, RosterRows, read_roster_csv
from safevine.ingest.roster_diff import (
    arrival,
    departure,
    fingerprint,
    is_legacy_fingerprint,
)
from safevine.ingest.summary import IngestSummary
from safevine.store.records import rosters
from safevine.store.records.batches import Reject
from safevine.store.records.events import record_events
from safevine.store.records.facilities import facility_ids
from safevine.store.records.holds import discard, hold_batch, open_holds_for_facilities
from safevine.store.schema import facilities

Scope = Literal["listed", "all"]
# Rows read a transaction: staging is thrown away whole if the run stops, so larger
# transactions lose nothing.
STAGE_CHUNK = 10_000
# Facilities whose absentees are read in one statement.
DEPARTURE_FACILITIES = 100

# What the snapshot says of a known person: bits of `_Staging.marks`, by person id.
_ACCEPTED = 1  # an accepted row lists them; another accepted row is a repeat
_LISTED = 2  # a row, accepted or rejected, lists them: they do not leave custody
_HERE = 4  # a row lists them where they are in custody (counted in `here`, not staged)
_UNSURE = 8  # a held roster batch changed them: resolving it may move them, so stage them
# Room for people created while a snapshot is read.
_MARKS_SPARE = 1024


class StaleSnapshotError(Exception):
    """The snapshot is older than one already applied, or contradicts one of the same time."""


class _Unstaged:
    """The person ids and lines of accepted rows that were not staged, spilled to a
    temporary file: read back only to name the first line of a repeated A-number."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None

    def add(self, persons: "array[int]", lines: "array[int]") -> None:
        if not persons:
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        array("q", [len(persons)]).tofile(self._file)
        persons.tofile(self._file)
        lines.tofile(self._file)

    def first_lines(self, wanted: set[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        if self._file is None or not wanted:
            return found
        self._file.seek(0)
        while len(found) < len(wanted):
            count = array("q")
            try:
                count.fromfile(self._file, 1)
            except EOFError:
                break
            persons, lines = array("q"), array("q")
            persons.fromfile(self._file, count[0])
            lines.fromfile(self._file, count[0])
            for person_id, line in zip(persons, lines, strict=True):
                if person_id in wanted and person_id not in found:
                    found[person_id] = line
        self._file.seek(0, 2)
        return found

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


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
    # Per facility: [accepted rows (each A-number once), the sum of their A-numbers, the
    # sum of their squares], its fingerprint; and the people found in custody there whom
    # the snapshot lists there (they are not staged).
    tally: dict[int, list[int]] = field(default_factory=dict)
    here: dict[int, int] = field(default_factory=dict)
    marks: bytearray = field(default_factory=bytearray)
    # Accepted rows of known people already listed: (line, A-number, person id).
    repeats: list[tuple[int, str, int]] = field(default_factory=list)
    unstaged: _Unstaged = field(default_factory=_Unstaged)

    def listed(self, facility_id: int) -> int:
        counts = self.tally.get(facility_id)
        return counts[0] if counts else 0


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
    chunks = read_roster_csv(lines, source, STAGE_CHUNK)
    summary = begin(engine, "roster", source)
    staging = _Staging(taken_at=snapshot_at)
    assert summary.batch_id is not None
    batch_id = summary.batch_id
    try:
        with engine.connect() as connection:
            _start_marks(connection, staging)
        for chunk in chunks:
            with engine.begin() as connection:
                _stage_chunk(connection, summary, staging, chunk)
        with engine.begin() as connection:
            _reject_repeats(connection, summary, staging, batch_id)
            in_scope = _scope(connection, staging, scope, declared)
            to_apply = _fresh(connection, summary, staging, in_scope)
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
        staging.unstaged.close()
        with engine.begin() as connection:
            rosters.clear_staging(connection, batch_id)
    return finish(engine, summary)


def _start_marks(connection: Connection, staging: _Staging) -> None:
    """A byte per person id, and the people a held roster batch changed marked unsure."""
    staging.marks = bytearray(rosters.last_person_id(connection) + 1 + _MARKS_SPARE)
    if not rosters.any_roster_held(connection):
        return
    marks = staging.marks
    for person_id in rosters.held_persons(connection):
        _make_room(staging, person_id)
        marks[person_id] |= _UNSURE


def _make_room(staging: _Staging, person_id: int) -> None:
    if person_id >= len(staging.marks):
        staging.marks.extend(bytes(person_id + 1 - len(staging.marks) + _MARKS_SPARE))


def _stage_chunk(
    connection: Connection, summary: IngestSummary, staging: _Staging, chunk: RosterChunk
) -> None:
    summary.total += chunk.total
    assert summary.batch_id is not None
    batch_id = summary.batch_id
    rows = chunk.rows
    code_of = rows.facility_codes
    codes = set(code_of.values())
    codes.update(r.facility_code for r in chunk.rejects if r.facility_code)
    unseen = codes - staging.facilities.keys() - staging.unknown
    if unseen:
        found = facility_ids(connection, unseen)
        staging.facilities.update(found)
        staging.unknown.update(unseen - found.keys())
    known = staging.facilities
    rejects: list[Reject] = []
    # Rejected rows whose A-number can be read: (line, facility id or None, A-number).
    salvaged: list[tuple[int, int | None, str]] = []
    for r in chunk.rejects:
        rejects.append(Reject(r.line, r.field, r.reason, r.raw))
        facility_id = known.get(r.facility_code or "")
        if r.a_number is not None:
            salvaged.append((r.line, facility_id, r.a_number))
        elif facility_id is not None:
            staging.withheld.add(facility_id)
        else:
            staging.withhold_all = True
    if staging.taken_at is None and rows.lines:
        staging.taken_at = rows.times[rows.stamps[0]]
    # Each row's facility id, or None for a row to reject (an unknown facility, or a
    # snapshot time other than the snapshot's).
    facility_of = {raw: known.get(code) for raw, code in code_of.items()}
    wrong_times = {raw for raw, taken_at in rows.times.items() if taken_at != staging.taken_at}
    at_facility = [facility_of[raw] for raw in rows.codes]
    if wrong_times or None in facility_of.values():
        for i, raw in enumerate(rows.codes):
            if rows.stamps[i] in wrong_times:
                reason = "differs from the rest of this snapshot; one file holds one snapshot"
                rejects.append(Reject(rows.lines[i], "snapshot_at", reason, rows.raws[i]))
                salvaged.append((rows.lines[i], at_facility[i], rows.a_numbers[i]))
                at_facility[i] = None
            elif at_facility[i] is None:
                reason = (
                    f"{code_of[raw]!r} is not a known facility; "
                    "load it with `safevine ingest facilities` first"
                )
                rejects.append(Reject(rows.lines[i], "facility_code", reason, rows.raws[i]))
                salvaged.append((rows.lines[i], None, rows.a_numbers[i]))
    places = rosters.placements(connection, rows.a_numbers + [a for _, _, a in salvaged])
    staged = _classify(staging, batch_id, rows, at_facility, places)
    summary.applied += len(rows) - at_facility.count(None) - staged.repeats
    for line, facility_id, a_number in salvaged:
        place = places.get(a_number)
        if place is not None:
            _make_room(staging, place[0])
        marks = staging.marks
        if place is not None and not marks[place[0]] & _UNSURE:
            person_id, at = place
            mark = marks[person_id] | _LISTED
            if at is not None and at == facility_id and not mark & _HERE:
                staging.here[at] = staging.here.get(at, 0) + 1
                mark |= _HERE
            marks[person_id] = mark
        else:
            staged.rows.append((batch_id, line, facility_id, a_number, 1, None, None, None, None))
    rosters.stage(connection, staged.rows)
    staging.unstaged.add(staged.kept_persons, staged.kept_lines)
    rejects.sort(key=lambda r: r.line)
    keep_rejects(connection, summary, rejects)


@dataclass
class _Classified:
    rows: list[rosters.StagedRow] = field(default_factory=list)
    # Accepted rows not staged: their person ids and lines.
    kept_persons: "array[int]" = field(default_factory=lambda: array("q"))
    kept_lines: "array[int]" = field(default_factory=lambda: array("q"))
    repeats: int = 0


def _classify(
    staging: _Staging,
    batch_id: int,
    rows: RosterRows,
    at_facility: list[int | None],
    places: dict[str, tuple[int, int | None]],
) -> _Classified:
    """Mark, count and fingerprint each accepted row, and pick those to stage: everyone
    but people in custody at the facility that lists them."""
    out = _Classified()
    marks, tally, here = staging.marks, staging.tally, staging.here
    size = len(marks)
    for i, (facility_id, a_number) in enumerate(zip(at_facility, rows.a_numbers, strict=True)):
        if facility_id is None:
            continue
        place = places.get(a_number)
        if place is not None:
            person_id, at = place
            if person_id >= size:
                _make_room(staging, person_id)
                size = len(marks)
            mark = marks[person_id]
            if mark & _ACCEPTED:
                staging.repeats.append((rows.lines[i], a_number, person_id))
                out.repeats += 1
                continue
            if at == facility_id and not mark & _UNSURE:
                # In custody where the snapshot lists them: nothing to derive.
                if not mark & _HERE:
                    here[facility_id] = here.get(facility_id, 0) + 1
                marks[person_id] = mark | (_ACCEPTED | _LISTED | _HERE)
                out.kept_persons.append(person_id)
                out.kept_lines.append(rows.lines[i])
            else:
                marks[person_id] = mark | (_ACCEPTED | _LISTED)
                place = None
        if place is None:
            given, family, born, country = rows.person(i)
            out.rows.append(
                (batch_id, rows.lines[i], facility_id, a_number, 0, given, family, born, country)
            )
        # Count and power sums of the A-numbers, the facility's fingerprint.
        number = int(a_number)
        counts = tally.get(facility_id)
        if counts is None:
            counts = tally[facility_id] = [0, 0, 0]
        counts[0] += 1
        counts[1] += number
        counts[2] += number * number
    return out


def _reject_repeats(
    connection: Connection, summary: IngestSummary, staging: _Staging, batch_id: int
) -> None:
    """Every accepted row after the first for an A-number is rejected: repeats of people
    not yet known were staged (and are dropped now), those of known people were caught
    as they were read."""
    repeats: list[tuple[int, int | None]] = []
    for line, first, facility_id, a_number in rosters.drop_repeats(connection, batch_id):
        number = int(a_number)
        counts = staging.tally[facility_id]
        counts[0] -= 1
        counts[1] -= number
        counts[2] -= number * number
        summary.applied -= 1
        repeats.append((line, first))
    if staging.repeats:
        firsts = rosters.first_lines(connection, batch_id, [a for _, a, _ in staging.repeats])
        missing = {p for _, a, p in staging.repeats if a not in firsts}
        by_person = staging.unstaged.first_lines(missing)
        for line, a_number, person_id in staging.repeats:
            repeats.append((line, firsts.get(a_number, by_person.get(person_id))))
    repeats.sort()
    keep_rejects(
        connection,
        summary,
        [
            Reject(
                line,
                "a_number",
                f"is listed twice in this snapshot (first on line {first})"
                if first is not None
                else "is listed twice in this snapshot",
                "",
            )
            for line, first in repeats
        ],
    )


def _scope(
    connection: Connection, staging: _Staging, scope: Scope, declared: Sequence[str]
) -> dict[int, str]:
    if scope == "all":
        return {
            int(i): c for i, c in connection.execute(select(facilities.c.id, facilities.c.code))
        }
    codes = {i: c for c, i in staging.facilities.items()}
    found = {f: codes[f] for f, (n, _, _) in staging.tally.items() if n > 0}
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
    apply: dict[int, tuple[str, str]] = {}
    already = 0
    for facility_id, code in sorted(in_scope.items(), key=lambda item: item[1]):
        listed, total, squares = staging.tally.get(facility_id, (0, 0, 0))
        digest = fingerprint(listed, total, squares)
        previous = last.get(facility_id)
        if previous is not None and staging.taken_at < previous[0]:
            raise StaleSnapshotError(
                f"snapshot of {code} at {staging.taken_at.isoformat()} is older than the one "
                f"applied for {previous[0].isoformat()}; nothing was changed"
            )
        if previous is not None and staging.taken_at == previous[0]:
            if is_legacy_fingerprint(previous[1]):
                raise StaleSnapshotError(
                    f"a snapshot of {code} for {staging.taken_at.isoformat()} was already "
                    "applied by an earlier version, which fingerprinted it differently, so "
                    "this one cannot be told apart from it; nothing was changed"
                )
            if previous[1] != digest:
                raise StaleSnapshotError(
                    f"a different snapshot of {code} for {staging.taken_at.isoformat()} was "
                    "already applied; nothing was changed"
                )
            summary.notes.append(f"{code}: this snapshot was already applied")
            already += listed
            continue
        apply[facility_id] = (code, digest)
    summary.duplicates += already
    summary.applied -= already
    return apply


def _resolve_earlier_holds(
    connection: Connection, summary: IngestSummary, apply: dict[int, tuple[str, str]]
) -> None:
    """A newer snapshot of a facility settles an older one held for review: the held one's
    changes are reverted (no alert about them ever goes out), and this one is judged
    against the state from before it."""
    if not apply or not rosters.any_roster_held(connection):
        return
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
    # Those in custody there whom the snapshot lists there stay: the ones found so as it
    # was read, and the ones staged (people a resolved hold has just moved back).
    staged_here = rosters.staged_in_custody_counts(connection, batch_id, counted)
    for facility_id, (code, _) in sorted(apply.items(), key=lambda item: item[1][0]):
        listed = staging.listed(facility_id)
        previous = last.get(facility_id)
        if previous is not None and shrank(listed, previous[2], thresholds):
            return (
                f"the snapshot of {code} lists {listed} people, under "
                f"{thresholds.shrink_share:.0%} of the {previous[2]} listed last time"
            )
        if staging.withhold_all or facility_id in staging.withheld:
            continue
        population = populations.get(facility_id, 0)
        staying = staging.here.get(facility_id, 0) + staged_here.get(facility_id, 0)
        leaving = max(0, population - staying)
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
            [(f, digest, staging.listed(f)) for f, (_, digest) in ordered],
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
    DEPARTURE_FACILITIES facilities a read and CHUNK events a transaction.

    Those in custody are read as ids and checked against the marks; only the few not
    marked listed are read in full, and of those, anyone a staged row names (people
    booked by this snapshot, and those staged rather than marked) stays."""
    taken_at = staging.taken_at
    assert taken_at is not None
    order = sorted(codes, key=codes.__getitem__)
    marks, size = staging.marks, len(staging.marks)
    events: list[CustodyEventInput] = []
    for start in range(0, len(order), DEPARTURE_FACILITIES):
        part = order[start : start + DEPARTURE_FACILITIES]
        rank = {f: n for n, f in enumerate(part)}
        with engine.begin() as connection:
            unmarked = [
                p
                for p in rosters.people_in_custody(connection, part)
                if p >= size or not marks[p] & _LISTED
            ]
            gone = rosters.absentees(connection, batch_id, part, unmarked) if unmarked else []
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
