"""When a batch looks like a data accident rather than news: the thresholds, in one place.

A truncated roster, a changed facility code or a replayed file looks exactly like a mass
release. A batch that trips any rule is applied to the records but its notifications are
held for a person to review. Defaults suit both a county jail of 20 and a facility of
2,000: a rule needs both a share of the population and an absolute count, so a small jail's
ordinary day (one or two people leaving) never trips, and a big facility's 2-5% churn
neither.
"""

import os
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Thresholds:
    # A roster snapshot that has more than this share of a facility's population leaving...
    departure_share: float = 0.20
    # ...and at least this many people leaving (so a jail of 20 needs 5).
    departure_minimum: int = 5
    # A snapshot listing fewer than this share of the last applied snapshot's people.
    shrink_share: float = 0.50
    # More than this many events of one kind at one facility within `burst_window`, and
    # more than `departure_share` of its population.
    burst_minimum: int = 25
    burst_window: timedelta = timedelta(hours=1)
    # Events dated further ahead than this are not news but a clock or date error.
    future_tolerance: timedelta = timedelta(minutes=10)
    # Events dated this long before the newest already applied at their facility: a replay.
    replay_age: timedelta = timedelta(days=30)

    @classmethod
    def from_env(cls) -> "Thresholds":
        def number(name: str, default: float) -> float:
            raw = os.environ.get(name, "").strip()
            return float(raw) if raw else default

        base = cls()
        return cls(
            departure_share=number("SAFEVINE_HOLD_DEPARTURE_SHARE", base.departure_share),
            departure_minimum=int(
                number("SAFEVINE_HOLD_DEPARTURE_MINIMUM", base.departure_minimum)
            ),
            shrink_share=number("SAFEVINE_HOLD_SHRINK_SHARE", base.shrink_share),
            burst_minimum=int(number("SAFEVINE_HOLD_BURST_MINIMUM", base.burst_minimum)),
            burst_window=timedelta(minutes=number("SAFEVINE_HOLD_BURST_WINDOW_MINUTES", 60)),
            future_tolerance=timedelta(minutes=number("SAFEVINE_HOLD_FUTURE_MINUTES", 10)),
            replay_age=timedelta(days=number("SAFEVINE_HOLD_REPLAY_DAYS", 30)),
        )


def too_many_leaving(leaving: int, population: int, t: Thresholds) -> bool:
    return leaving >= t.departure_minimum and leaving > t.departure_share * population


def shrank(listed: int, last_listed: int | None, t: Thresholds) -> bool:
    return (
        last_listed is not None
        and last_listed >= t.departure_minimum
        and (listed < t.shrink_share * last_listed)
    )


@dataclass
class EventStats:
    """Counts gathered while a feed is read, judged when it ends."""

    bursts: dict[tuple[str, str, int], int]
    future: int = 0
    replayed: int = 0

    @classmethod
    def empty(cls) -> "EventStats":
        return cls({})

    def add(
        self,
        facility: str | None,
        kind: str,
        occurred_at: datetime,
        now: datetime,
        newest_before: datetime | None,
        t: Thresholds,
    ) -> None:
        bucket = int(occurred_at.timestamp() // max(1, t.burst_window.total_seconds()))
        key = (facility or "", kind, bucket)
        self.bursts[key] = self.bursts.get(key, 0) + 1
        if occurred_at > now + t.future_tolerance:
            self.future += 1
        if newest_before is not None and occurred_at < newest_before - t.replay_age:
            self.replayed += 1


def judge_events(stats: EventStats, populations: dict[str, int], t: Thresholds) -> str | None:
    """The rule an event batch trips, or None."""
    if stats.future:
        return f"{stats.future} event(s) dated in the future"
    if stats.replayed:
        return (
            f"{stats.replayed} event(s) dated more than {t.replay_age.days} days before "
            "the newest already applied at their facility (a replayed file?)"
        )
    # Only a bucket over the minimum can trip the rule: the rest are not sorted.
    over = [(key, count) for key, count in stats.bursts.items() if count > t.burst_minimum]
    for (facility, kind, _), count in sorted(over):
        population = populations.get(facility, 0)
        if count > t.departure_share * population:
            return f"{count} {kind} events at facility {facility} within {t.burst_window}"
    return None
