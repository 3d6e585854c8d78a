"""Retracting an event through the staff API: the `correct` scope, which only supervisors'
and admins' tokens can carry; every refusal names what it refuses and changes nothing; the
public site shows the status derived again at once. Live services, both databases."""

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from safevine.actions import accounts, tokens
from safevine.actions.actor import Actor
from safevine.contact_vault import ContactVault
from safevine.domain.errors import InvalidError
from safevine.ingest.events import ingest_events
from safevine.store.schema import audit_log, custody_events, staff_accounts
from tests.builders import days_ago, event, jsonl, person
from tests.canaries import PUBLIC
from tests.staff.conftest import Staff
from tests.web.conftest import SECRET

PATH = "/api/v1/staff/events/retract"
WHO = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country="MX")


def _release(staff: Staff, event_id: str = "rel-wrong") -> None:
    summary = ingest_events(
        staff.engine,
        jsonl(event(event_id, "released", days_ago(1), WHO, reason="bond")),
        source="feed.jsonl",
        fmt="jsonl",
    )
    assert summary.applied == 1


def _account_token(staff: Staff, name: str, role: str, scopes: list[str]) -> dict[str, str]:
    now = datetime.now(UTC)
    with staff.engine.begin() as connection:
        account, _ = accounts.create(
            connection,
            ContactVault(SECRET),
            Actor("cli:test"),
            name,
            [role],
            "a long password!",
            now,
        )
        secret = tokens.create(connection, Actor("cli:test"), f"{name}-desk", scopes, now, account)
    return {"Authorization": f"Bearer {secret}"}


def _state(staff: Staff) -> tuple[int, int]:
    with staff.engine.connect() as connection:
        return (
            connection.execute(select(func.count()).select_from(audit_log)).scalar_one(),
            connection.execute(
                select(func.count())
                .select_from(custody_events)
                .where(custody_events.c.retracted_at.is_not(None))
            ).scalar_one(),
        )


def _public_status(staff: Staff) -> list[Any]:
    results = staff.public.post("/api/v1/search", json=PUBLIC.by_a_number()).json()["results"]
    return [(r["custody_status"], r["facility"]["name"]) for r in results]


def test_a_supervisor_retracts_and_the_public_sees_the_status_derived_again(staff: Staff) -> None:
    _release(staff)
    assert _public_status(staff)[0][0] == "released"
    headers = _account_token(staff, "sue", "supervisor", ["correct"])
    answer = staff.client.post(
        PATH, json={"event_id": "rel-wrong", "reason": "wrong person released"}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["event_id"] == "rel-wrong" and body["kind"] == "released"
    assert body["status"] == {"custody_state": "in_custody", "facility": "F1"}
    assert body["status_before"] == {"custody_state": "released", "facility": "F1"}
    assert _public_status(staff) == [("in_custody", "Facility F1")]
    with staff.engine.connect() as connection:
        entry = connection.execute(
            select(audit_log).where(audit_log.c.action == "retract_event")
        ).one()
    assert entry.actor == "sue"
    assert entry.target == f"person:{body['person']} event:{body['event']}"
    assert entry.reason.startswith("wrong person released [status released -> in_custody;")

    twice = staff.client.post(
        PATH, json={"event_id": "rel-wrong", "reason": "again"}, headers=headers
    )
    assert twice.status_code == 409 and "already retracted" in twice.json()["error"]


def test_an_admin_may_retract_too(staff: Staff) -> None:
    _release(staff)
    headers = _account_token(staff, "ada", "admin", ["correct"])
    answer = staff.client.post(
        PATH, json={"event_id": "rel-wrong", "reason": "entered in error"}, headers=headers
    )
    assert answer.status_code == 200, answer.text


def test_a_screener_or_auditor_may_not(staff: Staff) -> None:
    _release(staff)
    for name, role in (("sam", "screener"), ("ann", "auditor")):
        with pytest.raises(InvalidError, match="do not allow the scopes correct"):
            _account_token(staff, name, role, ["correct"])
    screener = _account_token(staff, "sam2", "screener", ["protect"])
    before = _state(staff)
    refused = staff.client.post(
        PATH, json={"event_id": "rel-wrong", "reason": "entered in error"}, headers=screener
    )
    assert refused.status_code == 403 and "'correct' scope" in refused.json()["error"]
    # A supervisor who becomes a screener: their token loses the scope at once.
    headers = _account_token(staff, "sue", "supervisor", ["correct"])
    with staff.engine.begin() as connection:
        sue = connection.execute(
            select(staff_accounts.c.id).where(staff_accounts.c.name == "sue")
        ).scalar_one()
        accounts.set_roles(connection, Actor("cli:test"), sue, ["screener"], datetime.now(UTC))
    demoted = staff.client.post(
        PATH, json={"event_id": "rel-wrong", "reason": "entered in error"}, headers=headers
    )
    assert demoted.status_code == 403
    after = _state(staff)
    assert after[1] == before[1] == 0
    assert _public_status(staff)[0][0] == "released"


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"event_id": "nope", "reason": "typo"}, 404, "no custody event has the event id 'nope'"),
        ({"event_id": "rel-wrong", "reason": ""}, 422, "reason"),
        ({"event_id": "rel-wrong", "reason": "   "}, 422, "reason is required"),
        ({"event_id": "rel-wrong", "reason": "wrong\x00person"}, 422, "reason"),
        ({"event_id": "rel-wrong", "reason": "x" * 2001}, 422, "reason"),
        ({"event_id": "rel-wrong"}, 422, "reason"),
        ({"reason": "typo"}, 422, "event_id"),
        ({"event_id": "", "reason": "typo"}, 422, "event_id"),
        ({"event_id": "rel\x00wrong", "reason": "typo"}, 422, "event_id"),
        ({"event_id": "x" * 201, "reason": "typo"}, 422, "event_id"),
    ],
)
def test_refusals_name_the_field_and_change_nothing(
    staff: Staff, body: dict[str, str], status: int, names: str
) -> None:
    _release(staff)
    headers = _account_token(staff, "sue", "supervisor", ["correct"])
    before = _state(staff)
    answer = staff.client.post(PATH, json=body, headers=headers)
    assert answer.status_code == status, answer.text
    said = answer.json()
    words = said["error"] if "error" in said else " ".join(e["field"] for e in said["errors"])
    assert names in words
    assert _state(staff) == before


def test_no_bearer_token_no_retraction_even_from_a_signed_in_browser(staff: Staff) -> None:
    """The API reads only a bearer token: a console session's cookie (which a cross-site
    form could carry) is not one, so no CSRF token is needed and none could help."""
    _release(staff)
    before = _state(staff)
    refused = staff.client.post(
        PATH,
        json={"event_id": "rel-wrong", "reason": "entered in error"},
        headers={"Cookie": "sv_staff=anything", "Origin": "https://evil.example"},
    )
    assert refused.status_code == 401
    assert _state(staff) == before
