"""Stored event fingerprints never change: the fast hash equals the documented formula."""

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.event_content import content_hash, event_content
from safevine.domain.event_kinds import EventKind
from safevine.store.decoy import DECOY_PERSON_ID
from safevine.store.records.events import record_events
from safevine.store.schema import custody_events
from tests.builders import load_facilities


def reference_hash(event: CustodyEventInput) -> str:
    """The formula every stored hash was made with."""
    canonical = json.dumps(
        [
            event.event_id,
            event.kind.value,
            event.occurred_at.isoformat(),
            event.sequence,
            event.facility_code,
            event.person.a_number,
            event.details,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]
)
detail_values = st.one_of(st.none(), st.text(), st.integers(), st.booleans())
events = st.builds(
    CustodyEventInput,
    event_id=st.text(min_size=1),
    kind=st.sampled_from(list(EventKind)),
    occurred_at=st.datetimes(timezones=zones),
    person=st.builds(PersonFacts, a_number=st.from_regex(r"\A[0-9]{9}\Z")),
    facility_code=st.one_of(st.none(), st.text()),
    sequence=st.integers(min_value=0, max_value=2**40),
    details=st.dictionaries(st.text(), detail_values, max_size=4),
)


@given(events)
def test_fast_hash_is_the_stored_formula(event: CustodyEventInput) -> None:
    assert content_hash(event) == reference_hash(event)


def test_a_known_event_keeps_its_fingerprint() -> None:
    event = CustodyEventInput(
        event_id="ev-1",
        kind=EventKind.RELEASED,
        occurred_at=datetime(2026, 11, 25, 14, 3, tzinfo=timezone(timedelta(hours=-5))),
        person=PersonFacts("012345678"),
        facility_code="ICE-TX-1a2b3c",
        sequence=2,
        details={"reason": "bond", "note": "Señor \u2019"},
    )
    # Computed by the code that stored the first events; a change here orphans every hash.
    digest = "469e3c2c1e51f6ec3f23227a0ee23276ce9a8b8db2ff646c66a8b26d74e12e5e"
    assert content_hash(event) == reference_hash(event) == digest
    assert content_hash(event) != content_hash(
        CustodyEventInput(**{**event.__dict__, "details": {"reason": "parole"}})
    )


def test_details_of_equal_value_but_other_type_keep_their_own_fingerprint() -> None:
    """Details are written once per distinct details and reused. 1, 1.0 and True are equal
    as Python values (and as keys), yet each is written differently: each keeps the hash
    of what it is, whichever was seen first."""

    def event(value: object) -> CustodyEventInput:
        return CustodyEventInput(
            event_id="ev-1",
            kind=EventKind.RELEASED,
            occurred_at=datetime(2026, 11, 25, 14, 3, tzinfo=UTC),
            person=PersonFacts("012345678"),
            details={"reason": value},
        )

    values: list[object] = ["1", 1, 1.0, True, "1", True, 1]
    for value in values:
        assert content_hash(event(value)) == reference_hash(event(value))
    assert len({content_hash(event(value)) for value in values}) == 4


@given(events)
def test_an_events_content_is_its_hash_and_its_details_as_stored(
    event: CustodyEventInput,
) -> None:
    content = event_content(event)
    assert content.hash == reference_hash(event)
    assert content.details == json.dumps(event.details)
    assert json.loads(content.details) == event.details


# Details of text alone are written out without `json.dumps`: any text (lone surrogates,
# quotes and controls, which it escapes), in any order.
any_text = st.text(st.characters(blacklist_categories=()), max_size=8)
text_details = st.dictionaries(any_text, any_text, max_size=5)


@given(text_details)
def test_text_details_are_written_as_json_dumps_writes_them(details: dict[str, str]) -> None:
    event = CustodyEventInput(
        event_id="ev-1",
        kind=EventKind.HEARING_SCHEDULED,
        occurred_at=datetime(2026, 11, 25, 14, 3, tzinfo=UTC),
        person=PersonFacts("012345678"),
        details=details,
    )
    for _ in range(2):  # written, then from the cache
        content = event_content(event)
        assert content.hash == reference_hash(event)
        assert content.details == json.dumps(details)


def test_contents_given_with_the_events_are_what_is_stored(engine: Engine) -> None:
    """A feed hands `record_events` each event's content, worked out where it was parsed:
    stored as given (an echo of an event in the same call included), and refused unless
    there is one for each event."""
    load_facilities(engine, "F1")
    now = datetime(2026, 3, 1, 8, tzinfo=UTC)
    given = [
        CustodyEventInput(f"g{n}", EventKind.BOOKED, now, PersonFacts(f"30000100{n}"), "F1",
                          details={"note": f"n{n}"})
        for n in range(3)
    ]  # fmt: skip
    events = [*given, given[0]]
    contents = [event_content(e) for e in events]
    contents[2] = None  # worked out by the writer
    with engine.begin() as connection:
        with pytest.raises(ValueError, match="3 contents for 4 events"):
            record_events(
                connection, events, origin="feed", now=now, source="t", contents=contents[:3]
            )
        result = record_events(
            connection, events, origin="feed", now=now, source="t", contents=contents
        )
        columns = custody_events.c
        stored = connection.execute(
            select(columns.event_id, columns.content_hash, columns.details)
            .where(columns.person_id != DECOY_PERSON_ID)
            .order_by(columns.event_id)
        ).all()
    assert (len(result.stored), result.duplicates, result.errors) == (3, 1, [])
    assert [(r.event_id, r.content_hash, r.details) for r in stored] == [
        (e.event_id, reference_hash(e), e.details) for e in given
    ]
