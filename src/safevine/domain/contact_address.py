"""Contact addresses per channel: validated and put in one canonical form.

The canonical form is what gets encrypted and what the blind index is computed over, so
`Ana@Example.org ` and `ana@example.org` are the same registrant.
"""

import re
from enum import StrEnum
from urllib.parse import urlsplit

from safevine.domain.errors import FieldError
from safevine.domain.network_address import non_canonical_numeric_host
from safevine.domain.value_ranges import ADDRESS_LENGTH, clean_text


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    VOICE = "voice"
    WEBHOOK = "webhook"


_EMAIL = re.compile(
    r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_PHONE_NOISE = re.compile(r"[\s().-]")


def normalise_address(channel: Channel, raw: str) -> str:
    """The canonical address, or FieldError("address", why).

    Email: trimmed and lower-cased. Phone (SMS, voice): E.164; ten digits are taken as
    a US number. Webhook: an http(s) URL without credentials or a numeric host spelt
    oddly (see `_webhook_url`).
    """
    text = raw.strip()
    if not text:
        raise FieldError("address", "is required")
    if len(text) > ADDRESS_LENGTH:
        raise FieldError("address", "is too long")
    if not clean_text(text):
        # A NUL (which PostgreSQL refuses), a terminal escape, a lone surrogate: no real
        # address of any channel holds one.
        raise FieldError("address", "holds a control character")
    if channel == Channel.EMAIL:
        if not _EMAIL.fullmatch(text):
            raise FieldError("address", "is not an email address")
        # Mail systems in practice ignore case in the local part too; folding it makes
        # "Ana@Example.org" and "ana@example.org" the same registrant.
        return text.lower()
    if channel in (Channel.SMS, Channel.VOICE):
        digits = _PHONE_NOISE.sub("", text)
        if digits.startswith("+"):
            number = digits[1:]
        elif len(digits) == 10:
            number = "1" + digits
        elif len(digits) == 11 and digits.startswith("1"):
            number = digits
        else:
            raise FieldError("address", "is not a phone number; use +1 555 010 0100 or 10 digits")
        if not number.isdigit() or not 8 <= len(number) <= 15 or number.startswith("0"):
            raise FieldError("address", "is not a phone number; use +1 555 010 0100 or 10 digits")
        return "+" + number
    return _webhook_url(text)


def _webhook_url(text: str) -> str:
    """An http(s) URL with a host and a valid port, no credentials, and no IPv4 address
    in a spelling other than four decimal numbers. Whether https is required, and where
    the host leads, are decided where settings and the network are known
    (`safevine.notify.webhook_destination`)."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - reading it is what validates it
    except ValueError as error:
        raise FieldError("address", "is not an http(s) URL") from error
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise FieldError("address", "is not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise FieldError("address", "must not contain a user name or password")
    if non_canonical_numeric_host(parts.hostname):
        raise FieldError("address", "must not spell an IP address other than as a.b.c.d")
    return text


def mask_address(channel: Channel, canonical: str) -> str:
    """Enough of the address for its owner to recognise it, and little for anyone else."""
    if channel == Channel.EMAIL:
        local, _, domain = canonical.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if channel in (Channel.SMS, Channel.VOICE):
        return f"***-***-{canonical[-4:]}"
    host = urlsplit(canonical).hostname or ""
    return f"{urlsplit(canonical).scheme}://{host}/..."
