"""One message that cannot be prepared or recorded fails alone, visibly; the others go out.

Each test spoils one message the way real data can (a ciphertext no key opens, content an
older version stored, a receiver that answers with bytes a database cannot keep) and runs
the real dispatcher against the real SMTP sink and provider simulator.
"""

from typing import Any

from sqlalchemy import Engine, select, update

from safevine.domain.contact_address import Channel
from safevine.store.public.tables import notifications, registrations
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery
from tests.notify.test_delivery import release

# Retries wait this long, so one dispatch sees each message once.
LATER = 600


def _events(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(notifications, registrations.c.address_hint)
                .join(registrations, registrations.c.id == notifications.c.registration_id)
                .where(notifications.c.purpose == "event")
                .order_by(notifications.c.id)
            )
        )


def _two_registrants_and_a_release(delivery: Delivery) -> list[Any]:
    ref = delivery.ref(PUBLIC.a_number)
    for address in ("ana@example.org", "bea@example.org"):
        delivery.register(ref, address)
    delivery.dispatch()  # the two codes
    delivery.sink.received.clear()
    release(delivery.engine)
    return _events(delivery.engine)


def test_a_message_no_key_can_decrypt_fails_alone_and_the_worker_goes_on(
    delivery: Delivery,
) -> None:
    spoiled, good = _two_registrants_and_a_release(delivery)
    with delivery.engine.begin() as connection:
        connection.execute(
            update(registrations)
            .where(registrations.c.id == spoiled.registration_id)
            .values(address_ciphertext=b"\x00" * 40)
        )
    report = delivery.dispatch(retry_base_seconds=LATER)
    assert (report.sent, report.retrying) == (1, 1)
    assert [r.recipients for r in delivery.sink.received] == [["bea@example.org"]]
    after = {row.id: row for row in _events(delivery.engine)}
    assert after[good.id].state == "sent"
    assert after[spoiled.id].state == "retrying"
    assert after[spoiled.id].last_error == "could not be prepared (InvalidTag)"
    # Out of tries, it ends as failed (not left `sending`), still with its reason.
    with delivery.engine.begin() as connection:
        connection.execute(
            update(notifications)
            .where(notifications.c.id == spoiled.id)
            .values(attempts=7, next_attempt_at=good.created_at)
        )
    assert delivery.dispatch().failed == 1
    row = {r.id: r for r in _events(delivery.engine)}[spoiled.id]
    assert (row.state, row.attempts) == ("failed", 8)
    assert row.last_error == "could not be prepared (InvalidTag)"


def test_content_that_cannot_be_rendered_fails_alone(delivery: Delivery) -> None:
    # An event an earlier version accepted at the edge of the calendar: turning it into
    # the facility's local time overflows.
    spoiled, good = _two_registrants_and_a_release(delivery)
    content = dict(spoiled.content, occurred_at="0001-01-01T00:00:00+00:00")
    with delivery.engine.begin() as connection:
        connection.execute(
            update(notifications).where(notifications.c.id == spoiled.id).values(content=content)
        )
    report = delivery.dispatch(retry_base_seconds=LATER)
    assert (report.sent, report.retrying) == (1, 1)
    after = {row.id: row for row in _events(delivery.engine)}
    assert after[good.id].state == "sent"
    assert after[spoiled.id].last_error == "could not be prepared (OverflowError)"


def test_stored_quiet_hours_in_a_region_not_a_zone_fail_that_message_alone(
    delivery: Delivery,
) -> None:
    ref = delivery.ref(PUBLIC.a_number)
    delivery.register(ref, "+15550100100", Channel.SMS)
    delivery.register(ref, "+15550100101", Channel.SMS)
    delivery.dispatch()
    release(delivery.engine)
    spoiled, good = _events(delivery.engine)
    with delivery.engine.begin() as connection:
        connection.execute(
            update(registrations)
            .where(registrations.c.id == spoiled.registration_id)
            .values(quiet_start="00:00", quiet_end="23:59", time_zone="America")
        )
    report = delivery.dispatch(retry_base_seconds=LATER)
    assert (report.sent, report.retrying) == (1, 1)
    after = {row.id: row for row in _events(delivery.engine)}
    assert after[good.id].state == "sent"
    assert after[spoiled.id].last_error.startswith("could not be prepared (")


def test_a_receivers_answer_the_database_cannot_keep_is_recorded_safely(
    delivery: Delivery,
) -> None:
    # A hostile webhook receiver answers 500 with a NUL and a huge body, and a 200 with an
    # id far beyond the column: PostgreSQL refuses a NUL outright, which failed the whole
    # batch's record (and so sent every message in it again and again).
    ref = delivery.ref(PUBLIC.a_number)
    delivery.register(ref, f"{delivery.provider.base}/hook", Channel.WEBHOOK)
    delivery.register(ref, "ana@example.org")
    delivery.dispatch()
    delivery.provider.hook_answer = (500, b"oops\x00" + b"x" * 50_000, {})
    release(delivery.engine)
    report = delivery.dispatch(retry_base_seconds=LATER)
    assert (report.sent, report.retrying) == (1, 1)
    hook, mail = _events(delivery.engine)
    assert mail.state == "sent"
    assert hook.state == "retrying" and "\x00" not in hook.last_error
    assert hook.last_error.startswith("webhook receiver answered 500: oops\ufffd")
    delivery.provider.hook_answer = (200, b"{}", {"x-request-id": "r" * 5_000})
    with delivery.engine.begin() as connection:
        connection.execute(update(notifications).values(next_attempt_at=mail.created_at))
    assert delivery.dispatch().sent == 1
    hook = _events(delivery.engine)[0]
    assert hook.state == "delivered" and len(hook.provider_message_id) <= 200
