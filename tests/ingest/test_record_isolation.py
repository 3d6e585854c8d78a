"""One record can never fail a batch: hostile values in one record become a reject naming
its line and field, the rest of the batch is applied, and the batch ends `completed`.

Every test feeds real files (or the HTTP feed) through the real ingest, on SQLite and on
PostgreSQL, whose driver refuses what SQLite accepts (a NUL, an integer beyond 64 bits).
"""

import json
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, select, text

from safevine.ingest.batch_run import isolated
from safevine.ingest.events import ingest_events
from safevine.ingest.protections import ingest_protections
from safevine.ingest.roster import ingest_roster
from safevine.ingest.source import file_lines
from safevine.ingest.summary import IngestSummary
from safevine.store.schema import facilities, ingest_batches, ingest_rejects
from tests.builders import NOW, ROSTER_HEADER, csv_lines, days_ago, event, jsonl, load_facilities
from tests.builders import person as who
from tests.ingest.test_protections_feed import HEADER, protection_of

TODAY = NOW.date().isoformat()


def _batch(engine: Engine, batch_id: int | None) -> tuple[str, list[tuple[int, str, str]]]:
    with engine.connect() as connection:
        status = connection.execute(
            select(ingest_batches.c.status).where(ingest_batches.c.id == batch_id)
        ).scalar_one()
        rejects = connection.execute(
            select(ingest_rejects.c.line, ingest_rejects.c.field, ingest_rejects.c.raw)
            .where(ingest_rejects.c.batch_id == batch_id)
            .order_by(ingest_rejects.c.line)
        ).all()
    return status, [tuple(r) for r in rejects]  # type: ignore[misc]


def test_a_protection_list_with_a_row_at_the_edge_of_the_calendar_still_protects(
    engine: Engine,
) -> None:
    lines = csv_lines(
        HEADER,
        ["200000001", "protected", TODAY, "screening"],
        ["200000002", "protected", "0001-01-01T00:00:00+05:00", "screening"],
        ["200000003", "cleared", "9999-12-31T23:00:00-05:00", "screening"],
        ["200000004", "protected", TODAY, "screen\x00ing"],
        ["200000005", "protected", TODAY, "screening"],
    )
    summary = ingest_protections(engine, lines, source="list.csv")
    assert (summary.status, summary.applied, summary.rejected) == ("completed", 2, 3)
    assert [(r.line, r.field) for r in summary.rejects] == [
        (3, "as_of"),
        (4, "as_of"),
        (5, "source"),
    ]
    assert "is before 1900-01-01" in summary.rejects[0].reason
    for a_number in ("200000001", "200000005"):
        assert protection_of(engine, a_number) == "protected"
    # Fail closed: rows that say `protected` but cannot be read protect their person too;
    # the row that says `cleared` protects nobody.
    assert protection_of(engine, "200000002") == "protected"
    assert protection_of(engine, "200000004") == "protected"
    assert protection_of(engine, "200000003") is None
    status, rejects = _batch(engine, summary.batch_id)
    assert status == "completed"
    assert all("\x00" not in raw for _, _, raw in rejects)


HOSTILE_EVENTS = [
    # (what is wrong, the record's change to a good booking, the field named)
    ("a sequence of 1e400", {"sequence": "1e400"}, "sequence"),
    ("a sequence beyond 64 bits", {"sequence": 2**64}, "sequence"),
    ("a sequence beyond its column", {"sequence": 2**31}, "sequence"),
    ("a fractional sequence", {"sequence": 1.5}, "sequence"),
    ("an occurrence in year 1 east of UTC", {"occurred_at": "0001-01-01T00:00:00+05:00"},
     "occurred_at"),
    ("an occurrence in year 9999 west of UTC", {"occurred_at": "9999-12-31T23:00:00-05:00"},
     "occurred_at"),
    ("a NUL in a name", {"person": {"a_number": "300000009", "given_name": "A\x00na",
                                    "family_name": "Pérez"}}, "person.given_name"),
    ("a lone surrogate in a name", {"person": {"a_number": "300000010", "given_name": "\ud800",
                                              "family_name": "Pérez"}}, "person.given_name"),
    ("a NUL in the event id", {"event_id": "e\x00"}, "event_id"),
    # Sixty characters, but 120 as matched (ß is ss): too long for the key's column.
    ("a name longer than a name once folded", {"person": {"a_number": "300000011",
     "given_name": "ß" * 60, "family_name": "Pérez"}}, "person.given_name"),
]  # fmt: skip


