"""Custody event feeds through the real ingest path into real databases."""

import json
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, func, select

from safevine.ingest.events import EVENT_CHUNK, ingest_events
from safevine.ingest.source import UnreadableSourceError
from safevine.store.decoy import real_events
from safevine.store.records.person_view import staff_view
from safevine.store.schema import custody_events, ingest_batches, ingest_rejects
from tests.builders import csv_lines, days_ago, event, jsonl, load_facilities, person

ANA = person("A-100-000-001", "Ana", "Pérez")
LUIS = person("100000002", "Luis", "García", country="Guatemala")


def mixed_feed() -> list[bytes]:
    return jsonl(
        event("e1", "booked", days_ago(10), ANA),  # 1 good
        event("e2", "transferred", days_ago(5), ANA, facility="F2"),  # 2 good
        event("e1", "booked", days_ago(10), ANA),  # 3 duplicate
        event("e0", "booked", days_ago(20), ANA, facility="F1"),  # 4 out of order: history only
        event("e3", "booked", days_ago(4), LUIS),  # 5 good
        event("e4", "released", days_ago(1), LUIS, reason="parole"),  # 6 good
        "{not json",  # 7
        event("e5", "booked", days_ago(3), person("12-34")),  # 8 bad A-number
        event("e6", "booked", days_ago(3), ANA, facility=None),  # 9 booked needs a facility
        event("e7", "released", days_ago(3), ANA, reason="vacation"),  # 10 unknown reason
        event("e1", "released", days_ago(1), ANA, reason="bond"),  # 11 id reused
        event("e8", "booked", days_ago(2), ANA, facility="NOPE"),  # 12 unknown facility
        event("e9", "removed", days_ago(2), LUIS),  # 13 removal needs a destination
        {**event("e10", "escaped", days_ago(2), LUIS), "occurred_at": "2026-11-01T10:00:00"},  # 14
        event("e11", "paroled", days_ago(2), LUIS),  # 15 unknown kind
        event(
            "e12",
            "booked",
            days_ago(2),
            person("100000002", "Luis", "García", born=None, country="Honduras"),
        ),  # 16 contradicts record
    )


EXPECTED_REJECTS = [
    (7, "line", "is not valid JSON"),
    (8, "person.a_number", "has 4 digits; an A-number has 8 or 9"),
    (9, "facility_code", "is required"),
    (10, "details.reason", "'vacation' is not one of bond"),
    (11, "event_id", "already used by a different event"),
    (12, "facility_code", "'NOPE' is not a known facility"),
    (13, "details.destination_country", "is required"),
    (14, "occurred_at", "has no UTC offset"),
    (15, "kind", "'paroled' is not one of booked"),
    (16, "person.country_of_birth", "differs from the country of birth on record"),
]


def _rejects(summary_rejects: list[dict[str, object]]) -> list[tuple[object, object, str]]:
    return [(r["line"], r["field"], str(r["reason"])) for r in summary_rejects]


def test_mixed_feed_applies_the_good_and_keeps_the_bad(engine: Engine) -> None:
    load_facilities(engine, "F1", "F2")
    summary = ingest_events(engine, mixed_feed(), source="mixed.jsonl", fmt="jsonl").to_dict()
    assert (summary["total"], summary["applied"], summary["duplicates"], summary["rejected"]) == (
        16,
        5,
        1,
        10,
    )
    got = _rejects(summary["rejects"])
    assert [(line, field) for line, field, _ in got] == [(n, f) for n, f, _ in EXPECTED_REJECTS]
    for (_, _, reason), (_, _, fragment) in zip(got, EXPECTED_REJECTS, strict=True):
        assert fragment in reason
    with engine.connect() as connection:
        ana = staff_view(connection, "100000001")
        luis = staff_view(connection, "100000002")
        stored_rejects = connection.execute(
            select(func.count()).select_from(ingest_rejects)
        ).scalar()
        raw = connection.execute(
            select(ingest_rejects.c.raw).where(ingest_rejects.c.line == 7)
        ).scalar()
    assert ana is not None and luis is not None
    # The late booking is in the history but does not undo the newer transfer.
    assert (ana.state, ana.facility_code) == ("in_custody", "F2")
    assert [e.event_id for e in ana.history] == ["e2", "e1", "e0"]
    assert (luis.state, luis.country_of_birth) == ("released", "GT")
    assert luis.history[0].details == {"reason": "parole"}
    assert stored_rejects == 10 and raw == "{not json"


