"""Quiet hours: a daily window, in the registrant's time zone, when no call or SMS is made."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    zone: str

    def next_allowed(self, now: datetime) -> datetime | None:
        """None if `now` is outside the window; otherwise the UTC moment the window ends.

        A window whose start is after its end spans midnight (22:00-07:00).
        """
        local = now.astimezone(ZoneInfo(self.zone))
        moment = local.time().replace(tzinfo=None)
        if self.start == self.end:
            return None
        if self.start < self.end:
            inside = self.start <= moment < self.end
            end_day = local.date()
        else:
            inside = moment >= self.start or moment < self.end
            end_day = local.date() + timedelta(days=1) if moment >= self.start else local.date()
        if not inside:
            return None
        ends = datetime.combine(end_day, self.end, ZoneInfo(self.zone))
        return ends.astimezone(UTC)


def parse_clock(value: str, field: str) -> time:
    """`HH:MM` (24-hour). Raises ValueError naming the field."""
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: use a 24-hour time such as 21:30") from None
    return parsed.replace(second=0, microsecond=0)
