"""PostgreSQL: chunks applied as two halves of disjoint people on two connections store
exactly what applying them whole does, and a chunk that cannot be split, or whose half
fails, is applied whole."""

import random
from datetime import timedelta
from typing import Any

import pytest
from bench.dataset import load_registrations
from sqlalchemy import Engine, text

from safevine.contact_vault import ContactVault
from safevine.ingest import events as event_ingest
from safevine.ingest.chunk_halves import halves
from safevine.ingest.events import ingest_events
from safevine.ingest.events_jsonl import parse_jsonl_record
from safevine.store.engine import make_engine
from tests.builders import days_ago, event, jsonl, load_facilities, person
from tests.conftest import Databases

VAULT = ContactVault(b"chunk halves test key, no secret")
ANA = person("200000001")


def _history(seed: int, tag: str = "e", days: int = 20) -> list[dict[str, Any] | str]:
    """Forty people over a feed: bookings, moves, releases, hearings, late events, resends,
    names told again in other spellings and as aliases, birth facts filled in and
    contradicted, ids reused (within a chunk and across chunks, for people of both
    halves), unknown facilities and lines that are not JSON."""
    rng = random.Random(seed)
    records: list[dict[str, Any] | str] = []
    kinds = ["booked", "transferred", "released", "hearing_scheduled", "booked"]
    for n in range(40):
        a_number = f"2000{n:05d}"
        born = None if n % 7 == 0 else days_ago(365 * 30 + n).date()
        at = days_ago(days - n % 5)
        for k, kind in enumerate(kinds[: 2 + n % 4]):
            details: dict[str, Any] = {}
            if kind == "released":
                details["reason"] = "bond"
            if kind == "hearing_scheduled":
                details["hearing_at"] = (at + timedelta(days=30)).isoformat()
            given = "Ana" if k % 2 == 0 else "ANA"
            facts = person(a_number, given, f"Ruiz{n}", born=born, country="MX")
            if k == 1 and n % 3 == 0:
                facts["aliases"] = [{"given_name": "Anita", "family_name": f"R{n}"}]
            if k == 2 and n % 11 == 0:
                facts["country_of_birth"] = "GT"  # contradicts the record: refused
            facility = "F2" if kind == "transferred" else "F1"
            if k == 1 and n % 13 == 0:
                facility = "NOWHERE"
            records.append(
                event(f"{tag}{n}-{k}", kind, at + timedelta(hours=k), facts, facility, **details)
            )
        # A late event, older than all of theirs: history only.
        if n % 4 == 0:
            records.append(
                event(
                    f"late{n}",
                    "booked",
                    days_ago(60),
                    person(a_number, "Ana", f"Ruiz{n}", born=born),
                )
            )
    rng.shuffle(records)
    # Resends of stored records, a reuse of an id by another person, lines not JSON.
    records += [records[3], records[10], "{not json", records[20]]
    reused = dict(records[5])  # type: ignore[arg-type]
    reused["person"] = person("200009999", "Otro", "Nombre")
    records.insert(30, reused)
    records.insert(70, "[1, 2]")
    return records


def _state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "events": "SELECT e.event_id, p.a_number, e.kind, f.code, e.occurred_at, e.sequence, "
        "e.content_hash, e.details::text FROM custody_events e "
        "JOIN persons p ON p.id = e.person_id "
        "LEFT JOIN facilities f ON f.id = e.facility_id WHERE e.batch_id IS NOT NULL",
        "statuses": "SELECT p.a_number, s.state, f.code, s.event_id, s.occurred_at, "
        "s.left_custody_at FROM custody_status s JOIN persons p ON p.id = s.person_id "
        "LEFT JOIN facilities f ON f.id = s.facility_id",
        "persons": "SELECT a_number, given_name, family_name, date_of_birth, country_of_birth, "
        "protection FROM persons WHERE a_number IS NOT NULL",
        "names": "SELECT p.a_number, n.given_name, n.family_name, n.is_primary FROM person_names n "
        "JOIN persons p ON p.id = n.person_id",
        "rejects": "SELECT line, field, reason, raw FROM ingest_rejects",
        "notifications": "SELECT r.number, e.event_id, n.state, n.content::text "
        "FROM notifications n JOIN registrations r ON r.id = n.registration_id "
        "JOIN custody_events e ON e.id = n.event_pk",
        "held": "SELECT count(*) FROM held_status",
    }
    with engine.connect() as connection:
        return {
            name: sorted(tuple(row) for row in connection.execute(text(sql)))
            for name, sql in queries.items()
        }


def _feed(engine: Engine, records: list[dict[str, Any] | str]) -> dict[str, Any]:
    summary = ingest_events(engine, jsonl(*records), source="feed.jsonl", fmt="jsonl").to_dict()
    return {k: v for k, v in summary.items() if k not in ("batch_id", "started_at", "finished_at")}


