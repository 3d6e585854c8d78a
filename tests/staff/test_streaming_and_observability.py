"""A 100 MB feed body in bounded memory; and the report, metrics and logs of a full run
carry no identifier of any canary."""

import json
import logging
import tracemalloc
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from sqlalchemy import Engine

from tests.builders import days_ago, event, person
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PUBLIC
from tests.staff.conftest import Staff


def test_a_100_mb_body_is_streamed_in_bounded_memory(staff: Staff) -> None:
    who = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country="MX")
    line = (
        json.dumps(
            {**event("big-1", "transferred", days_ago(1), who), "padding": "x" * 1000}
        ).encode()
        + b"\n"
    )
    repeats = (100 * 1024 * 1024) // len(line) + 1

    def body() -> Iterator[bytes]:
        chunk = line * 256
        for _ in range(repeats // 256 + 1):
            yield chunk

    tracemalloc.start()
    try:
        answer = staff.client.post(
            "/api/v1/staff/feeds/events",
            content=body(),
            headers={**staff.as_("ingest"), "Content-Type": "application/x-ndjson"},
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status_code == 200
    summary = answer.json()
    assert summary["applied"] == 1 and summary["duplicates"] == summary["total"] - 1
    assert summary["total"] >= repeats
    assert peak < 40 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB for a 100 MB body"


def test_report_metrics_and_logs_carry_no_identifier(
    staff: Staff, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = staff.public.get("/").cookies.get("sv_csrf") or ""
    for canary in [PUBLIC, NEVER_EXISTED, *NON_PUBLIC]:
        for body in (canary.by_a_number(), canary.by_name()):
            staff.public.post("/api/v1/search", json=body)
            staff.public.post("/", data={**body, "csrf_token": token})
    staff.client.post(
        "/api/v1/staff/persons/protect",
        json={"a_number": PUBLIC.a_number, "reason": "test"},
        headers=staff.as_("protect"),
    )
    staff.client.post(
        "/api/v1/staff/persons/lookup", json={"a_number": PROTECTED_A}, headers=staff.as_("read")
    )
    report = staff.client.get("/api/v1/staff/report", headers=staff.as_("report"))
    page = staff.client.get("/staff/report", headers=staff.as_("report"))
    metrics = staff.client.get("/metrics", headers=staff.as_("report"))
    audit = staff.client.get("/api/v1/staff/audit", headers=staff.as_("report"))
    assert report.status_code == page.status_code == metrics.status_code == 200
    assert "<svg" in page.text and "safevine_http_requests" in metrics.text
    # A staff page is the staff console's, not the public site's: no quick exit, no
    # public footer, no browse-safely link.
    for public_part in ("quick-exit", "Leave this site now", "site-footer", "/browse-safely"):
        assert public_part not in page.text
    assert 'route="/api/v1/staff/persons/protect"' in metrics.text
    assert "safevine_queue_depth" in metrics.text
    # The public service's own (`safevine serve --metrics-port`, on an internal port).
    public_metrics = generate_latest(staff.public_app.state.safevine.metrics.registry).decode()
    assert 'route="/api/v1/search"' in public_metrics
    assert "safevine_search_seconds_bucket" in public_metrics
    # The server's own log records; the test's HTTP client logs its own requests.
    server_logs = "\n".join(
        f"{r.name} {r.getMessage()} {r.__dict__}"
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))
    )
    seen = report.text + page.text + metrics.text + public_metrics + audit.text + server_logs
    assert "'route': '/api/v1/search'" in server_logs  # the request log really ran
    for canary in [PUBLIC, NEVER_EXISTED, *NON_PUBLIC]:
        for identifier in canary.identifiers:
            where = seen.find(identifier)
            assert where < 0, (identifier, seen[max(0, where - 300) : where + 100])


PROTECTED_A = NON_PUBLIC[0].a_number
