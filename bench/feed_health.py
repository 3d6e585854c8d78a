"""Evaluating every facility's feed health at national shape: 3,000 facilities, the
population booked into them with registrations, a history of events and roster snapshots
(every 15 minutes) per facility, a tenth of the facilities silent.

Timed, each as what the staff service's clock runs (`actions.feed_health.evaluate`): the
evaluation proper (`judge`: one transaction with every state, change, outage and the
alert; the target) and then the notices to registrants it causes (`queue_notices`, a
transaction of its own), each timed apart. Runs: the first (a row for every facility,
the silent ones go down and their registrants' delay notices are queued), a steady one
(nothing changes; open outages are still checked for new registrants), one where another
tenth of the facilities go down, and one where the first tenth come back (outages end,
resumed notices queued).

A facility falls silent as one does for real: the clock moves on past the time a facility
is down and everyone else has sent something new meanwhile; nothing already sent changes.
So the others' cadences are due to be learned again as they would be in such a run
(at most `RELEARN_AT_ONCE` of them in one evaluation).
"""

import hashlib
import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, insert, select, text, update

from bench.dataset import (
    load_facilities,
    load_population,
    load_registrations,
    people,
    public_refs,
    settle,
)
from bench.harness import Context, Result, Target, iter_chunks, percentile
from safevine.actions import feed_health
from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.store.engine import make_engine
from safevine.store.public.tables import notifications
from safevine.store.schema import custody_events, facilities, ingest_batches, roster_snapshots

# Roster snapshots per facility: a day of them every 15 minutes at full size.
SNAPSHOTS = {"full": 96, "quick": 24}
SILENT_SHARE = 0.1
STEADY_RUNS = 5
CHANGE_RUNS = 3
HISTORY = timedelta(days=30)
SILENCE = timedelta(hours=100)  # past the default 72 hours: down
LIMIT_S = 1.0


def run(ctx: Context) -> list[Result]:
    scale = ctx.scale
    url = ctx.databases.fresh("feeds")
    engine = make_engine(url)
    settings = Settings(database_url=url, operations_email="operations@agency.example")
    rng = random.Random(ctx.seed)
    try:
        codes = load_facilities(engine, scale.roster_facilities)
        load_population(engine, people(scale.event_people, ctx.seed), codes, seed=ctx.seed)
        vault = ContactVault(b"bench contact key, not a secret!")
        load_registrations(engine, vault, public_refs(engine), scale.registrations, ctx.seed)
        with engine.connect() as connection:
            ids = list(
                connection.execute(select(facilities.c.id).order_by(facilities.c.id)).scalars()
            )
        slices = _slices(ids, rng)
        # After the facilities were loaded, as on a running system: a facility changed
        # after its cadence was learned has it learned again.
        now = datetime.now(UTC).replace(microsecond=0)
        steps = SNAPSHOTS.get(scale.name, 4)
        events, snapshots = _history(engine, ids, set(slices[0]), scale.events, steps, now, rng)
        settle(engine)

        first = _timed(engine, settings, now)
        down_first = _count_state(engine, "down")
        steady = [
            _timed(engine, settings, now + timedelta(seconds=n + 1)) for n in range(STEADY_RUNS)
        ]
        going_down: list[Run] = []
        silent = set(slices[0])
        clock = now
        for chosen in slices[1 : 1 + CHANGE_RUNS]:
            # `chosen` sent its last at `clock`; the rest that are not silent send again.
            silent |= set(chosen)
            clock += SILENCE
            _deliver(engine, [f for f in ids if f not in silent], clock - timedelta(minutes=1))
            settle(engine)
            going_down.append(_timed(engine, settings, clock))
        with engine.begin() as connection:
            # The delay notices went out (a resumed notice follows only one that did).
            connection.execute(
                update(notifications)
                .where(notifications.c.purpose == "delay")
                .values(state="sent", sent_at=now)
            )
            delay_notices = connection.execute(
                select(func.count()).where(notifications.c.purpose == "delay")
            ).scalar_one()
        _deliver(engine, slices[0], clock + timedelta(minutes=10))
        settle(engine)
        recovering = _timed(engine, settings, clock + timedelta(minutes=11))
        with engine.connect() as connection:
            resumed = connection.execute(
                select(func.count()).where(notifications.c.purpose == "resumed")
            ).scalar_one()
    finally:
        engine.dispose()

    if down_first != len(slices[0]):
        raise RuntimeError(f"{down_first} facilities down, {len(slices[0])} were silenced")
    judged = [r.judge_s for r in [first, recovering, *steady, *going_down]]
    telling = [r.notices_s for r in [first, recovering, *going_down]]
    # The rate of the runs that tell someone, over all they told.
    told = sum(r.queued for r in [first, recovering, *going_down])
    return [
        Result(
            "feed-health",
            ctx.db,
            figures={
                "facilities": len(ids),
                "people": scale.event_people,
                "registrations": scale.registrations,
                "events": events,
                "roster_snapshots": snapshots,
                "silent_facilities": len(slices[0]),
                "delay_notices": int(delay_notices),
                "resumed_notices": int(resumed),
                "first_s": first.judge_s,
                "steady_median_s": statistics.median(r.judge_s for r in steady),
                "steady_p95_s": percentile([r.judge_s for r in steady], 0.95),
                "tenth_down_median_s": statistics.median(r.judge_s for r in going_down),
                "tenth_down_max_s": max(r.judge_s for r in going_down),
                "tenth_recovered_s": recovering.judge_s,
                "worst_s": max(judged),
                "first_notices_s": first.notices_s,
                "first_notices": first.queued,
                "steady_notices_median_s": statistics.median(r.notices_s for r in steady),
                "tenth_down_notices_median_s": statistics.median(r.notices_s for r in going_down),
                "tenth_down_notices_median": statistics.median(r.queued for r in going_down),
                "tenth_recovered_notices_s": recovering.notices_s,
                "notices_per_s": told / sum(telling),
            },
            targets=[
                Target("slowest evaluation", max(judged), LIMIT_S, "s", higher_is_better=False)
            ],
            notes=[
                f"{len(ids):,} facilities; {events:,} events and {snapshots:,} roster "
                f"snapshots of history; a tenth silent for {SILENCE.total_seconds() / 3600:.0f} h",
            ],
            series={
                "steady_s": [r.judge_s for r in steady],
                "tenth_down_s": [r.judge_s for r in going_down],
                "tenth_down_notices_s": [r.notices_s for r in going_down],
            },
        )
    ]


