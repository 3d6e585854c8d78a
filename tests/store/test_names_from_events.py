"""The names an event feed tells about a person, as the store keeps them, for any order of
events over several calls of `record_events` (a feed's chunks): on SQLite and PostgreSQL.

- The person's name is the first name told, in the order given; later names never
  replace it.
- Every name and alias told is kept once per matching key (`PersonName.key`: case and
  accents folded), in the spelling first told, and so can be searched for. The row
  that first held a key is marked primary only when that was the person's name as first
  told.
- A resend of an event adds nothing.

This holds the behaviour fixed for the set-statement redesign (docs/ingest-redesign.md,
step 0: names and aliases from event feeds had no test of their own).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, note
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.event_kinds import EventKind
from safevine.domain.names import PersonName
from safevine.store.records.events import record_events
from safevine.store.schema import person_names, persons
from tests.builders import load_facilities
from tests.ingest.feed_properties import facility_code, fuzz_settings, next_tag

BASE = datetime(2026, 4, 1, 8, tzinfo=UTC)
PEOPLE = 2
# Spellings, several of them one key apart only in case, accents or apostrophes.
NAMES = [
    PersonName("Ana", "Pérez"),
    PersonName("ANA", "PEREZ"),
    PersonName("ana", "perez"),
    PersonName("Ana María", "Pérez López"),
    PersonName("Anna", "Peres"),
    PersonName("José", "O'Neil"),
    PersonName("Jose", "O\u2019NEIL"),
]


@dataclass(frozen=True)
class Told:
    person: int
    name: int | None
    aliases: tuple[int, ...]
    resend: int | None


TOLD = st.builds(
    Told,
    person=st.integers(0, PEOPLE - 1),
    name=st.none() | st.integers(0, len(NAMES) - 1),
    aliases=st.lists(st.integers(0, len(NAMES) - 1), max_size=2).map(tuple),
    resend=st.none() | st.integers(0, 20),
)
CALLS = st.lists(st.lists(TOLD, min_size=1, max_size=6), min_size=1, max_size=3)


def _kept(engine: Engine, a_number: str) -> tuple[tuple[str | None, str | None], set[object]]:
    with engine.connect() as connection:
        person_id, given, family = connection.execute(
            select(persons.c.id, persons.c.given_name, persons.c.family_name).where(
                persons.c.a_number == a_number
            )
        ).one()
        rows = connection.execute(
            select(
                person_names.c.given_name,
                person_names.c.family_name,
                person_names.c.given_key,
                person_names.c.family_key,
                person_names.c.is_primary,
            ).where(person_names.c.person_id == person_id)
        ).all()
    return (given, family), {tuple(row) for row in rows}


@fuzz_settings(50)
@given(calls=CALLS)
def test_names_and_aliases_are_kept_as_first_told(engine: Engine, calls: list[list[Told]]) -> None:
    tag = next_tag()
    code = facility_code(tag, 0)
    load_facilities(engine, code)
    a_numbers = [f"5{tag:05d}{p:03d}" for p in range(PEOPLE)]
    # The model: per person, the name first told, and each key's first spelling.
    primary: dict[str, PersonName | None] = {a: None for a in a_numbers}
    rows: dict[str, dict[tuple[str, str], tuple[PersonName, bool]]] = {a: {} for a in a_numbers}
    sent: list[CustodyEventInput] = []
    for call_number, call in enumerate(calls):
        events: list[CustodyEventInput] = []
        for n, told in enumerate(call):
            if told.resend is not None and sent:
                events.append(sent[told.resend % len(sent)])
                continue
            name = None if told.name is None else NAMES[told.name]
            aliases = tuple(NAMES[i] for i in told.aliases)
            facts = PersonFacts(a_numbers[told.person], name, aliases)
            at = BASE + timedelta(minutes=len(sent) + n)
            events.append(
                CustodyEventInput(f"n{tag}-{call_number}-{n}", EventKind.BOOKED, at, facts, code)
            )
        note(f"call {call_number}: {events}")
        seen = {e.event_id for e in sent}
        for event in events:
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
            sent.append(event)
            a_number, facts = event.person.a_number, event.person
            told_names: list[tuple[PersonName, bool]] = []
            if facts.name is not None:
                first = primary[a_number] is None
                if first:
                    primary[a_number] = facts.name
                told_names.append((facts.name, first))
            told_names += [(alias, False) for alias in facts.aliases]
            for spelling, is_primary in told_names:
                rows[a_number].setdefault(spelling.key, (spelling, is_primary))
        with engine.begin() as connection:
            result = record_events(connection, events, origin="feed", now=BASE, source="t")
        assert not result.errors, result.errors
        for a_number in a_numbers:
            if not any(e.person.a_number == a_number for e in sent):
                continue
            name, kept = _kept(engine, a_number)
            first = primary[a_number]
            assert name == ((first.given, first.family) if first else (None, None))
            expected = {
                (spelling.given, spelling.family, *key, int(is_primary))
                for key, (spelling, is_primary) in rows[a_number].items()
            }
            assert kept == expected, a_number
