"""Which provider each message goes through, for a worker: the first of its channel's
providers unless that one is failing or slow (`domain.provider_health`), and, where there
is another, messages without a receipt sent again through it.

Each worker judges from its own sends and from the receipts every worker's messages have
had (read from the database), so a provider that stops answering is left within a few
sends, and one that answers but delivers late within a minute.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import Engine

from safevine.config import Settings
from safevine.domain.contact_address import Channel
from safevine.domain.provider_health import Demotion, ProviderHealth
from safevine.store.public import failover as store

log = logging.getLogger("safevine.worker")
# How often receipts are read and unreceipted messages looked for.
LOOK_EVERY = timedelta(seconds=60)


class Failover:
    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry,
        retry_after: Callable[[int], timedelta | None],
    ) -> None:
        self.settings = settings
        self.retry_after = retry_after
        phones = [p.name for p in settings.phone_providers()]
        relays = [r.name for r in settings.smtp_relays()]
        every = {
            Channel.SMS.value: phones,
            Channel.VOICE.value: phones,
            Channel.EMAIL.value: relays,
        }
        self.first = {channel: names[0] for channel, names in every.items()}
        # Only channels with a choice to make.
        self.health = {
            channel: ProviderHealth(names, settings.failover)
            for channel, names in every.items()
            if len(names) > 1
        }
        self.demoted = Gauge(
            "safevine_provider_demoted",
            "1 while a provider is moved out of the way for its channel",
            ["channel", "provider"],
            registry=registry,
        )
        for channel, names in every.items():
            for name in names:
                self.demoted.labels(channel, name).set(0)
        self._last_look: datetime | None = None

    def choices(self, now: datetime) -> dict[str, str]:
        """The provider for new attempts on each channel that has a choice."""
        return {channel: health.choose(now) for channel, health in self.health.items()}

    def via(self, channel: str, pinned: str | None) -> str:
        return pinned or self.first.get(channel, "")

    def record(self, channel: str, provider: str, failed: bool, now: datetime) -> None:
        health = self.health.get(channel)
        if health is not None:
            self._demoted(channel, health.record_send(provider, failed, now))

    def retry_via(self, channel: str, failed: str, now: datetime) -> str | None:
        """Where an attempt that failed through `failed` goes next (None: the first)."""
        health = self.health.get(channel)
        return None if health is None else health.choose(now, avoid=failed)

    def another(self, channel: str, provider: str, now: datetime) -> str | None:
        health = self.health.get(channel)
        if health is None:
            return None
        chosen = health.choose(now, avoid=provider)
        return None if chosen == provider else chosen

    def _demoted(self, channel: str, demotion: Demotion | None) -> None:
        if demotion is None:
            return
        # Names a provider and counts, never a message or an address.
        log.warning(
            "%s provider %s moved out of the way until %s: %s",
            channel,
            demotion.provider,
            demotion.until.isoformat(timespec="seconds"),
            demotion.reason,
        )

    def _gauges(self, now: datetime) -> None:
        for channel, health in self.health.items():
            resting = health.demoted(now)
            for name in health.providers:
                self.demoted.labels(channel, name).set(1 if name in resting else 0)

    async def maintain(self, engine: Engine, now: datetime) -> int:
        """At most every `LOOK_EVERY`: judge texts' receipts, and send again what had none
        (through another provider). Returns how many went again."""
        if not self.health:
            return 0
        if self._last_look is not None and now - self._last_look < LOOK_EVERY:
            self._gauges(now)
            return 0
        self._last_look = now
        again = await asyncio.to_thread(self.look, engine, now)
        self._gauges(now)
        return again

    def look(self, engine: Engine, now: datetime) -> int:
        rules = self.settings.failover
        sms = self.health.get(Channel.SMS.value)
        phones = tuple(p.name for p in self.settings.phone_providers())
        with engine.begin() as connection:
            if sms is not None:
                for provider in sms.providers:
                    times = store.receipt_times(
                        connection, provider, now - rules.window, rules.slow_after, now
                    )
                    self._demoted(
                        Channel.SMS.value,
                        sms.record_receipts(provider, times.taken, times.slow, now),
                    )
            if len(phones) < 2:
                return 0
            again = store.send_unreceipted_again(
                connection,
                phones,
                now,
                timedelta(minutes=self.settings.receipt_wait_minutes),
                lambda channel, provider: self.another(channel, provider, now),
                self.retry_after,
            )
        if again:
            log.info("sent %d messages again through another provider: no receipt", again)
        return again
