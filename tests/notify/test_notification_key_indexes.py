"""Three indexes of notifications hold only the rows that have their key (migration 0027):
the provider's message id, the time sent by provider, the feed outage. Each query that
uses one names a value of its key, so it is still answered from it, on both databases;
the outage's key is still unique where it is set."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from safevine.domain.contact_address import Channel
from safevine.store.public import failover
from safevine.store.public.tables import notifications
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery
from tests.sql_plans import plans, statements

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
n = notifications


def _planned(engine: Engine, run: Callable[[Connection], object]) -> list[str]:
    """The plan of each statement `run` makes (one line per step)."""
    with statements(engine) as seen, engine.connect() as connection:
        run(connection)
    return plans(engine, seen, no_seqscan=True)


def test_each_query_by_a_key_is_answered_from_its_index(engine: Engine) -> None:
    by_message = _planned(
        engine,
        lambda c: c.execute(select(n.c.id).where(n.c.provider_message_id == "SM0123")).all(),
    )
    assert any("ix_notifications_provider_message" in step for step in by_message), by_message
    by_provider = _planned(
        engine,
        lambda c: failover.receipt_times(
            c, "twilio", NOW - timedelta(hours=1), timedelta(minutes=5), NOW
        ),
    )
    assert any("ix_notifications_provider_sent" in step for step in by_provider), by_provider
    by_outage = _planned(
        engine,
        lambda c: c.execute(
            select(n.c.id).where(
                n.c.outage_id == 7, n.c.registration_id == 1, n.c.purpose == "delay"
            )
        ).all(),
    )
    assert any("uq_notifications_outage" in step for step in by_outage), by_outage


def test_an_outage_notice_is_still_one_per_registration_and_purpose(
    delivery: Delivery,
) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "someone@example.org", Channel.EMAIL)
    with delivery.engine.begin() as connection:
        row = dict(connection.execute(select(n).limit(1)).mappings().one())
    del row["id"]

    def notice(key: str, outage: int | None, purpose: str = "delay") -> dict[str, object]:
        return {**row, "idempotency_key": key, "outage_id": outage, "purpose": purpose}

    with delivery.engine.begin() as connection:
        # Without an outage the key has no value: any number of rows.
        connection.execute(insert(n), [notice("a", None), notice("b", None)])
        connection.execute(insert(n), [notice("c", 7), notice("d", 7, "resumed")])
    with pytest.raises(IntegrityError), delivery.engine.begin() as connection:
        connection.execute(insert(n), [notice("e", 7)])
