"""A feed batch, sent by someone: each batch's audit entry is written in the transaction
that records its outcome (`ingest.batch_run.finish`)."""

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Engine

from safevine.actions.actor import Actor
from safevine.ingest.events import EventFormat, ingest_events
from safevine.ingest.facilities import ingest_facilities
from safevine.ingest.protections import ingest_protections
from safevine.ingest.roster import Scope, ingest_roster
from safevine.ingest.summary import IngestSummary


def events(
    engine: Engine, actor: Actor, lines: Iterable[bytes], *, source: str, fmt: EventFormat
) -> IngestSummary:
    return ingest_events(engine, lines, source=source, fmt=fmt, actor=actor.name)


def roster(
    engine: Engine,
    actor: Actor,
    lines: Iterable[bytes],
    *,
    source: str,
    scope: Scope,
    declared: Sequence[str],
    snapshot_at: datetime | None,
) -> IngestSummary:
    return ingest_roster(
        engine,
        lines,
        source=source,
        scope=scope,
        declared=declared,
        snapshot_at=snapshot_at,
        actor=actor.name,
    )


def protections(
    engine: Engine, actor: Actor, lines: Iterable[bytes], *, source: str
) -> IngestSummary:
    return ingest_protections(engine, lines, source=source, actor=actor.name)


def facilities(
    engine: Engine, actor: Actor, lines: Iterable[bytes], *, source: str
) -> IngestSummary:
    return ingest_facilities(engine, lines, source=source, actor=actor.name)
