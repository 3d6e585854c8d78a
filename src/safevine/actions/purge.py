"""`safevine purge`: remove what is past its retention period (`domain.retention`), in
batches that each hold the write lock briefly, so ingest and search keep running.

A run appends one audit entry with the counts it removed. Then the removed bytes are made
unrecoverable from the database's files: SQLite zeroes what it frees (`secure_delete`, on
every connection) and the run checkpoints the write-ahead log into the file and truncates
it; on PostgreSQL the changed tables are vacuumed, so no dead row version stays readable.
"""

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, func, select, text

from safevine.actions.actor import Actor
from safevine.config import Settings
from safevine.domain.retention import Cutoffs, RetentionPeriods, cutoffs
from safevine.failures import describe
from safevine.store.bulk_writes import bulk_writes
from safevine.store.records import purge as kinds
from safevine.store.records.audit import append
from safevine.store.schema import audit_log
from safevine.store.write_priority import claim_priority

log = logging.getLogger("safevine.purge")


# A batch aims to hold the write lock this long, so that a feed, a protection or a
# dispatcher waiting behind it waits far less than a second, while a national purge is not
# mostly per-batch overhead. A kind's first batch is small; each next one is sized from the
# rows per second the last achieved, growing by half at most (a row costs more in a larger
# batch, which touches more pages): a row's cost varies tenfold with database and machine.
BATCH_SECONDS = 0.2
FIRST_BATCH = 100
SMALLEST_BATCH = 50
LARGEST_BATCH = 5_000


@dataclass(frozen=True)
class PurgeRun:
    counts: dict[str, int]
    dry_run: bool
    cutoffs: Cutoffs
    # How the files were cleaned after the run (nothing for a dry run).
    cleaned: list[str] = field(default_factory=list)
    # Each write batch's time, from its begin until its commit returned, in milliseconds.
    batch_ms: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts,
            "cutoffs": {name: moment.isoformat() for name, moment in vars(self.cutoffs).items()},
            "cleaned": self.cleaned,
            "batches": len(self.batch_ms),
            "longest_batch_ms": round(max(self.batch_ms, default=0.0), 1),
        }


