"""Delivery: email throughput of one and of two real worker processes against a bare
aiosmtplib ceiling, the steady-load latency from an event's commit to the SMTP server
accepting its message, and the worker's peak memory; then text messages and their
delivery receipts: texts sent per second by one worker, receipts applied per second by the
public service, and the lag from a receipt's arrival to its recorded state.

Everything is real: notifications are written by `record_events` (the outbox writer), the
workers are `safevine worker` processes, the SMTP server is aiosmtpd in a process of its
own (`bench.smtp_sink`), the SMS provider a Twilio-compatible one in a process of its own
(`bench.sms_provider`) that posts a signed receipt for every text to a `safevine serve`
process, so nothing measured shares a GIL with them.
"""

import asyncio
import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import IO

import aiosmtplib
import httpx
from sqlalchemy import Engine, func, select, update

from bench.dataset import (
    START,
    Person,
    home_facility,
    load_facilities,
    load_population,
    load_registrations,
    people,
    public_refs,
    settle,
)
from bench.harness import Context, Result, Target, peak_rss_mb, percentile
from bench.process_cpu import cpu_seconds, server_cpu_since, server_processes
from bench.sms_provider import SENDERS, SmsProviderProcess
from bench.smtp_sink import SmtpSinkProcess
from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.event_kinds import EventKind
from safevine.domain.names import PersonName
from safevine.notify.channels.email import EmailTransport
from safevine.notify.dispatcher import BatchReport, Dispatcher
from safevine.store.engine import make_engine
from safevine.store.public import delivery
from safevine.store.public.connection import make_public_engine
from safevine.store.public.tables import notifications, registrations
from safevine.store.records.events import record_events
from safevine.store.schema import custody_events, persons
from safevine.web.server import free_port

SECRET_KEY = "bench-delivery-secret-key-0123456789abcdef"
RETENTION_DAYS = "60"
# Events recorded per transaction while setting up (one person at most once in each).
SETUP_CHUNK = 500
# Rendered messages the ceiling cycles through (rendering all 100,000 would take minutes).
CEILING_SAMPLE = 2_000
# Messages per ceiling run: enough for a steady rate, fewer than 100,000 to save time.
CEILING_MESSAGES = 30_000
TICK_SECONDS = 0.1
UNSENT = ("queued", "retrying", "sending")
# Texts in the receipts run: enough for steady rates, fewer than the email runs' to save
# time (each text is a request to the provider and a receipt back).
MOST_TEXTS = 30_000
# What the SMS provider signs its receipts with (SAFEVINE_SMS_AUTH_TOKEN).
PROVIDER_TOKEN = "bench receipts provider token"
# Seconds from the provider taking a text to its carrier's delivery receipt: real ones
# take seconds; posted at once, a receipt would overtake the worker's record of its text
# and wait for it, and the lag would be the worker's batch time, not the service's.
CARRIER_SECONDS = 1.0


