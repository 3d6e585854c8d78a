"""Corrections: staff retract a custody event recorded in error, and every registrant a
message about it reached is told, in their own language and wording, through the real
worker, the real SMTP sink and the provider simulator; what had not gone yet never goes.
On SQLite and PostgreSQL.

Oregon's 2015 false release alerts went uncorrected for hours; a retraction here queues
the corrections in the transaction that retracts, and the worker sends them at once."""

import json
import logging
import re
import time
from datetime import UTC, date, datetime, timedelta
from email.header import decode_header, make_header
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from sqlalchemy import Engine, func, select, update

from safevine.actions import events as event_actions
from safevine.actions import persons as person_actions
from safevine.actions.actor import Actor
from safevine.domain.contact_address import Channel
from safevine.domain.quiet_hours import QuietHours
from safevine.domain.sms_text import is_gsm7, segments
from safevine.ingest.events import ingest_events
from safevine.notify.messages import MessageContext, render_correction
from safevine.store.public import lookup, registrations
from safevine.store.public.tables import notifications
from safevine.store.public.tables import registrations as registrations_table
from safevine.store.records import holds
from safevine.store.records.retraction import Retraction
from safevine.store.schema import persons
from tests.builders import days_ago, event, jsonl, person
from tests.canaries import NON_PUBLIC, PROTECTED, PUBLIC, UNSCREENED, Canary
from tests.notify.conftest import PIN, Delivery, heard_from_provider
from tests.notify.test_worker_process import start_worker, stop
from tests.sql_plans import plans, statements

SUPERVISOR = Actor("sam-supervisor")
WHO = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country=PUBLIC.country)
NAME = f"{PUBLIC.given} {PUBLIC.family}"


def release(engine: Engine, event_id: str = "rel-wrong", days: float = 0.01) -> None:
    summary = ingest_events(
        engine,
        jsonl(event(event_id, "released", days_ago(days), WHO, reason="bond")),
        source="feed.jsonl",
        fmt="jsonl",
    )
    assert summary.applied == 1


def retract(engine: Engine, event_id: str = "rel-wrong") -> Retraction:
    with engine.begin() as connection:
        return event_actions.retract(
            connection, SUPERVISOR, event_id, "released the wrong person", datetime.now(UTC)
        )


def rows(engine: Engine, purpose: str) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(notifications, registrations_table.c.number, registrations_table.c.channel)
                .join(
                    registrations_table,
                    registrations_table.c.id == notifications.c.registration_id,
                )
                .where(notifications.c.purpose == purpose)
                .order_by(notifications.c.id)
            )
        )


def release_day() -> date:
    """The release's day where Facility F1 is: Eloy, AZ keeps Arizona time (its zone comes
    from its state), so between midnight and 07:00 UTC it is still the day before there."""
    return days_ago(0.01).astimezone(ZoneInfo("America/Phoenix")).date()


def the_day(language: str) -> str:
    """The release's day as a long date, as the messages write it."""
    return format_date(release_day(), "long", locale=language)


def registration_number(engine: Engine, address_hint_start: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(registrations_table.c.number).where(
                    registrations_table.c.address_hint.startswith(address_hint_start),
                    registrations_table.c.state == "active",
                )
            ).scalar_one()
        )


def leaks(text: str, canaries: list[Canary]) -> list[str]:
    found = [w for c in canaries for w in c.identifiers]
    return [w for w in found if w in re.sub(r"https?://\S+", "", text)]


