"""Calls a registrant confirms with their PIN, through the local provider simulator over
real HTTP: it answers as scripted (no answer, busy, a machine, a person who enters the
PIN, or a wrong one, or presses 9), posts signed key presses and call statuses to the
running public service, and the call is acknowledged or placed again by the rule: every
30 minutes unanswered, every 2 hours answered without the PIN, for 24 hours, and never
after a protection."""

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from safevine.domain.contact_address import Channel
from safevine.store.public.tables import call_attempts, notifications, registrations
from safevine.store.records.persons import person_ids_by_a_number
from safevine.store.records.protection import protect
from safevine.web.public.sms_inbound import twilio_signature
from tests.canaries import NON_PUBLIC, PUBLIC
from tests.notify.conftest import PIN, PROVIDER_TOKEN, Delivery, heard_from_provider
from tests.notify.test_delivery import release

TOKEN = PROVIDER_TOKEN
NUMBER = "+15550100123"


@dataclass
class Line:
    delivery: Delivery
    base: str
    released: int = 0

    def call(self, *scripts: str, callbacks: int = 1) -> Any:
        """An event about the person, called with these scripts for its attempts."""
        self.delivery.provider.calls[NUMBER] = list(scripts)
        before = len(self.delivery.provider.callbacks)
        self.released += 1
        release(self.delivery.engine, f"rel-{self.released}", days=0.01 / self.released)
        self.delivery.dispatch()
        self.delivery.provider.wait_for_callbacks(before + callbacks)
        return self.event()

    def again(self, callbacks: int = 1) -> Any:
        """The repeat is due now: dispatched, and the call's status arrived."""
        row = self.event()
        before = len(self.delivery.provider.callbacks)
        with self.delivery.engine.begin() as c:
            c.execute(
                update(notifications)
                .where(notifications.c.id == row.id)
                .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        self.delivery.dispatch()
        self.delivery.provider.wait_for_callbacks(before + callbacks)
        return self.event()

    def event(self) -> Any:
        with self.delivery.engine.connect() as c:
            return c.execute(
                select(notifications)
                .where(notifications.c.purpose == "event")
                .order_by(notifications.c.id.desc())
            ).first()

    def attempts(self) -> list[Any]:
        """The calls placed for the latest event (the code's call is one of its own)."""
        with self.delivery.engine.connect() as c:
            return list(
                c.execute(
                    select(call_attempts)
                    .where(call_attempts.c.notification_id == self.event().id)
                    .order_by(call_attempts.c.id)
                )
            )

    def said(self) -> str:
        return "\n".join(text for _, kind, text in self.delivery.provider.heard if kind == "said")


@pytest.fixture
def line(delivery: Delivery) -> Iterator[Line]:
    with heard_from_provider(delivery) as base:
        delivery.register(delivery.ref(PUBLIC.a_number), NUMBER, Channel.VOICE)
        delivery.dispatch()  # the confirmation code: a plain call, answered
        delivery.provider.wait_for_callbacks(1)
        yield Line(delivery, base)


def _due_in(row: Any) -> timedelta:
    return row.next_attempt_at - datetime.now(UTC)


def test_the_pin_acknowledges_the_call_and_is_kept_only_as_a_hash(line: Line) -> None:
    with line.delivery.engine.connect() as c:
        code_call = c.execute(
            select(notifications.c.state).where(notifications.c.purpose == "confirmation")
        ).scalar_one()
        pin_hash = c.execute(select(registrations.c.pin_hash)).scalar_one()
    assert code_call == "delivered"  # a code asks for no PIN: answered is delivered
    assert pin_hash.startswith("$argon2id$") and PIN not in pin_hash
    row = line.call(f"pin:{PIN}")
    assert (row.state, row.receipt) == ("acknowledged", "pin")
    assert row.acknowledged_at is not None
    [attempt] = line.attempts()
    assert (attempt.outcome, attempt.pin_tries, attempt.status) == ("acknowledged", 0, "completed")
    said = line.said()
    assert "enter your 4-digit PIN" in said and "We have your confirmation" in said
    assert PUBLIC.family in said  # the message itself was read


def test_a_wrong_pin_is_asked_again_and_9_says_the_message_again(line: Line) -> None:
    row = line.call(f"pin:1111,9,{PIN}")
    assert row.state == "acknowledged"
    [attempt] = line.attempts()
    assert attempt.pin_tries == 1
    said = line.said()
    assert "That PIN is not right. Please enter your 4-digit PIN again." in said
    assert said.count(PUBLIC.family) >= 2  # read once, and again after 9


def test_answered_without_the_pin_is_called_again_in_two_hours(line: Line) -> None:
    row = line.call("pin:1111,2222,3333")
    assert "We will call again later" in line.said()
    assert row.state == "retrying"
    assert timedelta(hours=1, minutes=59) < _due_in(row) <= timedelta(hours=2)
    [attempt] = line.attempts()
    assert (attempt.outcome, attempt.pin_tries, attempt.answered_by) == ("answered", 3, "human")


def test_unanswered_calls_repeat_every_30_minutes_for_24_hours_then_end(line: Line) -> None:
    row = line.call("no-answer")
    assert row.state == "retrying"
    assert timedelta(minutes=29) < _due_in(row) <= timedelta(minutes=30)
    line.delivery.provider.calls[NUMBER] = ["busy", "machine"]
    assert line.again().state == "retrying"
    # The first call was placed nearly a day ago: the next one is the last.
    first = line.attempts()[0].id
    with line.delivery.engine.begin() as c:
        c.execute(
            update(call_attempts)
            .where(call_attempts.c.id == first)
            .values(placed_at=datetime.now(UTC) - timedelta(hours=23, minutes=45))
        )
    last = line.again()
    # A machine took the last one, and the registrant allows voicemail: reached, though
    # nobody confirmed it.
    assert (last.state, last.attempts) == ("delivered", 3)
    outcomes = [a.outcome for a in line.attempts()]
    assert outcomes == ["no_answer", "busy", "machine"]
    calls = [r for r in line.delivery.provider.requests if r["kind"] == "Calls"][1:]
    tokens = [r["headers"]["i-twilio-idempotency-token"] for r in calls]
    assert len(tokens) == 3 and len(set(tokens)) == 3  # each repeat a new call


def test_nobody_ever_answering_ends_as_failed(line: Line) -> None:
    called = line.call("no-answer")
    with line.delivery.engine.begin() as c:
        c.execute(
            update(call_attempts)
            .where(call_attempts.c.notification_id == called.id)
            .values(placed_at=datetime.now(UTC) - timedelta(hours=24))
        )
    line.delivery.provider.calls[NUMBER] = ["no-answer"]
    last = line.again()
    assert (last.state, last.failed_permanently) == ("failed", False)
    assert last.last_error == "nobody confirmed the call with the PIN in time"


def test_a_protection_stops_the_repeats(line: Line) -> None:
    row = line.call("no-answer")
    assert row.state == "retrying"
    with line.delivery.engine.begin() as c:
        person_id = person_ids_by_a_number(c, [PUBLIC.a_number])[PUBLIC.a_number]
        protect(c, person_id, actor="t", source="staff", reason="1367", now=datetime.now(UTC))
    calls_before = len(line.delivery.provider.requests)
    with line.delivery.engine.begin() as c:
        c.execute(update(notifications).values(next_attempt_at=datetime.now(UTC)))
    line.delivery.dispatch()
    assert line.event().state == "cancelled"
    assert len(line.delivery.provider.requests) == calls_before


def test_an_impossible_number_fails_for_good(line: Line) -> None:
    row = line.call("failed:13224")
    assert (row.state, row.failed_permanently, row.error_code) == ("failed", True, "13224")


def test_only_the_provider_is_heard_and_a_stranger_learns_nothing(
    line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    row = line.call("no-answer")
    url = f"{line.base}/api/v1/voice/gather?try=1"
    form = {"CallSid": row.provider_message_id, "Digits": PIN}
    forged = httpx.post(url, data=form, headers={"X-Twilio-Signature": "forged"})
    assert forged.status_code == 403 and line.event().state == "retrying"
    # Signed, but about a call that is over or never was: the same hang-up.
    answers = []
    for sid in (row.provider_message_id, "CA999999"):
        data = {"CallSid": sid, "Digits": PIN}
        signed = twilio_signature(TOKEN, url, data)
        answers.append(httpx.post(url, data=data, headers={"X-Twilio-Signature": signed}).text)
    assert answers[0] == answers[1] and "<Hangup/>" in answers[0]
    assert line.event().state == "retrying"
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    people = [w for c in [PUBLIC, *NON_PUBLIC] for w in c.identifiers]
    assert [w for w in people if w in logged] == []
    # The PIN as a number of its own (a port or a time may hold its digits).
    assert re.search(rf"(?<!\d){PIN}(?!\d)", logged) is None


def test_a_voice_registration_needs_a_pin_of_four_digits(line: Line) -> None:
    body = {
        "person": line.delivery.ref(PUBLIC.a_number),
        "channel": "voice",
        "address": "+1 555 010 0124",
        "language": "en",
    }
    with httpx.Client(base_url=line.base) as client:
        answers = [
            client.post("/api/v1/registrations", json={**body, **extra})
            for extra in ({}, {"pin": "12a4"}, {"pin": "12345"}, {"pin": "1234"})
        ]
    assert [a.status_code for a in answers[:3]] == [422, 422, 422]
    assert all("pin" in a.text for a in answers[:3])
    assert answers[3].status_code in (200, 201, 202)
