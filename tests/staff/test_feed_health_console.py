"""The console's feed health pages over real HTTP on both databases: every facility worst
first, filtered and sorted without JavaScript; one facility's changes and outages; an
auditor reads but cannot hold; a supervisor pauses, closes, lifts and sets cadences, each
audited, and nonsense is refused naming the field; the dashboard counts them; the staff
API lists them for a report token."""

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, text

from safevine.actions import feed_health
from safevine.store.records import staff_tokens
from safevine.store.schema import audit_log, facilities, facility_health
from tests.builders import days_ago, event, jsonl, load_facilities, person
from tests.staff.desk import Desk
from tests.web.conftest import settings_for


def _three_facilities(engine: Engine) -> None:
    """F1 (the canaries') down, F2 late, F3 current."""
    from safevine.ingest.events import ingest_events

    load_facilities(engine, "F2", "F3")
    records = [
        event(f"b-{code}", "booked", days_ago(1), person(f"40000000{i}", "Ana", "Ruiz"), code)
        for i, code in enumerate(("F2", "F3"))
    ]
    assert ingest_events(engine, jsonl(*records), source="f", fmt="jsonl").rejected == 0
    now = datetime.now(UTC)
    with engine.begin() as c:
        for code, hours in (("F1", 100), ("F2", 40), ("F3", 1)):
            c.execute(
                text(
                    "UPDATE custody_events SET received_at = :t WHERE facility_id = "
                    "(SELECT id FROM facilities WHERE code = :code)"
                ),
                {"t": now - timedelta(hours=hours), "code": code},
            )
    feed_health.evaluate(engine, settings_for(engine), now)


def _codes_in_order(page: str) -> list[str]:
    return re.findall(r'href="/feed-health/(F\d)"', page)


def test_every_facility_worst_first_filtered_and_sorted(desk: Desk) -> None:
    _three_facilities(desk.engine)
    client, _ = desk.sign_in("ann")  # an auditor
    listed = client.get("/feed-health")
    assert listed.status_code == 200
    assert _codes_in_order(listed.text) == ["F1", "F2", "F3"]
    assert "All <strong>3</strong>" in listed.text and "Down <strong>1</strong>" in listed.text
    late = client.get("/feed-health?state=late").text
    assert _codes_in_order(late) == ["F2"]
    assert _codes_in_order(client.get("/feed-health?q=f3").text) == ["F3"]
    assert _codes_in_order(client.get("/feed-health?sort=silence").text) == ["F1", "F2", "F3"]
    by_name = client.get("/feed-health?sort=facility&state=nonsense&q=" + "x" * 500)
    assert by_name.status_code == 200 and "No facility matches." in by_name.text
    one = client.get("/feed-health/F1")
    assert one.status_code == 200
    assert "under way" in one.text  # its outage
    assert "current" in one.text and "down" in one.text
    assert 'action="/feed-health/F1/hold"' not in one.text  # an auditor changes nothing
    assert client.get("/feed-health/NOPE").status_code == 404
    # The dashboard counts them, and links here.
    home = client.get("/").text
    assert "Facility feeds" in home and 'href="/feed-health"' in home
    assert re.search(r"1 <span class=\"unit\">down</span> · 1 <span class=\"unit\">late", home)


def test_an_auditor_may_not_hold_and_a_screener_may_not_look(desk: Desk) -> None:
    _three_facilities(desk.engine)
    client, token = desk.sign_in("ann")
    refused = client.post(
        "/feed-health/F1/hold", data={"csrf_token": token, "held": "paused", "reason": "x"}
    )
    assert refused.status_code == 403
    screener, _ = desk.sign_in("sam")
    assert screener.get("/feed-health").status_code == 403
    with desk.engine.connect() as c:
        assert c.execute(select(facility_health.c.held)).scalars().all() == [None] * 3


def test_a_supervisor_pauses_closes_lifts_and_sets_cadences(desk: Desk) -> None:
    _three_facilities(desk.engine)
    client, token = desk.sign_in("sue")
    page = client.get("/feed-health/F1").text
    assert 'action="/feed-health/F1/hold"' in page
    unsaid = client.post(
        "/feed-health/F1/hold", data={"csrf_token": token, "held": "paused", "reason": "  "}
    )
    assert unsaid.status_code == 422 and "Reason is required" in unsaid.text
    odd = client.post(
        "/feed-health/F1/hold", data={"csrf_token": token, "held": "gone", "reason": "x"}
    )
    assert odd.status_code == 422 and "Held must be paused or closed" in odd.text
    stale = client.post(
        "/feed-health/F1/hold", data={"csrf_token": "forged", "held": "paused", "reason": "x"}
    )
    assert stale.status_code == 403
    done = client.post(
        "/feed-health/F1/hold",
        data={"csrf_token": token, "held": "closed", "reason": "closed on 1 December"},
    )
    assert done.status_code == 303 and done.headers["location"] == "/feed-health/F1?done=closed"
    shown = client.get(done.headers["location"]).text
    assert "Closed: no alert or notice" in shown and "closed on 1 December (sue)" in shown
    assert 'action="/feed-health/F1/lift"' in shown
    lifted = client.post("/feed-health/F1/lift", data={"csrf_token": token, "reason": "reopened"})
    assert lifted.status_code == 303

    for value, field in (("-1", "Roster every"), ("abc", "Roster every"), ("1e9", "Roster every")):
        bad = client.post(
            "/feed-health/F2/cadence",
            data={"csrf_token": token, "roster_every": value, "events_every": "", "down_after": ""},
        )
        assert bad.status_code == 422 and field in bad.text, (value, bad.text[:200])
    good = client.post(
        "/feed-health/F2/cadence",
        data={"csrf_token": token, "roster_every": "0.25", "events_every": "2", "down_after": ""},
    )
    assert good.status_code == 303
    assert "Cadence saved" in client.get(good.headers["location"]).text
    with desk.engine.connect() as c:
        cadence = c.execute(
            select(
                facilities.c.roster_every_minutes,
                facilities.c.events_every_minutes,
                facilities.c.down_after_minutes,
            ).where(facilities.c.code == "F2")
        ).one()
        audited = [
            (r.actor, r.action, r.reason)
            for r in c.execute(
                select(audit_log).where(
                    audit_log.c.action.in_(("feed_health_hold", "feed_cadence"))
                )
            )
        ]
    assert tuple(cadence) == (15, 120, None)
    assert audited == [
        ("sue", "feed_health_hold", "closed: closed on 1 December"),
        ("sue", "feed_health_hold", "lifted: reopened"),
        (
            "sue",
            "feed_cadence",
            "down_after_minutes=learned, events_every_minutes=120, roster_every_minutes=15",
        ),
    ]


def test_the_staff_api_lists_feed_health_for_a_report_token(desk: Desk) -> None:
    _three_facilities(desk.engine)
    now = datetime.now(UTC)
    with desk.engine.begin() as c:
        report = staff_tokens.create(c, "reports", ["report"], now)
        reader = staff_tokens.create(c, "reader", ["read"], now)
    client = desk.client()
    answer = client.get("/api/v1/staff/feed-health", headers={"Authorization": f"Bearer {report}"})
    assert answer.status_code == 200
    rows = answer.json()["facilities"]
    assert [(r["facility"], r["state"]) for r in rows] == [
        ("F1", "down"),
        ("F2", "late"),
        ("F3", "current"),
    ]
    assert rows[0]["last_received"] and rows[0]["cadence_learned"] is True
    refused = client.get("/api/v1/staff/feed-health", headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403
    assert client.get("/api/v1/staff/feed-health").status_code == 401
