"""Registrants told of a feed outage: one notice when their person's facility goes down and
one when it is back, through the real dispatcher to a real SMTP server and SMS provider;
never twice for one outage, none for a paused facility, none about a person who is not
public, and quiet hours respected. The notices name nothing: not the person, not the
facility."""

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text, update

from safevine.actions import feed_health
from safevine.actions.actor import Actor
from safevine.domain.contact_address import Channel
from safevine.domain.feed_health import Health
from safevine.domain.quiet_hours import QuietHours
from safevine.store.public.tables import notifications, registrations
from safevine.store.records.persons import person_ids_by_a_number
from safevine.store.records.protection import protect
from safevine.store.schema import feed_outages, persons
from tests.builders import days_ago, event, jsonl, person
from tests.canaries import NON_PUBLIC, PUBLIC
from tests.notify.conftest import Delivery
from tests.notify.test_delivery import release

WHO = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country=PUBLIC.country)


def _silence(engine: Engine, hours: float) -> None:
    """As if everything arrived `hours` ago and nothing since."""
    then = datetime.now(UTC) - timedelta(hours=hours)
    with engine.begin() as c:
        c.execute(text("UPDATE custody_events SET received_at = :t"), {"t": then})
        c.execute(text("UPDATE roster_snapshots SET applied_at = :t"), {"t": then})


def _evaluate(delivery: Delivery) -> dict[str, Health]:
    result = feed_health.evaluate(delivery.engine, delivery.settings, datetime.now(UTC))
    return {c.code: c.after for c in result.changes}


def _notices(engine: Engine) -> list[tuple[str, str, str | None]]:
    with engine.connect() as c:
        return [
            (r.purpose, r.state, r.cancel_reason)
            for r in c.execute(
                select(notifications)
                .where(notifications.c.purpose.in_(("delay", "resumed")))
                .order_by(notifications.c.id)
            )
        ]


def _back(engine: Engine) -> None:
    from safevine.ingest.events import ingest_events

    summary = ingest_events(
        engine,
        jsonl(event("back-1", "transferred", days_ago(0.001), WHO)),
        source="feed",
        fmt="jsonl",
    )
    assert summary.applied == 1


def _registration(engine: Engine) -> tuple[int, int]:
    """The newest registration's id and the number its messages show."""
    with engine.connect() as c:
        row = c.execute(
            select(registrations.c.id, registrations.c.number).order_by(registrations.c.id.desc())
        ).first()
    assert row is not None
    return int(row.id), int(row.number)


def _texts(delivery: Delivery) -> list[str]:
    return [
        r["form"].get("Body", "") for r in delivery.provider.requests if r["kind"] == "Messages"
    ]


def _leaks(body: str) -> list[str]:
    """Names, A-numbers or the facility in the message, its links aside (a random manage
    token may hold any two letters, "F1" among them)."""
    words = [*PUBLIC.identifiers, "Facility F1", "Eloy", "F1"]
    for canary in NON_PUBLIC:
        words += canary.identifiers
    text = re.sub(r"https?://\S+", "", body)
    return [w for w in words if w in text]


def test_one_notice_when_the_facility_goes_down_and_one_when_it_is_back(
    delivery: Delivery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    _, number = _registration(delivery.engine)
    delivery.dispatch()  # the confirmation code
    _silence(delivery.engine, 100)
    assert _evaluate(delivery) == {"F1": Health.DOWN}
    assert _evaluate(delivery) == {}  # still down: nothing new
    assert _notices(delivery.engine) == [("delay", "queued", None)]

    before = len(delivery.sink.received)
    report = delivery.dispatch()
    assert report.sent == 1
    [notice] = delivery.sink.received[before:]
    assert f"Updates about registration {number} may be delayed" in notice.text
    last = (datetime.now(UTC) - timedelta(hours=100)).strftime("%B %-d, %Y")
    assert f"since {last}" in notice.text
    assert _leaks(notice.text) == []
    assert notice.message["Subject"] == "Notification update"

    _back(delivery.engine)
    assert _evaluate(delivery) == {"F1": Health.RECOVERED}
    assert _evaluate(delivery) == {"F1": Health.CURRENT}
    assert [n[:2] for n in _notices(delivery.engine)] == [("delay", "sent"), ("resumed", "queued")]
    before = len(delivery.sink.received)
    delivery.dispatch()
    texts = [r.text for r in delivery.sink.received[before:]]
    [resumed] = [t for t in texts if "have resumed" in t]
    assert f"Updates about registration {number} have resumed" in resumed
    assert _leaks(resumed) == []
    with delivery.engine.connect() as c:
        outage = c.execute(select(feed_outages)).one()
    assert (outage.delay_notices, outage.resumed_notices) == (1, 1)
    assert outage.ended_at is not None
    # safevine's own records (the test's SMTP server logs every line it receives).
    ours = [r for r in caplog.records if r.name.startswith("safevine")]
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in ours)
    people = [w for c in [PUBLIC, *NON_PUBLIC] for w in c.identifiers]
    assert ours and [w for w in people if w in logged] == []


