"""Voice calls through the same Twilio-compatible API; the message is read out twice."""

from xml.sax.saxutils import escape

import httpx

from safevine.notify.channels.base import (
    DeliveryResult,
    OutgoingMessage,
    Transport,
    http_failure,
    provider_name,
    register,
)
from safevine.notify.channels.sms import messages_url

VOICES = {"en": "en-US", "es": "es-MX"}


def twiml(text: str, language: str) -> str:
    return (
        f'<Response><Say language="{VOICES.get(language, "en-US")}">{escape(text)}</Say></Response>'
    )


@register
class VoiceTransport(Transport):
    name = "voice"

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        s = self.settings
        form = {
            "To": message.address,
            "From": s.voice_from,
            "Twiml": twiml(message.rendered.voice, message.language),
        }
        if not message.allow_voicemail:
            # The registrant asked for no voicemail: the provider detects an answering
            # machine and hangs up instead of leaving the message on it.
            form["MachineDetection"] = "Enable"
            form["AsyncAmd"] = "false"
        try:
            response = await self.http.post(
                messages_url(s.sms_api_base, s.sms_account_sid, "Calls"),
                data=form,
                auth=(s.sms_account_sid, s.sms_auth_token),
                headers={"I-Twilio-Idempotency-Token": message.idempotency_key},
            )
        except httpx.HTTPError as error:
            return DeliveryResult.transient(f"voice provider unreachable: {error!r}")
        if response.status_code in (200, 201):
            return DeliveryResult.sent(
                str(response.json().get("sid", ""))[:200], provider=provider_name(s.sms_api_base)
            )
        return http_failure(response, "voice provider")