def test_everyone_a_retracted_release_reached_is_corrected_in_their_language_and_wording(
    delivery: Delivery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ref = delivery.ref(PUBLIC.a_number)
    delivery.register(ref, "ana@example.org")
    delivery.register(ref, "bea@example.org", language="es")
    delivery.register(ref, "cai@example.org", wording="discreet")
    delivery.register(ref, "(555) 010-0100", Channel.SMS, language="es")
    delivery.register(ref, "+1 555 010 0199", Channel.VOICE)
    hook = delivery.register(ref, f"{delivery.provider.base}/hook", Channel.WEBHOOK)
    delivery.dispatch()  # the confirmation codes
    delivery.sink.received.clear()
    delivery.provider.requests.clear()
    release(delivery.engine)
    assert delivery.dispatch().sent == 6
    told = {r.registration_id: r for r in rows(delivery.engine, "event")}
    assert {r.state for r in told.values()} <= {"sent", "delivered"}
    [earlier_hook] = [r for r in delivery.provider.requests if r["kind"] == "webhook"]
    delivery.sink.received.clear()
    delivery.provider.requests.clear()

    done = retract(delivery.engine)
    assert (done.cancelled, done.told, done.corrections) == (0, 6, 6)
    corrections = rows(delivery.engine, "correction")
    assert {c.registration_id for c in corrections} == set(told)
    assert {c.state for c in corrections} == {"queued"}
    assert all(c.event_pk is None for c in corrections)
    # The content names no one: the name is read from the public view when it is sent.
    assert leaks(json.dumps([c.content for c in corrections]), [PUBLIC, *NON_PUBLIC]) == []

    report = delivery.dispatch()
    assert (report.sent, report.failed, report.cancelled) == (6, 0, 0)
    mails = {r.recipients[0]: r for r in delivery.sink.received}
    english = mails["ana@example.org"]
    assert english.message["Subject"] == "Correction to an earlier message"
    assert (
        f"The earlier message about {NAME} being released on {the_day('en')} was wrong. "
        f"{NAME} is in custody at Facility F1 (Eloy, AZ)."
    ) in english.text
    assert "/m/" in english.text and "Got this message?" in english.text
    [html] = [p for p in english.message.walk() if p.get_content_type() == "text/html"]
    assert "is in custody at Facility F1" in html.get_payload(decode=True).decode()

    spanish = mails["bea@example.org"]
    subject = str(make_header(decode_header(spanish.message["Subject"])))
    assert subject == "Corrección de un mensaje anterior"
    assert (
        f"El mensaje anterior sobre la salida en libertad de {NAME} el {the_day('es')} era "
        f"incorrecto. {NAME} está bajo custodia en Facility F1 (Eloy, AZ)."
    ) in spanish.text
    assert " was " not in spanish.text

    discreet = mails["cai@example.org"].text
    number = registration_number(delivery.engine, "c")
    assert f"There is a correction for registration {number}." in discreet
    assert "+1 800 555 0100" in discreet
    for revealing in (PUBLIC.given, PUBLIC.family, "Facility", "released", "Eloy", "custody"):
        assert revealing not in discreet

    [text] = [r["form"]["Body"] for r in delivery.provider.requests if r["kind"] == "Messages"]
    short_day = format_date(release_day(), "short", locale="es")
    assert text.startswith(
        f"Correccion: el mensaje del {short_day} sobre {NAME} era incorrecto. "
        "Ahora: Bajo custodia, Facility F1."
    )
    assert is_gsm7(text) and segments(text) == 1 and "/m/" in text

    [call] = [r["form"]["Twiml"] for r in delivery.provider.requests if r["kind"] == "Calls"]
    assert call.count(f"{NAME} is in custody at Facility F1") == 2

    [hook_request] = [r for r in delivery.provider.requests if r["kind"] == "webhook"]
    payload = json.loads(hook_request["body"])
    assert payload["type"] == "correction"
    # The receiver matches it to the message it corrects by that one's Idempotency-Key.
    assert payload["corrects"] == [earlier_hook["headers"]["idempotency-key"]]
    assert payload["retracted_event"]["kind"] == "released"
    assert payload["status"]["state"] == "in_custody"
    assert payload["status"]["facility_name"] == "Facility F1"
    assert payload["person"] == {"name": NAME, "reference": ref}
    assert hook.webhook_secret and hook_request["headers"]["x-safevine-signature"]

    # Nothing is sent twice, and nobody was told anything about a non-public canary.
    assert delivery.dispatch().claimed == 0
    everything = [r.text for r in delivery.sink.received] + [
        json.dumps(r.get("form") or r.get("body", "").decode()) for r in delivery.provider.requests
    ]
    assert leaks("\n".join(everything), NON_PUBLIC) == []
    ours = [r for r in caplog.records if r.name.startswith("safevine")]
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in ours)
    assert ours and leaks(logged, [PUBLIC, *NON_PUBLIC]) == []


def test_messages_about_it_not_yet_sent_are_cancelled_and_never_go(delivery: Delivery) -> None:
    ref = delivery.ref(PUBLIC.a_number)
    delivery.register(ref, "ana@example.org")
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    delivery.register(ref, "+15550100101", Channel.SMS, quiet_hours=QuietHours(start, end, "UTC"))
    delivery.dispatch()  # the codes (a code is never held back)
    delivery.sink.received.clear()
    delivery.provider.requests.clear()
    release(delivery.engine)
    # The mail server is busy (the email waits to be tried again), and the text waits out
    # the quiet hours.
    delivery.sink.busy = True
    report = delivery.dispatch(retry_base_seconds=600)
    assert (report.sent, report.retrying, report.deferred) == (0, 1, 1)
    states = {r.channel: (r.state, r.deferred_reason) for r in rows(delivery.engine, "event")}
    assert states == {"email": ("retrying", None), "sms": ("queued", "quiet_hours")}

    done = retract(delivery.engine)
    assert (done.cancelled, done.told, done.corrections) == (2, 0, 0)
    after = rows(delivery.engine, "event")
    assert [(r.state, r.cancel_reason) for r in after] == [("cancelled", "event_retracted")] * 2
    delivery.sink.busy = False
    with delivery.engine.begin() as connection:  # and were they due now, still nothing
        connection.execute(update(notifications).values(next_attempt_at=now))
    assert delivery.dispatch().claimed == 0
    assert delivery.sink.received == []
    assert [r for r in delivery.provider.requests if r["kind"] == "Messages"] == []
    assert rows(delivery.engine, "correction") == []