def _say(text: str) -> None:
    print(f"[delivery {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass
class Registered:
    """A person with active registrations, and where the generator last put them."""

    index: int
    person: Person
    registrations: int
    facility: str


@dataclass
class EventMaker:
    """Custody events that each notify every registration on their person: transfers
    (always later than the person's current status) and hearings, in turn."""

    codes: list[str]
    counter: int = 0
    made: list[str] = field(default_factory=list)

    def event(self, who: Registered, prefix: str) -> CustodyEventInput:
        self.counter += 1
        n = self.counter
        p = who.person
        facts = PersonFacts(
            p.a_number, PersonName(p.given, p.family), (), p.date_of_birth, p.country
        )
        when = START + timedelta(seconds=n)
        event_id = f"{prefix}-{n:08d}"
        if n % 2:
            moved_from = who.facility
            who.facility = self.codes[(n * 7_919 + who.index) % len(self.codes)]
            if who.facility == moved_from:
                who.facility = self.codes[(self.codes.index(moved_from) + 1) % len(self.codes)]
            return CustodyEventInput(
                event_id,
                EventKind.TRANSFERRED,
                when,
                facts,
                who.facility,
                details={"from_facility_code": moved_from},
            )
        hearing = when + timedelta(days=14 + n % 60)
        return CustodyEventInput(
            event_id,
            EventKind.HEARING_SCHEDULED,
            when,
            facts,
            who.facility,
            details={"court": "Immigration Court", "hearing_at": hearing.isoformat()},
        )


def _registered(engine: Engine, population: list[Person], codes: list[str]) -> list[Registered]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(persons.c.a_number, func.count(registrations.c.id))
            .join(registrations, registrations.c.person_ref == persons.c.public_ref)
            .where(registrations.c.state == "active")
            .group_by(persons.c.a_number)
            .order_by(persons.c.a_number)
        ).all()
    out = []
    for a_number, count in rows:
        index = int(a_number) - 200_000_000
        out.append(Registered(index, population[index], int(count), home_facility(index, codes)))
    return out


def _chunks_for(
    who: list[Registered], messages: int, maker: EventMaker, prefix: str
) -> Iterator[list[CustodyEventInput]]:
    """Events whose notifications add up to exactly `messages`, in chunks where no person
    appears twice (two events for one person in one call could coalesce)."""
    remaining, position = messages, 0
    chunk: list[CustodyEventInput] = []
    in_chunk: set[int] = set()
    while remaining > 0:
        candidate = who[position % len(who)]
        position += 1
        if candidate.registrations > remaining:
            continue
        if candidate.index in in_chunk or len(chunk) >= SETUP_CHUNK:
            yield chunk
            chunk, in_chunk = [], set()
        chunk.append(maker.event(candidate, prefix))
        in_chunk.add(candidate.index)
        remaining -= candidate.registrations
    if chunk:
        yield chunk


def _env(url: str, port: int) -> dict[str, str]:
    """The environment of a worker (and of this process's Settings, for the ceiling)."""
    env = dict(os.environ)
    env.update(
        SAFEVINE_DATABASE_URL=url,
        SAFEVINE_SECRET_KEY=SECRET_KEY,
        SAFEVINE_RETENTION_DAYS=RETENTION_DAYS,
        SAFEVINE_SMTP_HOST="127.0.0.1",
        SAFEVINE_SMTP_PORT=str(port),
        SAFEVINE_SMTP_SECURITY="none",
        SAFEVINE_LOG_LEVEL="warning",
    )
    env.pop("SAFEVINE_SECRET_KEY_FILE", None)
    env.pop("SAFEVINE_PUBLIC_DATABASE_URL", None)
    return env


def _settings(env: dict[str, str]) -> Settings:
    keys = [k for k in env if k.startswith("SAFEVINE_")]
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: env[k] for k in keys})
    try:
        return Settings.from_env()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Worker:
    """One `safevine worker` process; its stderr goes to a file for diagnostics."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        executable = Path(sys.executable).parent / "safevine"
        self.log = log
        self._err: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            [str(executable), "worker"], env=env, stdout=subprocess.PIPE, stderr=self._err
        )
        self.started = time.time()

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds until the worker says it is sending."""
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        buffer = b""
        while b"is sending" not in buffer:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"the worker did not start: {self.tail()}")
            if selector.select(0.1):
                buffer += os.read(self.process.stdout.fileno(), 4096)
        selector.close()
        return time.time() - self.started

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the worker exited with {self.process.returncode}: {self.tail()}")

    def tail(self) -> str:
        self._err.flush()
        return self.log.read_text(errors="replace")[-2000:]

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._err.close()


def _unsent(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(notifications)
                .where(notifications.c.state.in_(UNSENT))
            ).scalar_one()
        )


