"""A notification's states, in one place: where each stands, and which are still to send.

`sent` means only that a provider accepted the message. It ends as `delivered` when the
provider's receipt says it reached the handset, mailbox or endpoint, `acknowledged` when
the registrant confirmed it, `failed` (with the provider's reason) or `cancelled`.
"""

from enum import StrEnum


class NotificationState(StrEnum):
    HELD = "held"  # waits for a held batch's judgement
    QUEUED = "queued"
    SENDING = "sending"  # claimed by a worker, under its lease
    RETRYING = "retrying"
    SENT = "sent"  # accepted by the provider; awaiting a receipt
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = NotificationState
# Not yet handed to a provider: a protection or an ended registration cancels these.
UNSENT = (S.HELD, S.QUEUED, S.RETRYING, S.SENDING)
# What a worker claims when its time has come.
DUE = (S.QUEUED, S.RETRYING)
# Waiting to be sent, as the dashboard and metrics count a queue.
WAITING = (S.QUEUED, S.RETRYING, S.SENDING)
# Handed to a provider that took it: what a registrant may have received.
REACHED = (S.SENT, S.DELIVERED, S.ACKNOWLEDGED)
# After a provider took it: what a receipt is still awaited for, and what has ended.
AWAITING_RECEIPT = (S.SENT,)
ENDED = (S.DELIVERED, S.ACKNOWLEDGED, S.FAILED, S.CANCELLED)

# Messages about a person (an event, a feed delay at their facility, or the correction of
# an event staff retracted): each goes only while the registration is active and the
# person public, waits out quiet hours, and is what a registrant acknowledges (a
# confirmation code is not).
ABOUT_A_PERSON = ("event", "delay", "resumed", "correction")

# A provider's status for a message it took (Twilio's words): still on its way, arrived,
# or did not.
IN_FLIGHT_RECEIPTS = frozenset({"queued", "accepted", "scheduled", "sending", "sent"})
DELIVERED_RECEIPTS = frozenset({"delivered", "read"})
FAILED_RECEIPTS = frozenset({"undelivered", "failed", "canceled"})
