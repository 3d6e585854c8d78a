"""The staff API: every scope and every refusal, feeds as request bodies, protection and the
two-person clear, all through the live app."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from safevine.store.schema import audit_log, clear_requests, ingest_batches
from tests.builders import csv_lines, days_ago, event, person
from tests.canaries import PROTECTED, PUBLIC
from tests.staff.conftest import Staff

ENDPOINTS = [
    ("POST", "/api/v1/staff/feeds/events", "ingest"),
    ("POST", "/api/v1/staff/feeds/roster", "ingest"),
    ("POST", "/api/v1/staff/feeds/protections", "ingest"),
    ("POST", "/api/v1/staff/feeds/facilities", "ingest"),
    ("POST", "/api/v1/staff/persons/protect", "protect"),
    ("POST", "/api/v1/staff/persons/clear", "protect"),
    ("POST", "/api/v1/staff/clear-requests/1/confirm", "protect"),
    ("POST", "/api/v1/staff/persons/lookup", "read"),
    ("GET", "/api/v1/staff/report", "report"),
    ("GET", "/staff/report", "report"),
    ("GET", "/api/v1/staff/audit", "report"),
    ("GET", "/metrics", "report"),
    ("GET", "/api/v1/staff/tokens", "admin"),
    ("POST", "/api/v1/staff/tokens", "admin"),
    ("DELETE", "/api/v1/staff/tokens/ingest-desk", "admin"),
    ("GET", "/api/v1/staff/holds", "ingest"),
    ("GET", "/api/v1/staff/holds/1", "ingest"),
    ("POST", "/api/v1/staff/holds/1/release", "ingest"),
    ("POST", "/api/v1/staff/holds/1/discard", "ingest"),
    ("POST", "/api/v1/staff/events/retract", "correct"),
]


def counts(staff: Staff) -> tuple[int, int, int]:
    with staff.engine.connect() as connection:
        return (
            connection.execute(select(func.count()).select_from(ingest_batches)).scalar_one(),
            connection.execute(select(func.count()).select_from(audit_log)).scalar_one(),
            connection.execute(select(func.count()).select_from(clear_requests)).scalar_one(),
        )


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_every_endpoint_refuses_and_does_nothing(
    staff: Staff, method: str, path: str, scope: str
) -> None:
    before = counts(staff)
    body = {"content": b"x", "headers": {"Content-Type": "text/csv"}}
    wrong_scope = "read" if scope != "read" else "ingest"
    for headers, status in [
        ({}, 401),
        ({"Authorization": "Bearer svt_not-a-real-token"}, 401),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401),
        (staff.as_("revoked"), 401),
        (staff.as_(wrong_scope), 403),
    ]:
        answer = staff.client.request(
            method, path, **{**body, "headers": {**body["headers"], **headers}}
        )  # type: ignore[arg-type]
        assert answer.status_code == status, (headers, answer.text)
        assert "error" in answer.json()
    after = counts(staff)
    assert after[0] == before[0] and after[2] == before[2]
    assert after[1] == before[1]  # a refused request writes nothing, not even an audit entry


def test_an_events_feed_as_a_body_answers_like_the_cli(staff: Staff) -> None:
    who = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country="MX")
    body = (
        "\n".join(
            json.dumps(r)
            for r in [event("http-1", "transferred", days_ago(1), who), {"event_id": "bad"}]
        )
        + "\n"
    )
    headers = {**staff.as_("ingest"), "Content-Type": "application/x-ndjson"}
    first = staff.client.post("/api/v1/staff/feeds/events", content=body, headers=headers)
    assert first.status_code == 200
    summary = first.json()
    assert (summary["applied"], summary["rejected"]) == (1, 1)
    assert summary["rejects"][0] == {"line": 2, "field": "kind", "reason": "is required"}
    again = staff.client.post("/api/v1/staff/feeds/events", content=body, headers=headers).json()
    assert (again["applied"], again["duplicates"]) == (0, 1)


@pytest.mark.parametrize(
    ("content", "media", "status", "message"),
    [
        ("garbage that is not json\n" * 6, "application/x-ndjson", 422, "not JSON Lines"),
        ("id,what\n1,x\n", "text/csv", 422, "lacks required column"),
        ("{}", "application/json", 415, "send this feed as"),
        ("", "application/x-ndjson", 400, "empty"),
    ],
)
def test_a_body_not_in_the_format_is_refused_and_changes_nothing(
    staff: Staff, content: str, media: str, status: int, message: str
) -> None:
    before = counts(staff)
    answer = staff.client.post(
        "/api/v1/staff/feeds/events",
        content=content,
        headers={**staff.as_("ingest"), "Content-Type": media},
    )
    assert answer.status_code == status and message in answer.json()["error"]
    assert counts(staff)[0] == before[0]


def test_a_stale_roster_is_refused_with_409(staff: Staff) -> None:
    headers = {**staff.as_("ingest"), "Content-Type": "text/csv"}
    header = ["snapshot_at", "facility_code", "a_number"]
    new = csv_lines(header, [days_ago(1).isoformat(), "F1", PUBLIC.a_number])
    old = csv_lines(header, [days_ago(2).isoformat(), "F1", PUBLIC.a_number])
    assert (
        staff.client.post(
            "/api/v1/staff/feeds/roster", content=b"".join(new), headers=headers
        ).status_code
        == 200
    )
    refused = staff.client.post(
        "/api/v1/staff/feeds/roster", content=b"".join(old), headers=headers
    )
    assert refused.status_code == 409 and refused.json()["status"] == "refused"


def test_protect_then_a_two_person_clear(staff: Staff) -> None:
    protect = staff.client.post(
        "/api/v1/staff/persons/protect",
        json={"a_number": PUBLIC.a_number, "reason": "T visa filed"},
        headers=staff.as_("protect"),
    )
    assert protect.status_code == 200 and protect.json()["changed"] is True
    search = staff.public.post("/api/v1/search", json=PUBLIC.by_a_number()).json()
    assert search == {"results": []}
    asked = staff.client.post(
        "/api/v1/staff/persons/clear",
        json={"a_number": PUBLIC.a_number, "reason": "screened"},
        headers=staff.as_("protect"),
    )
    assert asked.status_code == 202 and asked.json()["state"] == "pending"
    request_id = asked.json()["request"]
    assert staff.public.post("/api/v1/search", json=PUBLIC.by_a_number()).json()["results"] == []
    same = staff.client.post(
        f"/api/v1/staff/clear-requests/{request_id}/confirm", headers=staff.as_("protect")
    )
    assert same.status_code == 403 and "different person" in same.json()["error"]
    other = staff.client.post(
        f"/api/v1/staff/clear-requests/{request_id}/confirm", headers=staff.as_("protect2")
    )
    assert other.status_code == 200
    assert (
        len(staff.public.post("/api/v1/search", json=PUBLIC.by_a_number()).json()["results"]) == 1
    )
    twice = staff.client.post(
        f"/api/v1/staff/clear-requests/{request_id}/confirm", headers=staff.as_("protect2")
    )
    assert twice.status_code == 409


def test_an_unconfirmed_clear_expires_after_24_hours(staff: Staff) -> None:
    asked = staff.client.post(
        "/api/v1/staff/persons/clear",
        json={"a_number": PROTECTED.a_number, "reason": "screened"},
        headers=staff.as_("protect"),
    ).json()
    with staff.engine.begin() as connection:
        connection.execute(
            update(clear_requests).values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    late = staff.client.post(
        f"/api/v1/staff/clear-requests/{asked['request']}/confirm", headers=staff.as_("protect2")
    )
    assert late.status_code == 409 and "expired" in late.json()["error"]
    shown = staff.client.post(
        "/api/v1/staff/persons/lookup",
        json={"a_number": PROTECTED.a_number},
        headers=staff.as_("read"),
    ).json()
    assert shown["protection"] == "protected"


def test_a_staff_view_is_audited_and_tokens_are_managed(staff: Staff) -> None:
    spelled = f"A-{PUBLIC.a_number[:3]}-{PUBLIC.a_number[3:6]}-{PUBLIC.a_number[6:]}"
    shown = staff.client.post(
        "/api/v1/staff/persons/lookup", json={"a_number": spelled}, headers=staff.as_("read")
    )
    assert shown.status_code == 200 and shown.json()["protection"] == "cleared"
    made = staff.client.post(
        "/api/v1/staff/tokens",
        json={"name": "night-shift", "scopes": ["read"]},
        headers=staff.as_("admin"),
    )
    assert made.status_code == 201 and made.json()["token"].startswith("svt_")
    listed = staff.client.get("/api/v1/staff/tokens", headers=staff.as_("admin")).json()
    assert {"night-shift", "old-laptop"} <= {t["name"] for t in listed}
    assert "token" not in json.dumps(listed).replace('"night-shift"', "")
    new_token = {"Authorization": f"Bearer {made.json()['token']}"}
    lookup = {"a_number": PUBLIC.a_number}
    assert (
        staff.client.post(
            "/api/v1/staff/persons/lookup", json=lookup, headers=new_token
        ).status_code
        == 200
    )
    assert (
        staff.client.delete(
            "/api/v1/staff/tokens/night-shift", headers=staff.as_("admin")
        ).status_code
        == 204
    )
    assert (
        staff.client.post(
            "/api/v1/staff/persons/lookup", json=lookup, headers=new_token
        ).status_code
        == 401
    )
    audit = staff.client.get("/api/v1/staff/audit", headers=staff.as_("report")).json()
    actions = [(e["actor"], e["action"]) for e in audit["entries"]]
    assert ("read-desk", "view_person") in actions
    assert ("admin-desk", "token_create") in actions and ("admin-desk", "token_revoke") in actions
    assert audit["head"] == audit["entries"][-1]["hash"]


def test_staff_endpoints_are_documented_but_never_linked_from_public_pages(staff: Staff) -> None:
    schema = staff.client.get("/openapi.json").json()
    assert "/api/v1/staff/feeds/events" in schema["paths"]
    assert "bearerAuth" in json.dumps(schema) or "HTTPBearer" in json.dumps(schema)
    for page in ("/", "/browse-safely"):
        assert "/staff" not in staff.public.get(page).text


def test_a_held_feed_is_reviewed_and_released_through_the_api(staff: Staff) -> None:
    who = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country="MX")
    future = (
        json.dumps(
            event("soon-1", "released", datetime.now(UTC) + timedelta(days=3), who, reason="bond")
        )
        + "\n"
    )
    answer = staff.client.post(
        "/api/v1/staff/feeds/events",
        content=future,
        headers={**staff.as_("ingest"), "Content-Type": "application/x-ndjson"},
    ).json()
    assert answer["status"] == "held" and answer["hold"]
    listed = staff.client.get("/api/v1/staff/holds", headers=staff.as_("ingest")).json()
    assert [h["id"] for h in listed] == [answer["hold"]] and "future" in listed[0]["rule"]
    shown = staff.client.get(
        f"/api/v1/staff/holds/{answer['hold']}", headers=staff.as_("ingest")
    ).json()
    assert shown["detail"]["counts"] == [{"kind": "released", "facility": "F1", "count": 1}]
    assert shown["detail"]["sample"][0]["person"] > 0  # internal ids only
    assert PUBLIC.a_number not in json.dumps(shown)
    released = staff.client.post(
        f"/api/v1/staff/holds/{answer['hold']}/release", headers=staff.as_("ingest")
    )
    assert released.status_code == 200 and released.json()["state"] == "released"
    again = staff.client.post(
        f"/api/v1/staff/holds/{answer['hold']}/discard", headers=staff.as_("ingest")
    )
    assert again.status_code == 409
    audit = staff.client.get("/api/v1/staff/audit", headers=staff.as_("report")).json()
    assert ("ingest-desk", "hold_release") in [(e["actor"], e["action"]) for e in audit["entries"]]
