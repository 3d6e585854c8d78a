"""Applying a roster snapshot: read it, check it is not stale, derive events, record them.

The snapshot is read in chunks, and each chunk's people are looked up where they are now,
with what is on record of them. A row that lists someone in custody at the facility that
lists them derives no event: it is only counted (a national sweep is almost all such
rows), and what it tells that the record lacks is merged there and then, as an event's
facts would be (a contradiction rejects the row). Every other row is staged, and events
are derived from the staged rows. What the snapshot says of each known person is kept as
a few bits in one byte per person id, so finding who left custody needs no staged row for
the people who stayed, and memory does not grow with the snapshot.

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
from safevine.domain.errors import FieldError
from safevine.domain.names import PersonName
from safevine.ingest.batch_run import CHUNK, begin, finish, keep_rejects, now, stopped
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
from safevine.store.records.persons import resolve_persons
from safevine.store.records.rosters import ACCEPTED, REJECTED
from safevine.store.records.rosters import FACTS_ONLY as FACTS
from safevine.store.schema import facilities

Scope = Literal["listed", "all"]
# Rows read a transaction: staging is thrown away whole if the run stops, so larger
# transactions lose nothing.
STAGE_CHUNK = 10_000
# People not listed whose status is read at a time (whole facilities each time).
DEPARTURE_PEOPLE = 10_000
# Facilities beyond which finding who left may read everyone in custody (see
# rosters.people_in_custody), passing over the other facilities.
WHOLE_TABLE_FACILITIES = 300

# What the snapshot says of a known person: bits of `_Staging.marks`, by person id.
_ACCEPTED = 1  # an accepted row lists them; another accepted row is a repeat
_LISTED = 2  # a row, accepted or rejected, lists them: they do not leave custody
_HERE = 4  # a row lists them where they are in custody (counted in `here`, not staged)
_UNSURE = 8  # a held roster batch changed them: resolving it may move them, so stage them
# Room for people created while a snapshot is read.
_MARKS_SPARE = 1024


class StaleSnapshotError(Exception):
    """The snapshot is older than one already applied, or contradicts one of the same time."""


class _Accepted:
    """The lines and A-numbers of every accepted row, spilled to a temporary file a chunk
    at a time (17 bytes a row, written at C speed): read back only to name the first line
    of an A-number listed twice, since most rows are not staged."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None

    def add(self, lines: list[int], a_numbers: list[str]) -> None:
        if not lines:
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        array("q", [len(lines)]).tofile(self._file)
        array("q", lines).tofile(self._file)
        # Canonical A-numbers are nine ASCII digits each.
        self._file.write("".join(a_numbers).encode("ascii"))

    def first_lines(self, wanted: set[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        if self._file is None or not wanted:
            return found
        self._file.seek(0)
        missing = set(wanted)
        while missing:
            count = array("q")
            try:
                count.fromfile(self._file, 1)
            except EOFError:
                break
            lines = array("q")
            lines.fromfile(self._file, count[0])
            blob = self._file.read(9 * count[0]).decode("ascii")
            numbers = [blob[i : i + 9] for i in range(0, len(blob), 9)]
            for a_number in missing.intersection(numbers):
                found[a_number] = lines[numbers.index(a_number)]
            missing.difference_update(found)
        self._file.seek(0, 2)
        return found

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


# Per facility, one integer sums up its accepted rows (each A-number once): the count in
# bits 0-31, how many of them were found in custody there (not staged) in bits 32-63, the
# sum of the A-numbers from bit 64 and the sum of their squares from bit 128 (a national
# roster never fills a field: 2**32 rows, 2**64 for sums of nine-digit numbers). One
# addition a row; the last three make the facility's fingerprint.
_ROW = 1
_KEPT_ROW = 1 + (1 << 32)
_FIELD = (1 << 32) - 1
_SUM = (1 << 64) - 1


def _row_term(a_number: str, kept: bool) -> int:
    number = int(a_number)
    return (_KEPT_ROW if kept else _ROW) + (number << 64) + (number * number << 128)


def _tally_fields(total: int) -> tuple[int, int, int, int]:
    """(rows, rows kept, sum, sum of squares) of a facility's tally."""
    return total & _FIELD, (total >> 32) & _FIELD, (total >> 64) & _SUM, total >> 128


@dataclass
class _Staging:
    taken_at: datetime | None = None
    # A roster batch was held as the snapshot was read: people it moved are staged as
    # unsure, and may turn out to be where a row lists them once it is resolved.
    unsure: bool = False
    withheld: set[int] = field(default_factory=set)
    withhold_all: bool = False
    # Derive as a batch under judgement: notifications held, prior statuses kept public.
    provisional: bool = False
    # Facility ids by code, looked up once a snapshot, and the codes that are not known.
    facilities: dict[str, int] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    # Per facility: its tally (see _row_term), and a correction to the people found in
    # custody there whom it lists: + those only a rejected row lists there, - those both
    # a rejected and an accepted row list there.
    tally: dict[int, int] = field(default_factory=dict)
    here: dict[int, int] = field(default_factory=dict)
    marks: bytearray = field(default_factory=bytearray)
    # Accepted rows of known people already listed: (line, A-number).
    repeats: list[tuple[int, str]] = field(default_factory=list)
    accepted: _Accepted = field(default_factory=_Accepted)

    def listed(self, facility_id: int) -> int:
        return _tally_fields(self.tally.get(facility_id, 0))[0]

    def staying(self, facility_id: int) -> int:
        """The people found in custody at this facility whom the snapshot lists there."""
        kept = _tally_fields(self.tally.get(facility_id, 0))[1]
        return kept + self.here.get(facility_id, 0)


def ingest_roster(
    engine: Engine,
    lines: Iterable[bytes],
    *,
    source: str,
    scope: Scope = "listed",
    declared: Sequence[str] = (),
    snapshot_at: datetime | None = None,
    thresholds: Thresholds | None = None,
    actor: str | None = None,
) -> IngestSummary:
    """Apply a snapshot of who is in custody where.

    `scope="listed"` covers the facilities named in the file plus `declared` ones (so an
    emptied facility can be stated); `"all"` covers every facility. Raises
    UnreadableSourceError before any change for an unusable file; a stale snapshot is refused
    with status `refused` and changes nothing.
    """
    chunks = read_roster_csv(lines, source, STAGE_CHUNK)
    summary = begin(engine, "roster", source, actor)
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
            # Rows listing someone again are rejects whatever becomes of the snapshot,
            # as every other bad row is: kept before it is judged (a stale one is
            # refused by rolling back what is judged).
            _reject_repeats(connection, summary, staging, batch_id)
        with engine.begin() as connection:
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
    except BaseException as error:
        stopped(summary, error)
        raise
    finally:
        chunks.close()
        staging.accepted.close()
        try:
            with engine.begin() as connection:
                rosters.clear_staging(connection, batch_id)
        finally:
            finish(engine, summary)
    return summary


def _start_marks(connection: Connection, staging: _Staging) -> None:
    """A byte per person id, and the people a held roster batch changed marked unsure."""
    staging.marks = bytearray(rosters.last_person_id(connection) + 1 + _MARKS_SPARE)
    if not rosters.any_roster_held(connection):
        return
    staging.unsure = True
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
    at_facility = list(map(facility_of.__getitem__, rows.codes))
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
    staged, repeats = _classify(staging, batch_id, rows, at_facility, places)
    summary.applied += len(rows) - at_facility.count(None) - repeats
    marks = staging.marks
    for line, facility_id, a_number in salvaged:
        place = places.get(a_number)
        if place is not None:
            _make_room(staging, place[1])
        if place is not None and not marks[place[1]] & _UNSURE:
            person_id, at = place[1], place[2]
            mark = marks[person_id] | _LISTED
            if at is not None and at == facility_id and not mark & _HERE:
                staging.here[at] = staging.here.get(at, 0) + 1
                mark |= _HERE
            marks[person_id] = mark
        else:
            staged.append((batch_id, line, facility_id, a_number, REJECTED, None, None, None, None))
    rosters.stage(connection, staged)
    if None in at_facility:
        kept = [i for i, f in enumerate(at_facility) if f is not None]
        staging.accepted.add([rows.lines[i] for i in kept], [rows.a_numbers[i] for i in kept])
    else:
        staging.accepted.add(rows.lines, rows.a_numbers)
    rejects.sort(key=lambda r: r.line)
    keep_rejects(connection, summary, rejects)


def _classify(
    staging: _Staging,
    batch_id: int,
    rows: RosterRows,
    at_facility: list[int | None],
    places: dict[str, rosters.Placed],
) -> tuple[list[rosters.StagedRow], int]:
    """Mark and tally each accepted row, and the rows to stage: everyone but people in
    custody at the facility that lists them, who are staged for their facts only when the
    row tells something their record lacks or contradicts (see _tells). Returns those and
    how many rows repeat."""
    staged: list[rosters.StagedRow] = []
    repeats = 0
    marks, tally, here = staging.marks, staging.tally, staging.here
    size = len(marks)
    found = map(places.get, rows.a_numbers)
    for i, (facility_id, a_number, place, given, family, born, country) in enumerate(
        zip(
            at_facility,
            rows.a_numbers,
            found,
            rows.given_names,
            rows.family_names,
            rows.births,
            rows.countries,
            strict=True,
        )
    ):
        if facility_id is None:
            continue
        if place is not None:
            person_id, at = place[1], place[2]
            if person_id >= size:
                _make_room(staging, person_id)
                size = len(marks)
            mark = marks[person_id]
            if mark & _ACCEPTED:
                staging.repeats.append((rows.lines[i], a_number))
                repeats += 1
                continue
            if at == facility_id and not mark & _UNSURE:
                # In custody where the snapshot lists them: nothing to derive, only kept
                # count of.
                if mark & _HERE:
                    here[facility_id] = here.get(facility_id, 0) - 1
                marks[person_id] = mark | (_ACCEPTED | _LISTED | _HERE)
                tally[facility_id] = tally.get(facility_id, 0) + _row_term(a_number, True)
                # given .. country are the row's values as read ("" when blank): nearly
                # always the record's as stored, so only a difference is looked into.
                if (
                    given != place[3] or family != place[4] or born != place[5]
                    or country != place[6]
                ) and _tells(rows, i, place):  # fmt: skip
                    line = rows.lines[i]
                    told = rows.person(i)
                    staged.append((batch_id, line, facility_id, a_number, FACTS, *told))
                continue
            marks[person_id] = mark | (_ACCEPTED | _LISTED)
        staged.append((batch_id, rows.lines[i], facility_id, a_number, ACCEPTED, *rows.person(i)))
        tally[facility_id] = tally.get(facility_id, 0) + _row_term(a_number, False)
    return staged, repeats


def _tells(rows: RosterRows, i: int, place: rosters.Placed) -> bool:
    """Whether row i says what the record of its person does not: a birth fact it lacks or
    contradicts, or a name it does not hold as its primary one (the merge keeps another
    spelling as an alias, once). What a row leaves blank says nothing."""
    given, family, born, country = rows.person(i)
    if born is not None and born.isoformat() != place[5]:
        return True
    if country is not None and country != place[6]:
        return True
    if given is None or family is None:
        return False
    if place[3] is None or place[4] is None:
        return True
    return PersonName(given, family).key != PersonName(place[3], place[4]).key


def _told(entry: rosters.StagedEntry | rosters.FactsEntry) -> PersonFacts:
    """What a staged row says of its person (a name only when both parts are given)."""
    given, family = entry.given_name, entry.family_name
    name = PersonName(given, family) if given and family else None
    return PersonFacts(entry.a_number, name, (), entry.date_of_birth, entry.country_of_birth)


def _merge_facts(
    engine: Engine,
    summary: IngestSummary,
    staging: _Staging,
    batch_id: int,
    apply: dict[int, tuple[str, str]],
) -> None:
    """Merge what the rows of people who stay tell into their records, at the facilities
    applied (a refused snapshot changes nothing), as an event's facts are merged: a
    missing fact is filled in, another spelling of the name becomes an alias, and a date
    or country of birth that contradicts the record rejects the row. A rejected row
    still lists its person where they are, so it releases no one. Rows staged for the
    diff whose people turn out to be where they are listed (see _Staging.unsure) derive
    no event to carry their facts, so they are merged here too."""
    with engine.connect() as reader:
        for entries in rosters.facts_entries(reader, batch_id, CHUNK, settled=staging.unsure):
            entries = [e for e in entries if e.facility_id in apply]
            facts = [_told(e) for e in entries]
            if not facts:
                continue
            with engine.begin() as connection:
                outcome = resolve_persons(connection, facts, now())
                conflicts = [
                    Reject(e.line, found.field.removeprefix("person."), found.reason, "")
                    for e, found in zip(entries, outcome, strict=True)
                    if isinstance(found, FieldError)
                ]
                keep_rejects(connection, summary, conflicts)
            summary.applied -= len(conflicts)


def _reject_repeats(
    connection: Connection, summary: IngestSummary, staging: _Staging, batch_id: int
) -> None:
    """Every accepted row after the first for an A-number is rejected: repeats of people
    not yet known were staged (and are dropped now), those of known people were caught
    as they were read."""
    repeats: list[tuple[int, int | None]] = []
    for line, first, facility_id, a_number in rosters.drop_repeats(connection, batch_id):
        staging.tally[facility_id] -= _row_term(a_number, False)
        summary.applied -= 1
        repeats.append((line, first))
    if staging.repeats:
        firsts = staging.accepted.first_lines({a for _, a in staging.repeats})
        repeats.extend((line, firsts.get(a_number)) for line, a_number in staging.repeats)
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
    found = {f: codes[f] for f in staging.tally if staging.listed(f) > 0}
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
        listed, _, total, squares = _tally_fields(staging.tally.get(facility_id, 0))
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
        staying = staging.staying(facility_id) + staged_here.get(facility_id, 0)
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
    _merge_facts(engine, summary, staging, batch_id, apply)
    # Read in one streamed pass on its own connection; each part is recorded in its own
    # transaction on another.
    with engine.connect() as reader:
        for entries in rosters.staged_entries(reader, batch_id, CHUNK):
            events, lines = [], []
            for e in entries:
                if e.facility_code not in codes:
                    continue
                event = arrival(_told(e), e.facility_code, taken_at, e.placement)
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
    CHUNK events a transaction, by facility code and then A-number.

    Everyone in custody there is read once, as ids, and checked against the marks; only
    those not marked listed (a few, unless a facility emptied) are kept, as arrays of
    ids, and read in full DEPARTURE_PEOPLE at a time, facility by facility. Of those,
    anyone a staged row names (people booked by this snapshot, and people staged rather
    than marked) stays."""
    taken_at = staging.taken_at
    assert taken_at is not None
    marks = staging.marks
    unmarked: dict[int, array[int]] = {}
    many = len(codes) > WHOLE_TABLE_FACILITIES
    with engine.connect() as connection:
        for part in rosters.people_in_custody(connection, list(codes), 20_000, many=many):
            size = len(marks)
            for person_id, facility_id in part:
                if (person_id >= size or not marks[person_id] & _LISTED) and facility_id in codes:
                    unmarked.setdefault(facility_id, array("q")).append(person_id)
    events: list[CustodyEventInput] = []
    group: list[int] = []
    people: list[int] = []
    ordered = sorted(unmarked, key=codes.__getitem__)
    for n, facility_id in enumerate(ordered):
        group.append(facility_id)
        people.extend(unmarked.pop(facility_id))
        if len(people) < DEPARTURE_PEOPLE and n < len(ordered) - 1:
            continue
        rank = {f: i for i, f in enumerate(group)}
        with engine.begin() as connection:
            gone = rosters.absentees(connection, batch_id, group, people)
        gone.sort(key=lambda row: (rank[row[0]], row[1]))
        group, people = [], []
        for gone_from, a_number, since in gone:
            event = departure(a_number, codes[gone_from], taken_at, since)
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
