"""A message on its way to a channel, and what the channel made of it.

Kept apart from the transports (`notify.channels`) so that what composes messages, or
only reads these types, does not load the delivery libraries (aiohttp, httpx, aiosmtplib):
the public web process composes calls and never sends.
"""

from dataclasses import dataclass

from safevine.notify.messages import Rendered


@dataclass(frozen=True)
class OutgoingMessage:
    idempotency_key: str
    address: str
    rendered: Rendered
    language: str
    allow_voicemail: bool = True
    webhook_secret: str | None = None
    # A call that asks for the registrant's PIN, and is repeated until it is entered.
    confirm_with_pin: bool = False
    # The provider (or relay) by name to send through; None: the channel's first.
    provider: str | None = None
    # The notification's first attempt (a call repeated until confirmed has many).
    first_attempt: bool = True


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    provider_id: str | None = None
    error: str = ""
    permanent: bool = False
    # Which provider took it (its host, for the report), and whether taking it was
    # delivery itself (a webhook receiver's 2xx) rather than the start of a wait for a
    # receipt.
    provider: str | None = None
    delivered: bool = False

    @classmethod
    def sent(
        cls, provider_id: str | None = None, provider: str | None = None, delivered: bool = False
    ) -> "DeliveryResult":
        return cls(True, provider_id, provider=provider, delivered=delivered)

    @classmethod
    def transient(cls, error: str) -> "DeliveryResult":
        return cls(False, error=error)

    @classmethod
    def permanent_failure(cls, error: str) -> "DeliveryResult":
        return cls(False, error=error, permanent=True)
