"""The staff delivery report: is anything stuck, failing or being cancelled, and did the
feeds arrive whole. Counts only; no person is named."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, func, select

from safevine.domain.contact_address import Channel
from safevine.domain.notification_state import WAITING as WAITING_STATES
from safevine.domain.notification_state import NotificationState as S
from safevine.store.public.registrations import ACTIVE
from safevine.store.public.tables import notifications, registrations
from safevine.store.schema import batch_holds, ingest_batches

WAITING = tuple(s.value for s in WAITING_STATES)


@dataclass
class DeliveryReport:
    generated_at: datetime
    by_state: dict[str, int] = field(default_factory=dict)
    by_channel_state: list[dict[str, Any]] = field(default_factory=list)
    by_day: list[dict[str, Any]] = field(default_factory=list)
    oldest_waiting_seconds: float | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    cancellations: dict[str, int] = field(default_factory=dict)
    registrations: dict[str, int] = field(default_factory=dict)
    batches: list[dict[str, Any]] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)
    receipts: list["Receipts"] = field(default_factory=list)
    # The days the report's figures over a period look back (receipts, per day, bounces).
    period_days: int = 30
    # Email registrations whose address bounced for good (`registrations.bounced_at`):
    # the active ones (they receive nothing by email now), and those, in any state, whose
    # address bounced within the period. Counts only: never an address or a person.
    active_bouncing: int = 0
    bounced_in_period: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "notifications": {
                "by_state": self.by_state,
                "by_channel_state": self.by_channel_state,
                "by_day": self.by_day,
                "oldest_waiting_seconds": self.oldest_waiting_seconds,
            },
            "receipts": [r.as_json() for r in self.receipts],
            "failures": self.failures,
            "cancellations": self.cancellations,
            "registrations": self.registrations,
            "bounces": {
                "active_bouncing": self.active_bouncing,
                "bounced_in_period": self.bounced_in_period,
                "period_days": self.period_days,
            },
            "ingest_batches": self.batches,
            "holds": self.holds,
        }


@dataclass
class Receipts:
    """What became of the messages one provider took on one channel: how many, and the
    share of them delivered, acknowledged, failed, still awaiting a receipt, and awaiting
    one for longer than it should take ("no receipt"); how long receipts took."""

    channel: str
    provider: str
    taken: int = 0
    delivered: int = 0  # reached: a receipt said so, or the registrant acknowledged it
    acknowledged: int = 0
    failed: int = 0
    retrying: int = 0
    awaiting: int = 0
    no_receipt: int = 0
    receipt_seconds: list[float] = field(default_factory=list, repr=False)

    def share(self, count: int) -> float | None:
        return round(count / self.taken, 4) if self.taken else None

    def receipt_time(self, fraction: float) -> float | None:
        times = sorted(self.receipt_seconds)
        if not times:
            return None
        return round(times[min(len(times) - 1, int(fraction * len(times)))], 1)

    def as_json(self) -> dict[str, Any]:
        counts = ("delivered", "acknowledged", "failed", "retrying", "awaiting", "no_receipt")
        return {
            "channel": self.channel,
            "provider": self.provider,
            "taken": self.taken,
            **{name: getattr(self, name) for name in counts},
            "rates": {name: self.share(getattr(self, name)) for name in counts},
            "receipt_seconds": {
                "median": self.receipt_time(0.5),
                "p95": self.receipt_time(0.95),
                "receipts": len(self.receipt_seconds),
            },
        }


# How long receipts take is read from the newest this many, not from every one.
RECEIPT_SAMPLE = 10_000


def _receipts(
    connection: Connection, since: datetime, now: datetime, wait: timedelta
) -> list[Receipts]:
    """Per channel and provider, what became of what the providers took since `since`."""
    n, r = notifications, registrations
    found: dict[tuple[str, str], Receipts] = {}

    def of(channel: str, provider: str | None) -> Receipts:
        key = (channel, provider or "unknown")
        return found.setdefault(key, Receipts(*key))

    overdue = n.c.sent_at < now - wait
    for channel, provider, state, late, count in connection.execute(
        select(
            r.c.channel,
            n.c.provider,
            n.c.state,
            case((overdue, True), else_=False).label("late"),
            func.count(),
        )
        .join(r, r.c.id == n.c.registration_id)
        .where(n.c.sent_at >= since)
        .group_by(r.c.channel, n.c.provider, n.c.state, "late")
    ):
        row = of(channel, provider)
        row.taken += count
        if state in (S.DELIVERED, S.ACKNOWLEDGED):
            row.delivered += count
        if state == S.ACKNOWLEDGED:
            row.acknowledged += count
        elif state == S.FAILED:
            row.failed += count
        elif state == S.RETRYING:
            row.retrying += count
        elif state == S.SENT:
            row.awaiting += count
            row.no_receipt += count if late else 0
    for channel, provider, sent_at, delivered_at in connection.execute(
        select(r.c.channel, n.c.provider, n.c.sent_at, n.c.delivered_at)
        .join(r, r.c.id == n.c.registration_id)
        .where(n.c.sent_at >= since, n.c.delivered_at.is_not(None))
        .order_by(n.c.sent_at.desc())
        .limit(RECEIPT_SAMPLE)
    ):
        seconds = (delivered_at - sent_at).total_seconds()
        of(channel, provider).receipt_seconds.append(max(0.0, seconds))
    return sorted(found.values(), key=lambda row: (row.channel, row.provider))


def _bounces(connection: Connection, since: datetime) -> tuple[int, int]:
    """Active email registrations whose address is bouncing, and email registrations
    whose address bounced since `since`, in one read."""
    r = registrations
    bouncing, in_period = connection.execute(
        select(
            func.count(case((r.c.state == ACTIVE, 1))),
            func.count(case((r.c.bounced_at >= since, 1))),
        ).where(r.c.channel == Channel.EMAIL.value, r.c.bounced_at.is_not(None))
    ).one()
    return int(bouncing), int(in_period)


def build(
    connection: Connection, days: int = 30, receipt_wait: timedelta = timedelta(minutes=30)
) -> DeliveryReport:
    now = datetime.now(UTC)
    report = DeliveryReport(now, period_days=days)
    report.receipts = _receipts(connection, now - timedelta(days=days), now, receipt_wait)
    n, r = notifications, registrations
    report.by_state = dict(
        connection.execute(select(n.c.state, func.count()).group_by(n.c.state)).all()
    )
    report.by_channel_state = [
        {"channel": channel, "state": state, "count": count}
        for channel, state, count in connection.execute(
            select(r.c.channel, n.c.state, func.count())
            .join(r, r.c.id == n.c.registration_id)
            .group_by(r.c.channel, n.c.state)
            .order_by(r.c.channel, n.c.state)
        )
    ]
    since = now - timedelta(days=days)
    per_day: dict[tuple[str, str], int] = {}
    for created, state in connection.execute(
        select(n.c.created_at, n.c.state).where(n.c.created_at >= since)
    ):
        key = (created.date().isoformat(), state)
        per_day[key] = per_day.get(key, 0) + 1
    report.by_day = [
        {"day": day, "state": state, "count": count}
        for (day, state), count in sorted(per_day.items())
    ]
    oldest = connection.execute(
        select(func.min(n.c.created_at)).where(n.c.state.in_(WAITING))
    ).scalar()
    if oldest is not None:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        report.oldest_waiting_seconds = round((now - oldest).total_seconds(), 1)
    report.failures = [
        {"reason": reason, "count": count}
        for reason, count in connection.execute(
            select(func.substr(n.c.last_error, 1, 120).label("reason"), func.count())
            .where(n.c.state == S.FAILED)
            .group_by("reason")
            .order_by(func.count().desc())
        )
    ]
    report.cancellations = dict(
        connection.execute(
            select(n.c.cancel_reason, func.count())
            .where(n.c.state == S.CANCELLED)
            .group_by(n.c.cancel_reason)
        ).all()
    )
    report.registrations = dict(
        connection.execute(select(r.c.state, func.count()).group_by(r.c.state)).all()
    )
    report.active_bouncing, report.bounced_in_period = _bounces(connection, since)
    h = batch_holds
    report.holds = [
        {
            "hold": row.id,
            "batch": row.batch_id,
            "rule": row.rule,
            "age_seconds": round((now - row.created_at).total_seconds()),
            "held_since": row.created_at.isoformat(),
        }
        for row in connection.execute(select(h).where(h.c.state == "held").order_by(h.c.id))
    ]
    b = ingest_batches
    report.batches = [
        {
            "batch": row.id,
            "kind": row.kind,
            "source": row.source,
            "status": row.status,
            "started_at": row.started_at.isoformat(),
            "total": row.total,
            "applied": row.applied,
            "duplicates": row.duplicates,
            "rejected": row.rejected,
            "derived_events": row.derived_events,
        }
        for row in connection.execute(select(b).order_by(b.c.id.desc()).limit(50))
    ]
    return report
