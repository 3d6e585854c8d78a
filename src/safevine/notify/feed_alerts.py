"""Telling the agency's operations address that facilities went late or down, or
recovered: one message per evaluation that found such changes (a national feed that stops
is one alert listing every facility, not three thousand), queued in the evaluation's
transaction and sent by the worker with the operations messages' retries.

It names facilities and times only: never a person.
"""

from datetime import datetime

from sqlalchemy import Connection, insert

from safevine.config import Settings
from safevine.domain.feed_health import Health, HealthChange
from safevine.store.public.tables import operations_messages

FEED_HEALTH = "feed_health"
# Listed in full up to this many; the rest are counted and on the feed health page.
LISTED = 50

_SAYS = {
    Health.LATE: "late",
    Health.DOWN: "DOWN",
    Health.RECOVERED: "recovered",
}


def _line(change: HealthChange) -> str:
    last = change.last_data.isoformat(timespec="minutes") if change.last_data else "never"
    before = change.before.value if change.before else "new"
    return (
        f"- {change.code} ({change.name}): {before} -> {_SAYS[change.after]}; last received {last}"
    )


def queue_feed_alert(
    connection: Connection, settings: Settings, changes: list[HealthChange], now: datetime
) -> int:
    """Queue one alert per operations address for the changes worth telling; how many."""
    told = [change for change in changes if change.alerts]
    addresses = settings.operations_addresses()
    if not told or not addresses:
        return 0
    counts = {state: sum(c.after == state for c in told) for state in _SAYS}
    summary = ", ".join(f"{n} {_SAYS[state]}" for state, n in counts.items() if n)
    lines = [_line(change) for change in told[:LISTED]]
    if len(told) > LISTED:
        lines.append(f"... and {len(told) - LISTED} more.")
    body = (
        f"safevine feed health at {now.isoformat(timespec='minutes')}: {summary}.\n\n"
        + "\n".join(lines)
        + f"\n\nEvery facility's state: {settings.staff_base_url}/feed-health\n"
        "Pause or close a facility there (with a reason) when its silence is expected.\n"
    )
    payload = {
        "kind": FEED_HEALTH,
        "at": now.isoformat(),
        "changes": [
            {
                "facility": change.code,
                "from": change.before.value if change.before else None,
                "to": change.after.value,
                "last_received": change.last_data.isoformat() if change.last_data else None,
            }
            for change in told
        ],
    }
    for channel in addresses:
        connection.execute(
            insert(operations_messages).values(
                kind=FEED_HEALTH,
                channel=channel,
                subject=f"safevine feed health: {summary}"[:200],
                body=body,
                payload=payload,
                state="queued",
                next_attempt_at=now,
                created_at=now,
            )
        )
    return len(addresses)
