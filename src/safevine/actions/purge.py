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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, text

from safevine.actions.actor import Actor
from safevine.config import Settings
from safevine.domain.retention import Cutoffs, RetentionPeriods, cutoffs
from safevine.failures import describe
from safevine.store.records import purge as kinds
from safevine.store.records.audit import append
from safevine.store.schema import audit_log
from safevine.store.write_priority import claim_priority

log = logging.getLogger("safevine.purge")


@dataclass(frozen=True)
class PurgeRun:
    counts: dict[str, int]
    dry_run: bool
    cutoffs: Cutoffs
    # How the files were cleaned after the run (nothing for a dry run).
    cleaned: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts,
            "cutoffs": {name: moment.isoformat() for name, moment in vars(self.cutoffs).items()},
            "cleaned": self.cleaned,
        }


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
    counts: dict[str, int] = {}
    if not dry_run:
        counts["returns_recognised"] = _mark_returns(engine, secret)
    for name, (purge_batch, count) in kinds.KINDS.items():
        if dry_run:
            with engine.connect() as connection:
                counts[name] = count(connection, limits)
            continue
        total, after = 0, 0
        while True:
            with engine.begin() as connection:
                # On SQLite a batch goes ahead of dispatchers, as a protection does, so
                # it is never left waiting behind their sends for the write lock.
                claim_priority(connection)
                done, after = purge_batch(connection, limits, secret, now, after)
            total += done
            if done == 0:
                break
        counts[name] = total
    if dry_run:
        return PurgeRun(counts, True, limits)
    with engine.begin() as connection:
        append(
            connection,
            actor=actor.name,
            action="purge",
            target="retention",
            reason=", ".join(f"{name} {n}" for name, n in counts.items()),
            at=now,
        )
    cleaned = _clean_files(engine)
    log.info("purge: %s", ", ".join(f"{name} {n}" for name, n in counts.items()))
    return PurgeRun(counts, False, limits, cleaned)


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