def test_hostile_values_in_events_are_rejects_and_the_rest_is_applied(engine: Engine) -> None:
    load_facilities(engine, "F1")
    good = event("good-1", "booked", days_ago(1), who("300000001"))
    records: list[dict[str, object] | str] = [good]
    for n, (_, change, _) in enumerate(HOSTILE_EVENTS):
        record = event(f"bad-{n}", "booked", days_ago(1), who(f"30000002{n}"))
        # As JSON escapes (`\u0000`, `\ud800`): a lone surrogate has no UTF-8 form.
        records.append(json.dumps({**record, **change}))
    hearing = event("bad-h", "hearing_scheduled", days_ago(1), who("300000030"))
    hearing["details"] = {"court": "Eloy", "hearing_at": "9999-12-31T23:00:00-05:00"}
    records.append(hearing)
    # Raw JSON a parser cannot turn into values: a 5,000-digit number, deep nesting.
    records.append('{"event_id": "bad-digits", "sequence": ' + "9" * 5000 + "}")
    records.append("[" * 100_000 + "]" * 100_000)
    records.append(event("good-2", "booked", days_ago(1), who("300000002")))
    # JSON reads the number 1e400 as infinity.
    lines = [line.replace(b'"1e400"', b"1e400") for line in jsonl(*records)]
    summary = ingest_events(engine, lines, source="hostile.jsonl", fmt="jsonl")
    assert summary.status == "completed"
    assert (summary.applied, summary.duplicates) == (2, 0)
    assert summary.total == len(records) == summary.applied + summary.rejected
    fields = {r.line: r.field for r in summary.rejects}
    for n, (what, _, field) in enumerate(HOSTILE_EVENTS):
        assert fields[n + 2] == field, what
    last = len(records)
    assert fields[last - 3] == "details.hearing_at"
    assert fields[last - 2] == fields[last - 1] == "line"
    status, stored = _batch(engine, summary.batch_id)
    assert status == "completed" and len(stored) == summary.rejected
    assert all("\x00" not in raw and len(raw) <= 2000 for _, _, raw in stored)


def test_an_event_the_database_refuses_as_it_is_stored_is_a_reject(engine: Engine) -> None:
    """The statements below SQLAlchemy (`store.driver_sql`, pipelined on PostgreSQL) raise a
    refusal as SQLAlchemy's error of its kind, so it fails its record alone, not the batch
    (a constraint the parser cannot know stands in for any value the database refuses)."""
    load_facilities(engine, "F1")
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON custody_events "
                    "WHEN NEW.event_id = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "ALTER TABLE custody_events "
                    "ADD CONSTRAINT refuse_poison CHECK (event_id <> 'poison')"
                )
            )
    feed = jsonl(
        event("good-1", "booked", days_ago(1), who("300000101")),
        event("poison", "booked", days_ago(1), who("300000102")),
        event("good-2", "booked", days_ago(1), who("300000103")),
    )
    summary = ingest_events(engine, feed, source="refused.jsonl", fmt="jsonl")
    assert (summary.status, summary.applied, summary.rejected) == ("completed", 2, 1)
    (reject,) = summary.rejects
    assert (reject.line, reject.field) == (2, "record")
    assert reject.reason.startswith("could not be stored (")
    with engine.connect() as connection:
        stored = set(
            connection.execute(
                text(
                    "SELECT event_id FROM custody_events "
                    "WHERE event_id IN ('good-1', 'poison', 'good-2')"
                )
            ).scalars()
        )
    assert stored == {"good-1", "good-2"}


