"""Feed health on the staff side: the staff service's clock evaluates by itself, `/metrics`
counts facilities by state and their silence, the operations address gets one alert per
evaluation (by email and webhook, through the worker's sender), a held facility raises
nothing, and the `safevine feed-health` commands work on a real database file."""

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select, text

from safevine.actions import feed_health
from safevine.actions.actor import Actor
from safevine.config import ConfigError, Settings
from safevine.domain.feed_health import Health
from safevine.ingest.events import ingest_events
from safevine.store.public.tables import operations_messages
from safevine.store.schema import audit_log, facilities, facility_health
from safevine.web.server import background_server
from safevine.web.staff_app import create_staff_app
from tests.builders import days_ago, event, jsonl, load_facilities, person
from tests.canaries import NON_PUBLIC, PUBLIC, plant
from tests.cli.test_cli import run
from tests.notify.servers import provider_stub, smtp_sink
from tests.notify.test_operations import _tick
from tests.staff.conftest import make_tokens
from tests.web.conftest import settings_for


def _silence(engine: Engine, hours: float) -> None:
    then = datetime.now(UTC) - timedelta(hours=hours)
    with engine.begin() as c:
        c.execute(text("UPDATE custody_events SET received_at = :t"), {"t": then})


def _fill(engine: Engine, *codes: str) -> None:
    """A few facilities, each with someone booked into it."""
    load_facilities(engine, *codes)
    records = [
        event(
            f"b-{code}",
            "booked",
            days_ago(1),
            person(f"4000000{i:02d}", "Ana", "Ruiz"),
            facility=code,
        )
        for i, code in enumerate(codes)
    ]
    assert ingest_events(engine, jsonl(*records), source="f", fmt="jsonl").rejected == 0


def _canary_words() -> list[str]:
    return [w for c in [PUBLIC, *NON_PUBLIC] for w in c.identifiers]


def test_one_alert_per_evaluation_lists_every_facility_by_mail_and_webhook(
    engine: Engine,
) -> None:
    plant(engine)
    _fill(engine, "G1", "G2", "G3")
    with smtp_sink() as sink, provider_stub() as provider:
        settings = settings_for(
            engine,
            smtp_port=sink.port,
            operations_email="ops@agency.example",
            operations_webhook=f"{provider.base}/hook",
            webhook_allow_private=True,
            retry_base_seconds=1,
            audit_head_every_hours=10_000,
        )
        now = datetime.now(UTC)
        assert feed_health.evaluate(engine, settings, now).changes == []
        _silence(engine, 100)
        changes = feed_health.evaluate(engine, settings, now).changes
        assert sorted(c.code for c in changes) == ["F1", "G1", "G2", "G3"]
        with engine.connect() as c:
            queued = c.execute(
                select(operations_messages).where(operations_messages.c.kind == "feed_health")
            ).all()
        assert sorted(m.channel for m in queued) == ["email", "webhook"]
        _tick(engine, settings, now)
        # The audit head goes out on the first tick too (test_operations.py covers it).
        [letter] = [r for r in sink.wait_for(2) if "feed health" in r.message["Subject"]]
        assert letter.message["Subject"] == "safevine feed health: 4 DOWN"
        for code in ("F1", "G1", "G2", "G3"):
            assert f"- {code} (Facility {code}): current -> DOWN" in letter.text
        assert "/feed-health" in letter.text
        [hook] = [
            r
            for r in provider.requests
            if r["kind"] == "webhook" and json.loads(r["body"])["kind"] == "feed_health"
        ]
        payload = json.loads(hook["body"])
        assert {c["facility"] for c in payload["changes"]} == {"F1", "G1", "G2", "G3"}
        assert not [w for w in _canary_words() if w in letter.text or w in hook["body"].decode()]

        # Held on purpose: no alert when it stays silent; recovery alerts only the others.
        with engine.begin() as c:
            feed_health.hold(c, Actor("sue"), "G3", Health.CLOSED, "closed", now)
        ingest_events(
            engine,
            jsonl(
                *[
                    event(
                        f"n-{code}",
                        "transferred",
                        days_ago(0.001),
                        person(f"4000000{i:02d}", "Ana", "Ruiz"),
                        facility=code,
                    )
                    for i, code in enumerate(("G1", "G2"))
                ]
            ),
            source="f",
            fmt="jsonl",
        )
        later = feed_health.evaluate(engine, settings, now + timedelta(minutes=5)).changes
        assert {c.code: c.after for c in later} == {
            "G1": Health.RECOVERED,
            "G2": Health.RECOVERED,
        }
        _tick(engine, settings, now + timedelta(minutes=5))
        subjects = [r.message["Subject"] for r in sink.wait_for(3)]
        assert "safevine feed health: 2 recovered" in subjects


