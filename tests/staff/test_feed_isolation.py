"""The HTTP feeds answer a batch with bad rows with its summary, never a server error."""

from safevine.store.records.person_view import staff_view
from tests.builders import NOW
from tests.staff.conftest import Staff

TODAY = NOW.date().isoformat()


def test_the_http_protection_feed_answers_with_the_rejects_not_an_error(staff: Staff) -> None:
    body = (
        "a_number,status,as_of\n"
        f"200000011,protected,{TODAY}\n"
        "200000012,protected,0001-01-01T00:00:00+05:00\n"
    )
    answer = staff.client.post(
        "/api/v1/staff/feeds/protections",
        content=body.encode(),
        headers={**staff.as_("ingest"), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert (summary["status"], summary["applied"], summary["rejected"]) == ("completed", 1, 1)
    assert summary["rejects"] == [{"line": 3, "field": "as_of", "reason": "is before 1900-01-01"}]
    with staff.engine.connect() as connection:
        view = staff_view(connection, "200000011")
    assert view is not None and view.protection == "protected"


BEYOND_64_BITS = str(2**64)


def test_path_ids_beyond_64_bits_are_a_field_error_not_a_server_error(staff: Staff) -> None:
    for method, path, who in (
        ("GET", f"/api/v1/staff/holds/{BEYOND_64_BITS}", "ingest"),
        ("POST", f"/api/v1/staff/holds/{BEYOND_64_BITS}/release", "ingest"),
        ("POST", f"/api/v1/staff/holds/{BEYOND_64_BITS}/discard", "ingest"),
        ("POST", f"/api/v1/staff/clear-requests/{BEYOND_64_BITS}/confirm", "protect"),
        ("GET", "/api/v1/staff/holds/0", "ingest"),
    ):
        answer = staff.client.request(method, path, headers=staff.as_(who))
        assert answer.status_code == 422, (path, answer.text)
        assert next(e["field"] for e in answer.json()["errors"]).startswith("path.")


def test_nul_characters_are_a_field_error_and_change_nothing(staff: Staff) -> None:
    # PostgreSQL refuses a NUL at the driver: unchecked, it was a 500 and the action lost.
    answer = staff.client.post(
        "/api/v1/staff/persons/protect",
        json={"a_number": "200000031", "reason": "abuser\x00 known"},
        headers=staff.as_("protect"),
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "reason"
    answer = staff.client.post(
        "/api/v1/staff/tokens",
        json={"name": "desk\x00", "scopes": ["read"]},
        headers=staff.as_("admin"),
    )
    assert answer.status_code == 422
    answer = staff.client.delete("/api/v1/staff/tokens/desk%00", headers=staff.as_("admin"))
    assert answer.status_code == 422
    answer = staff.client.post(
        "/api/v1/staff/feeds/roster?facility=F%001&snapshot_at=2026-01-01T00:00:00Z",
        content=b"snapshot_at,facility_code,a_number\n",
        headers={**staff.as_("ingest"), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 422
    # A reason over several lines is still a reason.
    answer = staff.client.post(
        "/api/v1/staff/persons/protect",
        json={"a_number": "A-200-000-032", "reason": "1367 protection\nsee case file"},
        headers=staff.as_("protect"),
    )
    assert answer.status_code in (200, 404), answer.text


def test_snapshot_times_at_the_edge_of_the_calendar_are_a_field_error(staff: Staff) -> None:
    for edge in ("0001-01-01T00:00:00%2B05:00", "9999-12-31T23:00:00-05:00"):
        answer = staff.client.post(
            f"/api/v1/staff/feeds/roster?snapshot_at={edge}",
            content=b"snapshot_at,facility_code,a_number\n",
            headers={**staff.as_("ingest"), "Content-Type": "text/csv"},
        )
        assert answer.status_code == 422, answer.text
        assert "snapshot_at" in answer.text


def test_dates_at_the_edge_of_the_calendar_are_a_field_error_not_a_server_error(
    staff: Staff,
) -> None:
    for since in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00", "0001-01-01"):
        answer = staff.client.get(
            "/api/v1/staff/audit", params={"since": since}, headers=staff.as_("report")
        )
        assert answer.status_code == 422, (since, answer.text)
        assert answer.json()["error"].startswith("since is "), since
    for snapshot_at in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"):
        answer = staff.client.post(
            "/api/v1/staff/feeds/roster",
            params={"snapshot_at": snapshot_at},
            content=b"snapshot_at,facility_code,a_number\n",
            headers={**staff.as_("ingest"), "Content-Type": "text/csv"},
        )
        assert answer.status_code == 422, (snapshot_at, answer.text)
    fine = staff.client.get(
        "/api/v1/staff/audit", params={"since": "2026-01-01"}, headers=staff.as_("report")
    )
    assert fine.status_code == 200