def test_a_second_outage_is_told_again_but_one_outage_never_twice(delivery: Delivery) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    for round_ in range(2):
        _silence(delivery.engine, 100)
        _evaluate(delivery)
        _evaluate(delivery)
        delivery.dispatch()
        from safevine.ingest.events import ingest_events

        ingest_events(
            delivery.engine,
            jsonl(event(f"back-{round_}", "transferred", days_ago(0.001), WHO)),
            source="feed",
            fmt="jsonl",
        )
        _evaluate(delivery)
        delivery.dispatch()
    purposes = [n[0] for n in _notices(delivery.engine)]
    assert purposes == ["delay", "resumed", "delay", "resumed"]


def test_a_notice_not_yet_sent_when_the_feed_is_back_is_withdrawn(delivery: Delivery) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    delivery.dispatch()
    _silence(delivery.engine, 100)
    _evaluate(delivery)
    _back(delivery.engine)
    _evaluate(delivery)
    # It would have said the facility is silent, which is no longer true; nothing follows.
    assert _notices(delivery.engine) == [("delay", "cancelled", "superseded")]


def test_quiet_hours_hold_a_delay_notice_by_text(delivery: Delivery) -> None:
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    delivery.register(
        delivery.ref(PUBLIC.a_number),
        "+15550100100",
        Channel.SMS,
        quiet_hours=QuietHours(start, end, "UTC"),
    )
    delivery.dispatch()
    _silence(delivery.engine, 100)
    _evaluate(delivery)
    report = delivery.dispatch()
    assert (report.sent, report.deferred) == (0, 1)
    with delivery.engine.connect() as c:
        held = c.execute(select(notifications).where(notifications.c.purpose == "delay")).one()
    assert (held.state, held.deferred_reason) == ("queued", "quiet_hours")
    assert [t for t in _texts(delivery) if "delayed" in t] == []


def test_a_text_names_nothing_and_fits_one_message(delivery: Delivery) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "+15550100100", Channel.SMS)
    delivery.dispatch()
    _silence(delivery.engine, 100)
    _evaluate(delivery)
    delivery.dispatch()
    [sms] = [t for t in _texts(delivery) if "delayed" in t]
    assert _leaks(sms) == [] and len(sms) <= 160


def test_no_notice_about_a_person_who_is_not_public(delivery: Delivery) -> None:
    """Protected after registering: the registration ended, and no notice is written. A
    registration left active by any other path is still filtered by the public view."""
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    registration_id, _ = _registration(delivery.engine)
    delivery.dispatch()
    with delivery.engine.begin() as c:
        person_id = person_ids_by_a_number(c, [PUBLIC.a_number])[PUBLIC.a_number]
        protect(c, person_id, actor="t", source="staff", reason="1367", now=datetime.now(UTC))
    _silence(delivery.engine, 100)
    assert _evaluate(delivery) == {"F1": Health.DOWN}
    assert _notices(delivery.engine) == []
    # Forced back to active behind the system's back: the public view still decides.
    with delivery.engine.begin() as c:
        c.execute(
            update(registrations)
            .where(registrations.c.id == registration_id)
            .values(state="active")
        )
        c.execute(text("DELETE FROM feed_outages"))
        c.execute(text("UPDATE facility_health SET state = 'current', outage_id = NULL"))
    assert _evaluate(delivery) == {"F1": Health.DOWN}
    assert _notices(delivery.engine) == []


def test_protection_cancels_a_queued_delay_notice(delivery: Delivery) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    delivery.dispatch()
    _silence(delivery.engine, 100)
    _evaluate(delivery)
    with delivery.engine.begin() as c:
        person_id = person_ids_by_a_number(c, [PUBLIC.a_number])[PUBLIC.a_number]
        protect(c, person_id, actor="t", source="staff", reason="1367", now=datetime.now(UTC))
    assert [n[:2] for n in _notices(delivery.engine)] == [("delay", "cancelled")]
    before = len(delivery.sink.received)
    delivery.dispatch()
    assert delivery.sink.received[before:] == []


