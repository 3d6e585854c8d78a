"""SMS through a Twilio-compatible REST API (base URL, account and token from settings),
so any compatible provider, or a local test server, will do."""

from safevine.notify.channels.base import PhoneTransport, register
from safevine.notify.outgoing import DeliveryResult, OutgoingMessage

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
        url = messages_url(p.api_base, p.account_sid, "Messages")
        return await self.post(p, url, form, message.idempotency_key, "SMS")
