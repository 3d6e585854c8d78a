"""Screening: the queue (longest waiting first, by facility), one person or many screened
with one reason through the staff service, and the effect seen at once on the public
service."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update

from safevine.store.records import screening_queue
from safevine.store.records.persons import person_ids_by_a_number
from safevine.store.schema import audit_log, persons
from tests.builders import days_ago, event, jsonl, load_facilities, person
from tests.canaries import PROTECTED, PUBLIC, UNSCREENED
from tests.sql_plans import plans, statements
from tests.staff.conftest import Staff

WAITING = [("300000011", "Ofelia", "Ruizpalacios"), ("300000012", "Teodora", "Zamudiez")]


def _book_waiting(staff: Staff) -> dict[str, int]:
    """Two more unscreened people, booked at another facility, waiting longer than the
    canary: the first an hour longer, the second a day longer."""
    load_facilities(staff.engine, "F2")
    records = [
        event(f"book-{n}", "booked", days_ago(3), person(n, given, family, country="GT"), "F2")
        for n, given, family in WAITING
    ]
    answer = staff.client.post(
        "/api/v1/staff/feeds/events",
        content=b"".join(jsonl(*records)),
        headers={**staff.as_("ingest"), "Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    now = datetime.now(UTC)
    with staff.engine.begin() as connection:
        ids = person_ids_by_a_number(connection, [n for n, _, _ in WAITING])
        for (n, _, _), earlier in zip(
            WAITING, (timedelta(hours=1), timedelta(days=1)), strict=True
        ):
            connection.execute(
                update(persons)
                .where(persons.c.id == ids[n])
                .values(created_at=now - earlier - timedelta(days=90))
            )
    return ids


def test_the_queue_shows_the_longest_waiting_first_and_filters_by_facility(staff: Staff) -> None:
    ids = _book_waiting(staff)
    queue = staff.client.get("/api/v1/staff/screening", headers=staff.as_("protect")).json()
    order = [p["a_number"] for p in queue["people"]]
    assert order[:2] == ["A-300-000-012", "A-300-000-011"]
    assert "A-300-000-003" in order and PROTECTED.a_number not in "".join(order)
    assert queue["size"] == 3 and queue["oldest_since"] is not None
    assert queue["people"][0]["id"] == ids["300000012"]
    assert queue["people"][0]["waiting_seconds"] > 90 * 86400
    at_f1 = staff.client.get(
        "/api/v1/staff/screening?facility=F1", headers=staff.as_("protect")
    ).json()
    assert [p["a_number"] for p in at_f1["people"]] == ["A-300-000-003"]
    # Reading the queue needs the screening right.
    assert staff.client.get("/api/v1/staff/screening", headers=staff.as_("read")).status_code == 403


def test_screening_as_cleared_makes_a_person_public_at_once(staff: Staff) -> None:
    assert (
        staff.public.post("/api/v1/search", json=UNSCREENED.by_a_number()).json()["results"] == []
    )
    with staff.engine.connect() as connection:
        who = person_ids_by_a_number(connection, [UNSCREENED.a_number])[UNSCREENED.a_number]
    answer = staff.client.post(
        "/api/v1/staff/screening",
        json={"people": [who], "decision": "cleared", "reason": "no 1367 record"},
        headers=staff.as_("protect"),
    )
    assert answer.json() == {"screened": [who], "refused": []}
    found = staff.public.post("/api/v1/search", json=UNSCREENED.by_a_number()).json()["results"]
    assert len(found) == 1
    with staff.engine.connect() as connection:
        entry = connection.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.reason).order_by(
                audit_log.c.seq.desc()
            )
        ).first()
    assert tuple(entry) == ("protect-desk", "clear", "no 1367 record")


def test_a_bulk_screening_screens_the_good_and_names_the_rest(staff: Staff) -> None:
    ids = _book_waiting(staff)
    with staff.engine.connect() as connection:
        known = person_ids_by_a_number(connection, [PUBLIC.a_number, PROTECTED.a_number])
    asked = [
        ids["300000011"],
        known[PUBLIC.a_number],
        987654,
        ids["300000012"],
        known[PROTECTED.a_number],
    ]
    answer = staff.client.post(
        "/api/v1/staff/screening",
        json={"people": asked, "decision": "protected", "reason": "T visa applicants"},
        headers=staff.as_("protect"),
    )
    body = answer.json()
    assert answer.status_code == 200
    assert body["screened"] == [ids["300000011"], ids["300000012"]]
    refused = {r["person"]: r["reason"] for r in body["refused"]}
    assert set(refused) == {known[PUBLIC.a_number], 987654, known[PROTECTED.a_number]}
    assert "already screened (cleared)" in refused[known[PUBLIC.a_number]]
    assert "no person" in refused[987654]
    # The public person refused stays public; nothing else moved.
    assert (
        len(staff.public.post("/api/v1/search", json=PUBLIC.by_a_number()).json()["results"]) == 1
    )
    with staff.engine.connect() as connection:
        states = dict(
            connection.execute(
                select(persons.c.id, persons.c.protection).where(
                    persons.c.id.in_([ids["300000011"], ids["300000012"]])
                )
            ).all()
        )
    assert set(states.values()) == {"protected"}


def test_bad_screening_requests_change_nothing(staff: Staff) -> None:
    with staff.engine.connect() as connection:
        who = person_ids_by_a_number(connection, [UNSCREENED.a_number])[UNSCREENED.a_number]
    for body in (
        {"people": [who], "decision": "cleared", "reason": "   "},
        {"people": [who], "decision": "maybe", "reason": "x"},
        {"people": [], "decision": "cleared", "reason": "x"},
        {"people": [2**63], "decision": "cleared", "reason": "x"},
        {"people": [who], "decision": "cleared", "reason": "a\x00b"},
    ):
        answer = staff.client.post(
            "/api/v1/staff/screening", json=body, headers=staff.as_("protect")
        )
        assert answer.status_code == 422, (body, answer.text)
    assert (
        staff.public.post("/api/v1/search", json=UNSCREENED.by_a_number()).json()["results"] == []
    )
    none = staff.client.post(
        "/api/v1/staff/screening",
        json={"people": [987654], "decision": "cleared", "reason": "x"},
        headers=staff.as_("protect"),
    )
    assert none.status_code == 409 and none.json()["screened"] == []


def test_the_queue_reads_only_those_waiting(sqlite_engine: Engine) -> None:
    """Its count, its page and its facility filter are answered from the index of people
    not yet screened (migration 0024), never by reading every person: on SQLite, whose
    planner matches a partial index only to a literal."""
    with sqlite_engine.connect() as connection, statements(sqlite_engine) as seen:
        screening_queue.summary(connection)
        screening_queue.waiting(connection)
        screening_queue.waiting(connection, "F1")
        screening_queue.facilities_waiting(connection)
    assert len(seen) == 4
    steps = plans(sqlite_engine, seen)
    on_persons = [step for step in steps if " persons" in step]
    assert len(on_persons) == 4, steps
    assert all("ix_persons_unscreened" in step for step in on_persons), steps
