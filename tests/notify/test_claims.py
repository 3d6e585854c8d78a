"""Claiming due notifications: which rows a claim takes, in which order, and that it reads
them from the claim index (a claim that read the whole outbox took ~70 ms at 100,000)."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from safevine.store.public import delivery as outbox
from safevine.store.public.tables import notifications
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery


def _codes(delivery: Delivery, count: int) -> list[int]:
    """`count` queued confirmation codes, oldest first."""
    ref = delivery.ref(PUBLIC.a_number)
    for n in range(count):
        delivery.register(ref, f"c{n}@example.org")
    with delivery.engine.connect() as connection:
        return sorted(connection.execute(select(notifications.c.id)).scalars())


def _set(delivery: Delivery, notification_id: int, **values: object) -> None:
    with delivery.engine.begin() as connection:
        connection.execute(
            update(notifications).where(notifications.c.id == notification_id).values(**values)
        )


def test_a_claim_takes_expired_leases_first_then_due_rows_in_order(delivery: Delivery) -> None:
    ids = _codes(delivery, 6)
    now = datetime.now(UTC)
    _set(delivery, ids[0], state="sending", claimed_by="dead", claimed_at=now - timedelta(hours=1))
    _set(delivery, ids[1], state="sending", claimed_by="alive", claimed_at=now)
    _set(delivery, ids[2], next_attempt_at=now + timedelta(hours=1))  # not yet
    _set(delivery, ids[5], state="retrying", next_attempt_at=now - timedelta(hours=1))
    with delivery.public.begin() as connection:
        taken = outbox.claim(connection, "w", 3, now)
    assert sorted(taken) == sorted([ids[0], ids[5], ids[3]])
    with delivery.public.begin() as connection:
        rest = outbox.claim(connection, "w2", 10, now)
    assert rest == [ids[4]]  # a running lease and a later attempt are left alone


def test_postgres_can_claim_from_the_index_without_sorting(postgres_delivery: Delivery) -> None:
    """The due condition is spelled as the partial index's, so the planner may use it: with
    sequential scans and sorts priced out, the plan is the index (a bound condition would
    not imply the index's and would leave only plans that read and sort every due row)."""
    _codes(postgres_delivery, 3)
    with postgres_delivery.public.connect() as connection:
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        connection.exec_driver_sql("SET LOCAL enable_sort = off")
        compiled = outbox._DUE.compile(dialect=connection.dialect)
        plan = "\n".join(
            row[0]
            for row in connection.exec_driver_sql(
                f"EXPLAIN {compiled}", {"now": datetime.now(UTC), "limit": 100}
            )
        )
    assert "ix_notifications_claim" in plan and "Sort" not in plan, plan