def _wait_all_sent(
    engine: Engine, sink: SmtpSinkProcess, target: int, workers: list[Worker], timeout: float
) -> float:
    """Wait until the sink has `target` messages and the database nothing unsent; returns
    the time (epoch seconds) at which that was seen."""
    deadline = time.monotonic() + timeout
    while sink.count() < target:
        for worker in workers:
            worker.check()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the sink got {sink.count()} of {target} messages in {timeout:.0f} s; "
                f"worker log: {workers[0].tail()}"
            )
        time.sleep(0.02)
    while _unsent(engine):
        for worker in workers:
            worker.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{_unsent(engine)} notifications still unsent after {timeout} s")
        time.sleep(0.02)
    return time.time()


def _first_claim(engine: Engine) -> float:
    with engine.connect() as connection:
        first = connection.execute(
            select(func.min(notifications.c.claimed_at)).where(notifications.c.state == "sent")
        ).scalar_one()
    assert isinstance(first, datetime)
    return first.timestamp()


def _sent_by_worker(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(func.count())
            .select_from(notifications)
            .where(notifications.c.state == "sent")
            .group_by(notifications.c.claimed_by)
        ).scalars()
        return sorted((int(n) for n in rows), reverse=True)


@dataclass
class Run:
    """One throughput run: messages/s from the first claim to every row sent, each worker's
    peak RSS, the slowest start-up, messages sent by each worker, and the CPU time each
    message cost the workers, the sink and (PostgreSQL on this machine) the database
    server processes serving this database (ms)."""

    rate: float
    rss: list[float]
    startup: float
    split: list[int]
    worker_cpu_ms: float
    sink_cpu_ms: float
    database_cpu_ms: float | None


def _throughput(
    engine: Engine,
    sink: SmtpSinkProcess,
    env: dict[str, str],
    folder: Path,
    messages: int,
    count: int,
    label: str,
) -> Run:
    """Run `count` workers until every notification is sent."""
    target = sink.count() + messages
    workers: list[Worker] = []
    try:
        for n in range(count):
            workers.append(Worker(env, folder / f"worker-{label}-{n}.log"))
        startup = max(w.wait_ready() for w in workers)
        worker_cpu = sum(cpu_seconds(w.pid) for w in workers)
        sink_cpu = cpu_seconds(sink.pid)
        database_before = server_processes(engine, this_database=True)
        done = _wait_all_sent(engine, sink, target, workers, timeout=120 + messages / 50)
        worker_cpu = sum(cpu_seconds(w.pid) for w in workers) - worker_cpu
        sink_cpu = cpu_seconds(sink.pid) - sink_cpu
        # Server processes that connected meanwhile count from zero.
        database_cpu = server_cpu_since(engine, database_before, this_database=True)
        rss = [w.peak_rss_mb() for w in workers]
    finally:
        for worker in workers:
            worker.stop()
    rate = messages / (done - _first_claim(engine))
    return Run(
        rate,
        rss,
        startup,
        _sent_by_worker(engine),
        worker_cpu * 1000 / messages,
        sink_cpu * 1000 / messages,
        None if database_cpu is None else database_cpu * 1000 / messages,
    )


def _requeue(engine: Engine, suffix: str) -> None:
    """The same notifications due again, with fresh idempotency keys."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            update(notifications)
            .where(notifications.c.purpose == "event")
            .values(
                state="queued",
                attempts=0,
                next_attempt_at=now,
                claimed_by=None,
                claimed_at=None,
                sent_at=None,
                provider_message_id=None,
                idempotency_key=notifications.c.idempotency_key + suffix,
                updated_at=now,
            )
        )


async def _render_sample(settings: Settings, url: str, limit: int) -> list[tuple[str, bytes]]:
    """(recipient, message bytes) for up to `limit` queued notifications, rendered and built
    by the worker's own code (claim, hold, gate, EmailTransport.build), then rolled back."""
    public = make_public_engine(url)
    dispatcher = Dispatcher(settings, public, name="bench-render")
    try:
        transport = dispatcher.transports["email"]
        assert isinstance(transport, EmailTransport)
        out = []
        with public.connect() as connection, connection.begin() as transaction:
            now = datetime.now(UTC)
            ids = delivery.claim(connection, "bench-render", limit, now)
            batch = delivery.hold(connection, "bench-render", ids)
            for _, message in dispatcher._gate(connection, batch, BatchReport()):
                built = transport.build(message)
                if built is None:
                    built = transport.build_email(message).as_bytes(policy=policy.SMTP)
                out.append((message.address, built))
            transaction.rollback()
        return out
    finally:
        await dispatcher.close()
        public.dispose()