def test_a_paused_facility_tells_no_one(delivery: Delivery) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    delivery.dispatch()
    with delivery.engine.begin() as c:
        feed_health.hold(
            c, Actor("sue"), "F1", Health.PAUSED, "moving to a new feed", datetime.now(UTC)
        )
    _silence(delivery.engine, 100)
    assert _evaluate(delivery) == {}
    assert _notices(delivery.engine) == []


def test_pausing_a_down_facility_withdraws_what_was_not_sent(delivery: Delivery) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    delivery.dispatch()
    _silence(delivery.engine, 100)
    _evaluate(delivery)
    with delivery.engine.begin() as c:
        feed_health.hold(
            c, Actor("sue"), "F1", Health.CLOSED, "closed on 1 December", datetime.now(UTC)
        )
        outage = c.execute(select(feed_outages)).one()
        state = c.execute(text("SELECT state, held FROM facility_health")).one()
    assert _notices(delivery.engine) == [("delay", "cancelled", "superseded")]
    assert outage.ended_at is not None
    assert tuple(state) == ("closed", "closed")
    assert _evaluate(delivery) == {}


def test_a_registration_for_a_person_released_from_the_facility_is_not_told(
    delivery: Delivery,
) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    release(delivery.engine, days=0.5)
    delivery.dispatch()
    _silence(delivery.engine, 100)
    assert _evaluate(delivery) == {"F1": Health.DOWN}
    assert _notices(delivery.engine) == []
    with delivery.engine.connect() as c:
        assert c.execute(select(persons.c.id)).first() is not None


def test_who_registers_during_an_outage_is_told_at_the_next_evaluation(
    delivery: Delivery,
) -> None:
    _silence(delivery.engine, 100)
    assert _evaluate(delivery) == {"F1": Health.DOWN}
    assert _notices(delivery.engine) == []  # nobody registered yet
    delivery.register(delivery.ref(PUBLIC.a_number), "late@example.org")
    assert _evaluate(delivery) == {}
    assert _notices(delivery.engine) == [("delay", "queued", None)]
    assert _evaluate(delivery) == {}
    assert _notices(delivery.engine) == [("delay", "queued", None)]


def test_notices_a_failed_run_did_not_queue_are_queued_by_the_next(
    delivery: Delivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notices are queued after the judgement commits: when that step fails, the states
    and outages stand and the next run tells everyone once."""
    from safevine.store.records import feed_notices

    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    delivery.dispatch()
    real = feed_notices.queue_resumed_notices

    def broken(*args: object) -> int:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(feed_notices, "queue_delay_notices", broken)
    _silence(delivery.engine, 100)
    with pytest.raises(RuntimeError):
        _evaluate(delivery)
    assert _notices(delivery.engine) == []
    monkeypatch.undo()
    now = datetime.now(UTC)
    assert feed_health.judge(delivery.engine, delivery.settings, now).changes == []  # judged
    assert feed_health.queue_notices(delivery.engine, now) == (1, 0)
    assert _notices(delivery.engine) == [("delay", "queued", None)]
    delivery.dispatch()

    monkeypatch.setattr(feed_notices, "queue_resumed_notices", broken)
    _back(delivery.engine)
    with pytest.raises(RuntimeError):
        _evaluate(delivery)
    with delivery.engine.connect() as c:
        assert c.execute(select(feed_outages.c.ended_at)).scalar_one() is not None
    assert [n[:2] for n in _notices(delivery.engine)] == [("delay", "sent")]
    monkeypatch.setattr(feed_notices, "queue_resumed_notices", real)
    assert feed_health.queue_notices(delivery.engine, datetime.now(UTC)) == (0, 1)
    assert feed_health.queue_notices(delivery.engine, datetime.now(UTC)) == (0, 0)
    assert [n[:2] for n in _notices(delivery.engine)] == [("delay", "sent"), ("resumed", "queued")]


def test_closing_a_down_facility_sends_no_resumed_notice(delivery: Delivery) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    delivery.dispatch()
    _silence(delivery.engine, 100)
    _evaluate(delivery)
    delivery.dispatch()
    with delivery.engine.begin() as c:
        feed_health.hold(
            c, Actor("sue"), "F1", Health.CLOSED, "closed on 1 December", datetime.now(UTC)
        )
    _evaluate(delivery)
    assert [n[:2] for n in _notices(delivery.engine)] == [("delay", "sent")]
