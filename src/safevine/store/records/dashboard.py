"""What a staff member needs to see first: who waits to be screened, what is held, what
failed or waits to be sent, and when each feed last sent something."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from safevine.domain.notification_state import WAITING as WAITING_STATES
from safevine.domain.notification_state import NotificationState as S
from safevine.store.public.tables import notifications
from safevine.store.records import feed_health, screening_queue
from safevine.store.schema import batch_holds, ingest_batches

WAITING = tuple(s.value for s in WAITING_STATES)


@dataclass(frozen=True)
class FeedLast:
    kind: str
    source: str
    batch_id: int
    status: str
    started_at: datetime
    rejected: int


@dataclass(frozen=True)
class Dashboard:
    screening: screening_queue.QueueSummary
    holds_open: int
    failed: int
    retrying: int
    waiting: int
    oldest_waiting: datetime | None
    feeds: list[FeedLast]
    # Facilities by feed health state (a staff hold counted as its hold).
    feed_health: dict[str, int]


def build(connection: Connection) -> Dashboard:
    n = notifications
    by_state: dict[str, int] = dict(
        connection.execute(select(n.c.state, func.count()).group_by(n.c.state)).all()
    )
    oldest = connection.execute(
        select(func.min(n.c.created_at)).where(n.c.state.in_(WAITING))
    ).scalar()
    holds_open = connection.execute(
        select(func.count()).select_from(batch_holds).where(batch_holds.c.state == "held")
    ).scalar_one()
    b = ingest_batches
    latest = select(func.max(b.c.id)).group_by(b.c.kind, b.c.source).scalar_subquery()
    feeds = [
        FeedLast(row.kind, row.source, int(row.id), row.status, row.started_at, int(row.rejected))
        for row in connection.execute(
            select(b.c.kind, b.c.source, b.c.id, b.c.status, b.c.started_at, b.c.rejected)
            .where(b.c.id.in_(latest))
            .order_by(b.c.started_at.desc())
            .limit(50)
        )
    ]
    return Dashboard(
        screening_queue.summary(connection),
        int(holds_open),
        int(by_state.get(S.FAILED, 0)),
        int(by_state.get(S.RETRYING, 0)),
        sum(by_state.get(s, 0) for s in WAITING),
        oldest,
        feeds,
        feed_health.counts(connection),
    )
