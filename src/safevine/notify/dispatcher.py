"""The dispatcher: claims due notifications, checks each one right before sending (the last
gate), renders it, sends it, and records the result. Any number of workers may run on
PostgreSQL; on SQLite claims are still exclusive, one batch at a time.

Delivery is at least once: a worker that dies mid-batch leaves its claims to expire, and
they are sent again with the same idempotency key.
"""

import asyncio
import contextlib
import fcntl
import logging
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Connection, Engine

from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.domain.contact_address import Channel
from safevine.domain.quiet_hours import QuietHours, parse_clock
from safevine.domain.retry_policy import next_delay
from safevine.notify.channels import TRANSPORTS, DeliveryResult, Transport
from safevine.notify.channels.base import OutgoingMessage
from safevine.notify.messages import MessageContext, Rendered, render_code, render_event
from safevine.store.public import delivery
from safevine.store.public.delivery import Outgoing
from safevine.store.public.registrations import ACTIVE, ENDED, RECORD_UNAVAILABLE, end_registration
from safevine.store.write_priority import yield_to_priority

log = logging.getLogger("safevine.worker")
QUIET_CHANNELS = (Channel.SMS.value, Channel.VOICE.value)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    deferred: int = 0
    ids_sent: list[int] = field(default_factory=list)