def test_the_same_hostile_values_in_a_csv_feed(engine: Engine) -> None:
    load_facilities(engine, "F1")
    header = ["event_id", "kind", "occurred_at", "facility_code", "a_number", "sequence"]
    at = days_ago(1).isoformat()
    lines = csv_lines(
        header,
        ["good-1", "booked", at, "F1", "300000101", "1"],
        ["bad-1", "booked", at, "F1", "300000102", "1e400"],
        ["bad-2", "booked", at, "F1", "300000103", "9" * 5000],
        ["bad-3", "booked", "0001-01-01T00:00:00+05:00", "F1", "300000104", ""],
        ["bad-4", "booked", at, "F1", "300000105", "²"],
        ["good-2", "booked", at, "F1", "300000106", ""],
    )
    summary = ingest_events(engine, lines, source="hostile.csv", fmt="csv")
    assert (summary.status, summary.applied) == ("completed", 2)
    assert [(r.line, r.field) for r in summary.rejects] == [
        (3, "sequence"),
        (4, "sequence"),
        (5, "occurred_at"),
        (6, "sequence"),
    ]


def test_a_csv_row_that_fails_as_csv_keeps_its_text(engine: Engine) -> None:
    # With a field over csv's size limit the reader itself refuses the row.
    long_field = '"' + "x" * 200_000 + '"'
    lines = [
        b"a_number,status,as_of\n",
        f"200000021,protected,{TODAY}\n".encode(),
        f"200000022,protected,{long_field}\n".encode(),
        f"200000023,protected,{TODAY}\n".encode(),
    ]
    summary = ingest_protections(engine, lines, source="list.csv")
    assert summary.status == "completed"
    assert [(r.line, r.field) for r in summary.rejects] == [(3, "line")]
    assert "is not valid CSV" in summary.rejects[0].reason
    _, [(_, _, raw)] = _batch(engine, summary.batch_id)
    assert raw.startswith("200000022,protected,") and len(raw) <= 2000
    assert protection_of(engine, "200000023") == "protected"


def test_an_overlong_line_is_rejected_without_being_read_whole(
    engine: Engine, tmp_path: Path
) -> None:
    load_facilities(engine, "F1")
    path = tmp_path / "events.jsonl"
    good = json.dumps(event("good-1", "booked", days_ago(1), who("300000201"))).encode()
    huge = b'{"event_id": "' + b"x" * (50 * 1024 * 1024) + b'"}'
    later = json.dumps(event("good-2", "booked", days_ago(1), who("300000202"))).encode()
    path.write_bytes(good + b"\n" + huge + b"\n" + later + b"\n")
    lines = file_lines(path, max_line_bytes=64 * 1024)
    summary = ingest_events(engine, lines, source="events.jsonl", fmt="jsonl")
    assert (summary.status, summary.applied, summary.rejected) == ("completed", 2, 1)
    [reject] = summary.rejects
    assert (reject.line, reject.field) == (2, "line")
    assert "52,428,816 bytes long" in reject.reason
    _, [(_, _, raw)] = _batch(engine, summary.batch_id)
    assert raw.startswith('{"event_id": "xxx') and len(raw) <= 2000


def test_an_overlong_roster_line_is_a_reject_and_withholds_departures(
    engine: Engine, tmp_path: Path
) -> None:
    load_facilities(engine, "F1")
    at = days_ago(0.01).isoformat()
    rows = "".join(f"{at},F1,3000003{n:02d},Ana,Pérez,1990-05-01,MX\n" for n in range(3))
    path = tmp_path / "roster.csv"
    path.write_text(",".join(ROSTER_HEADER) + "\n" + rows + at + ",F1," + "9" * 100_000 + "\n")
    summary = ingest_roster(engine, file_lines(path, max_line_bytes=16 * 1024), source="roster.csv")
    assert summary.status == "completed"
    assert [(r.line, r.field) for r in summary.rejects] == [(5, "line")]
    assert summary.applied == 3


