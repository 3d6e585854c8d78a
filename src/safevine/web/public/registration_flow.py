"""The registration steps shared by the pages and the API, so both answer the same way.

Nothing is sent from here: starting a registration queues its code in the outbox, and the
dispatcher sends it. Every answer is the same for a public, non-public or unknown person.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from safevine.domain.contact_address import Channel
from safevine.i18n import N_
from safevine.notify import webhook_destination
from safevine.store.public import registrations
from safevine.store.public.registrations import ConfirmationRefused, Confirmed, Started
from safevine.web.public.registration_form import ADDRESS_PROBLEM, parse_registration
from safevine.web.public.search_query import Problem
from safevine.web.state import AppState

CONFIRM_PROBLEM = {
    "invalid": N_("That code is not right. Check the latest message and try again."),
    "expired": N_("That code has expired. Please register again to get a new one."),
    "too_many": N_("Too many wrong codes. Please register again to get a new one."),
}


@dataclass
class StartOutcome:
    started: Started | None = None
    problems: list[Problem] = field(default_factory=list)
    retry_after: int | None = None


def start(state: AppState, client: str, raw: Mapping[str, Any]) -> StartOutcome:
    if state.limiter and (wait := state.limiter.check("register_client", client)):
        return StartOutcome(retry_after=wait)
    parsed = parse_registration(raw)
    if isinstance(parsed, list):
        return StartOutcome(problems=parsed)
    address_key = state.vault.blind_index(parsed.channel.value, parsed.address)
    if state.limiter and (wait := state.limiter.check("register_address", address_key)):
        return StartOutcome(retry_after=wait)
    if parsed.channel == Channel.WEBHOOK and not _webhook_allowed(state, parsed.address):
        return StartOutcome(problems=[Problem("address", ADDRESS_PROBLEM[parsed.channel])])
    with state.public_engine.begin() as connection:
        return StartOutcome(
            started=registrations.start(connection, state.vault, parsed, datetime.now(UTC))
        )


def _webhook_allowed(state: AppState, address: str) -> bool:
    """Whether the webhook's host resolves, and only to addresses it may reach (checked
    again at every send). `start` runs in a worker thread (the pages call it through
    run_in_threadpool, the API route is a plain `def`, which FastAPI runs in one), so
    the lookup waits here without holding the event loop. The answer is the same field
    problem as any malformed address: it says nothing of the person."""
    checked = webhook_destination.check_blocking(
        address, allow_private=state.settings.webhook_allow_private
    )
    return isinstance(checked, webhook_destination.Destination)


def confirm(state: AppState, pending_token: str, code: str) -> Confirmed | Problem:
    with state.public_engine.begin() as connection:
        result = registrations.confirm(
            connection, state.vault, pending_token, code, datetime.now(UTC)
        )
    if isinstance(result, ConfirmationRefused):
        return Problem("code", CONFIRM_PROBLEM[result.reason])
    return result


STATUS_TEXT = {
    registrations.PENDING: N_("Waiting for the confirmation code"),
    registrations.ACTIVE: N_("Active: you will be told about changes"),
    registrations.ENDED: N_("Ended"),
}
END_REASON_TEXT = {
    registrations.RECORD_UNAVAILABLE: N_("This record is no longer available."),
    registrations.BY_REGISTRANT: N_("You ended this registration."),
    registrations.BY_SMS_STOP: N_("Ended by a STOP reply."),
    registrations.REPLACED: N_(
        "Replaced by a newer registration for the same address. "
        "Use the link in the newest message to see it."
    ),
}