@pytest.mark.parametrize("chunk", [7, 25, 1_000])
def test_halves_store_what_the_whole_chunk_stores(
    postgres_engine: Engine, databases: Databases, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(event_ingest, "EVENT_CHUNK", chunk)
    split: list[bool] = []
    apply_halves = event_ingest._apply_halves

    def counted(*args: Any, **kwargs: Any) -> bool:
        split.append(apply_halves(*args, **kwargs))
        return split[-1]

    monkeypatch.setattr(event_ingest, "_apply_halves", counted)
    other = make_engine(databases.create("postgresql"))
    outcomes = []
    try:
        for split_chunks, engine in ((False, postgres_engine), (True, other)):
            monkeypatch.setattr(event_ingest, "SPLIT_CHUNKS", split_chunks)
            load_facilities(engine, "F1", "F2")
            first = _feed(engine, _history(1))
            with engine.connect() as connection:
                refs = [
                    r
                    for (r,) in connection.execute(
                        text("SELECT public_ref FROM persons ORDER BY a_number")
                    )
                ]
            load_registrations(engine, VAULT, refs, 30, seed=3)
            second = _feed(
                engine,
                [
                    *_history(2, "s", 10),
                    event("fresh", "released", days_ago(0), person("200000001"), reason="bond"),
                ],
            )
            outcomes.append((first, second, _state(engine)))
    finally:
        other.dispose()
    assert outcomes[0] == outcomes[1]
    first, second, state = outcomes[1]
    assert first["applied"] and first["rejected"] and first["duplicates"]
    assert second["duplicates"] and state["notifications"] and state["names"]
    assert any("already used by a different event" in r[2] for r in state["rejects"])
    # Chunks were split (all of them but those holding a reuse across the halves).
    assert split and any(split)


def test_a_chunk_is_applied_whole_when_its_halves_would_share_an_id_or_a_protection() -> None:
    def parsed(*records: dict[str, Any] | str) -> list[Any]:
        return [
            parse_jsonl_record((n, line.decode().rstrip("\n")))
            for n, line in enumerate(jsonl(*records), 1)
        ]

    even, odd = person("200000002"), person("200000003")
    apart = parsed(event("a", "booked", days_ago(1), even), event("b", "booked", days_ago(1), odd))
    parts = halves(apart)
    assert parts is not None
    assert [[p.value.event_id for p in part] for part in parts] == [["a"], ["b"]]
    # One id for people of both halves: the feed's order decides which is stored.
    assert (
        halves(
            parsed(event("a", "booked", days_ago(1), even), event("a", "booked", days_ago(2), odd))
        )
        is None
    )
    # A protection asked for, by a stored record or a refused one.
    protected = person("200000004", protection="protected")
    assert halves([*apart, *parsed(event("c", "booked", days_ago(1), protected))]) is None
    refused = dict(protected, date_of_birth="not a date")
    assert halves([*apart, *parsed(event("d", "booked", days_ago(1), refused))]) is None
    # Nothing to put in one half.
    assert halves(parsed(event("a", "booked", days_ago(1), even))) is None
    # A line that could not be read goes with the first half, in its place.
    mixed = halves([*parsed("{not json"), *apart])
    assert mixed is not None and [p.line for p in mixed[0]] == [1, 1]


def test_a_half_the_database_refuses_leaves_the_chunk_to_be_applied_whole(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_ingest, "EVENT_CHUNK", 4)
    load_facilities(postgres_engine, "F1")
    with postgres_engine.begin() as connection:
        connection.execute(
            text(
                "ALTER TABLE custody_events ADD CONSTRAINT refuse_poison "
                "CHECK (event_id NOT LIKE 'poison%')"
            )
        )
    records = [event(f"g{n}", "booked", days_ago(1), person(f"2000000{n:02d}")) for n in range(10)]
    # Poison in the second half of the first chunk, and in the first half of the second.
    records.insert(2, event("poison-1", "booked", days_ago(1), person("200000091")))
    records.insert(5, event("poison-2", "booked", days_ago(1), person("200000090")))
    summary = ingest_events(postgres_engine, jsonl(*records), source="p.jsonl", fmt="jsonl")
    assert (summary.status, summary.applied, summary.rejected) == ("completed", 10, 2)
    assert [r.line for r in summary.rejects] == [3, 6]
    with postgres_engine.connect() as connection:
        stored = (
            connection.execute(
                text("SELECT event_id FROM custody_events WHERE batch_id IS NOT NULL ORDER BY 1")
            )
            .scalars()
            .all()
        )
    assert stored == sorted(f"g{n}" for n in range(10))


@pytest.mark.parametrize("split_chunks", [False, True])
def test_the_batch_is_judged_on_the_population_after_the_whole_chunk(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch, split_chunks: bool
) -> None:
    """205 people in custody at F1, then 40 releases within the hour in chunks of 7. The
    population the burst is held against is read after the first chunk naming F1 is
    written (198: 40 is over a fifth of it, so the batch is held); read after only one
    half's writes it would be 201 or 202, and the batch would go out."""
    monkeypatch.setattr(event_ingest, "SPLIT_CHUNKS", split_chunks)
    load_facilities(postgres_engine, "F1")
    booked = [
        event(f"b{n}", "booked", days_ago(30 - n / 10), person(f"2100{n:05d}")) for n in range(205)
    ]
    assert ingest_events(postgres_engine, jsonl(*booked), source="b", fmt="jsonl").status == (
        "completed"
    )
    monkeypatch.setattr(event_ingest, "EVENT_CHUNK", 7)
    # All within one hour's bucket of the burst rule.
    hour = days_ago(0.2).replace(minute=0, second=0, microsecond=0)
    released = [
        event(
            f"r{n}",
            "released",
            hour + timedelta(seconds=n),
            person(f"2100{n:05d}"),
            reason="bond",
        )
        for n in range(40)
    ]
    summary = ingest_events(postgres_engine, jsonl(*released), source="r", fmt="jsonl")
    assert (summary.status, summary.applied) == ("held", 40)
    assert "40 released events at facility F1" in summary.notes[-1]
