"""What a provider's error code means for a notification, in one table: tried again later
(the handset may be reachable tomorrow), failed for good (the number can never receive),
or failed for good and the registration ended (the recipient said STOP at the carrier).

Codes are Twilio's (every Twilio-compatible provider reports them); a code not listed is
treated as transient, so an unknown failure is retried up to the cap, never dropped.
"""

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    RETRY = "retry"
    FAIL = "fail"
    # The recipient opted out with the carrier: nothing more may be sent to the number.
    END_REGISTRATION = "end_registration"


@dataclass(frozen=True)
class ProviderError:
    code: str
    outcome: Outcome
    meaning: str

    @property
    def permanent(self) -> bool:
        return self.outcome != Outcome.RETRY

    def describe(self) -> str:
        return f"provider error {self.code}: {self.meaning}"


R, F, E = Outcome.RETRY, Outcome.FAIL, Outcome.END_REGISTRATION

_TABLE: dict[str, tuple[Outcome, str]] = {
    # Sending: the request itself.
    "21211": (F, "invalid 'To' number"),  # not a phone number anywhere
    "21408": (R, "sending to this region is not enabled"),  # the operator can enable it
    "21610": (E, "the recipient replied STOP to the carrier"),  # unsubscribed for good
    "21612": (F, "the 'To' number cannot receive this kind of message"),
    "21614": (F, "the 'To' number is not a mobile number"),  # a landline: no SMS ever
    "21617": (F, "the message is too long"),  # our text: sending it again changes nothing
    # Delivery: what the carrier said afterwards.
    "30001": (R, "queue overflow at the provider"),  # too fast for a moment
    "30002": (R, "the provider account is suspended"),  # the operator can fix it
    "30003": (R, "the handset is unreachable"),  # switched off or out of coverage
    "30004": (F, "the message was blocked by the recipient or the carrier"),
    "30005": (F, "unknown number: it does not exist"),
    "30006": (F, "a landline or a carrier that cannot receive texts"),
    "30007": (R, "filtered by the carrier as possible spam"),  # often passes later
    "30008": (R, "unknown error at the carrier"),
    "30010": (R, "the message price exceeds the limit set"),  # the operator can fix it
    "30032": (R, "the sending number is not verified"),  # the operator can fix it
    "30034": (R, "the sending number is not registered for this traffic"),  # likewise
    # Voice calls.
    "13224": (F, "invalid phone number for a call"),
    "13225": (F, "the call was blocked: the number is not allowed"),
    "13227": (R, "no international calling permission"),  # the operator can enable it
}

ERRORS = {
    code: ProviderError(code, outcome, meaning) for code, (outcome, meaning) in _TABLE.items()
}


def classify(code: str | int | None) -> ProviderError:
    """The meaning of a provider's error code (None: the provider gave none)."""
    if code is None or str(code).strip() == "":
        return ProviderError("", R, "failed with no error code")
    key = str(code).strip()[:12]
    return ERRORS.get(key, ProviderError(key, R, "an error code not in the table"))
