"""The PIN a voice registrant confirms calls with: exactly four digits, typed on a phone's
keypad. 9 alone is not a PIN: on a call it means "say it again"."""

from safevine.domain.errors import FieldError

LENGTH = 4
REPLAY = "9"


def check_pin(raw: object) -> str:
    """The PIN, or FieldError("pin", ...) naming what is wrong."""
    text = str(raw).strip() if raw is not None else ""
    if len(text) != LENGTH or not text.isascii() or not text.isdigit():
        raise FieldError("pin", f"must be exactly {LENGTH} digits")
    return text
