"""Voice calls through the same Twilio-compatible API: the message read out twice and, for a
registration with a PIN, the PIN asked for (`notify/voice_script.py`)."""

import logging

from safevine.notify import voice_script
from safevine.notify.channels.base import PhoneTransport, register
from safevine.notify.channels.sms import messages_url
from safevine.notify.outgoing import DeliveryResult, OutgoingMessage

log = logging.getLogger("safevine.notify")


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
        if not voice_script.has_voice(message.language) and message.first_attempt:
            await self._by_text(message)
        url = messages_url(p.api_base, p.account_sid, "Calls")
        return await self.post(p, url, form, message.idempotency_key, "voice")

    async def _by_text(self, message: OutgoingMessage) -> None:
        """The message as a text to the same phone, for a language no voice speaks: once,
        with the first call, which says it is coming (`voice_script.NO_VOICE`)."""
        p = self.provider(message)
        if not message.rendered.sms or not p.sms_from:
            return
        form = {"To": message.address, "From": p.sms_from, "Body": message.rendered.sms}
        url = messages_url(p.api_base, p.account_sid, "Messages")
        result = await self.post(p, url, form, f"{message.idempotency_key}.text", "SMS")
        if not result.ok:
            # The call goes all the same, and is repeated until it is confirmed.
            log.warning("the text of a call in a language without a voice was not sent")
