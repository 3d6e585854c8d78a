"""A provider's receipt and a registrant's reply find their message from a selective index,
never by reading every message in a state (`store.planner_hints`): on SQLite, without
statistics, the state index looked as good, and each receipt read every text awaiting
one (the benchmark's receipts fell behind the texts as they piled up)."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select

from safevine.domain.contact_address import Channel
from safevine.store.planner_hints import unindexed
from safevine.store.public import receipts
from safevine.store.public.tables import notifications
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery
from tests.sql_plans import plans, statements

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
STATE_INDEXES = ("ix_notifications_due", "ix_notifications_awaiting")


def test_receipts_and_replies_find_their_message_by_a_selective_index(
    sqlite_engine: Engine,
) -> None:
    with sqlite_engine.begin() as connection, statements(sqlite_engine) as seen:
        for status in ("sent", "delivered", "undelivered"):
            receipts.apply_receipt(
                connection,
                receipts.Receipt("SM0123", status, "30003"),
                NOW,
                lambda _tries: timedelta(minutes=1),
            )
        receipts.acknowledge_latest(connection, "index", Channel.SMS, NOW)
    assert len(seen) == 4
    steps = plans(sqlite_engine, seen)
    assert any("ix_notifications_provider_message" in step for step in steps), steps
    assert not [step for step in steps if any(name in step for name in STATE_INDEXES)], steps
    assert not [step for step in steps if step.startswith("SCAN n") or "SCAN notif" in step]


def test_an_unindexed_term_selects_the_same_rows(delivery: Delivery) -> None:
    d = delivery
    d.register(d.ref(PUBLIC.a_number), "someone@example.org", Channel.EMAIL)
    n = notifications
    with d.engine.begin() as connection:
        row = connection.execute(select(n).limit(1)).mappings().one()
        copies = [
            {**row, "id": i, "idempotency_key": f"k{i}", "state": state}
            for i, state in enumerate(["sent", "delivered", "queued", "sent"], start=1000)
        ]
        connection.execute(insert(n), copies)
        for states in (["sent"], ["sent", "delivered"], ["failed"]):
            plain = connection.execute(
                select(n.c.id).where(n.c.state.in_(states)).order_by(n.c.id)
            ).scalars()
            hinted = connection.execute(
                select(n.c.id).where(unindexed(n.c.state).in_(states)).order_by(n.c.id)
            ).scalars()
            assert list(plain) == list(hinted)
        assert connection.execute(
            select(n.c.id).where(unindexed(n.c.state) == "sent")
        ).scalars().all() == [1000, 1003]
