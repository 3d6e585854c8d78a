"""The audit chain's head, sent by the worker to the operations address (a real SMTP
server and a webhook receiver on loopback) once per interval, retried when refused, and
then kept as a checkpoint that finds a removed tail."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update

from safevine.config import Settings
from safevine.notify.dispatcher import Dispatcher
from safevine.notify.operations import OperationsSender, Tick, queue_head
from safevine.store.public.connection import make_public_engine
from safevine.store.public.tables import operations_messages
from safevine.store.records import audit
from tests import loops
from tests.notify.servers import Provider, SmtpSink, provider_stub, smtp_sink
from tests.staff.test_audit_chain import bypass, fill

T0 = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)


def _tick(engine: Engine, settings: Settings, now: datetime) -> Tick:
    """One worker tick on the public path, as `safevine worker` runs it."""
    public = make_public_engine(engine.url.render_as_string(hide_password=False))

    async def once() -> Tick:
        dispatcher = Dispatcher(settings, public)
        try:
            return await OperationsSender(settings, public, dispatcher.transports).tick(now)
        finally:
            await dispatcher.close()

    try:
        return loops.run(once())
    finally:
        public.dispose()


def _settings(sink: SmtpSink, provider: Provider) -> Settings:
    return Settings(
        smtp_port=sink.port,
        operations_email="ops@agency.example",
        operations_webhook=f"{provider.base}/hook",
        webhook_allow_private=True,
        retry_base_seconds=1,
    )


def _states(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as c:
        rows = c.execute(
            select(
                operations_messages.c.channel,
                operations_messages.c.state,
                operations_messages.c.attempts,
            ).order_by(operations_messages.c.id)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_the_head_goes_out_once_a_day_by_mail_and_webhook(engine: Engine) -> None:
    fill(engine)
    with smtp_sink() as sink, provider_stub() as provider:
        settings = _settings(sink, provider)
        assert _tick(engine, settings, T0) == Tick(queued=2, sent=2, failed=0)
        assert _tick(engine, settings, T0 + timedelta(hours=23)) == Tick(0, 0, 0)
        assert _tick(engine, settings, T0 + timedelta(hours=24, seconds=1)).sent == 2
        letters = sink.wait_for(2)
    with engine.connect() as c:
        head = audit.verify(c).head
    assert letters[0].message["To"] == "ops@agency.example"
    text = "".join(
        part.get_payload(decode=True).decode()
        for part in letters[0].message.walk()
        if part.get_content_type() == "text/plain"
    )
    assert head in text and "entry 5" in letters[0].message["Subject"]
    hooks = [r for r in provider.requests if r["kind"] == "webhook"]
    assert len(hooks) == 2 and head.encode() in hooks[0]["body"]
    assert _states(engine) == [("email", "sent", 1), ("webhook", "sent", 1)] * 2


def test_a_refused_head_is_tried_again_and_one_failure_stops_nothing_else(engine: Engine) -> None:
    fill(engine)
    with smtp_sink() as sink, provider_stub() as provider:
        sink.busy = True
        provider.hook_answer = (503, b"later", {})
        settings = _settings(sink, provider)
        assert _tick(engine, settings, T0) == Tick(queued=2, sent=0, failed=0)
        assert _states(engine) == [("email", "retrying", 1), ("webhook", "retrying", 1)]
        # Not due yet: nothing is tried again.
        assert _tick(engine, settings, T0).sent == 0
        sink.busy = False
        provider.hook_answer = None
        assert _tick(engine, settings, T0 + timedelta(seconds=5)).sent == 2
        assert _states(engine) == [("email", "sent", 2), ("webhook", "sent", 2)]


def test_a_head_sent_finds_the_tail_removed_after_it(engine: Engine) -> None:
    fill(engine, 6)
    with smtp_sink() as sink, provider_stub() as provider:
        _tick(engine, _settings(sink, provider), T0)
    with engine.connect() as c:
        assert audit.verify(c).ok
    bypass(engine, "DELETE FROM audit_log WHERE seq >= 5")
    with engine.connect() as c:
        result = audit.verify(c)
    assert not result.ok and result.broken_at == 6
    assert "entries at the end were removed" in result.problem


def test_a_head_left_sending_by_a_dead_worker_is_sent_after_its_lease(engine: Engine) -> None:
    fill(engine)
    with smtp_sink() as sink, provider_stub() as provider:
        settings = _settings(sink, provider)
        with engine.begin() as c:
            queued = queue_head(c, settings, T0)
            # A worker took them and died before sending.
            c.execute(
                update(operations_messages).values(
                    state="sending", next_attempt_at=T0 + timedelta(seconds=300)
                )
            )
        assert queued == 2
        assert _tick(engine, settings, T0 + timedelta(seconds=60)).sent == 0
        assert _tick(engine, settings, T0 + timedelta(seconds=301)).sent == 2
        sink.wait_for(1)
    assert _states(engine) == [("email", "sent", 1), ("webhook", "sent", 1)]
