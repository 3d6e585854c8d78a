"""SMS through a Twilio-compatible REST API (base URL, account and token from settings),
so any compatible provider, or a local test server, will do."""

import httpx

from safevine.notify.channels.base import (
    DeliveryResult,
    OutgoingMessage,
    PhoneTransport,
    http_failure,
    register,
)

# Where the provider reports what became of a text (the public service's route).
STATUS_PATH = "/api/v1/sms/status"


def messages_url(base: str, account: str, resource: str) -> str:
    return f"{base}/2010-04-01/Accounts/{account}/{resource}.json"


@register
class SmsTransport(PhoneTransport):
    name = "sms"

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        p = self.provider(message)
        form = {"To": message.address, "From": p.sms_from, "Body": message.rendered.sms}
        if p.auth_token:
            # Receipts come back signed with the token (web/public/sms_inbound.py).
            form["StatusCallback"] = f"{self.settings.public_base_url}{STATUS_PATH}"
        try:
            response = await self.http.post(
                messages_url(p.api_base, p.account_sid, "Messages"),
                data=form,
                auth=(p.account_sid, p.auth_token),
                # Twilio drops a repeated request with the same token within 24 hours.
                headers={"I-Twilio-Idempotency-Token": message.idempotency_key},
            )
        except httpx.HTTPError as error:
            return DeliveryResult.transient(f"SMS provider {p.name} unreachable: {error!r}")
        if response.status_code in (200, 201):
            return DeliveryResult.sent(str(response.json().get("sid", ""))[:200], provider=p.name)
        return http_failure(response, f"SMS provider {p.name}")
