"""Webhooks for advocates' case systems: a JSON body signed with HMAC-SHA256 over the
timestamp and the body, an Idempotency-Key, and the timestamp for replay protection.

Receivers verify `X-Safevine-Signature: sha256=HEX` where HEX is
HMAC-SHA256(secret, f"{X-Safevine-Timestamp}.{body}"), and reject old timestamps.
"""

import hashlib
import hmac
import json
import time
from urllib.parse import urlsplit

import httpx

from safevine.domain.contact_address import is_private_host
from safevine.notify.channels.base import (
    DeliveryResult,
    OutgoingMessage,
    Transport,
    http_failure,
    register,
)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


@register
class WebhookTransport(Transport):
    name = "webhook"

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        host = urlsplit(message.address).hostname or ""
        if is_private_host(host) and not self.settings.webhook_allow_private:
            return DeliveryResult.permanent_failure("webhook address is private or loopback")
        body = json.dumps(message.rendered.data, ensure_ascii=False, sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.idempotency_key,
            "X-Safevine-Timestamp": timestamp,
        }
        if message.webhook_secret:
            headers["X-Safevine-Signature"] = signature(message.webhook_secret, timestamp, body)
        try:
            response = await self.http.post(message.address, content=body, headers=headers)
        except httpx.HTTPError as error:
            return DeliveryResult.transient(f"webhook unreachable: {error!r}")
        if 200 <= response.status_code < 300:
            return DeliveryResult.sent(response.headers.get("x-request-id"))
        return http_failure(response, "webhook receiver")
