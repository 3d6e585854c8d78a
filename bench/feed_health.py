"""Evaluating every facility's feed health at national shape: 3,000 facilities, the
population booked into them with registrations, a history of events and roster snapshots
(every 15 minutes) per facility, a tenth of the facilities silent.

Timed, each as one whole evaluation transaction (`actions.feed_health.evaluate`, what the
staff service's clock runs): the first (a row for every facility, the silent ones go down
and their registrants' delay notices are queued), a steady one (nothing changes; open
outages are still checked for new registrants), one where another tenth of the facilities
go down, and one where the first tenth come back (outages end, resumed notices queued).
"""

import hashlib
import random
import statistics
import time
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
        going_down: list[float] = []
        for n, chosen in enumerate(slices[1 : 1 + CHANGE_RUNS]):
            _silence(engine, chosen, now)
            settle(engine)
            going_down.append(_timed(engine, settings, now + timedelta(minutes=n + 1)))
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
        _arrive(engine, slices[0], now + timedelta(minutes=10))
        settle(engine)
        recovering = _timed(engine, settings, now + timedelta(minutes=11))
        with engine.connect() as connection:
            resumed = connection.execute(
                select(func.count()).where(notifications.c.purpose == "resumed")
            ).scalar_one()
    finally:
        engine.dispose()

    if down_first != len(slices[0]):
        raise RuntimeError(f"{down_first} facilities down, {len(slices[0])} were silenced")
    worst = max([first, recovering, *steady, *going_down])
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
                "first_s": first,
                "steady_median_s": statistics.median(steady),
                "steady_p95_s": percentile(steady, 0.95),
                "tenth_down_median_s": statistics.median(going_down),
                "tenth_down_max_s": max(going_down),
                "tenth_recovered_s": recovering,
                "worst_s": worst,
            },
            targets=[Target("slowest evaluation", worst, LIMIT_S, "s", higher_is_better=False)],
            notes=[
                f"{len(ids):,} facilities; {events:,} events and {snapshots:,} roster "
                f"snapshots of history; a tenth silent for {SILENCE.total_seconds() / 3600:.0f} h",
            ],
            series={"steady_s": steady, "tenth_down_s": going_down},
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


def _silence(engine: Engine, chosen: list[int], now: datetime) -> None:
    """As if these facilities had sent nothing for `SILENCE`."""
    with engine.begin() as connection:
        for part in iter_chunks(chosen, 500):
            for table, column in (
                (custody_events, "received_at"),
                (roster_snapshots, "applied_at"),
            ):
                connection.execute(
                    update(table)
                    .where(table.c.facility_id.in_(part), table.c[column] > now - SILENCE)
                    .values({column: now - SILENCE - timedelta(minutes=1)})
                )


def _arrive(engine: Engine, chosen: list[int], at: datetime) -> None:
    with engine.begin() as connection:
        person = connection.execute(select(func.min(custody_events.c.person_id))).scalar_one()
        connection.execute(
            insert(custody_events), [_event(f"back-{f}", person, f, at) for f in chosen]
        )


def _timed(engine: Engine, settings: Settings, now: datetime) -> float:
    began = time.perf_counter()
    feed_health.evaluate(engine, settings, now)
    return time.perf_counter() - began


def _count_state(engine: Engine, state: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM facility_health WHERE state = :s"), {"s": state}
            ).scalar_one()
        )
