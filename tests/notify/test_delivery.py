"""The dispatcher against real peers: SMTP, an SMS/voice provider and a webhook receiver."""

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update

from safevine.domain.contact_address import Channel
from safevine.domain.quiet_hours import QuietHours
from safevine.domain.sms_text import is_gsm7, segments
from safevine.ingest.events import ingest_events
from safevine.store import migrate
from safevine.store.public.tables import notifications, registrations
from safevine.store.records.persons import person_ids_by_a_number
from safevine.store.records.protection import protect
from safevine.web.server import free_port
from tests.builders import days_ago, event, jsonl, person
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery
from tests.notify.servers import smtp_sink

WHO = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country=PUBLIC.country)


def release(engine: Engine, event_id: str = "rel-1", days: float = 0.01) -> None:
    summary = ingest_events(
        engine,
        jsonl(event(event_id, "released", days_ago(days), WHO, reason="parole")),
        source="feed",
        fmt="jsonl",
    )
    assert summary.applied == 1


def states(engine: Engine) -> list[tuple[str, str, str | None]]:
    with engine.connect() as connection:
        return [
            tuple(r)
            for r in connection.execute(  # type: ignore[misc]
                select(
                    notifications.c.purpose, notifications.c.state, notifications.c.cancel_reason
                ).order_by(notifications.c.id)
            )
        ]


def test_an_event_reaches_a_registrant_by_email(delivery: Delivery) -> None:
    confirmed = delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    release(delivery.engine)
    report = delivery.dispatch()
    assert (report.sent, report.failed) == (2, 0)  # the code, then the release
    [code] = [r for r in delivery.sink.received if "code" in r.text]
    [update_message] = [r for r in delivery.sink.received if "released" in r.text]
    assert "Your confirmation code is" in code.text and PUBLIC.given not in code.text
    message = update_message.message
    assert message["Subject"] == "Notification update"
    assert message["From"] == "Notifications <notifications@localhost>"
    assert "Marisol Quintanilla was released from Facility F1 (Eloy, AZ)" in update_message.text
    assert "(on parole)" in update_message.text
    assert f"http://127.0.0.1:8000/m/{confirmed.manage_token}" in update_message.text
    assert any(p.get_content_type() == "text/html" for p in message.walk())
    with delivery.engine.connect() as connection:
        key = connection.execute(
            select(notifications.c.idempotency_key).where(notifications.c.purpose == "event")
        ).scalar_one()
    assert update_message.message_id == f"<{key}@localhost>"
    assert states(delivery.engine) == [("confirmation", "sent", None), ("event", "sent", None)]


def test_discreet_messages_name_nothing(delivery: Delivery) -> None:
    delivery.register(
        delivery.ref(PUBLIC.a_number), "ana@example.org", wording="discreet", language="es"
    )
    release(delivery.engine)
    delivery.dispatch()
    [text] = [r.text for r in delivery.sink.received if "código" not in r.text]
    for revealing in (PUBLIC.given, PUBLIC.family, "Facility", "liberad", "released", "Eloy"):
        assert revealing not in text
    with delivery.engine.connect() as connection:
        number = connection.execute(select(registrations.c.number)).scalar_one()
    assert f"Hay una novedad sobre el registro {number}" in text
    assert "+1 800 555 0100" in text and "http://127.0.0.1:8000/m/" in text


def test_sms_fits_one_gsm7_segment_and_carries_an_idempotency_token(delivery: Delivery) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "(555) 010-0100", Channel.SMS, language="es")
    release(delivery.engine)
    delivery.dispatch()
    texts = [r for r in delivery.provider.requests if r["kind"] == "Messages"]
    assert [r["form"]["To"] for r in texts] == ["+15550100100"] * 2
    [body] = [r["form"]["Body"] for r in texts if "Marisol" in r["form"]["Body"]]
    assert "/m/" in body and is_gsm7(body) and segments(body) == 1
    assert all(r["headers"]["i-twilio-idempotency-token"] for r in texts)
    assert any(r["form"]["Body"].startswith("Su codigo es") for r in texts)


