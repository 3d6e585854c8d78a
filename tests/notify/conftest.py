"""Settings, canaries and helpers for registration and delivery tests."""

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.domain.contact_address import Channel, mask_address, normalise_address
from safevine.notify.dispatcher import BatchReport, Dispatcher
from safevine.store.public import registrations
from safevine.store.public.connection import make_public_engine
from safevine.store.public.tables import notifications
from safevine.store.schema import persons
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server, free_port
from tests.canaries import plant
from tests.notify.servers import Provider, SmtpSink, provider_stub, smtp_sink
from tests.web.conftest import settings_for

# The PIN a voice registration made by these tests confirms its calls with.
PIN = "2468"
# What the test provider signs its callbacks with.
PROVIDER_TOKEN = "provider token for the tests"


def notify_settings(
    engine: Engine, sink: SmtpSink, provider: Provider, **changes: object
) -> Settings:
    values: dict[str, object] = {
        "smtp_port": sink.port,
        "sms_api_base": provider.base,
        "sms_account_sid": "AC123",
        "sms_auth_token": "",
        "sms_from": "+15550001111",
        "voice_from": "+15550001111",
        "webhook_allow_private": True,
        "retry_base_seconds": 0.05,
        "worker_lease_seconds": 2,
        "public_base_url": "http://127.0.0.1:8000",
        "help_phone": "+1 800 555 0100",
    }
    values.update(changes)
    return settings_for(engine, **values)


@dataclass
class Delivery:
    engine: Engine
    public: Engine
    settings: Settings
    sink: SmtpSink
    provider: Provider

    @property
    def vault(self) -> ContactVault:
        return ContactVault(self.settings.secret_key)

    def ref(self, a_number: str) -> str:
        with self.engine.connect() as connection:
            return str(
                connection.execute(
                    select(persons.c.public_ref).where(persons.c.a_number == a_number)
                ).scalar_one()
            )

    def register(
        self, person_ref: str, address: str, channel: Channel = Channel.EMAIL, **options: object
    ) -> registrations.Confirmed:
        """An active registration made through the real steps (the code read back from
        the outbox, as the registrant would read it from the message)."""
        return self.register_stored(
            person_ref, normalise_address(channel, address), channel, **options
        )

    def register_stored(
        self, person_ref: str, canonical: str, channel: Channel = Channel.EMAIL, **options: object
    ) -> registrations.Confirmed:
        """As `register`, with the address stored as given: one kept before today's rules
        for addresses, which sending must still judge."""
        request = registrations.RegistrationRequest(
            person_ref=person_ref,
            channel=channel,
            address=canonical,
            address_hint=mask_address(channel, canonical),
            language=str(options.get("language", "en")),
            wording=str(options.get("wording", "standard")),
            events=tuple(
                options.get(
                    "events",
                    (
                        "booked",
                        "transferred",
                        "released",
                        "removed",  # type: ignore[arg-type]
                        "escaped",
                        "returned",
                        "died",
                        "hearing_scheduled",
                    ),
                )
            ),
            quiet_hours=options.get("quiet_hours"),  # type: ignore[arg-type]
            allow_voicemail=bool(options.get("allow_voicemail", True)),
            pin=str(options.get("pin", PIN)) if channel == Channel.VOICE else None,
        )
        now = datetime.now(UTC)
        with self.public.begin() as connection:
            started = registrations.start(connection, self.vault, request, now)
            code = self.latest_code(connection)
            confirmed = registrations.confirm(
                connection, self.vault, started.pending_token, code, now
            )
        assert isinstance(confirmed, registrations.Confirmed)
        return confirmed

    def latest_code(self, connection: object) -> str:
        row = connection.execute(  # type: ignore[attr-defined]
            select(notifications.c.secret_key_id, notifications.c.secret_ciphertext)
            .where(notifications.c.purpose == "confirmation")
            .order_by(notifications.c.id.desc())
        ).first()
        return self.vault.decrypt(row.secret_key_id, row.secret_ciphertext, "code")

    def dispatch(self, **changes: object) -> BatchReport:
        """Run the dispatcher until nothing is due; returns the totals."""
        settings = (
            self.settings if not changes else Settings(**{**self.settings.__dict__, **changes})
        )

        async def work() -> BatchReport:
            total = BatchReport()
            dispatcher = Dispatcher(settings, self.public, name="test-worker")
            try:
                while True:
                    report = await dispatcher.run_once()
                    if report.claimed == 0:
                        return total
                    for key in ("claimed", "sent", "retrying", "failed", "cancelled", "deferred"):
                        setattr(total, key, getattr(total, key) + getattr(report, key))
            finally:
                await dispatcher.close()

        # Its own thread and loop: Playwright's sync API may hold this thread's loop.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, work()).result()


@contextmanager
def _delivery(engine: Engine) -> Iterator[Delivery]:
    plant(engine)
    with smtp_sink() as sink, provider_stub() as provider:
        settings = notify_settings(engine, sink, provider)
        public = make_public_engine(settings.database_url)
        yield Delivery(engine, public, settings, sink, provider)
        public.dispose()


@pytest.fixture
def delivery(engine: Engine) -> Iterator[Delivery]:
    with _delivery(engine) as ready:
        yield ready


@pytest.fixture
def postgres_delivery(postgres_engine: Engine) -> Iterator[Delivery]:
    with _delivery(postgres_engine) as ready:
        yield ready


@contextmanager
def heard_from_provider(delivery: Delivery) -> Iterator[str]:
    """The public service on a loopback port of its own, where the test provider's signed
    callbacks (receipts, keys pressed, call statuses) arrive; yields its base URL, which
    the messages sent from now on name as theirs."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    delivery.settings = replace(
        delivery.settings, sms_auth_token=PROVIDER_TOKEN, public_base_url=base
    )
    delivery.provider.auth_token = PROVIDER_TOKEN
    app = create_public_app(delivery.settings)
    try:
        with background_server(app, port=port):
            yield base
    finally:
        app.state.safevine.public_engine.dispose()
