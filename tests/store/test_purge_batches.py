"""How a purge takes its batches: sized by time, all on one connection, and never purging
a person booked again while a batch reads who is due (on SQLite the batch takes the write
lock before it reads; on PostgreSQL it locks the rows it reads, skipping any being
changed). On SQLite and PostgreSQL."""

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, update

from safevine.actions.actor import Actor
from safevine.actions.purge import (
    BATCH_SECONDS,
    FIRST_BATCH,
    LARGEST_BATCH,
    SMALLEST_BATCH,
    PurgeRun,
    next_batch,
    purge,
)
from safevine.domain.batch_thresholds import Thresholds
from safevine.domain.event_kinds import CustodyState
from safevine.domain.retention import RetentionPeriods
from safevine.ingest.events import ingest_events
from safevine.store.schema import custody_status, persons, purged_persons
from tests.builders import days_ago, event, jsonl, load_facilities, person
from tests.web.conftest import SECRET

LATER = datetime.now(UTC) + timedelta(days=100)  # past the public window and person period


def _run(engine: Engine) -> PurgeRun:
    return purge(
        engine,
        periods=RetentionPeriods(),
        public_days=60,
        secret=SECRET,
        now=LATER,
        actor=Actor("cli:test"),
    )


def _released(engine: Engine, count: int, first: int = 400_000_000) -> list[str]:
    load_facilities(engine, "F1")
    a_numbers = [str(first + n) for n in range(count)]
    records = []
    for a in a_numbers:
        who = person(a, "Batcha", f"Purgable{a}")
        records.append(event(f"b-{a}", "booked", days_ago(20), who))
        records.append(event(f"r-{a}", "released", days_ago(10), who, reason="bond"))
    # Hundreds released at one facility at once would be held for review (and a person in
    # a held batch is never purged): here they are an ordinary past.
    calm = Thresholds(burst_minimum=count * 3)
    summary = ingest_events(
        engine, jsonl(*records), source="many.jsonl", fmt="jsonl", thresholds=calm
    )
    assert (summary.rejected, summary.hold_id) == (0, None)
    return a_numbers


def test_a_batch_is_sized_by_the_time_the_last_one_took() -> None:
    # Fast rows: the next batch grows, by half at most.
    assert next_batch(100, 100, 0.001) == 150
    # Slow rows: it shrinks to what fits in the target time, by half at most a step.
    assert next_batch(1_000, 1_000, 0.3) == int(1_000 * BATCH_SECONDS / 0.3)
    assert next_batch(1_000, 1_000, 2.0) == 500
    # Never beyond the largest, never below the smallest: a batch slow for reasons its
    # size does not change (its queries) must not shrink the run to a crawl.
    assert next_batch(LARGEST_BATCH, LARGEST_BATCH, 0.0) == LARGEST_BATCH
    assert next_batch(SMALLEST_BATCH, SMALLEST_BATCH, 3600.0) == SMALLEST_BATCH
    # A short batch (the kind is finishing) teaches nothing.
    assert next_batch(500, 3, 0.9) == 500


def test_a_large_purge_goes_in_batches_that_grow_and_purges_everyone_due(
    engine: Engine,
) -> None:
    due = _released(engine, FIRST_BATCH * 4)
    run = _run(engine)
    assert run.counts["persons"] == len(due)
    # More than one batch, the first of FIRST_BATCH persons, later ones larger.
    assert 1 < len(run.batch_ms) < len(due) // FIRST_BATCH + 3
    assert run.as_json()["batches"] == len(run.batch_ms)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(purged_persons)).scalar() == len(
            due
        )
        named = connection.execute(
            select(func.count()).where(persons.c.family_name.like("Purgable%"))
        ).scalar()
    assert named == 0


def test_a_person_booked_again_while_a_batch_reads_is_not_purged(engine: Engine) -> None:
    """Another transaction books the person again (their status back to in custody) and
    has not committed when the purge starts; it commits while the purge runs. The person
    must keep their name: a batch that read them as due before that commit and purged
    them after would erase someone held."""
    [a_number] = _released(engine, 1, first=400_100_000)
    with engine.connect() as connection:
        person_id = connection.execute(
            select(persons.c.id).where(persons.c.a_number == a_number)
        ).scalar_one()
    booking = engine.connect()
    if engine.dialect.name == "sqlite":
        booking.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        booking.begin()
    booking.execute(
        update(custody_status)
        .where(custody_status.c.person_id == person_id)
        .values(state=CustodyState.IN_CUSTODY.value, left_custody_at=None)
    )
    runs: list[PurgeRun] = []
    purging = threading.Thread(target=lambda: runs.append(_run(engine)))
    purging.start()
    time.sleep(1.0)  # the purge is waiting for the lock (SQLite) or has skipped them
    booking.commit()
    booking.close()
    purging.join(timeout=60)
    assert runs and runs[0].counts["persons"] == 0
    with engine.connect() as connection:
        kept = connection.execute(
            select(persons.c.a_number, persons.c.family_name).where(persons.c.id == person_id)
        ).one()
    assert tuple(kept) == (a_number, f"Purgable{a_number}")
    assert _run(engine).counts["persons"] == 0  # and the next run sees them held
