"""The retention purge: a national database in which a tenth of the people left custody
long enough ago to be past their period, purged by one run of `actions.purge.purge`.

`scale.purge_persons` people are bulk-loaded (`dataset.load_population`), each with a
name, a booking and a custody status; a tenth of them, spread over the whole id range,
were released (a release event and a released status) more than the public window plus
the person period before the purge's `now`, the rest are still held. The purge is timed
from the call to its return (batches, audit entry, file cleaning), and every transaction
it opens on the engine is timed from `begin` until its connection is back in the pool: a
long one holds the write lock (on SQLite, the whole database's) and stalls ingest and
delivery.
Usage: python -m bench.purge [smoke|quick|full] [sqlite|postgresql]
"""

import gc
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, case, event, exists, func, or_, select

from bench.dataset import START, load_facilities, load_population, people, settle
from bench.harness import (
    RETENTION_DAYS,
    SCALES,
    Context,
    Databases,
    Result,
    Target,
    percentile,
)
from safevine.actions.actor import Actor
from safevine.actions.purge import PurgeRun, purge
from safevine.domain.event_kinds import CustodyState
from safevine.domain.retention import RetentionPeriods
from safevine.store.engine import make_engine
from safevine.store.schema import custody_status, person_names, persons, purged_persons

FACILITIES = 3_000
RELEASED_SHARE = 0.1
PERIODS = RetentionPeriods()
# Releases all fall before START + 60 days (`load_population`); the purge runs when the
# last of them is past its public window and person period, and before today.
PURGE_AT = START + timedelta(days=60 + RETENTION_DAYS + PERIODS.person_days + 1)
SECRET = b"bench purge key, 32 bytes long!!"
# The limits, for 2,000,000 people of whom a tenth are due.
LIMIT_S = 300
LIMIT_TRANSACTION_MS = 1_000
WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Transactions:
    """Every transaction on an engine, timed from `begin` until the next `begin` on the
    same connection or its return to the pool, whichever comes first (the `commit` event
    fires before the commit itself, whose WAL write or fsync still holds the lock), kept
    apart by whether it wrote anything. A purge holds one connection for its batches: on
    SQLite its checkpoint between two batches begins a transaction of its own, which
    writes no row. Autocommit connections (PostgreSQL's VACUUM after the run) hold no
    transaction and are left out."""

    write_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)
    last_write_end: float = 0.0

    def begin(self, connection: Connection) -> None:
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return
        # A transaction before this one on the same checkout ends here at the latest.
        self._finish(connection.info)
        connection.info["bench_began"] = time.perf_counter()
        connection.info["bench_wrote"] = False

    def statement(self, connection: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if "bench_began" in connection.info and statement.lstrip()[:6].upper() in WRITES:
            connection.info["bench_wrote"] = True

    def checkin(self, _dbapi_connection: Any, record: Any) -> None:
        self._finish(record.info)

    def _finish(self, info: dict[Any, Any]) -> None:
        began = info.pop("bench_began", None)
        wrote = info.pop("bench_wrote", False)
        if began is None:
            return
        now = time.perf_counter()
        (self.write_ms if wrote else self.read_ms).append((now - began) * 1000)
        if wrote:
            self.last_write_end = now

    def hooks(self) -> list[tuple[str, Any]]:
        return [
            ("begin", self.begin),
            ("before_cursor_execute", self.statement),
            ("checkin", self.checkin),
        ]


@dataclass(frozen=True)
class Timed:
    run: PurgeRun
    total_s: float
    # From the last write transaction's end to the return: the files' cleaning.
    clean_s: float
    transactions: Transactions


def run(ctx: Context) -> list[Result]:
    engine = make_engine(ctx.databases.fresh("purge"))
    try:
        return [_run(ctx, engine)]
    finally:
        engine.dispose()


def _run(ctx: Context, engine: Engine) -> Result:
    began = time.perf_counter()
    population = people(ctx.scale.purge_persons, ctx.seed)
    released = _released(len(population), ctx.seed)
    codes = load_facilities(engine, FACILITIES)
    load_population(engine, population, codes, seed=ctx.seed, released=released)
    settle(engine)
    people_count = len(population)
    # The generated people are millions of objects the purge never needs; left in this
    # process they make one of Python's full garbage collections, which can fall inside
    # a batch, take a second: a pause of the benchmark's own, not of a purge.
    del population
    gc.collect()
    setup_s = time.perf_counter() - began

    timed = _timed_purge(engine)
    purged = timed.run.counts["persons"]
    if purged != len(released):
        raise AssertionError(f"the purge removed {purged} persons of {len(released)} due")
    _check(engine, len(released))
    return _result(ctx, people_count, len(released), timed, setup_s)


def _released(count: int, seed: int) -> frozenset[int]:
    """A tenth of the people, drawn evenly over the id range (the purge reads by id)."""
    rng = random.Random(seed + 61)
    return frozenset(rng.sample(range(count), round(count * RELEASED_SHARE)))


def _timed_purge(engine: Engine) -> Timed:
    transactions = Transactions()
    for name, hook in transactions.hooks():
        event.listen(engine, name, hook)
    try:
        began = time.perf_counter()
        done = purge(
            engine,
            periods=PERIODS,
            public_days=RETENTION_DAYS,
            secret=SECRET,
            now=PURGE_AT,
            actor=Actor("bench"),
        )
        ended = time.perf_counter()
    finally:
        for name, hook in transactions.hooks():
            event.remove(engine, name, hook)
    clean_s = ended - max(transactions.last_write_end, began)
    return Timed(done, ended - began, clean_s, transactions)


def _check(engine: Engine, due: int) -> None:
    """One query over the purged: none keeps a name or a date of birth, and none was
    still held."""
    named = or_(
        persons.c.given_name.is_not(None),
        persons.c.family_name.is_not(None),
        persons.c.date_of_birth.is_not(None),
        exists().where(person_names.c.person_id == persons.c.id),
    )
    held = custody_status.c.state == CustodyState.IN_CUSTODY.value
    query = (
        select(
            func.count(),
            func.coalesce(func.sum(case((named, 1), else_=0)), 0),
            func.coalesce(func.sum(case((held, 1), else_=0)), 0),
        )
        .select_from(purged_persons)
        .join(persons, persons.c.id == purged_persons.c.person_id)
        .join(custody_status, custody_status.c.person_id == persons.c.id)
    )
    with engine.connect() as connection:
        count, still_named, still_held = connection.execute(query).one()
    if (count, still_named, still_held) != (due, 0, 0):
        raise AssertionError(
            f"{count} persons recorded as purged of {due} due; {still_named} still named "
            f"or dated, {still_held} still in custody"
        )


def _result(ctx: Context, people_count: int, due: int, timed: Timed, setup_s: float) -> Result:
    writes = timed.transactions.write_ms
    longest = max(writes, default=0.0)
    return Result(
        "purge",
        ctx.db,
        figures={
            "people": people_count,
            "due": due,
            "purged": timed.run.counts["persons"],
            "purge_s": round(timed.total_s, 3),
            "purged_per_s": round(timed.run.counts["persons"] / timed.total_s, 1),
            "write_transactions": len(writes),
            "write_tx_max_ms": round(longest, 1),
            "write_tx_p95_ms": round(percentile(writes, 0.95), 1),
            "read_tx_max_ms": round(max(timed.transactions.read_ms, default=0.0), 1),
            "clean_s": round(timed.clean_s, 3),
            "setup_s": round(setup_s, 3),
        },
        targets=[
            Target("purge run", timed.total_s, LIMIT_S, "s", higher_is_better=False),
            Target(
                "longest write transaction",
                longest,
                LIMIT_TRANSACTION_MS,
                "ms",
                higher_is_better=False,
            ),
        ],
        notes=[
            f"{people_count:,} people bulk-loaded, {due:,} of them ({RELEASED_SHARE:.0%}, "
            "spread over the id range) released long enough ago to be past the public "
            f"window ({RETENTION_DAYS} days) and the person period ({PERIODS.person_days} "
            "days); then one purge, timed from the call to its return",
            "transactions timed from begin until their connection is back in the pool; "
            "'write' ones wrote a row (the batches, the audit entry), 'read' ones did not "
            "(each kind's last, empty batch; the file cleaning on SQLite); clean_s is the "
            "time after the last write (SQLite's checkpoint, PostgreSQL's VACUUM)",
            "afterwards one query checks that no purged person keeps a name or a date of "
            "birth and that none was still in custody",
            f"targets are the issue's, for 2,000,000 people: {LIMIT_S} s for the run, "
            f"{LIMIT_TRANSACTION_MS:,} ms for any write transaction",
        ],
        series={"latency_ms:purge write transactions": writes},
    )


def main(scale: str, db: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        databases = Databases(db, Path(folder))
        try:
            for result in run(Context(db, SCALES[scale], Path(folder), databases)):
                print(result.as_json())
        finally:
            if db == "postgresql":
                databases.close()


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "smoke",
        sys.argv[2] if len(sys.argv) > 2 else "sqlite",
    )