def test_a_held_batchs_mistaken_release_retracted_is_never_told(delivery: Delivery) -> None:
    """The 2015 case caught by a hold (a release dated ahead), then retracted: its held
    message is cancelled, and releasing the hold afterwards sends nothing."""
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    delivery.dispatch()
    delivery.sink.received.clear()
    ahead = event("rel-wrong", "released", datetime.now(UTC) + timedelta(hours=1), WHO)
    summary = ingest_events(delivery.engine, jsonl(ahead), source="feed.jsonl", fmt="jsonl")
    assert summary.hold_id is not None
    assert [r.state for r in rows(delivery.engine, "event")] == ["held"]

    done = retract(delivery.engine)
    assert (done.cancelled, done.corrections) == (1, 0)
    with delivery.engine.begin() as connection:
        assert holds.release(connection, summary.hold_id, actor="sam", now=datetime.now(UTC)) == 0
    assert delivery.dispatch().claimed == 0
    assert delivery.sink.received == []
    [row] = rows(delivery.engine, "event")
    assert (row.state, row.cancel_reason) == ("cancelled", "event_retracted")


def test_a_replaced_registration_is_corrected_on_the_one_that_replaced_it(
    delivery: Delivery,
) -> None:
    ref = delivery.ref(PUBLIC.a_number)
    delivery.register(ref, "ana@example.org")
    delivery.dispatch()
    release(delivery.engine)
    delivery.dispatch()
    # The same address registers again, now in Spanish: it replaces the first.
    delivery.register(ref, "ana@example.org", language="es")
    delivery.dispatch()
    delivery.sink.received.clear()

    done = retract(delivery.engine)
    assert (done.told, done.corrections) == (1, 1)
    delivery.dispatch()
    [correction] = [r for r in delivery.sink.received if r.recipients == ["ana@example.org"]]
    assert "El mensaje anterior sobre la salida en libertad" in correction.text


def test_a_registration_its_registrant_ended_is_told_nothing_more(delivery: Delivery) -> None:
    ref = delivery.ref(PUBLIC.a_number)
    ended = delivery.register(ref, "ana@example.org")
    delivery.register(ref, "bea@example.org")
    delivery.dispatch()
    release(delivery.engine)
    delivery.dispatch()
    with delivery.public.begin() as connection:
        assert registrations.end_by_manage_token(connection, ended.manage_token, datetime.now(UTC))
    delivery.sink.received.clear()
    done = retract(delivery.engine)
    assert (done.told, done.corrections) == (1, 1)
    delivery.dispatch()
    assert [r.recipients for r in delivery.sink.received] == [["bea@example.org"]]


def test_a_protected_persons_retraction_tells_nobody_anything(
    delivery: Delivery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ref = delivery.ref(PUBLIC.a_number)
    delivery.register(ref, "ana@example.org")
    delivery.register(ref, "+15550100102", Channel.SMS)
    delivery.dispatch()
    release(delivery.engine)
    delivery.dispatch()
    with delivery.engine.begin() as connection:
        person_actions.protect(
            connection, SUPERVISOR, PUBLIC.a_number, "1367 protection", datetime.now(UTC)
        )
    before = (len(delivery.sink.received), len(delivery.provider.requests))

    done = retract(delivery.engine)
    # Their registrations ended with the protection: nobody is left to correct.
    assert (done.state, done.told, done.corrections) == ("in_custody", 0, 0)
    for canary in (PROTECTED, UNSCREENED):
        who = person(
            canary.a_number, canary.given, canary.family, born=canary.born, country=canary.country
        )
        summary = ingest_events(
            delivery.engine,
            jsonl(event(f"wrong-{canary.a_number}", "transferred", days_ago(0.5), who)),
            source="feed.jsonl",
            fmt="jsonl",
        )
        assert summary.applied == 1
        assert retract(delivery.engine, f"wrong-{canary.a_number}").corrections == 0
    assert delivery.dispatch().sent == 0
    assert (len(delivery.sink.received), len(delivery.provider.requests)) == before
    with delivery.public.connect() as connection:
        for canary in (PUBLIC, PROTECTED, UNSCREENED):
            assert lookup.by_a_number(connection, canary.a_number, canary.country) == []
    ours = [r for r in caplog.records if r.name.startswith("safevine")]
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in ours)
    assert leaks(logged, [PUBLIC, *NON_PUBLIC]) == []


