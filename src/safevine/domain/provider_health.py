"""When a provider is moved out of the way, in one place: the rules and a sliding window.

Traffic on a channel goes to its first provider. A provider is demoted when, over the last
`window`, at least `minimum` messages went its way and either too many failed at the send
(it was unreachable or answered 5xx/429: the provider's fault, not the address's) or too
many took longer than `slow_after` to be receipted, or are still without a receipt that
long after (GOV.UK Notify demotes a provider when 15% of texts in 15 minutes took over 5
minutes). A demoted provider rests for `rest`, then is first again with a fresh window.
"""

import os
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta


def _whole(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class FailoverRules:
    window: timedelta = timedelta(minutes=15)
    slow_after: timedelta = timedelta(minutes=5)
    slow_share: float = 0.15
    failed_share: float = 0.15
    minimum: int = 20
    rest: timedelta = timedelta(minutes=10)

    @classmethod
    def from_env(cls) -> "FailoverRules":
        return cls(
            window=timedelta(minutes=_whole("SAFEVINE_FAILOVER_WINDOW_MINUTES", 15, 1, 1440)),
            slow_after=timedelta(minutes=_whole("SAFEVINE_FAILOVER_SLOW_MINUTES", 5, 1, 1440)),
            slow_share=_whole("SAFEVINE_FAILOVER_SLOW_PERCENT", 15, 1, 100) / 100,
            failed_share=_whole("SAFEVINE_FAILOVER_FAILED_PERCENT", 15, 1, 100) / 100,
            minimum=_whole("SAFEVINE_FAILOVER_MINIMUM", 20, 1, 1_000_000),
            rest=timedelta(minutes=_whole("SAFEVINE_FAILOVER_REST_MINUTES", 10, 1, 1440)),
        )


@dataclass
class _Record:
    # (when, failed) for each send in the window, oldest first.
    sends: deque[tuple[datetime, bool]] = field(default_factory=deque)
    failed: int = 0
    # What the database last said of the window's receipts: (taken, slow).
    receipts: tuple[int, int] = (0, 0)
    demoted_until: datetime | None = None
    reason: str = ""


@dataclass(frozen=True)
class Demotion:
    provider: str
    until: datetime
    reason: str


class ProviderHealth:
    """The providers of one channel, in their configured order, and how each is doing."""

    def __init__(self, providers: list[str], rules: FailoverRules) -> None:
        if not providers:
            raise ValueError("a channel needs at least one provider")
        self.providers = list(providers)
        self.rules = rules
        self._records = {name: _Record() for name in self.providers}

    def _trim(self, record: _Record, now: datetime) -> None:
        start = now - self.rules.window
        while record.sends and record.sends[0][0] < start:
            _, failed = record.sends.popleft()
            record.failed -= failed

    def record_send(self, provider: str, failed: bool, now: datetime) -> Demotion | None:
        """A send through `provider` worked (it took the message, or refused the address)
        or failed on its side; returns a demotion this caused."""
        record = self._records.get(provider)
        if record is None:
            return None
        record.sends.append((now, failed))
        record.failed += failed
        self._trim(record, now)
        return self._judge(provider, record, now)

    def record_receipts(
        self, provider: str, taken: int, slow: int, now: datetime
    ) -> Demotion | None:
        """What the database says of the window: `taken` messages, `slow` of them receipted
        late or not yet receipted though they should have been."""
        record = self._records.get(provider)
        if record is None:
            return None
        record.receipts = (taken, slow)
        return self._judge(provider, record, now)

    def _judge(self, provider: str, record: _Record, now: datetime) -> Demotion | None:
        if self._resting(record, now) or len(self.providers) < 2:
            return None
        rules, sends = self.rules, len(record.sends)
        taken, slow = record.receipts
        if sends >= rules.minimum and record.failed >= rules.failed_share * sends:
            reason = f"{record.failed} of {sends} sends failed"
        elif taken >= rules.minimum and slow >= rules.slow_share * taken:
            reason = f"{slow} of {taken} messages had no receipt within {rules.slow_after}"
        else:
            return None
        record.demoted_until = now + rules.rest
        record.reason = reason
        return Demotion(provider, record.demoted_until, reason)

    @staticmethod
    def _resting(record: _Record, now: datetime) -> bool:
        return record.demoted_until is not None and now < record.demoted_until

    def _wake(self, now: datetime) -> None:
        for record in self._records.values():
            if record.demoted_until is not None and now >= record.demoted_until:
                # Back in line with a clean slate: its old failures are what demoted it.
                record.demoted_until, record.reason = None, ""
                record.sends.clear()
                record.failed = 0
                record.receipts = (0, 0)

    def order(self, now: datetime) -> list[str]:
        """Providers to use, best first: those not resting in configured order, then the
        resting ones, soonest back first (when all rest, the least bad is still used)."""
        self._wake(now)
        awake = [p for p in self.providers if not self._resting(self._records[p], now)]
        resting = sorted(
            (p for p in self.providers if p not in awake),
            key=lambda p: self._records[p].demoted_until or now,
        )
        return awake + resting

    def choose(self, now: datetime, avoid: str | None = None) -> str:
        """The provider for a new attempt; `avoid` one that just failed it, if any other."""
        order = self.order(now)
        awake_others = [p for p in order if p != avoid and not self._resting(self._records[p], now)]
        return (awake_others or order)[0]

    def demoted(self, now: datetime) -> dict[str, Demotion]:
        self._wake(now)
        return {
            name: Demotion(name, r.demoted_until, r.reason)
            for name, r in self._records.items()
            if r.demoted_until is not None and self._resting(r, now)
        }
