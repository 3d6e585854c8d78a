"""When a facility has gone silent: the cadence each facility is expected to keep, and the
health state that follows from what has arrived, in one place (like the hold thresholds).

A feed that stops is the most dangerous failure a notification system has: nothing is
released, so nobody is told anything, and a victim believes the person is still held. A
facility is `late` when nothing has arrived for `LATE_AFTER` times its cadence, `down`
when nothing has arrived for `down_after`, and `recovered` when data arrives again after
either (until the next evaluation finds it simply `current`). A facility whose roster
keeps arriving unchanged while its events have stopped is judged by its events: an
unchanged roster is no proof that the feed behind it is alive.

Each facility's cadence is set (in the facility file or by staff) or learned from the
gaps between its recent arrivals; the defaults below hold until there is history.
"""

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

LONGEST_CADENCE_MINUTES = 365 * 24 * 60  # the longest cadence a facility may be set to
LATE_AFTER = 3  # cadences without data before a facility is late
LEARN_FROM = 5  # arrivals needed before a cadence is learned rather than assumed
# Arrivals closer together than this are one delivery (a batch of many events), not a
# cadence: a history loaded at once must not teach that the feed speaks every second.
ONE_DELIVERY = timedelta(minutes=1)


class Health(StrEnum):
    CURRENT = "current"
    LATE = "late"
    DOWN = "down"
    RECOVERED = "recovered"
    PAUSED = "paused"  # staff said so, with a reason: no alert
    CLOSED = "closed"  # staff said so, with a reason: no alert


@dataclass(frozen=True)
class HealthRules:
    # Expected gaps when a facility has neither a set cadence nor enough history.
    roster_every: timedelta = timedelta(hours=24)
    events_every: timedelta = timedelta(hours=12)
    # Nothing at all for this long: down, whatever the cadence.
    down_after: timedelta = timedelta(hours=72)
    # A learned cadence is kept within these bounds, so that a burst of arrivals
    # does not make a facility late within minutes, nor a sparse history never.
    shortest: timedelta = timedelta(minutes=15)
    longest: timedelta = timedelta(days=7)

    @classmethod
    def from_env(cls) -> "HealthRules":
        def hours(name: str, default: timedelta) -> timedelta:
            raw = os.environ.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                value = -1.0
            if not 0 < value <= 24 * 365:
                raise ValueError(f"{name} must be a number of hours above 0, not {raw!r}")
            return timedelta(hours=value)

        base = cls()
        return cls(
            roster_every=hours("SAFEVINE_FEED_ROSTER_EVERY_HOURS", base.roster_every),
            events_every=hours("SAFEVINE_FEED_EVENTS_EVERY_HOURS", base.events_every),
            down_after=hours("SAFEVINE_FEED_DOWN_AFTER_HOURS", base.down_after),
        )


def learned_cadence(
    arrivals: Sequence[datetime], fallback: timedelta, rules: HealthRules
) -> timedelta:
    """The typical gap between a facility's recent arrivals (the median, so one outage or
    one burst does not move it), within the rules' bounds; `fallback` without history."""
    gaps = sorted(
        later - earlier
        for earlier, later in itertools.pairwise(sorted(arrivals))
        if later - earlier >= ONE_DELIVERY
    )
    if len(gaps) < LEARN_FROM - 1:
        return fallback
    typical = gaps[len(gaps) // 2]
    return min(max(typical, rules.shortest), rules.longest)


@dataclass(frozen=True)
class Arrivals:
    """What a facility has sent: when the last roster and the last event arrived, and
    when its roster last changed (an unchanged roster proves little)."""

    last_roster: datetime | None
    last_roster_change: datetime | None
    last_event: datetime | None


@dataclass(frozen=True)
class Cadence:
    """What one facility is held to: set (facility file or staff) or learned."""

    roster_every: timedelta
    events_every: timedelta
    down_after: timedelta
    learned: bool = False


def cadence_of(
    rosters: Sequence[datetime],
    events: Sequence[datetime],
    rules: HealthRules,
    roster_every: timedelta | None = None,
    events_every: timedelta | None = None,
    down_after: timedelta | None = None,
) -> Cadence:
    """A set value wins; otherwise the facility's recent arrivals teach it."""
    learned = roster_every is None or events_every is None
    return Cadence(
        roster_every or learned_cadence(rosters, rules.roster_every, rules),
        events_every or learned_cadence(events, rules.events_every, rules),
        down_after or rules.down_after,
        learned,
    )


def _roster_seen(arrivals: Arrivals, cadence: Cadence, now: datetime) -> datetime | None:
    """When the roster last proved the feed alive: an unchanged roster counts from its
    last change, not its last arrival, once events have stopped too."""
    events_alive = arrivals.last_event is not None and now - arrivals.last_event < (
        LATE_AFTER * cadence.events_every
    )
    if arrivals.last_roster is not None and not events_alive and arrivals.last_roster_change:
        return arrivals.last_roster_change
    return arrivals.last_roster


def last_data(arrivals: Arrivals, cadence: Cadence, now: datetime) -> datetime | None:
    """The freshest sign of life the judgement counts ("last received")."""
    seen = [m for m in (_roster_seen(arrivals, cadence, now), arrivals.last_event) if m]
    return max(seen) if seen else None


def state_of(
    arrivals: Arrivals,
    cadence: Cadence,
    now: datetime,
    previous: Health | None = None,
    held_by_staff: Health | None = None,
) -> Health:
    """The facility's health now. `held_by_staff` (paused or closed) wins; a facility
    that has never sent anything is not judged (current) until it has."""
    if held_by_staff in (Health.PAUSED, Health.CLOSED):
        return held_by_staff
    # Each stream measured against its own cadence; the healthier one decides.
    roster_seen = _roster_seen(arrivals, cadence, now)
    overdue: list[float] = []
    silent: list[timedelta] = []
    for seen, every in (
        (roster_seen, cadence.roster_every),
        (arrivals.last_event, cadence.events_every),
    ):
        if seen is not None:
            overdue.append((now - seen) / every)
            silent.append(now - seen)
    if not overdue:
        return Health.CURRENT
    if min(silent) >= cadence.down_after:
        return Health.DOWN
    if min(overdue) >= LATE_AFTER:
        return Health.LATE
    if previous in (Health.LATE, Health.DOWN):
        return Health.RECOVERED
    return Health.CURRENT


@dataclass(frozen=True)
class HealthChange:
    """One facility's change of state, as evaluation found it."""

    facility_id: int
    code: str
    name: str
    before: Health | None
    after: Health
    at: datetime
    last_data: datetime | None

    @property
    def alerts(self) -> bool:
        """Staff are told when a facility goes late or down and when it recovers; a
        change staff made themselves (paused, closed) tells them nothing new."""
        if self.after in (Health.LATE, Health.DOWN):
            return self.before != self.after
        return self.after == Health.RECOVERED
