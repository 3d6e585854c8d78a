"""Feed health actions: evaluating every facility (by the staff service's clock, or a
command on a schedule), and staff pausing, closing or setting the cadence of a facility.

An evaluation is one transaction, taken by one evaluator at a time (any number of staff
processes may run the clock): its changes, the outages they begin or end, the notices to
registrants and the alert to the operations address all commit together or not at all.
"""

import asyncio
import contextlib
import logging
import math
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select, text

from safevine.actions.actor import Actor
from safevine.config import Settings
from safevine.domain.errors import FieldError, NotFoundError
from safevine.domain.feed_health import LONGEST_CADENCE_MINUTES, Health
from safevine.domain.value_ranges import check_free_text
from safevine.failures import describe
from safevine.notify.feed_alerts import queue_feed_alert
from safevine.store.records import feed_health, feed_notices
from safevine.store.records.feed_health import Evaluation
from safevine.store.schema import facilities

log = logging.getLogger("safevine.feed_health")

_LOCK = 7351832016  # pg_advisory_xact_lock key of the evaluation


def _one_at_a_time(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK})"))
        # Its statements are index probes; compiling them (JIT, when an estimate runs high)
        # took longer than running them.
        connection.execute(text("SET LOCAL jit = off"))
    else:
        # A write as the transaction's first statement takes SQLite's write lock, so a
        # second evaluator reads only after the first has committed.
        connection.execute(text("UPDATE facility_health SET state = state WHERE 0 = 1"))


def evaluate(engine: Engine, settings: Settings, now: datetime) -> Evaluation:
    """Judge every facility, then tell registrants (`queue_notices`)."""
    result = judge(engine, settings, now)
    queue_notices(engine, now)
    return result


def judge(engine: Engine, settings: Settings, now: datetime) -> Evaluation:
    """Every facility's state, in one transaction: changes recorded and audited, outages
    begun and ended (the delay notices of an ended one not yet sent withdrawn, as they
    would now say something untrue), and one alert to the operations address."""
    with engine.begin() as connection:
        _one_at_a_time(connection)
        result = feed_health.evaluate(connection, now, settings.feed_rules)
        feed_notices.withdraw_delay_notices(connection, result.ended, now)
        queue_feed_alert(connection, settings, result.changes, now)
    return result


def queue_notices(engine: Engine, now: datetime) -> tuple[int, int]:
    """Delay notices for every outage under way and resumed notices for every ended one
    not yet followed up, in a transaction of their own after the judgement: telling tens of
    thousands of registrants does not hold up the states, the alert or the next
    evaluator, and what a failed run did not queue the next one does (each notice at most
    once, by a unique index). (delay, resumed) notices queued."""
    with engine.begin() as connection:
        _one_at_a_time(connection)
        delayed = feed_notices.queue_delay_notices(connection, now)
        resumed = feed_notices.queue_resumed_notices(connection, now)
    return delayed, resumed


async def keep_evaluating(engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
    """Evaluate every `settings.feed_health_every_seconds` until `stop`; a failed run is
    logged and the next one tries again."""
    every = settings.feed_health_every_seconds
    while every > 0 and not stop.is_set():
        try:
            result = await asyncio.to_thread(evaluate, engine, settings, datetime.now(UTC))
            for change in result.changes:
                log.info(
                    "facility %s feed %s -> %s",
                    change.code,
                    change.before.value if change.before else "new",
                    change.after.value,
                )
        except Exception as error:  # the next run tries again
            log.warning("feed health evaluation failed", extra=describe(error))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


def _facility(connection: Connection, code: str) -> int:
    found = connection.execute(select(facilities.c.id).where(facilities.c.code == code)).scalar()
    if found is None:
        raise NotFoundError(f"no facility {code!r}")
    return int(found)


def hold(
    connection: Connection,
    actor: Actor,
    code: str,
    held: Health | None,
    reason: str,
    now: datetime,
) -> None:
    """Pause or close a facility on purpose, with a reason (no alert, no notice while it
    lasts), or lift the hold (`held` None): the next evaluation judges it again."""
    if held not in (None, Health.PAUSED, Health.CLOSED):
        raise FieldError("state", "must be paused or closed")
    reason = check_free_text(reason, "reason").strip()
    if not reason:
        raise FieldError("reason", "is required: say why")
    facility_id = _facility(connection, code)
    outage = feed_health.hold(connection, actor.name, facility_id, held, reason, now)
    if outage is not None:
        feed_notices.withdraw_delay_notices(connection, [outage], now)


def set_cadence(
    connection: Connection,
    actor: Actor,
    code: str,
    hours: dict[str, float | None],
    now: datetime,
) -> None:
    """Set a facility's expected cadences (hours; None returns it to learning): keys
    `roster_every`, `events_every`, `down_after`."""
    minutes: dict[str, int | None] = {}
    for key, value in hours.items():
        if key not in ("roster_every", "events_every", "down_after"):
            raise FieldError(key, "is not a cadence")
        if value is None:
            minutes[f"{key}_minutes"] = None
            continue
        if not (math.isfinite(value) and 0 < value <= LONGEST_CADENCE_MINUTES / 60):
            raise FieldError(key, "must be between one minute and a year, in hours")
        span = round(value * 60)
        if span < 1:
            raise FieldError(key, "must be between one minute and a year, in hours")
        minutes[f"{key}_minutes"] = span
    feed_health.set_cadence(connection, actor.name, _facility(connection, code), minutes, now)