def test_a_correction_is_cancelled_by_a_protection_before_it_goes(delivery: Delivery) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    delivery.dispatch()
    release(delivery.engine)
    delivery.dispatch()
    assert retract(delivery.engine).corrections == 1
    with delivery.engine.begin() as connection:
        person_actions.protect(
            connection, SUPERVISOR, PUBLIC.a_number, "1367 protection", datetime.now(UTC)
        )
    delivery.sink.received.clear()
    assert delivery.dispatch().sent == 0
    assert delivery.sink.received == []
    [correction] = rows(delivery.engine, "correction")
    assert (correction.state, correction.cancel_reason) == ("cancelled", "record_unavailable")


def test_the_last_gate_never_sends_a_correction_about_a_person_no_longer_public(
    delivery: Delivery,
) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
    delivery.dispatch()
    release(delivery.engine)
    delivery.dispatch()
    assert retract(delivery.engine).corrections == 1
    # Hidden by a path that cancels nothing: the worker's own check must stop it.
    with delivery.engine.begin() as connection:
        connection.execute(
            update(persons)
            .where(persons.c.a_number == PUBLIC.a_number)
            .values(protection="unscreened")
        )
    delivery.sink.received.clear()
    report = delivery.dispatch()
    assert (report.sent, report.cancelled) == (0, 1)
    assert delivery.sink.received == []