def _measure_ceiling(
    settings: Settings, sink: SmtpSinkProcess, sample: list[tuple[str, bytes]], messages: int
) -> tuple[float, float]:
    """The ceiling's messages/s and its client's CPU time per message (ms)."""
    target = sink.count() + messages
    cpu = time.process_time()
    rate = asyncio.run(_ceiling(settings, sink.port, sample, messages))
    cpu = time.process_time() - cpu
    if not sink.wait_for(target, timeout=30):
        raise RuntimeError(f"the sink recorded {sink.count()} of {target} ceiling messages")
    return rate, cpu * 1000 / messages


async def _ceiling(
    settings: Settings, port: int, sample: list[tuple[str, bytes]], messages: int
) -> float:
    """Messages/s of a bare aiosmtplib loop: `worker_concurrency` connections, each sending
    pre-built messages from the shared sample until `messages` have been accepted."""
    sender = settings.mail_from.rpartition("<")[2].rstrip(">")
    left = messages

    async def connection() -> None:
        nonlocal left
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=15)
        await client.connect()
        try:
            while left > 0:
                left -= 1
                recipient, data = sample[left % len(sample)]
                await client.sendmail(sender, [recipient], data)
        finally:
            await client.quit()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(settings.worker_concurrency)))
    return messages / (time.perf_counter() - began)


def _steady(
    engine: Engine,
    sink: SmtpSinkProcess,
    env: dict[str, str],
    folder: Path,
    who: list[Registered],
    maker: EventMaker,
    rate: int,
    seconds: int,
) -> tuple[float, list[float], int, float]:
    """Record `rate` events/s for `seconds` (one transaction per 100 ms tick) while one
    worker runs. Returns achieved events/s, latencies (ms) from each event's commit to
    the sink accepting its message, the messages, and the worker's peak RSS."""
    base = sink.count()
    committed: dict[str, float] = {}
    total = rate * seconds
    position = 0
    worker = Worker(env, folder / "worker-steady.log")
    try:
        worker.wait_ready()
        began = time.monotonic()
        tick = 0
        while len(committed) < total:
            tick += 1
            due = min(total, round(rate * tick * TICK_SECONDS))
            batch: list[CustodyEventInput] = []
            seen: set[int] = set()
            while len(committed) + len(batch) < due:
                candidate = who[position % len(who)]
                position += 1
                if candidate.index in seen:
                    break
                seen.add(candidate.index)
                batch.append(maker.event(candidate, "steady"))
            with engine.begin() as connection:
                record_events(
                    connection,
                    batch,
                    origin="feed",
                    now=datetime.now(UTC),
                    source="bench-steady.jsonl",
                )
            at = time.time()
            committed.update((e.event_id, at) for e in batch)
            pause = began + tick * TICK_SECONDS - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        elapsed = time.monotonic() - began
        with engine.connect() as connection:
            keys = {
                key: event_id
                for key, event_id in connection.execute(
                    select(notifications.c.idempotency_key, custody_events.c.event_id)
                    .join(custody_events, custody_events.c.id == notifications.c.event_pk)
                    .where(custody_events.c.event_id.like("steady-%"))
                )
            }
        _wait_all_sent(engine, sink, base + len(keys), [worker], timeout=120)
        rss = worker.peak_rss_mb()
    finally:
        worker.stop()
    latencies = []
    for accepted_at, message_id in sink.accepted()[base:]:
        key = message_id.strip("<>").partition("@")[0]
        event_id = keys.get(key)
        if event_id is not None:
            latencies.append((accepted_at - committed[event_id]) * 1000)
    return total / elapsed, latencies, len(keys), rss


