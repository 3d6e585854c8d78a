"""A notification made ready to send: its address decrypted, its words rendered in the
registrant's language and wording, and how it is to be delivered. The dispatcher composes
each message it sends; a call's "say it again" composes the same words again."""

from typing import Any

from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.domain.contact_address import Channel
from safevine.domain.notification_state import ABOUT_A_PERSON
from safevine.notify.messages import (
    MessageContext,
    Rendered,
    render_code,
    render_correction,
    render_event,
    render_feed_notice,
    with_acknowledge_link,
)
from safevine.notify.outgoing import OutgoingMessage
from safevine.store.public.delivery import Outgoing

# Where an email's "I got this" link leads (web/public/acknowledge.py).
ACKNOWLEDGE_PATH = "/got-it"


def compose(
    o: Outgoing, public: dict[str, Any], vault: ContactVault, settings: Settings
) -> OutgoingMessage:
    """`o` ready to send; `public` holds its person's public name (checked by the caller)."""
    address = vault.decrypt(o.address_key_id, o.address_ciphertext, "address")
    rendered: Rendered
    if o.purpose == "confirmation":
        assert o.secret_key_id and o.secret_ciphertext
        rendered = render_code(
            vault.decrypt(o.secret_key_id, o.secret_ciphertext, "code"), o.language
        )
    else:
        assert o.manage_token_key_id and o.manage_token_ciphertext
        token = vault.decrypt(o.manage_token_key_id, o.manage_token_ciphertext, "manage")
        person = public[o.person_ref]
        name = " ".join(p for p in (person.given_name, person.family_name) if p)
        context = MessageContext(
            o.language,
            o.wording,
            o.number,
            f"{settings.public_base_url}/m/{token}",
            settings.help_phone,
        )
        if o.purpose == "event":
            rendered = render_event(
                o.content, name, o.person_ref, context, email_only=o.channel == "email"
            )
        elif o.purpose == "correction":
            rendered = render_correction(
                o.content, name, o.person_ref, context, email_only=o.channel == "email"
            )
        else:
            rendered = render_feed_notice(o.purpose, o.content, context, o.time_zone)
        if o.channel == Channel.EMAIL.value:
            # The attempt's own key: a link that names nobody and says "I got this".
            url = f"{settings.public_base_url}{ACKNOWLEDGE_PATH}/{o.idempotency_key}"
            rendered = with_acknowledge_link(rendered, url, o.language)
    secret = (
        vault.decrypt(o.webhook_secret_key_id, o.webhook_secret_ciphertext, "webhook")
        if o.webhook_secret_key_id and o.webhook_secret_ciphertext
        else None
    )
    return OutgoingMessage(
        o.idempotency_key,
        address,
        rendered,
        o.language,
        o.allow_voicemail,
        secret,
        # The PIN is asked for only where the provider's answers can be heard.
        confirm_with_pin=o.channel == Channel.VOICE.value
        and o.has_pin
        and o.purpose in ABOUT_A_PERSON
        and bool(settings.sms_auth_token),
        provider=o.sending_via,
        first_attempt=o.attempts == 0,
    )