# Long but real values, as tests/notify/test_messages.py uses them.
RETRACTED = {
    "kind": "released",
    "occurred_at": "2026-11-24T18:15:00+00:00",
    "facility_name": "SOUTH TEXAS DETENTION COMPLEX",
    "facility_city": "PEARSALL",
    "facility_state": "TX",
    "facility_time_zone": "America/Chicago",
    "details": {"reason": "supervision"},
}
STATUSES = {
    "in_custody": {
        "state": "in_custody",
        "since": "2026-10-01T08:00:00+00:00",
        "facility_name": "SOUTH TEXAS DETENTION COMPLEX",
        "facility_city": "PEARSALL",
        "facility_state": "TX",
        "facility_time_zone": "America/Chicago",
    },
    "released": {"state": "released", "since": "2026-11-20T08:00:00+00:00"},
    "removed": {"state": "removed", "since": "2026-11-20T08:00:00+00:00"},
    "escaped": {"state": "escaped", "since": "2026-11-20T08:00:00+00:00"},
    "deceased": {"state": "deceased", "since": "2026-11-20T08:00:00+00:00"},
}
LONG_NAME = "María Guadalupe Hernández"
URL = "https://notify.example.gov/m/Jq3vK2mT9xW1bR7pL4sZ0e"
KINDS = [
    "booked",
    "transferred",
    "released",
    "removed",
    "escaped",
    "returned",
    "died",
    "hearing_scheduled",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("state", list(STATUSES))
@pytest.mark.parametrize("language", ["en", "es"])
def test_every_correction_reads_whole_in_both_languages_and_fits_one_text(
    kind: str, state: str, language: str
) -> None:
    content = {
        "retracted": {**RETRACTED, "kind": kind},
        "status": STATUSES[state],
        "corrects": ["k1"],
    }
    context = MessageContext(language, "standard", 482193, URL, "+1 800 555 0100")
    rendered = render_correction(content, LONG_NAME, "ref", context)
    assert rendered.text.count(LONG_NAME) == 2 and URL in rendered.text and URL in rendered.html
    assert "%(" not in rendered.text and "?" not in rendered.text.replace(URL, "")
    assert is_gsm7(rendered.sms) and segments(rendered.sms) == 1 and rendered.sms.endswith(URL)
    assert rendered.voice.count(LONG_NAME) == 4  # both sentences, read out twice
    assert rendered.data["type"] == "correction" and rendered.data["corrects"] == ["k1"]
    if language == "es":
        for english in (" was ", "wrong", "custody", "Correction"):
            assert english not in rendered.text + rendered.sms + rendered.subject


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_discreet_correction_names_nothing(language: str) -> None:
    content = {"retracted": RETRACTED, "status": STATUSES["in_custody"], "corrects": ["k1"]}
    context = MessageContext(language, "discreet", 482193, URL, "")
    rendered = render_correction(content, LONG_NAME, "opaque-reference", context)
    for form in (
        rendered.subject,
        rendered.text,
        rendered.html,
        rendered.sms,
        rendered.voice,
        json.dumps(rendered.data),
    ):
        for revealing in (
            "María",
            "Hernández",
            "SOUTH TEXAS",
            "PEARSALL",
            "released",
            "opaque-reference",
        ):
            assert revealing not in form
    assert "482193" in rendered.text and "4 8 2 1 9 3" in rendered.voice
    assert is_gsm7(rendered.sms) and segments(rendered.sms) == 1


def test_a_retraction_racing_a_worker_corrects_exactly_those_it_reached(
    delivery: Delivery,
) -> None:
    """A real worker process sends the mistaken release to forty registrants, slowly; the
    retraction commits mid-run. No release message arrives after it committed (one in
    flight is waited for), and precisely those the release reached are corrected, once."""
    ref = delivery.ref(PUBLIC.a_number)
    addresses = [f"r{n}@example.org" for n in range(40)]
    for address in addresses:
        delivery.register(ref, address)
    delivery.dispatch()  # the codes
    delivery.sink.received.clear()
    delivery.sink.delay = 0.05
    release(delivery.engine)
    worker = start_worker(delivery, SAFEVINE_WORKER_BATCH="5", SAFEVINE_WORKER_CONCURRENCY="2")
    try:
        delivery.sink.wait_for(8)
        with statements(delivery.engine) as seen:
            done = retract(delivery.engine)
        committed = time.time()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with delivery.engine.connect() as connection:
                left = connection.execute(
                    select(func.count())
                    .select_from(notifications)
                    .where(notifications.c.state.in_(("queued", "retrying", "sending")))
                ).scalar_one()
            if left == 0:
                break
            time.sleep(0.2)
        assert left == 0
    finally:
        stop(worker)
    received = list(delivery.sink.received)
    told = [r for r in received if f"{NAME} was released from" in r.text]
    corrected = [r.recipients[0] for r in received if "The earlier message about" in r.text]
    assert 8 <= len(told) < len(addresses)
    assert [r for r in told if r.at > committed] == []
    assert sorted(corrected) == sorted(r.recipients[0] for r in told)
    assert done.told == done.corrections == len(told)
    assert done.cancelled == len(addresses) - len(told)
    if delivery.engine.dialect.name == "sqlite":
        # Its messages found by registration and event, never among every message still
        # to send (there may be a backlog of them when a retraction matters most).
        steps = plans(delivery.engine, [s for s in seen if "notifications" in s[0]])
        assert steps and not [s for s in steps if "ix_notifications_due" in s], steps


def test_a_call_someone_answered_is_corrected_though_it_was_to_be_placed_again(
    delivery: Delivery,
) -> None:
    """A call answered without the PIN is placed again later: the person heard the
    mistaken release all the same, so the repeat is cancelled and a correction is called.
    A call nobody answered reached nobody: its repeat is cancelled, and that is all."""
    answered, unanswered = "+15550100131", "+15550100132"
    with heard_from_provider(delivery):
        ref = delivery.ref(PUBLIC.a_number)
        for number in (answered, unanswered):
            delivery.register(ref, number, Channel.VOICE)
        delivery.dispatch()  # the two codes' calls, answered
        delivery.provider.wait_for_callbacks(2)
        delivery.provider.calls = {answered: ["answered"], unanswered: ["no-answer"]}
        release(delivery.engine)
        delivery.dispatch()
        delivery.provider.wait_for_callbacks(4)
        assert {r.state for r in rows(delivery.engine, "event")} == {"retrying"}

        done = retract(delivery.engine)
        assert (done.cancelled, done.told, done.corrections) == (2, 1, 1)
        assert {r.cancel_reason for r in rows(delivery.engine, "event")} == {"event_retracted"}
        delivery.provider.calls = {answered: [f"pin:{PIN}"]}
        before = len(delivery.provider.requests)
        assert delivery.dispatch().sent == 1
        delivery.provider.wait_for_callbacks(5)
    [call] = [r for r in delivery.provider.requests[before:] if r["kind"] == "Calls"]
    assert call["form"]["To"] == answered
    assert "The earlier message about" in call["form"]["Twiml"]
    [correction] = rows(delivery.engine, "correction")
    assert correction.state == "acknowledged"  # confirmed with the PIN, like any call