def _database_note(run: Run) -> str:
    if run.database_cpu_ms is None:
        return ""
    return f", database {run.database_cpu_ms:.2f} ms"


def _queue(
    engine: Engine, ctx: Context, count: int, channel: str
) -> tuple[float, list[Registered], EventMaker]:
    """`count` queued notifications by `channel` ("email" or "sms"), written through
    `record_events` for people with registrations, as a feed would cause them: the
    seconds it took, and the registered people and event maker, for more events."""
    scale = ctx.scale
    began = time.perf_counter()
    codes = load_facilities(engine, 960)
    population = people(max(scale.registrations, 100), ctx.seed)
    load_population(engine, population, codes, seed=ctx.seed)
    vault = ContactVault(SECRET_KEY.encode())
    refs = public_refs(engine)
    load_registrations(engine, vault, refs, scale.registrations, ctx.seed, channel=channel)
    who = _registered(engine, population, codes)
    maker = EventMaker(codes)
    recorded = 0
    for chunk in _chunks_for(who, count, maker, f"setup {channel}"):
        with engine.begin() as connection:
            recorded += record_events(
                connection, chunk, origin="feed", now=datetime.now(UTC), source="bench.jsonl"
            ).notifications
    settle(engine)
    if recorded != count or _unsent(engine) != count:
        raise RuntimeError(f"set up {recorded} {channel} notifications, wanted {count}")
    return time.perf_counter() - began, who, maker


def run(ctx: Context) -> list[Result]:
    return [*_email(ctx), _receipts(ctx)]


