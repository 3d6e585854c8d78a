"""Webhooks for advocates' case systems: a JSON body signed with HMAC-SHA256 over the
timestamp and the body, an Idempotency-Key, and the timestamp for replay protection.

Receivers verify `X-Safevine-Signature: sha256=HEX` where HEX is
HMAC-SHA256(secret, f"{X-Safevine-Timestamp}.{body}"), and reject old timestamps.
"""

import json
import ssl
import time

import httpx

from safevine.config import Settings
from safevine.notify import webhook_destination
from safevine.notify.channels.base import Transport, http_failure, register
from safevine.notify.outgoing import DeliveryResult, OutgoingMessage
from safevine.notify.webhook_destination import Refused, Unresolved
from safevine.notify.webhook_signature import signature


@register
class WebhookTransport(Transport):
    """Sends to the address `webhook_destination` checked, never to a name httpx resolves.

    It keeps its own client rather than the dispatcher's shared one because the request
    goes to an IP address: pooled connections are keyed by that address, so a kept-alive
    connection opened (and its certificate verified) for one host name could carry the
    request for another name with the same address. No connection is kept; no proxy is
    taken from the environment (a proxy would resolve the name again); no redirect is
    followed (httpx does not by default either; it is said here so that stays true).
    `trusted` replaces the trusted roots (tests pass their own certificate authority).
    """

    name = "webhook"

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        trusted: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(settings, http)
        # An explicit transport: httpx then takes no proxy from the environment, while
        # SSL_CERT_FILE still names the trusted roots, as for the other channels.
        connections = httpx.AsyncHTTPTransport(
            verify=trusted if trusted is not None else True,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._client = httpx.AsyncClient(
            transport=connections, timeout=httpx.Timeout(15.0), follow_redirects=False
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        destination = await webhook_destination.check(
            message.address, allow_private=self.settings.webhook_allow_private
        )
        if isinstance(destination, Refused):
            return DeliveryResult.permanent_failure(destination.reason)
        if isinstance(destination, Unresolved):
            return DeliveryResult.transient(destination.reason)
        body = json.dumps(message.rendered.data, ensure_ascii=False, sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Host": destination.host_header,
            "Content-Type": "application/json",
            "Idempotency-Key": message.idempotency_key,
            "X-Safevine-Timestamp": timestamp,
        }
        if message.webhook_secret:
            headers["X-Safevine-Signature"] = signature(message.webhook_secret, timestamp, body)
        request = self._client.build_request(
            "POST",
            destination.url,
            content=body,
            headers=headers,
            extensions=dict(destination.extensions),
        )
        try:
            response = await self._client.send(request, follow_redirects=False)
        except httpx.HTTPError as error:
            return DeliveryResult.transient(f"webhook unreachable: {error!r}")
        if 200 <= response.status_code < 300:
            # The receiver has it: a 2xx is delivery (it may acknowledge it too).
            return DeliveryResult.sent(
                response.headers.get("x-request-id"), provider="webhook", delivered=True
            )
        if 300 <= response.status_code < 400:
            return DeliveryResult.permanent_failure(
                f"webhook receiver answered {response.status_code}, a redirect, "
                "which is not followed"
            )
        return http_failure(response, "webhook receiver")
