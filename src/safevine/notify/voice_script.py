"""What a call says and asks, as TwiML: the message, then, for a registration with
a PIN, a request for it (`<Gather>`); and what the call says after each key pressed.

The provider fetches nothing from safevine to speak a message: the script travels with
the call. What the registrant presses comes back signed to the public service
(`web/public/voice_callbacks.py`), which answers with one of the scripts below.
"""

from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from safevine.domain.call_pin import LENGTH, REPLAY
from safevine.i18n import N_, translations

# The language codes Twilio's <Say> takes for its Amazon Polly and Google voices. A language
# with a catalog and no voice here (Somali: neither has one) is not read out in a voice
# that cannot say it: its calls speak English and Spanish, and its message goes by text
# (`NO_VOICE`; `notify/channels/voice.py`).
VOICES = {
    "en": "en-US",
    "es": "es-MX",
    "fr": "fr-FR",
    "zh": "cmn-CN",
    "vi": "vi-VN",
    "pt": "pt-BR",
    "ru": "ru-RU",
    "ar": "arb",
}
# What a call in a language without a voice says instead, in English and then Spanish.
FALLBACK = ("en", "es")
# Where the provider posts the keys pressed, and the status of the call.
GATHER_PATH = "/api/v1/voice/gather"
STATUS_PATH = "/api/v1/voice/status"
# The query parameter of both that names the attempt by its idempotency key: a call's
# callbacks find it even when the worker that placed the call died before recording it.
KEY = "key"
# Wrong PINs on one call before it says goodbye (it is repeated later).
PIN_TRIES = 3

ASK = N_(
    "To confirm you heard this message, enter your 4-digit PIN now. "
    "To hear the message again, press 9."
)
WRONG = N_("That PIN is not right. Please enter your 4-digit PIN again.")
THANKS = N_("Thank you. We have your confirmation. Goodbye.")
NO_PIN = N_("We did not get your PIN. We will call again later. Goodbye.")
TOO_MANY = N_("That PIN is not right. We will call again later. Goodbye.")
NO_VOICE = N_(
    "This is an automated message about your registration. We cannot read it in your "
    "language, so we are sending it to this phone as a text message."
)


def has_voice(language: str) -> bool:
    return language in VOICES


def callback_url(base: str, path: str, key: str | None) -> str:
    """`base` + `path` (`GATHER_PATH`, `STATUS_PATH`), naming the attempt by `key`."""
    return f"{base}{path}?{KEY}={quote(key, safe='')}" if key else f"{base}{path}"


def _say(text: str, language: str) -> str:
    return f"<Say language={quoteattr(VOICES.get(language, 'en-US'))}>{escape(text)}</Say>"


def _say_each(message: str, language: str) -> str:
    """`message` (a msgid) in `language`, or, without a voice for it, in each FALLBACK."""
    spoken_in = (language,) if has_voice(language) else FALLBACK
    return "".join(_say(translations(lang).gettext(message), lang) for lang in spoken_in)


def _gather(inner: str, action: str, tries: int) -> str:
    # numDigits: a PIN's four, and `finishOnKey` lets the lone 9 (say it again) through.
    url = f"{action}{'&' if '?' in action else '?'}try={tries}"
    return (
        f'<Gather input="dtmf" numDigits="{LENGTH}" finishOnKey="#" timeout="8" '
        f'action={quoteattr(url)} method="POST">{inner}</Gather>'
    )


def spoken(message: str, language: str) -> str:
    """The message (its rendering says it twice already); in a language without a voice,
    that it comes by text instead."""
    if not has_voice(language):
        return _say_each(NO_VOICE, language)
    return _say(message, language)


def call(message: str, language: str, gather_url: str | None) -> str:
    """A call's whole script: the message twice, and the PIN asked for when `gather_url`
    is given (the keys pressed are posted there)."""
    if gather_url is None:
        return f"<Response>{spoken(message, language)}</Response>"
    return ask_for_pin(spoken(message, language), language, gather_url, 1)


def ask_for_pin(before: str, language: str, gather_url: str, tries: int) -> str:
    asked = _gather(before + _say_each(ASK, language), gather_url, tries)
    return f"<Response>{asked}{_say_each(NO_PIN, language)}<Hangup/></Response>"


def again(language: str, gather_url: str, tries: int) -> str:
    """After a wrong PIN: ask again, or say goodbye after `PIN_TRIES`."""
    if tries > PIN_TRIES:
        return f"<Response>{_say_each(TOO_MANY, language)}<Hangup/></Response>"
    return ask_for_pin(_say_each(WRONG, language), language, gather_url, tries)


def thanks(language: str) -> str:
    return f"<Response>{_say_each(THANKS, language)}<Hangup/></Response>"


HANG_UP = "<Response><Hangup/></Response>"


def is_replay(digits: str) -> bool:
    return digits.strip().rstrip("#") == REPLAY
