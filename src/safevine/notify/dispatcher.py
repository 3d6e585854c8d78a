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
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Connection, Engine

from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.domain.contact_address import Channel
from safevine.domain.notification_state import ABOUT_A_PERSON
from safevine.domain.quiet_hours import QuietHours, parse_clock
from safevine.domain.retry_policy import next_delay
from safevine.failures import describe
from safevine.notify.channels import TRANSPORTS, Transport
from safevine.notify.compose import compose
from safevine.notify.failover import Failover
from safevine.notify.outgoing import DeliveryResult, OutgoingMessage
from safevine.store.public import delivery
from safevine.store.public.delivery import Outgoing, Sent
from safevine.store.public.registrations import ACTIVE, ENDED, RECORD_UNAVAILABLE, end_registration
from safevine.store.write_priority import DISPATCH, lock_path, yield_to_priority

log = logging.getLogger("safevine.worker")
T = TypeVar("T")
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
    and happens in a thread so the event loop (and another dispatcher in it) runs on. A
    provider's report waits on it too (`store.write_priority.claim_turn`), so it goes in
    the instant a batch has landed. PostgreSQL needs none of this: its workers claim side
    by side (SKIP LOCKED)."""
    path = lock_path(engine.url.database, DISPATCH) if engine.dialect.name == "sqlite" else None
    if path is None:
        yield
        return
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass
class _Flight:
    """A batch in the air: its transaction (on `connection`) holds its rows until it has
    been recorded; `all_started` is set once each of its messages has begun to send."""

    report: BatchReport
    connection: Connection | None = None
    ready: list[tuple[Outgoing, OutgoingMessage]] = field(default_factory=list)
    sending: list["asyncio.Task[DeliveryResult]"] = field(default_factory=list)
    started: int = 0
    expected: int | None = None
    all_started: asyncio.Event = field(default_factory=asyncio.Event)


async def _call(threaded: bool, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)`, in a thread when `threaded` so the event loop goes on sending."""
    if threaded:
        return await asyncio.to_thread(function, *args)
    return function(*args)


async def _abandon(flight: _Flight) -> None:
    """See a batch's sends through, then roll it back: its rows go again when their lease
    runs out, under the same keys (at least once)."""
    await asyncio.gather(*flight.sending)
    if flight.connection is not None:
        flight.connection.close()