def _email(ctx: Context) -> list[Result]:
    scale = ctx.scale
    messages = scale.delivery_messages
    url = ctx.databases.fresh("delivery")
    engine = make_engine(url)
    sink: SmtpSinkProcess | None = None
    try:
        setup_s, who, maker = _queue(engine, ctx, messages, "email")
        _say(f"{ctx.db}: {messages} notifications set up in {setup_s:.1f} s")

        sink = SmtpSinkProcess(ctx.folder / f"smtp-{ctx.db}.log")
        env = _env(url, sink.port)
        settings = _settings(env)
        sample = asyncio.run(_render_sample(settings, url, min(CEILING_SAMPLE, messages)))
        # The machine may be shared: the ceiling is measured before and after the single
        # worker, and the better of the two is used (the stricter ratio).
        ceiling_messages = min(messages, CEILING_MESSAGES)
        measured = [_measure_ceiling(settings, sink, sample, ceiling_messages)]
        _say(f"{ctx.db}: ceiling {measured[0][0]:.0f} msg/s")
        one = _throughput(engine, sink, env, ctx.folder, messages, 1, f"{ctx.db}-one")
        _say(f"{ctx.db}: one worker {one.rate:.0f} msg/s, peak RSS {one.rss[0]:.0f} MB")
        measured.append(_measure_ceiling(settings, sink, sample, ceiling_messages))
        _say(f"{ctx.db}: ceiling again {measured[1][0]:.0f} msg/s")
        ceiling, ceiling_cpu_ms = max(measured)
        _requeue(engine, "-2")
        two = _throughput(engine, sink, env, ctx.folder, messages, 2, f"{ctx.db}-two")
        _say(f"{ctx.db}: two workers {two.rate:.0f} msg/s together")
        achieved, latencies, steady_messages, steady_rss = _steady(
            engine,
            sink,
            env,
            ctx.folder,
            who,
            maker,
            scale.steady_rate,
            scale.steady_seconds,
        )
    finally:
        if sink is not None:
            sink.stop()
        engine.dispose()

    ratio = one.rate / ceiling
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    common = (
        f"worker_batch={settings.worker_batch}, worker_concurrency={settings.worker_concurrency}"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    sqlite_note = (
        [
            "on SQLite a worker holds the write lock while its batch is in flight, and "
            "workers take turns (a file lock beside the database), so two are no faster"
        ]
        if ctx.db == "sqlite"
        else []
    )
    return [
        Result(
            "delivery",
            ctx.db,
            figures={
                "messages": messages,
                "one_worker_messages_per_s": round(one.rate, 1),
                "two_workers_messages_per_s": round(two.rate, 1),
                "two_workers_per_worker_messages_per_s": round(two.rate / 2, 1),
                "ceiling_messages_per_s": round(ceiling, 1),
            },
            ratio=round(ratio, 3),
            targets=[
                Target("messages/s per worker", round(one.rate, 1), 1000, "msg/s"),
                Target("ratio to ceiling", round(ratio, 3), 0.5, "x"),
            ],
            notes=[
                f"{messages} queued event notifications written through record_events "
                f"(the real outbox writer) in {setup_s:.1f} s",
                "workers are `safevine worker` processes; the SMTP server is aiosmtpd in its "
                "own process; rates run from the first claim to every row `sent`",
                f"worker start-up (not counted) {one.startup:.1f} s; {common}",
                f"CPU per message: one worker {one.worker_cpu_ms:.2f} ms (sink "
                f"{one.sink_cpu_ms:.2f} ms{_database_note(one)}); two workers "
                f"{two.worker_cpu_ms:.2f} ms together (sink {two.sink_cpu_ms:.2f} ms"
                f"{_database_note(two)})",
                "two workers re-send the same rows, re-queued with fresh idempotency keys; "
                f"messages sent by each: {two.split}",
                f"ceiling: {settings.worker_concurrency} aiosmtplib connections in the "
                f"benchmark process sending {ceiling_messages} messages cycled from "
                f"{len(sample)} rendered and built by the worker's own code, no database; "
                "measured before and after the single worker ("
                + ", ".join(f"{c:.0f}" for c, _ in measured)
                + f" msg/s), the better one used; its client's CPU per message "
                f"{ceiling_cpu_ms:.2f} ms",
                f"load average at the end: {load} (the machine may be shared)",
                *sqlite_note,
            ],
        ),
        Result(
            "delivery-steady",
            ctx.db,
            figures={
                "events_per_s": round(achieved, 1),
                "messages": steady_messages,
                "p50_ms": round(p50, 1),
                "p99_ms": round(p99, 1),
            },
            targets=[
                Target(
                    "p99 commit to SMTP accept",
                    round(p99 / 1000, 3),
                    1.0,
                    "s",
                    higher_is_better=False,
                )
            ],
            notes=[
                f"{scale.steady_rate} events/s for {scale.steady_seconds} s through "
                "record_events (origin feed), one transaction per 100 ms tick, on people "
                "with registrations; one worker running",
                f"latency: commit returned -> sink accepted, joined by Message-ID; "
                f"{len(latencies)} of {steady_messages} messages matched; {common}",
                f"worker peak RSS during the steady run {steady_rss:.1f} MB",
            ],
            series={"latency_ms:commit to SMTP accept": [round(x, 2) for x in latencies]},
        ),
        Result(
            "memory-worker",
            ctx.db,
            figures={"peak_rss_mb": round(one.rss[0], 1)},
            notes=[
                "no target set; reported",
                f"one worker sending {messages} messages; with two workers: "
                + ", ".join(f"{r:.1f}" for r in two.rss)
                + " MB",
            ],
        ),
    ]


def _count(engine: Engine, *states: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(notifications)
                .where(notifications.c.state.in_(states))
            ).scalar_one()
        )