@contextlib.asynccontextmanager
async def _sqlite_turn(engine: Engine) -> AsyncIterator[None]:
    """On SQLite, one dispatcher at a time works a batch, in turn, by an exclusive lock on a
    file beside the database. A batch holds SQLite's write lock while it is sent, and
    SQLite's busy waiting is not fair: a second worker waiting for that lock could wait
    behind batch after batch until its busy timeout ran out ("database is locked"), with
    its claims stuck until their lease expired. Waiting on this file lock has no timeout,
    and happens in a thread so the event loop (and another dispatcher in it) runs on.
    PostgreSQL needs none of this: its workers claim side by side (SKIP LOCKED)."""
    database = engine.url.database or ""
    if (
        engine.dialect.name != "sqlite"
        or database in ("", ":memory:")
        or database.startswith("file:")
    ):
        yield
        return
    fd = os.open(f"{database}.dispatch", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        name: str | None = None,
        transports: dict[str, Transport] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.name = name or worker_name()
        self.vault = ContactVault(settings.secret_key, settings.old_secret_keys)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(15.0))
        self.transports = transports or {
            name: cls(settings, self._http) for name, cls in TRANSPORTS.items()
        }
        self._rng = random.Random()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.latency = Histogram(
            "safevine_delivery_seconds",
            "From a notification's creation to its delivery",
            ["channel", "purpose"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300, 3600),
            registry=self.registry,
        )
        self.outcomes = Counter(
            "safevine_deliveries",
            "Delivery attempts by channel and outcome",
            ["channel", "outcome"],
            registry=self.registry,
        )

    async def close(self) -> None:
        for transport in self.transports.values():
            await transport.close()
        await self._http.aclose()

    async def run(self, stop: asyncio.Event, idle_seconds: float = 0.1) -> None:
        """Work batches until `stop` is set; sleeps briefly whenever nothing is due.

        A tenth of a second between looks keeps an event's message within about that of
        its commit when the queue is empty; a look that finds nothing is one indexed query.
        """
        while not stop.is_set():
            report = await self.run_once()
            if report.claimed == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle_seconds)

    async def run_once(self) -> BatchReport:
        async with _sqlite_turn(self.engine):
            return await self._run_once()

    async def _run_once(self) -> BatchReport:
        report = BatchReport()
        now = datetime.now(UTC)
        lease = timedelta(seconds=self.settings.worker_lease_seconds)
        yield_to_priority(self.engine)
        with self.engine.begin() as connection:
            ids = delivery.claim(connection, self.name, self.settings.worker_batch, now, lease)
        report.claimed = len(ids)
        if not ids:
            return report
        # The send happens inside this transaction, which holds the claimed rows: a
        # protection committing meanwhile waits for these sends and cancels the rest.
        with self.engine.begin() as connection:
            batch = delivery.hold(connection, self.name, ids)
            semaphore = asyncio.Semaphore(self.settings.worker_concurrency)

            async def send(item: tuple[Outgoing, OutgoingMessage]) -> DeliveryResult:
                async with semaphore:
                    try:
                        return await self.transports[item[0].channel].send(item[1])
                    except Exception as error:
                        log.exception(
                            "channel %s failed on notification %s", item[0].channel, item[0].id
                        )
                        return DeliveryResult.transient(f"internal error: {type(error).__name__}")

            # Each message leaves as soon as it has passed the gate and is rendered, so the
            # first sends are on the wire while the rest of the batch is still rendering.
            ready: list[tuple[Outgoing, OutgoingMessage]] = []
            sending: list[asyncio.Task[DeliveryResult]] = []
            try:
                for item in self._gate_each(connection, batch, report):
                    ready.append(item)
                    sending.append(asyncio.create_task(send(item)))
                    await asyncio.sleep(0)
            finally:
                # Even when the gate fails, what has started is seen through before the
                # transaction ends (then rolled back: those are sent again, same keys).
                results = await asyncio.gather(*sending)
            finished = datetime.now(UTC)
            sent: list[tuple[int, int, str | None]] = []
            for (outgoing, _), result in zip(ready, results, strict=True):
                self._record(connection, outgoing, result, finished, report, sent)
            delivery.mark_all_sent(connection, sent, finished)
        log.info(
            "batch: claimed=%d sent=%d retrying=%d failed=%d cancelled=%d deferred=%d",
            report.claimed,
            report.sent,
            report.retrying,
            report.failed,
            report.cancelled,
            report.deferred,
        )
        return report

    def _gate(
        self, connection: Connection, batch: list[Outgoing], report: BatchReport
    ) -> list[tuple[Outgoing, OutgoingMessage]]:
        """Cancel what must not go, defer what must wait, render the rest."""
        return list(self._gate_each(connection, batch, report))

    def _gate_each(
        self, connection: Connection, batch: list[Outgoing], report: BatchReport
    ) -> Iterator[tuple[Outgoing, OutgoingMessage]]:
        """`_gate`, one rendered message at a time."""
        now = datetime.now(UTC)
        refs = [o.person_ref for o in batch if o.purpose == "event"]
        public = delivery.people(connection, refs)
        for o in batch:
            if o.registration_state == ENDED:
                delivery.mark_cancelled(connection, o.id, "registration_ended", now)
                report.cancelled += 1
                continue
            if o.purpose == "event":
                if o.registration_state != ACTIVE:
                    delivery.mark_cancelled(connection, o.id, "registration_not_active", now)
                    report.cancelled += 1
                    continue
                if o.person_ref not in public:
                    delivery.mark_cancelled(connection, o.id, RECORD_UNAVAILABLE, now)
                    end_registration(connection, o.registration_id, RECORD_UNAVAILABLE, now)
                    report.cancelled += 1
                    continue
            wait = self._quiet_until(o, now)
            if wait is not None:
                delivery.defer(connection, o.id, wait, "quiet_hours", now)
                report.deferred += 1
                continue
            yield o, self._message(o, public)

    @staticmethod
    def _quiet_until(o: Outgoing, now: datetime) -> datetime | None:
        # A code the registrant just asked for is not held back; updates are.
        if o.purpose != "event" or o.channel not in QUIET_CHANNELS:
            return None
        if not (o.quiet_start and o.quiet_end and o.time_zone):
            return None
        window = QuietHours(
            parse_clock(o.quiet_start, "quiet_start"),
            parse_clock(o.quiet_end, "quiet_end"),
            o.time_zone,
        )
        return window.next_allowed(now)

    def _message(self, o: Outgoing, public: dict[str, Any]) -> OutgoingMessage:
        address = self.vault.decrypt(o.address_key_id, o.address_ciphertext, "address")
        rendered: Rendered
        if o.purpose == "confirmation":
            assert o.secret_key_id and o.secret_ciphertext
            rendered = render_code(
                self.vault.decrypt(o.secret_key_id, o.secret_ciphertext, "code"), o.language
            )
        else:
            assert o.manage_token_key_id and o.manage_token_ciphertext
            token = self.vault.decrypt(o.manage_token_key_id, o.manage_token_ciphertext, "manage")
            person = public[o.person_ref]
            name = " ".join(p for p in (person.given_name, person.family_name) if p)
            context = MessageContext(
                o.language,
                o.wording,
                o.number,
                f"{self.settings.public_base_url}/m/{token}",
                self.settings.help_phone,
            )
            rendered = render_event(
                o.content, name, o.person_ref, context, email_only=o.channel == "email"
            )
        secret = (
            self.vault.decrypt(o.webhook_secret_key_id, o.webhook_secret_ciphertext, "webhook")
            if o.webhook_secret_key_id and o.webhook_secret_ciphertext
            else None
        )
        return OutgoingMessage(
            o.idempotency_key, address, rendered, o.language, o.allow_voicemail, secret
        )

    def _record(
        self,
        connection: Connection,
        o: Outgoing,
        result: DeliveryResult,
        now: datetime,
        report: BatchReport,
        sent: list[tuple[int, int, str | None]],
    ) -> None:
        """Count the outcome; a success joins `sent` (recorded for the whole batch at once
        by the caller), a failure is recorded here."""
        attempts = o.attempts + 1
        outcome = "sent" if result.ok else "permanent" if result.permanent else "transient"
        self.outcomes.labels(o.channel, outcome).inc()
        if result.ok:
            self.latency.labels(o.channel, o.purpose).observe((now - o.created_at).total_seconds())
            sent.append((o.id, attempts, result.provider_id))
            report.sent += 1
            report.ids_sent.append(o.id)
            return
        delay = (
            None
            if result.permanent
            else next_delay(
                attempts, self._rng, timedelta(seconds=self.settings.retry_base_seconds)
            )
        )
        if delay is None:
            delivery.mark_failed(connection, o.id, attempts, result.error, now)
            report.failed += 1
        else:
            delivery.mark_retry(connection, o.id, attempts, now + delay, result.error, now)
            report.retrying += 1