async def _idle(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _unprepared(error: Exception) -> DeliveryResult:
    """The result for a message that could not be prepared: tried again later (a key can
    be restored, a setting corrected), failed for good once out of tries. The reason names
    the error's type only: its text can quote the message."""
    return DeliveryResult.transient(f"could not be prepared ({type(error).__name__})")


def _commit_sent(connection: Connection, sent: list[Sent], now: datetime) -> None:
    delivery.mark_all_sent(connection, sent, now)
    connection.commit()


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
        self.failover = Failover(settings, self.registry, self._retry_after)

    def _retry_after(self, attempts: int) -> timedelta | None:
        return next_delay(attempts, self._rng, timedelta(seconds=self.settings.retry_base_seconds))

    async def close(self) -> None:
        for transport in self.transports.values():
            await transport.close()
        await self._http.aclose()

    async def run(self, stop: asyncio.Event, idle_seconds: float = 0.1) -> None:
        """Work batches until `stop` is set; sleeps briefly whenever nothing is due.

        A tenth of a second between looks keeps an event's message within about that of
        its commit when the queue is empty; a look that finds nothing is one indexed query.

        On PostgreSQL the next batch takes off while the last messages of the one before
        are still on the wire, and database calls run in a thread, so the connections are
        never idle waiting for the database (see `_run_overlapped`). On SQLite batches
        take turns: one holds the write lock until it is recorded.
        """
        if self.engine.dialect.name != "sqlite":
            await self._run_overlapped(stop, idle_seconds)
            return
        while not stop.is_set():
            await self._maintain()
            report = await self.run_once()
            if report.claimed == 0:
                await _idle(stop, idle_seconds)

    async def _maintain(self) -> None:
        """Failover's periodic look at receipts; a failure is logged and the sending goes on."""
        try:
            await self.failover.maintain(self.engine, datetime.now(UTC))
        except Exception as error:
            log.warning("failover could not look at receipts", extra=describe(error))

    async def run_once(self) -> BatchReport:
        """Claim, check, send and record one batch; returns what became of it."""
        # Before the batch's lock, never while holding it: a report holding its turn
        # waits for that lock (`store.write_priority`).
        yield_to_priority(self.engine)
        async with _sqlite_turn(self.engine):
            semaphore = asyncio.Semaphore(self.settings.worker_concurrency)
            flight = await self._take_off(semaphore, threaded=False)
            if flight.report.claimed == 0:
                return flight.report
            return await self._land(flight, threaded=False)

    async def _run_overlapped(self, stop: asyncio.Event, idle_seconds: float) -> None:
        """Batches in turn, each taking off once every message of the one before has
        started: at most two are open, and the earlier has only sends in flight left (at
        most `worker_concurrency`) when the next one locks its rows. A protection so waits
        for those sends and the next batch, as it would for one batch of that size."""
        semaphore = asyncio.Semaphore(self.settings.worker_concurrency)
        landing: asyncio.Task[BatchReport] | None = None
        try:
            while not stop.is_set():
                await self._maintain()
                yield_to_priority(self.engine)
                flight = await self._take_off(semaphore, threaded=True)
                if flight.report.claimed == 0:
                    if landing is not None:
                        done, landing = landing, None
                        await done
                    await _idle(stop, idle_seconds)
                    continue
                await flight.all_started.wait()
                if landing is not None:
                    done, landing = landing, None
                    try:
                        await done
                    except BaseException:
                        await _abandon(flight)
                        raise
                landing = asyncio.create_task(self._land(flight, threaded=True))
        finally:
            if landing is not None:
                await landing

    async def _take_off(self, semaphore: asyncio.Semaphore, threaded: bool) -> "_Flight":
        """Claim a batch, lock it in a transaction left open, and start sending each
        message as soon as it has passed the gate and is rendered."""
        flight = _Flight(BatchReport())
        now = datetime.now(UTC)
        lease = timedelta(seconds=self.settings.worker_lease_seconds)
        ids = await _call(threaded, self._claim, self.settings.worker_batch, now, lease)
        flight.report.claimed = len(ids)
        if not ids:
            return flight
        # The send happens inside this transaction, which holds the claimed rows: a
        # protection committing meanwhile waits for these sends and cancels the rest.
        connection = flight.connection = self.engine.connect()
        try:
            connection.begin()
            batch, public = await _call(threaded, self._hold, connection, ids)

            async def send(item: tuple[Outgoing, OutgoingMessage]) -> DeliveryResult:
                async with semaphore:
                    flight.started += 1
                    if flight.started == flight.expected:
                        flight.all_started.set()
                    try:
                        return await self.transports[item[0].channel].send(item[1])
                    except Exception as error:
                        log.exception(
                            "channel %s failed on notification %s", item[0].channel, item[0].id
                        )
                        return DeliveryResult.transient(f"internal error: {type(error).__name__}")

            try:
                for item in self._gate_each(connection, batch, flight.report, public):
                    flight.ready.append(item)
                    flight.sending.append(asyncio.create_task(send(item)))
                    await asyncio.sleep(0)
            except BaseException:
                # What has started is seen through before the transaction ends (then
                # rolled back: those are sent again, with the same keys).
                await asyncio.gather(*flight.sending)
                raise
            flight.expected = len(flight.sending)
            if flight.started == flight.expected:
                flight.all_started.set()
        except BaseException:
            connection.close()
            raise
        return flight

    async def _land(self, flight: "_Flight", threaded: bool) -> BatchReport:
        """Wait for the batch's sends, record them and commit, which lets its rows go."""
        connection, report = flight.connection, flight.report
        assert connection is not None
        try:
            results = await asyncio.gather(*flight.sending)
            finished = datetime.now(UTC)
            sent: list[Sent] = []
            for (outgoing, _), result in zip(flight.ready, results, strict=True):
                self._record(connection, outgoing, result, finished, report, sent)
            await _call(threaded, _commit_sent, connection, sent, finished)
        finally:
            connection.close()
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

    def _claim(self, limit: int, now: datetime, lease: timedelta) -> list[int]:
        with self.engine.begin() as connection:
            ids = delivery.claim(connection, self.name, limit, now, lease)
            choices = self.failover.choices(now)
            if ids and choices:
                # Committed with the claim, before anything is sent (failover).
                delivery.pin_providers(connection, ids, choices)
            return ids

    def _hold(
        self, connection: Connection, ids: list[int]
    ) -> tuple[list[Outgoing], dict[str, Any]]:
        batch = delivery.hold(connection, self.name, ids)
        refs = [o.person_ref for o in batch if o.purpose in ABOUT_A_PERSON]
        return batch, delivery.people(connection, refs)

    def _gate(
        self, connection: Connection, batch: list[Outgoing], report: BatchReport
    ) -> list[tuple[Outgoing, OutgoingMessage]]:
        """Cancel what must not go, defer what must wait, render the rest."""
        return list(self._gate_each(connection, batch, report))

    def _gate_each(
        self,
        connection: Connection,
        batch: list[Outgoing],
        report: BatchReport,
        public: dict[str, Any] | None = None,
    ) -> Iterator[tuple[Outgoing, OutgoingMessage]]:
        """`_gate`, one rendered message at a time; `public` is who among the batch's
        people is public, read in this transaction after the rows were locked."""
        now = datetime.now(UTC)
        if public is None:
            public = delivery.people(
                connection, [o.person_ref for o in batch if o.purpose in ABOUT_A_PERSON]
            )
        for o in batch:
            if o.registration_state == ENDED:
                delivery.mark_cancelled(connection, o.id, "registration_ended", now)
                report.cancelled += 1
                continue
            if o.purpose in ABOUT_A_PERSON:
                if o.registration_state != ACTIVE:
                    delivery.mark_cancelled(connection, o.id, "registration_not_active", now)
                    report.cancelled += 1
                    continue
                if o.person_ref not in public:
                    delivery.mark_cancelled(connection, o.id, RECORD_UNAVAILABLE, now)
                    end_registration(connection, o.registration_id, RECORD_UNAVAILABLE, now)
                    report.cancelled += 1
                    continue
            try:
                wait = self._quiet_until(o, now)
                message = None if wait is not None else self._message(o, public)
            except Exception as error:
                # One message that cannot be prepared (a key that no longer decrypts it,
                # content or settings that cannot be rendered) fails alone, visibly.
                log.warning("notification %s could not be prepared", o.id, extra=describe(error))
                self._record_failure(
                    connection, o, _unprepared(error), now, report, outcome="unprepared"
                )
                continue
            if message is None:
                assert wait is not None
                delivery.defer(connection, o.id, wait, "quiet_hours", now)
                report.deferred += 1
                continue
            yield o, message

    @staticmethod
    def _quiet_until(o: Outgoing, now: datetime) -> datetime | None:
        # A code the registrant just asked for is not held back; updates are.
        if o.purpose not in ABOUT_A_PERSON or o.channel not in QUIET_CHANNELS:
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
        return compose(o, public, self.vault, self.settings)

    def _record(
        self,
        connection: Connection,
        o: Outgoing,
        result: DeliveryResult,
        now: datetime,
        report: BatchReport,
        sent: list[Sent],
    ) -> None:
        """Count the outcome; a success joins `sent` (recorded for the whole batch at once
        by the caller), a failure is recorded here."""
        attempts = o.attempts + 1
        via = result.provider or self.failover.via(o.channel, o.sending_via)
        # Only a failure on the provider's side counts against it: a refused address is
        # the address's.
        self.failover.record(o.channel, via, not (result.ok or result.permanent), now)
        if result.ok:
            self.outcomes.labels(o.channel, "sent").inc()
            self.latency.labels(o.channel, o.purpose).observe((now - o.created_at).total_seconds())
            sent.append(Sent(o.id, attempts, result.provider_id, result.provider, result.delivered))
            report.sent += 1
            report.ids_sent.append(o.id)
            return
        self._record_failure(
            connection, o, result, now, report, "permanent" if result.permanent else "transient"
        )

    def _record_failure(
        self,
        connection: Connection,
        o: Outgoing,
        result: DeliveryResult,
        now: datetime,
        report: BatchReport,
        outcome: str,
    ) -> None:
        """Retry later (with backoff, up to the cap) or, if permanent or out of tries, fail."""
        self.outcomes.labels(o.channel, outcome).inc()
        attempts = o.attempts + 1
        delay = None if result.permanent else self._retry_after(attempts)
        if delay is None:
            delivery.mark_failed(connection, o.id, attempts, result.error, now)
            report.failed += 1
        else:
            # The attempt failed, so the next may go through another provider.
            via = self.failover.retry_via(
                o.channel, self.failover.via(o.channel, o.sending_via), now
            )
            delivery.mark_retry(connection, o.id, attempts, now + delay, result.error, now, via)
            report.retrying += 1
