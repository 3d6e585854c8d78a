"""The one interface every channel implements, and the registry that names them.

A result says whether a failure is permanent (an unknown number, a rejected address: stop
and mark the notification failed) or transient (a timeout, a 5xx, a refused connection:
try again later). Nothing is ever dropped silently.
"""

import json
from typing import ClassVar

import aiohttp
import httpx

from safevine.config import PhoneProvider, Settings
from safevine.notify.outgoing import DeliveryResult, OutgoingMessage


class Transport:
    """Sends one message on one channel. Subclasses set `name` and implement `send`."""

    name: ClassVar[str]

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections; the dispatcher calls it when it stops."""


TRANSPORTS: dict[str, type[Transport]] = {}


def register(transport: type[Transport]) -> type[Transport]:
    TRANSPORTS[transport.name] = transport
    return transport


def http_failure(response: httpx.Response, provider: str) -> DeliveryResult:
    """Map a provider's HTTP answer: 408, 429 and 5xx may pass, other 4xx will not."""
    return status_failure(response.status_code, response.text, provider)


def status_failure(status: int, body: str, provider: str) -> DeliveryResult:
    """`http_failure` from an answer's status and body."""
    detail = f"{provider} answered {status}: {body[:300]}"
    if status in (408, 429) or status >= 500:
        return DeliveryResult.transient(detail)
    # 401/403 mean our credentials are wrong: an operator can fix that, so keep retrying
    # (until the retry cap) rather than failing every message at once.
    if status in (401, 403):
        return DeliveryResult.transient(detail)
    return DeliveryResult.permanent_failure(detail)


class PhoneTransport(Transport):
    """A channel through one of the Twilio-compatible providers, by the message's choice.

    It posts with aiohttp rather than the shared httpx client: a text is one request, and
    httpx spends about ten times the CPU on each (its connection pool checks every pooled
    connection per request), which made the worker's HTTP client its bottleneck for SMS
    (`bench/delivery.py`, delivery-receipts)."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        super().__init__(settings, http)
        every = settings.phone_providers()
        self._first = every[0]
        self._by_name = {p.name: p for p in every}
        self._session: aiohttp.ClientSession | None = None

    def provider(self, message: OutgoingMessage) -> PhoneProvider:
        # A name no longer configured (a provider removed since the claim): the first.
        return self._by_name.get(message.provider or "", self._first)

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the worker's event loop, which aiohttp requires.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=15), raise_for_status=False
            )
        return self._session

    async def post(
        self, provider: PhoneProvider, url: str, form: dict[str, str], key: str, what: str
    ) -> DeliveryResult:
        """POST `form` to the provider and map its answer: the provider's id on 200/201."""
        name = f"{what} provider {provider.name}"
        headers = {
            "Authorization": aiohttp.encode_basic_auth(provider.account_sid, provider.auth_token),
            # Sent so that a provider which honours request idempotency drops a repeat
            # (Twilio sends this header on its own webhooks, and ignores ours).
            "I-Twilio-Idempotency-Token": key,
        }
        try:
            async with self._client().post(url, data=form, headers=headers) as response:
                status, body = response.status, await response.text(errors="replace")
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            return DeliveryResult.transient(f"{name} unreachable: {error!r}")
        if status not in (200, 201):
            return status_failure(status, body, name)
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        sid = answer.get("sid", "") if isinstance(answer, dict) else ""
        return DeliveryResult.sent(str(sid)[:200], provider=provider.name)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