def test_voice_reads_the_message_and_respects_no_voicemail(delivery: Delivery) -> None:
    delivery.register(
        delivery.ref(PUBLIC.a_number), "+1 555 010 0199", Channel.VOICE, allow_voicemail=False
    )
    release(delivery.engine)
    delivery.dispatch()
    calls = [r for r in delivery.provider.requests if r["kind"] == "Calls"]
    assert len(calls) == 2
    [update] = [c["form"] for c in calls if "Marisol" in c["form"]["Twiml"]]
    assert "Marisol Quintanilla was released" in update["Twiml"]
    assert update["MachineDetection"] == "Enable"
    assert all('<Say language="en-US">' in c["form"]["Twiml"] for c in calls)


def test_webhooks_are_signed_and_carry_an_idempotency_key(delivery: Delivery) -> None:
    confirmed = delivery.register(
        delivery.ref(PUBLIC.a_number), f"{delivery.provider.base}/hook", Channel.WEBHOOK
    )
    assert confirmed.webhook_secret
    release(delivery.engine)
    delivery.dispatch()
    hooks = [r for r in delivery.provider.requests if r["kind"] == "webhook"]
    [hook] = [h for h in hooks if json.loads(h["body"])["type"] == "custody_event"]
    headers, body = hook["headers"], hook["body"]
    expected = hmac.new(
        confirmed.webhook_secret.encode(),
        headers["x-safevine-timestamp"].encode() + b"." + body,
        hashlib.sha256,
    )
    assert headers["x-safevine-signature"] == f"sha256={expected.hexdigest()}"
    assert abs(int(headers["x-safevine-timestamp"]) - time.time()) < 60
    payload = json.loads(body)
    assert (
        payload["event"]["kind"] == "released"
        and payload["person"]["name"] == "Marisol Quintanilla"
    )
    assert headers["idempotency-key"]


def test_quiet_hours_hold_calls_and_texts_visibly(delivery: Delivery) -> None:
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    delivery.register(
        delivery.ref(PUBLIC.a_number),
        "+15550100100",
        Channel.SMS,
        quiet_hours=QuietHours(start, end, "UTC"),
    )
    release(delivery.engine)
    report = delivery.dispatch()
    assert (report.sent, report.deferred) == (1, 1)  # the code goes, the update waits
    with delivery.engine.connect() as connection:
        held = connection.execute(
            select(notifications).where(notifications.c.purpose == "event")
        ).one()
    assert (held.state, held.deferred_reason) == ("queued", "quiet_hours")
    assert abs((held.next_attempt_at - (now + timedelta(hours=2))).total_seconds()) < 120


def test_a_refused_number_fails_with_the_providers_reason(delivery: Delivery) -> None:
    delivery.provider.invalid_numbers.add("+15550100177")
    delivery.register(delivery.ref(PUBLIC.a_number), "+15550100177", Channel.SMS)
    report = delivery.dispatch()
    assert report.failed == 1
    with delivery.engine.connect() as connection:
        row = connection.execute(select(notifications)).one()
    assert row.state == "failed" and "21211" in row.last_error and row.attempts == 1


def test_a_refused_mailbox_fails_and_a_busy_server_is_tried_again(delivery: Delivery) -> None:
    delivery.sink.refused.add("gone@example.org")
    for address in ("gone@example.org", "ana@example.org"):
        delivery.register(delivery.ref(PUBLIC.a_number), address)
    delivery.sink.busy = True
    # Retries far enough off that none comes due again within this run, however slow
    # the machine (the next step makes them due on purpose).
    report = delivery.dispatch(retry_base_seconds=60.0)
    assert (report.sent, report.retrying) == (0, 2)
    with delivery.engine.connect() as connection:
        errors = connection.execute(select(notifications.c.last_error)).scalars().all()
    assert all("SMTP 451" in e for e in errors)
    delivery.sink.busy = False
    with delivery.engine.begin() as connection:
        connection.execute(update(notifications).values(next_attempt_at=datetime.now(UTC)))
    report = delivery.dispatch()
    assert (report.sent, report.failed) == (1, 1)
    with delivery.engine.connect() as connection:
        failed = connection.execute(
            select(notifications).where(notifications.c.state == "failed")
        ).one()
    assert "recipient refused" in failed.last_error and "550" in failed.last_error
    assert [r.recipients for r in delivery.sink.received] == [["ana@example.org"]]


