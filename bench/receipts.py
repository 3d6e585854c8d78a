"""SMS delivery receipts: one real worker sending texts to a Twilio-compatible provider in a
process of its own (`bench.sms_provider`), which posts a signed `delivered` receipt for
each to a real public service (`safevine serve`). Reported: texts sent per second, receipts
applied per second, and the lag from a receipt's POST to its answer (the service answers
once the state is committed), median and 95th percentile.

The data set and events are the delivery benchmark's (`bench.delivery`), with every
registration on the SMS channel.
"""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select, update

from bench.dataset import load_facilities, load_population, load_registrations, people, public_refs
from bench.dataset import settle as settle_statistics
from bench.delivery import SECRET_KEY, EventMaker, Worker, _chunks_for, _env, _registered
from bench.harness import Context, Result, Target, percentile
from bench.sms_provider import SmsProviderProcess
from safevine.contact_vault import ContactVault
from safevine.store.engine import make_engine
from safevine.store.public.tables import notifications, registrations
from safevine.store.records.events import record_events
from safevine.web.server import free_port

TOKEN = "bench receipts provider token"
# Texts per run: enough for steady rates, fewer than the delivery benchmark's to save time.
MOST_MESSAGES = 30_000
TIMEOUT_SECONDS = 900


def _say(text: str) -> None:
    print(f"[receipts {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _count(engine: Engine, *states: str) -> int:
    with engine.connect() as c:
        return int(
            c.execute(
                select(func.count())
                .select_from(notifications)
                .where(notifications.c.state.in_(states))
            ).scalar_one()
        )


def _span(engine: Engine) -> tuple[float, float]:
    """From the first claim to the last text the provider took (as recorded)."""
    with engine.connect() as c:
        first, last = c.execute(
            select(func.min(notifications.c.claimed_at), func.max(notifications.c.sent_at))
        ).one()
    return first.timestamp(), last.timestamp()


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    executable = Path(sys.executable).parent / "safevine"
    process = subprocess.Popen(
        [str(executable), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the public service did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)


def run(ctx: Context) -> list[Result]:
    scale = ctx.scale
    messages = min(scale.delivery_messages, MOST_MESSAGES)
    url = ctx.databases.fresh("receipts")
    engine = make_engine(url)
    provider: SmsProviderProcess | None = None
    web: subprocess.Popen[bytes] | None = None
    worker: Worker | None = None
    try:
        codes = load_facilities(engine, 960)
        population = people(max(scale.registrations, 100), ctx.seed)
        load_population(engine, population, codes, seed=ctx.seed)
        vault = ContactVault(SECRET_KEY.encode())
        load_registrations(engine, vault, public_refs(engine), scale.registrations, ctx.seed)
        with engine.begin() as c:
            # The provider does not read the number: an address is an address to it.
            c.execute(update(registrations).values(channel="sms"))
        who = _registered(engine, population, codes)
        maker = EventMaker(codes)
        recorded = 0
        for chunk in _chunks_for(who, messages, maker, "receipts"):
            with engine.begin() as c:
                recorded += record_events(
                    c, chunk, origin="feed", now=datetime.now(UTC), source="bench.jsonl"
                ).notifications
        settle_statistics(engine)
        if recorded != messages:
            raise RuntimeError(f"set up {recorded} notifications, wanted {messages}")
        _say(f"{ctx.db}: {recorded} texts queued")

        provider = SmsProviderProcess(ctx.folder / f"receipts-{ctx.db}.log", TOKEN)
        port = free_port()
        env = {
            **_env(url, 25),
            "SAFEVINE_SMS_API_BASE": provider.base,
            "SAFEVINE_SMS_ACCOUNT_SID": "ACbench",
            "SAFEVINE_SMS_AUTH_TOKEN": TOKEN,
            "SAFEVINE_SMS_FROM": "+15550001111",
            "SAFEVINE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "SAFEVINE_RATE_LIMITS": "false",
        }
        web = _serve(env, port, ctx.folder / f"receipts-web-{ctx.db}.log")
        worker = Worker(env, ctx.folder / f"receipts-worker-{ctx.db}.log")
        worker.wait_ready()
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while len(provider.receipts()) < messages:
            worker.check()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{len(provider.receipts())} of {messages} receipts in {TIMEOUT_SECONDS} s"
                )
            time.sleep(0.2)
        delivered = _count(engine, "delivered")
        first_claim, last_sent = _span(engine)
    finally:
        if worker is not None:
            worker.stop()
        if web is not None:
            web.terminate()
            web.wait(15)
        if provider is not None:
            provider.stop()
        engine.dispose()

    receipts = provider.receipts()
    answered = [r for r in receipts if r[4] == 204]
    lags = [(done - posted) * 1000 for _, _, posted, done, _ in answered]
    span = max(r[3] for r in receipts) - min(r[2] for r in receipts)
    send_rate = messages / max(last_sent - first_claim, 1e-9)
    receipt_rate = len(answered) / max(span, 1e-9)
    applied = delivered / messages
    return [
        Result(
            "receipts",
            ctx.db,
            figures={
                "messages": messages,
                "messages_per_s": round(send_rate, 1),
                "receipts_per_s": round(receipt_rate, 1),
                "receipts_applied_share": round(applied, 4),
                "lag_p50_ms": round(percentile(lags, 0.5), 1),
                "lag_p95_ms": round(percentile(lags, 0.95), 1),
            },
            targets=[
                Target("texts/s per worker", round(send_rate, 1), 1000, "msg/s"),
                Target("receipts applied", round(applied, 4), 1.0, "share"),
            ],
            notes=[
                f"{messages} texts through record_events, sent by one `safevine worker` to a "
                "Twilio-compatible provider in its own process, which posts a signed "
                f"`delivered` receipt for each ({os.cpu_count()} CPUs, "
                f"{len(answered)} answered 204) to `safevine serve` (one process)",
                "lag: from the receipt's POST to the service's answer, which comes once the "
                "notification's new state is committed",
                "receipts applied: notifications `delivered` at the end over texts sent; a "
                "receipt that overtakes the worker's record of its send by more than 2 s is "
                "let go (a known limit), which this share would show",
            ],
            series={"latency_ms:receipt to recorded state": [round(x, 2) for x in lags]},
        )
    ]
