"""Voice calls through the same Twilio-compatible API: the message read out twice and, for a
registration with a PIN, the PIN asked for (`notify/voice_script.py`)."""

from safevine.notify import voice_script
from safevine.notify.channels.base import (
    DeliveryResult,
    OutgoingMessage,
    PhoneTransport,
    register,
)
from safevine.notify.channels.sms import messages_url


@register
class VoiceTransport(PhoneTransport):
    name = "voice"

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        s, p = self.settings, self.provider(message)
        key = message.idempotency_key
        gather = (
            voice_script.callback_url(s.public_base_url, voice_script.GATHER_PATH, key)
            if message.confirm_with_pin
            else None
        )
        form = {
            "To": message.address,
            "From": p.voice_from,
            "Twiml": voice_script.call(message.rendered.voice, message.language, gather),
        }
        if p.auth_token:
            # What became of the call comes back signed with the token.
            form["StatusCallback"] = voice_script.callback_url(
                s.public_base_url, voice_script.STATUS_PATH, key
            )
        if message.confirm_with_pin:
            # Who answered (a person or a machine) decides when the call is repeated.
            form["MachineDetection"] = "Enable"
        if not message.allow_voicemail:
            # The registrant asked for no voicemail: the provider detects an answering
            # machine and hangs up instead of leaving the message on it.
            form["MachineDetection"] = "Enable"
            form["AsyncAmd"] = "false"
        url = messages_url(p.api_base, p.account_sid, "Calls")
        return await self.post(p, url, form, message.idempotency_key, "voice")