def test_a_recipient_refused_for_now_is_tried_again(delivery: Delivery) -> None:
    # Greylisting answers 4xx at RCPT: the mailbox exists, the first attempt is refused.
    delivery.sink.greylisted.add("ana@example.org")
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    report = delivery.dispatch()
    assert (report.sent, report.failed, report.retrying) == (0, 0, 1)
    with delivery.engine.connect() as connection:
        row = connection.execute(select(notifications)).one()
    assert row.state == "retrying" and "450" in row.last_error
    delivery.sink.greylisted.clear()
    with delivery.engine.begin() as connection:
        connection.execute(update(notifications).values(next_attempt_at=datetime.now(UTC)))
    assert delivery.dispatch().sent == 1
    assert [r.recipients for r in delivery.sink.received] == [["ana@example.org"]]


def test_transient_failures_retry_with_backoff_then_end_as_failed(delivery: Delivery) -> None:
    delivery.provider.fail_next = 1_000
    delivery.register(delivery.ref(PUBLIC.a_number), "+15550100100", Channel.SMS)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        delivery.dispatch(retry_base_seconds=0.01)
        with delivery.engine.connect() as connection:
            row = connection.execute(select(notifications)).one()
        if row.state == "failed":
            break
        time.sleep(0.05)
    assert row.state == "failed" and row.attempts == 8 and "503" in row.last_error


def test_smtp_down_then_up_and_everything_arrives(delivery: Delivery) -> None:
    port = free_port()  # nothing listens there yet
    for n in range(3):
        delivery.register(delivery.ref(PUBLIC.a_number), f"r{n}@example.org")
    release(delivery.engine)
    # Retries a long way off, so that one dispatch meets each message once however slowly
    # the machine runs; they are made due again below, as time would.
    report = delivery.dispatch(smtp_port=port, retry_base_seconds=600)
    assert report.retrying == 6 and report.sent == 0
    with delivery.engine.begin() as connection:
        errors = connection.execute(select(notifications.c.last_error)).scalars().all()
        connection.execute(update(notifications).values(next_attempt_at=datetime.now(UTC)))
    assert len(errors) == 6 and all("SMTP" in e for e in errors)
    with smtp_sink(port=port) as late:
        deadline = time.monotonic() + 30
        while len(late.received) < 6 and time.monotonic() < deadline:
            time.sleep(0.3)
            delivery.dispatch(smtp_port=port)
        assert len(late.received) == 6
    assert {s for _, s, _ in states(delivery.engine)} == {"sent"}


def test_protection_cancels_queued_messages_and_ends_registrations(delivery: Delivery) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    release(delivery.engine)
    with delivery.engine.begin() as connection:
        person_id = person_ids_by_a_number(connection, [PUBLIC.a_number])[PUBLIC.a_number]
        protect(
            connection, person_id, actor="t", source="staff", reason="1367", now=datetime.now(UTC)
        )
    assert states(delivery.engine) == [
        ("confirmation", "cancelled", "record_unavailable"),
        ("event", "cancelled", "record_unavailable"),
    ]
    with delivery.engine.connect() as connection:
        row = connection.execute(select(registrations.c.state, registrations.c.end_reason)).one()
    assert tuple(row) == ("ended", "record_unavailable")
    assert delivery.dispatch().sent == 0
    assert delivery.sink.received == []


def test_the_last_gate_stops_a_person_who_aged_out(delivery: Delivery) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    release(delivery.engine, days=5)
    with delivery.engine.begin() as connection:
        migrate.sync_policy(connection, 3)  # released five days ago: no longer public
    report = delivery.dispatch()
    assert report.cancelled == 1 and report.sent == 1  # only the code went
    assert all(PUBLIC.family not in r.text for r in delivery.sink.received)
    with delivery.engine.connect() as connection:
        assert (
            connection.execute(select(registrations.c.end_reason)).scalar_one()
            == "record_unavailable"
        )


def test_late_events_fill_history_without_alerting(delivery: Delivery) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    ingest_events(
        delivery.engine,
        jsonl(event("old-transfer", "transferred", days_ago(200), WHO)),
        source="late",
        fmt="jsonl",
    )
    with delivery.engine.connect() as connection:
        assert connection.execute(select(notifications.c.purpose)).scalars().all() == [
            "confirmation"
        ]