def _sending_span(engine: Engine) -> float:
    """Seconds from the first claim to the last text recorded as taken by the provider."""
    with engine.connect() as connection:
        first, last = connection.execute(
            select(func.min(notifications.c.claimed_at), func.max(notifications.c.sent_at))
        ).one()
    assert isinstance(first, datetime) and isinstance(last, datetime)
    return max((last - first).total_seconds(), 1e-9)


class Service:
    """One `safevine serve` process (the public service), answering once it is up."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        executable = Path(sys.executable).parent / "safevine"
        self.log = log
        self._err: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            [str(executable), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._err,
        )
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                told = self.tail()
                self.stop()
                raise RuntimeError(f"the public service did not start: {told}")
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.process.pid

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the public service exited: {self.tail()}")

    def tail(self) -> str:
        self._err.flush()
        return self.log.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._err.close()


@dataclass
class TextRun:
    """What became of the texts and their receipts."""

    texts: int
    send_rate: float
    applied: int
    receipts: list[tuple[str, float, float, float, int]]
    worker_rss: float
    service_rss: float
    startup: float
    worker_cpu_ms: float
    service_cpu_ms: float


def _texts_and_receipts(engine: Engine, url: str, folder: Path, texts: int, label: str) -> TextRun:
    """One worker sends every queued text to the provider, which posts a signed
    `delivered` receipt for each to the public service; until every receipt is answered."""
    provider = SmsProviderProcess(folder / f"sms-{label}.log", PROVIDER_TOKEN, CARRIER_SECONDS)
    service: Service | None = None
    worker: Worker | None = None
    try:
        port = free_port()
        env = {
            **_env(url, 25),
            "SAFEVINE_SMS_API_BASE": provider.base,
            "SAFEVINE_SMS_ACCOUNT_SID": "ACbench",
            "SAFEVINE_SMS_AUTH_TOKEN": PROVIDER_TOKEN,
            "SAFEVINE_SMS_FROM": "+15550001111",
            "SAFEVINE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            # The provider's receipts come from one address, as fast as texts go out.
            "SAFEVINE_RATE_LIMITS": "false",
        }
        service = Service(env, port, folder / f"serve-{label}.log")
        worker = Worker(env, folder / f"worker-{label}.log")
        startup = worker.wait_ready()
        worker_cpu, service_cpu = cpu_seconds(worker.pid), cpu_seconds(service.pid)
        deadline = time.monotonic() + 120 + texts / 20
        while len(provider.receipts()) < texts:
            worker.check()
            service.check()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{len(provider.receipts())} of {texts} receipts answered; "
                    f"{_count(engine, 'sent')} texts awaiting one; service log: "
                    f"{service.tail()}"
                )
            time.sleep(0.2)
        worker_cpu = cpu_seconds(worker.pid) - worker_cpu
        service_cpu = cpu_seconds(service.pid) - service_cpu
        worker_rss, service_rss = worker.peak_rss_mb(), peak_rss_mb(service.pid)
    finally:
        if worker is not None:
            worker.stop()
        if service is not None:
            service.stop()
        provider.stop()
    return TextRun(
        texts,
        texts / _sending_span(engine),
        _count(engine, "delivered"),
        provider.receipts(),
        worker_rss,
        service_rss,
        startup,
        worker_cpu * 1000 / texts,
        service_cpu * 1000 / texts,
    )


def _receipts(ctx: Context) -> Result:
    """Text messages and their delivery receipts, on a database of their own: the same
    people and events as the email runs, every registration by text."""
    scale = ctx.scale
    texts = min(scale.delivery_messages, MOST_TEXTS)
    url = ctx.databases.fresh("receipts")
    engine = make_engine(url)
    try:
        setup_s, _, _ = _queue(engine, ctx, texts, "sms")
        _say(f"{ctx.db}: {texts} texts queued in {setup_s:.1f} s")
        done = _texts_and_receipts(engine, url, ctx.folder, texts, f"texts-{ctx.db}")
    finally:
        engine.dispose()

    answered = [r for r in done.receipts if r[4] == 204]
    refused = len(done.receipts) - len(answered)
    lags = [(at_answer - posted) * 1000 for _, _, posted, at_answer, _ in answered]
    # From when the carrier had the report (the text taken, and its delay): also the time
    # a receipt waited in the provider for one of its senders while the service fell behind.
    behind = [
        (at_answer - taken - CARRIER_SECONDS) * 1000 for _, taken, _, at_answer, _ in answered
    ]
    span = max(r[3] for r in done.receipts) - min(r[2] for r in done.receipts)
    receipt_rate = done.applied / max(span, 1e-9)
    share = done.applied / texts
    _say(
        f"{ctx.db}: {done.send_rate:.0f} texts/s, {receipt_rate:.0f} receipts/s applied, "
        f"{done.applied} of {texts} applied"
    )
    return Result(
        "delivery-receipts",
        ctx.db,
        figures={
            "texts": texts,
            "texts_per_s": round(done.send_rate, 1),
            "receipts_applied": done.applied,
            "receipts_applied_per_s": round(receipt_rate, 1),
            "receipts_refused": refused,
            "lag_p50_ms": round(percentile(lags, 0.50), 1),
            "lag_p95_ms": round(percentile(lags, 0.95), 1),
            "carrier_to_state_p50_ms": round(percentile(behind, 0.50), 1),
            "carrier_to_state_p95_ms": round(percentile(behind, 0.95), 1),
        },
        targets=[
            Target("texts/s per worker", round(done.send_rate, 1), 1000, "msg/s"),
            Target("receipts applied", round(share, 4), 1.0, "share"),
        ],
        notes=[
            f"{texts} queued texts written through record_events in {setup_s:.1f} s, sent "
            "by one `safevine worker` to a Twilio-compatible provider in its own process "
            "(`bench.sms_provider`), which posts a signed `delivered` receipt for each, "
            f"{CARRIER_SECONDS:g} s after taking it (its carrier's report), to one `safevine "
            f"serve` process, {SENDERS} at a time",
            "texts/s: from the first claim to the last text recorded as taken; receipts/s: "
            "receipts applied (texts `delivered` at the end) over the span from the first "
            "receipt posted to the last answered",
            "lag: from a receipt's POST to the service's answer, which comes once the new "
            f"state is committed ({len(answered)} answered 204, {refused} otherwise); "
            "carrier_to_state: from when the carrier's report was due to that answer, "
            "so also the wait in the provider while the service is behind",
            f"CPU per text: worker {done.worker_cpu_ms:.2f} ms, public service "
            f"{done.service_cpu_ms:.2f} ms; peak RSS: worker {done.worker_rss:.0f} MB, "
            f"public service {done.service_rss:.0f} MB; worker start-up (not counted) "
            f"{done.startup:.1f} s",
            f"{os.cpu_count()} CPUs for the worker, the service, the provider and the "
            "database together",
        ],
        series={"latency_ms:receipt to recorded state": [round(x, 2) for x in lags]},
    )


def main() -> None:
    """`python -m bench.delivery [SCALE] [DB] [receipts]`: one run (or only its texts and
    receipts), printed as JSON."""
    import json
    import tempfile

    from bench.harness import SCALES, Databases

    scale = SCALES[sys.argv[1] if len(sys.argv) > 1 else "smoke"]
    kind = sys.argv[2] if len(sys.argv) > 2 else "sqlite"
    only_receipts = sys.argv[3:4] == ["receipts"]
    with tempfile.TemporaryDirectory() as folder:
        databases = Databases(kind, Path(folder))
        try:
            context = Context(kind, scale, Path(folder), databases)
            results = [_receipts(context)] if only_receipts else run(context)
        finally:
            if kind == "postgresql":
                with contextlib.suppress(Exception):
                    databases.close()
    for result in results:
        print(json.dumps(result.as_json(), indent=1))


if __name__ == "__main__":
    main()