def test_a_roster_row_with_a_name_too_long_as_matched_is_a_reject(engine: Engine) -> None:
    """On PostgreSQL such a name failed the whole snapshot: the matching key of a name
    that folds longer than its column (ß is ss) was refused as the events were derived."""
    load_facilities(engine, "F1")
    at = days_ago(0.01).isoformat()
    lines = csv_lines(
        ROSTER_HEADER,
        [at, "F1", "300000401", "Ana", "Pérez", "1990-05-01", "MX"],
        [at, "F1", "300000402", "ß" * 60, "Straße", "1990-05-01", "DE"],
        [at, "F1", "300000403", "Eva", "Ruiz", "1990-05-01", "MX"],
    )
    summary = ingest_roster(engine, lines, source="roster.csv")
    assert (summary.status, summary.applied, summary.derived_events) == ("completed", 2, 2)
    assert [(r.line, r.field) for r in summary.rejects] == [(3, "given_name")]
    assert "as matched" in summary.rejects[0].reason


def test_a_roster_row_with_a_nul_in_its_facility_code_is_a_reject(engine: Engine) -> None:
    """The facility code of a rejected row is looked up (so its person can still count
    as listed there) only once it reads as a code: PostgreSQL's driver refuses a NUL in
    a query, which failed the whole snapshot."""
    load_facilities(engine, "F1")
    at = days_ago(0.01).isoformat()
    lines = csv_lines(
        ROSTER_HEADER,
        [at, "F1", "300000501", "Ana", "Pérez", "1990-05-01", "MX"],
        [at, "F\x00", "300000502", "Eva", "Ruiz", "1990-05-01", "MX"],
        ["0001-01-01T00:00:00+14:00", "F1\x00", "300000503", "Eva", "Ruiz", "", ""],
    )
    summary = ingest_roster(engine, lines, source="roster.csv")
    assert (summary.status, summary.applied, summary.derived_events) == ("completed", 1, 1)
    assert [(r.line, r.field) for r in summary.rejects] == [
        (3, "facility_code"),
        (4, "snapshot_at"),
    ]
    status, stored = _batch(engine, summary.batch_id)
    assert status == "completed" and all("\x00" not in raw for _, _, raw in stored)


def _facility(code: str) -> dict[str, object]:
    return {"code": code, "name": f"Facility {code}", "updated_at": NOW}


def test_isolation_fails_only_the_record_the_database_refuses(engine: Engine) -> None:
    """The mechanism under every feed: a chunk that fails for one record's values is
    applied again record by record, in savepoints of one transaction."""
    load_facilities(engine, "TAKEN")
    summary = IngestSummary(kind="test", source="test")
    refused: list[str] = []

    def apply(connection: Connection, codes: list[str]) -> None:
        for code in codes:
            if code.startswith("refused:"):
                refused.append(code)
                continue
            # A code already taken violates the unique constraint on both databases.
            connection.execute(insert(facilities).values(_facility(code)))
            summary.applied += 1

    with engine.connect() as connection:
        isolated(connection, summary, ["A", "TAKEN", "B"], apply, lambda c, e: f"refused:{c}")
    assert summary.applied == 2 and refused == ["refused:TAKEN"]
    with engine.connect() as connection:
        codes = set(connection.execute(select(facilities.c.code)).scalars())
    assert codes == {"TAKEN", "A", "B"}


def test_isolation_rolls_the_whole_chunk_back_on_any_other_error(engine: Engine) -> None:
    # On SQLite the savepoints must sit inside a real transaction: a savepoint released
    # outside one would have committed its record on its own.
    load_facilities(engine, "TAKEN")
    summary = IngestSummary(kind="test", source="test")

    def apply(connection: Connection, codes: list[str]) -> None:
        for code in codes:
            if code != "refused":
                connection.execute(insert(facilities).values(_facility(code)))

    def then(connection: Connection) -> None:
        raise RuntimeError("the disk is full")

    with engine.connect() as connection:
        try:
            isolated(connection, summary, ["A", "TAKEN"], apply, lambda c, e: "refused", then)
        except RuntimeError:
            pass
        else:  # pragma: no cover
            raise AssertionError("the error was swallowed")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM facilities")).scalar_one() == 1