def test_no_alert_without_an_operations_address_and_none_for_current(engine: Engine) -> None:
    plant(engine)
    settings = settings_for(engine)
    _silence(engine, 100)
    assert feed_health.evaluate(engine, settings, datetime.now(UTC)).changes
    with engine.connect() as c:
        assert c.execute(select(operations_messages)).all() == []


def test_the_staff_service_evaluates_on_its_clock_and_counts_in_metrics(
    engine: Engine,
) -> None:
    plant(engine)
    tokens = make_tokens(engine)
    _silence(engine, 100)
    settings = settings_for(engine, feed_health_every_seconds=1)
    app = create_staff_app(settings)
    try:
        with background_server(app, lifespan=True) as base, httpx.Client(base_url=base) as client:
            deadline = time.monotonic() + 30
            state = None
            while time.monotonic() < deadline:
                with engine.connect() as c:
                    state = c.execute(select(facility_health.c.state)).scalar()
                if state == "down":
                    break
                time.sleep(0.2)
            assert state == "down"
            metrics = client.get(
                "/metrics", headers={"Authorization": f"Bearer {tokens['report']}"}
            ).text
    finally:
        app.state.staff.records_engine.dispose()
    assert 'safevine_feed_facilities{state="down"} 1.0' in metrics
    assert 'safevine_feed_facilities{state="current"} 0.0' in metrics
    [silence] = [
        line
        for line in metrics.splitlines()
        if line.startswith("safevine_feed_seconds_since_data{")
    ]
    assert silence.startswith('safevine_feed_seconds_since_data{facility="F1"}')
    assert 99 * 3600 < float(silence.split()[-1]) < 101 * 3600
    assert not [w for w in _canary_words() if w in metrics]
    with engine.connect() as c:
        reasons = (
            c.execute(select(audit_log.c.reason).where(audit_log.c.action == "feed_health"))
            .scalars()
            .all()
        )
    # The tokens were audited too; the clock's own entry is the one change it found.
    assert reasons == ["new -> down"]


def test_the_command_evaluates_lists_holds_and_sets_cadences(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'feeds.db'}"
    assert run(database, "db", "upgrade").returncode == 0
    from safevine.store.engine import make_engine

    engine = make_engine(database)
    try:
        plant(engine)
        _silence(engine, 100)
    finally:
        engine.dispose()
    done = run(database, "feed-health", "evaluate", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"changes": [{"facility": "F1", "from": None, "to": "down"}]}
    listed = json.loads(run(database, "feed-health", "list", "--json").stdout)
    assert [(f["facility"], f["state"]) for f in listed] == [("F1", "down")]
    assert listed[0]["last_received"] is not None

    held = run(database, "feed-health", "hold", "F1", "--reason", "feed moving", "--actor", "sue")
    assert held.returncode == 0, held.stderr
    listed = json.loads(run(database, "feed-health", "list", "--json").stdout)
    assert (listed[0]["state"], listed[0]["held_reason"], listed[0]["held_by"]) == (
        "paused",
        "feed moving",
        "sue",
    )
    assert run(database, "feed-health", "hold", "NOPE", "--reason", "x").returncode == 2
    unsaid = run(database, "feed-health", "hold", "F1", "--reason", "   ")
    assert unsaid.returncode == 2 and "reason" in unsaid.stderr
    assert run(database, "feed-health", "lift", "F1", "--reason", "moved").returncode == 0

    cadence = run(database, "feed-health", "cadence", "F1", "--events-every", "0.5")
    assert cadence.returncode == 0, cadence.stderr
    too_long = run(database, "feed-health", "cadence", "F1", "--down-after", "100000")
    assert too_long.returncode == 2 and "down_after" in too_long.stderr
    engine = make_engine(database)
    try:
        with engine.connect() as c:
            minutes = c.execute(
                select(facilities.c.events_every_minutes, facilities.c.roster_every_minutes)
            ).one()
            actions = (
                c.execute(select(audit_log.c.action).order_by(audit_log.c.seq)).scalars().all()
            )
    finally:
        engine.dispose()
    assert tuple(minutes) == (30, None)
    assert actions[-3:] == ["feed_health_hold", "feed_health_hold", "feed_cadence"]
    assert run(database, "feed-health", "cadence", "F1", "--learn").returncode == 0


def test_a_bad_cadence_in_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEVINE_FEED_DOWN_AFTER_HOURS", "soon")
    with pytest.raises(ConfigError, match="SAFEVINE_FEED_DOWN_AFTER_HOURS"):
        Settings.from_env()