def test_running_the_same_file_again_changes_nothing(engine: Engine) -> None:
    load_facilities(engine, "F1", "F2")
    ingest_events(engine, mixed_feed(), source="mixed.jsonl", fmt="jsonl")
    again = ingest_events(engine, mixed_feed(), source="mixed.jsonl", fmt="jsonl")
    assert (again.applied, again.duplicates, again.rejected) == (0, 6, 10)
    with engine.connect() as connection:
        assert (
            connection.execute(
                select(func.count()).select_from(custody_events).where(real_events())
            ).scalar()
            == 5
        )


def test_csv_feed_accepts_the_same_events_and_names_columns(engine: Engine) -> None:
    load_facilities(engine, "F1", "F2")
    header = [
        "event_id",
        "kind",
        "occurred_at",
        "facility_code",
        "a_number",
        "given_name",
        "family_name",
        "date_of_birth",
        "country_of_birth",
        "aliases",
        "release_reason",
        "destination_country",
        "court",
        "hearing_at",
    ]
    when = days_ago(3).isoformat()
    lines = csv_lines(
        header,
        [
            "c1",
            "booked",
            when,
            "F1",
            "A100000001",
            "Ana",
            "Pérez",
            "1990-05-01",
            "MX",
            "Anita/Pérez López; A./Pérez",
            "",
            "",
            "",
            "",
        ],
        [
            "c2",
            "removed",
            days_ago(1).isoformat(),
            "F1",
            "100000001",
            "",
            "",
            "",
            "",
            "",
            "",
            "Mexico",
            "",
            "",
        ],
        [
            "c3",
            "hearing_scheduled",
            when,
            "F1",
            "100000001",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "Eloy Immigration Court",
            "2026-12-01T09:00:00-07:00",
        ],
        ["c4", "released", when, "F1", "100000001", "", "", "", "", "", "dunno", "", "", ""],
        ["c5", "booked", when, "F1", "100000003", "Solo", "", "", "", "", "", "", "", ""],
        ["c6", "booked", when],
    )
    summary = ingest_events(engine, lines, source="feed.csv", fmt="csv")
    assert (summary.applied, summary.rejected) == (3, 3)
    assert [(r.line, r.field) for r in summary.rejects] == [
        (5, "release_reason"),
        (6, "family_name"),
        (7, "line"),
    ]
    with engine.connect() as connection:
        ana = staff_view(connection, "100000001")
    assert ana is not None and ana.state == "removed"
    assert ana.aliases == [("Anita", "Pérez López"), ("A.", "Pérez")]
    assert ana.history[0].details == {"destination_country": "MX"}


def test_an_event_sent_again_after_it_was_refused_in_the_same_file_is_judged_again(
    engine: Engine,
) -> None:
    """A repeat is a duplicate only of an event that was stored: an event refused for
    contradicting the record, sent again further down, is refused again (not counted a
    duplicate of itself), and another event reusing its id may still be stored."""
    load_facilities(engine, "F1")
    born_1990 = person("100000003", "Eva", "Ruiz", born=date(1990, 1, 1))
    born_1991 = person("100000003", "Eva", "Ruiz", born=date(1991, 1, 1))
    lines = jsonl(
        event("r1", "booked", days_ago(3), born_1990),  # 1 applied
        event("r2", "transferred", days_ago(2), born_1991),  # 2 contradicts line 1
        event("r2", "transferred", days_ago(2), born_1991),  # 3 the same again
        event("r2", "transferred", days_ago(2), person("100000003", born=None)),  # 4 stored
        event("r2", "transferred", days_ago(2), born_1990),  # 5 a resend of line 4
    )
    summary = ingest_events(engine, lines, source="again.jsonl", fmt="jsonl")
    assert (summary.total, summary.applied, summary.duplicates, summary.rejected) == (5, 2, 1, 2)
    assert [(r.line, r.field) for r in summary.rejects] == [
        (2, "person.date_of_birth"),
        (3, "person.date_of_birth"),
    ]
    with engine.connect() as connection:
        eva = staff_view(connection, "100000003")
    assert eva is not None and [e.event_id for e in eva.history] == ["r2", "r1"]