def next_batch(size: int, done: int, seconds: float) -> int:
    """The next batch's size after one of `size` rows changed `done` in `seconds`: what
    the last one's pace fits in BATCH_SECONDS, changing by half at most each time, and
    never under SMALLEST_BATCH (a batch's fixed cost, its queries, does not shrink with
    it: past some point smaller batches only make a run longer, never a batch shorter)."""
    if done < size:
        return size  # the kind is finishing: nothing to learn from a short batch
    fits = int(done * BATCH_SECONDS / max(seconds, 1e-3))
    return max(SMALLEST_BATCH, size // 2, min(LARGEST_BATCH, size + size // 2, fits))


def purge(
    engine: Engine,
    *,
    periods: RetentionPeriods,
    public_days: int,
    secret: bytes,
    now: datetime,
    actor: Actor,
    dry_run: bool = False,
) -> PurgeRun:
    """Purge everything past its period as of `now`; with `dry_run`, only count it."""
    limits = cutoffs(periods, public_days, now)
    if dry_run:
        with engine.connect() as connection:
            counted = {name: count(connection, limits) for name, (_, count) in kinds.KINDS.items()}
        return PurgeRun(counted, True, limits)
    counts = {"returns_recognised": _mark_returns(engine, secret)}
    batch_ms: list[float] = []
    # One connection for the run: on SQLite its page cache stays warm from batch to batch,
    # and it checkpoints between batches, never inside a commit.
    with engine.connect() as connection, bulk_writes(connection, checkpoints=False):
        for name, (purge_batch, _) in kinds.KINDS.items():
            total, after, size = 0, 0, FIRST_BATCH
            while True:
                began = time.perf_counter()
                with connection.begin():
                    _write_from_the_start(connection)
                    done, after = purge_batch(connection, limits, secret, now, after, size)
                seconds = time.perf_counter() - began
                if done == 0:
                    break
                batch_ms.append(seconds * 1000)
                total += done
                size = next_batch(size, done, seconds)
                _checkpoint(connection)
            counts[name] = total
        with connection.begin():
            append(
                connection,
                actor=actor.name,
                action="purge",
                target="retention",
                reason=", ".join(f"{name} {n}" for name, n in counts.items()),
                at=now,
            )
    cleaned = _clean_files(engine)
    longest = max(batch_ms, default=0.0)
    log.info(
        "purge: %s; %d batches, longest %.0f ms",
        ", ".join(f"{name} {n}" for name, n in counts.items()),
        len(batch_ms),
        longest,
    )
    return PurgeRun(counts, False, limits, cleaned, batch_ms)


def _write_from_the_start(connection: Connection) -> None:
    """SQLite: take the write lock before the batch reads what is due, so that nothing
    (a person booked again, say) changes between the read and the writes; PostgreSQL locks
    the rows it reads instead (`store.records.purge`). A batch goes ahead of dispatchers,
    as a protection does, so it never waits behind their sends for the lock."""
    if connection.dialect.name == "sqlite":
        claim_priority(connection)
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _checkpoint(connection: Connection) -> None:
    """SQLite: copy what the batch wrote from the write-ahead log into the file, outside
    any transaction; a passive checkpoint holds no lock a writer or reader waits for."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        connection.commit()


def _mark_returns(engine: Engine, secret: bytes) -> int:
    """Persons booked since the last run whose A-number was purged before: returns. Done
    here, not at ingest, because only a holder of the secret key can make the hash; a run
    checks the persons created since the one before it started."""
    since = last_purge(engine)
    if since is None:
        return 0  # no run before this one, so nobody was purged
    after, total = 0, 0
    while True:
        with engine.begin() as connection:
            last, found = kinds.mark_returns(connection, secret, since, after)
        total += found
        if last == after:
            return total
        after = last


def _clean_files(engine: Engine) -> list[str]:
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            busy, frames, moved = connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
        if busy:
            # A reader held an old snapshot: the next run finishes the job.
            return [f"write-ahead log checkpointed in part ({moved} of {frames} pages)"]
        return ["write-ahead log checkpointed and truncated"]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in kinds.TABLES:
            connection.execute(text(f"VACUUM {table}"))
    return [f"vacuumed {len(kinds.TABLES)} tables"]


SCHEDULED = Actor("system:purge")
# How often the clock looks whether a purge is due: a restart never delays one by long.
LOOK_EVERY_SECONDS = 3600


def last_purge(engine: Engine) -> datetime | None:
    with engine.connect() as connection:
        found = connection.execute(
            select(func.max(audit_log.c.at)).where(audit_log.c.action == "purge")
        ).scalar()
    return found if isinstance(found, datetime) else None


def purge_if_due(engine: Engine, settings: Settings, now: datetime) -> PurgeRun | None:
    """Purge unless one ran (by any process) within SAFEVINE_PURGE_EVERY_HOURS."""
    last = last_purge(engine)
    if last is not None and now - last < timedelta(hours=settings.purge_every_hours):
        return None
    return purge(
        engine,
        periods=settings.retention,
        public_days=settings.retention_days,
        secret=settings.secret_key,
        now=now,
        actor=SCHEDULED,
    )


async def keep_purging(engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
    """Purge every `settings.purge_every_hours` until `stop` (the staff service's clock: it
    alone holds the records); a failed run is logged and the next look tries again."""
    every = settings.purge_every_hours
    while every > 0 and not stop.is_set():
        try:
            await asyncio.to_thread(purge_if_due, engine, settings, datetime.now(UTC))
        except Exception as error:  # the next look tries again
            log.warning("purge failed", extra=describe(error))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=min(LOOK_EVERY_SECONDS, every * 3600))