def _slices(ids: list[int], rng: random.Random) -> list[list[int]]:
    """Disjoint tenths of the facilities, in a random order."""
    shuffled = ids[:]
    rng.shuffle(shuffled)
    size = round(len(ids) * SILENT_SHARE)
    return [shuffled[n : n + size] for n in range(0, len(shuffled) - size + 1, size)]


def _history(
    engine: Engine,
    ids: list[int],
    silent: set[int],
    total_events: int,
    steps: int,
    now: datetime,
    rng: random.Random,
) -> tuple[int, int]:
    """Events spread over the last 30 days and `steps` roster snapshots 15 minutes apart,
    per facility; the silent ones stopped `SILENCE` ago. Written straight into
    the tables (the ingest path has its own benchmarks)."""
    with engine.begin() as connection:
        batch = connection.execute(
            insert(ingest_batches)
            .values(kind="roster", source="bench", started_at=now, status="completed")
            .returning(ingest_batches.c.id)
        ).scalar_one()
        person = connection.execute(select(func.min(custody_events.c.person_id))).scalar_one()
    span = HISTORY.total_seconds()
    event_rows = []
    for n in range(total_events):
        facility = ids[n % len(ids)]
        end = now - SILENCE if facility in silent else now
        at = end - timedelta(seconds=rng.random() * span)
        event_rows.append(_event(f"history-{n}", person, facility, at))
    for part in iter_chunks(event_rows, 20_000):
        with engine.begin() as connection:
            connection.execute(insert(custody_events), part)
    snapshot_rows = []
    for facility in ids:
        end = now - SILENCE if facility in silent else now
        # Some rosters never change (their hash repeats): evaluation must look past them.
        still = facility % 7 == 0
        for step in range(steps):
            taken = end - timedelta(minutes=15 * step)
            content = "same" if still else f"{facility}-{step}"
            snapshot_rows.append(
                {
                    "facility_id": facility,
                    "taken_at": taken,
                    "content_hash": hashlib.sha256(content.encode()).hexdigest(),
                    "batch_id": batch,
                    "applied_at": taken,
                    "listed": 100,
                }
            )
    for part in iter_chunks(snapshot_rows, 20_000):
        with engine.begin() as connection:
            connection.execute(insert(roster_snapshots), part)
    return len(event_rows), len(snapshot_rows)


def _event(event_id: str, person: int, facility: int, at: datetime) -> dict[str, object]:
    """A transfer arriving at `facility` at `at` (what arrived matters here, not who)."""
    return {
        "event_id": event_id,
        "person_id": person,
        "kind": "transferred",
        "facility_id": facility,
        "occurred_at": at,
        "sequence": 0,
        "received_at": at,
        "details": {},
        "content_hash": "0" * 64,
        "origin": "feed",
    }


def _deliver(engine: Engine, chosen: list[int], at: datetime) -> None:
    """A roster snapshot (changed) and an event from each of `chosen`, arriving at `at`."""
    with engine.begin() as connection:
        batch = connection.execute(
            insert(ingest_batches)
            .values(kind="roster", source="bench", started_at=at, status="completed")
            .returning(ingest_batches.c.id)
        ).scalar_one()
        person = connection.execute(select(func.min(custody_events.c.person_id))).scalar_one()
        tag = at.isoformat()
        connection.execute(
            insert(custody_events), [_event(f"{tag}-{f}", person, f, at) for f in chosen]
        )
        connection.execute(
            insert(roster_snapshots),
            [
                {
                    "facility_id": f,
                    "taken_at": at,
                    "content_hash": hashlib.sha256(f"{f}-{tag}".encode()).hexdigest(),
                    "batch_id": batch,
                    "applied_at": at,
                    "listed": 100,
                }
                for f in chosen
            ],
        )


@dataclass(frozen=True)
class Run:
    judge_s: float  # the evaluation: states, outages, changes, audit, alert
    notices_s: float  # then, in a transaction of its own, registrants' notices queued
    queued: int


def _timed(engine: Engine, settings: Settings, now: datetime) -> Run:
    began = time.perf_counter()
    feed_health.judge(engine, settings, now)
    judged = time.perf_counter()
    delayed, resumed = feed_health.queue_notices(engine, now)
    return Run(judged - began, time.perf_counter() - judged, delayed + resumed)


def _count_state(engine: Engine, state: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM facility_health WHERE state = :s"), {"s": state}
            ).scalar_one()
        )