def test_a_csv_row_the_store_refuses_names_its_column(engine: Engine) -> None:
    """Rows refused once read (a contradiction of the record, an unknown facility, a
    reused id) name the CSV column, as the rows refused while reading do."""
    load_facilities(engine, "F1")
    when = days_ago(3).isoformat()
    header = ["event_id", "kind", "occurred_at", "facility_code", "a_number", "date_of_birth",
              "country_of_birth"]  # fmt: skip
    lines = csv_lines(
        header,
        ["k1", "booked", when, "F1", "100000004", "1990-05-01", "MX"],
        ["k2", "escaped", when, "F1", "100000004", "1991-05-01", ""],
        ["k3", "escaped", when, "F1", "100000004", "", "Honduras"],
        ["k4", "booked", when, "NOPE", "100000005", "", ""],
        ["k1", "escaped", when, "F1", "100000004", "", ""],
    )
    summary = ingest_events(engine, lines, source="feed.csv", fmt="csv")
    assert [(r.line, r.field) for r in summary.rejects] == [
        (3, "date_of_birth"),
        (4, "country_of_birth"),
        (5, "facility_code"),
        (6, "event_id"),
    ]


def test_a_file_that_cannot_be_read_changes_nothing(engine: Engine) -> None:
    with pytest.raises(UnreadableSourceError, match="lacks required column"):
        ingest_events(engine, csv_lines(["id", "what"], ["1", "booked"]), source="x.csv", fmt="csv")
    with pytest.raises(UnreadableSourceError, match="is empty"):
        ingest_events(engine, [], source="empty.csv", fmt="csv")
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ingest_batches)).scalar() == 0


def test_a_line_that_is_not_utf8_is_one_reject(engine: Engine) -> None:
    load_facilities(engine, "F1")
    lines = jsonl(event("u1", "booked", days_ago(1), ANA))
    lines.insert(0, b'{"event_id": "bad\xff\xfe"}\n')
    summary = ingest_events(engine, lines, source="x.jsonl", fmt="jsonl")
    assert (summary.applied, summary.rejected) == (1, 1)
    assert summary.rejects[0].reason == "is not valid UTF-8 text"


@pytest.mark.parametrize("value", ["protected", "PROTECTD"])
def test_a_rejected_record_asking_for_protection_still_protects(engine: Engine, value: str) -> None:
    load_facilities(engine, "F1")
    ingest_events(engine, jsonl(event("p0", "booked", days_ago(5), ANA)), source="a", fmt="jsonl")
    bad = event("p1", "booked", days_ago(1), {**ANA, "protection": value}, facility="NOWHERE")
    summary = ingest_events(engine, jsonl(bad), source="b", fmt="jsonl")
    assert summary.rejected == 1
    with engine.connect() as connection:
        view = staff_view(connection, "100000001")
    assert view is not None and view.protection == "protected"


def test_large_feeds_are_applied_in_committed_chunks(engine: Engine) -> None:
    """The feed is read lazily and each chunk commits once the next one is read (so the
    last chunk is judged with the batch): a feed that breaks off two and a quarter chunks
    in keeps the first full chunk and holds at most two chunks in memory."""
    load_facilities(engine, "F1")
    pulled = 0

    def feed() -> Iterator[bytes]:
        nonlocal pulled
        for i in range(4 * EVENT_CHUNK):
            if i == 2 * EVENT_CHUNK + EVENT_CHUNK // 4:
                raise ConnectionError("feed broke off")
            pulled += 1
            yield json.dumps(event(f"s{i}", "booked", days_ago(1), person(f"2{i:08d}"))).encode()

    with pytest.raises(ConnectionError):
        ingest_events(engine, feed(), source="stream", fmt="jsonl")
    assert pulled == 2 * EVENT_CHUNK + EVENT_CHUNK // 4
    with engine.connect() as connection:
        assert (
            connection.execute(
                select(func.count()).select_from(custody_events).where(real_events())
            ).scalar()
            == EVENT_CHUNK
        )
