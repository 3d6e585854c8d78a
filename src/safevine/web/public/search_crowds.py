"""A crowd: the same identifiers searched from more different clients than
SAFEVINE_SEARCH_CROWD allows within its period (`web.rate_limits`). Nobody is refused;
every answer for those identifiers waits SAFEVINE_SEARCH_CROWD_DELAY seconds, and the
staff are told once per period by an operations message.

The message never holds the identifiers. It names the public records they matched, by
public reference (already shown to whoever searched) with a link to the staff console, or
says that they matched none; the identifiers' keyed hash stays in its payload.
"""

import logging
from datetime import datetime

from sqlalchemy import Engine, insert

from safevine.config import Settings
from safevine.failures import describe
from safevine.store.public.tables import operations_messages

log = logging.getLogger("safevine.web")
CROWD = "search_crowd"


def crowd_alert_body(settings: Settings, refs: list[str], now: datetime) -> str:
    if refs:
        links = "\n".join(f"- {settings.staff_base_url}/person/ref/{ref}" for ref in refs)
        matched = f"They match {len(refs)} public record(s):\n{links}\n"
    else:
        matched = (
            "They match no public record: the person is protected, not yet screened, not "
            "public for another reason, or does not exist. Nothing about anyone was shown.\n"
        )
    return (
        f"safevine public search at {now.isoformat(timespec='minutes')}: the same identifiers "
        f"were searched from more different addresses than SAFEVINE_SEARCH_CROWD "
        f"({settings.search_crowd}) allows.\n\n"
        f"{matched}\n"
        f"No one is refused: every answer for these identifiers now waits "
        f"{settings.search_crowd_delay} seconds, until fewer addresses search for them.\n"
        "Someone may be following this person's custody from many addresses. Consider "
        "whether the person, or the people registered for them, should be told.\n"
    )


def queue_crowd_alert(
    engine: Engine, settings: Settings, key: str, refs: list[str], now: datetime
) -> int:
    """Queue the alert for each operations address; how many. A failure is logged, never
    raised: the search it came from is answered all the same."""
    addresses = settings.operations_addresses()
    log.warning(
        "search crowd: identifiers searched from too many addresses (%d public match(es)); %s",
        len(refs),
        "operations told" if addresses else "no operations address to tell",
    )
    if not addresses:
        return 0
    body = crowd_alert_body(settings, refs, now)
    payload = {"kind": CROWD, "at": now.isoformat(), "identifiers_key": key, "public_refs": refs}
    try:
        with engine.begin() as connection:
            for channel in addresses:
                connection.execute(
                    insert(operations_messages).values(
                        kind=CROWD,
                        channel=channel,
                        subject="safevine: many addresses searched for one person",
                        body=body,
                        payload=payload,
                        state="queued",
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
    # An alert that cannot be queued stops no search.
    except Exception as error:
        log.error("search crowd alert not queued", extra=describe(error))
        return 0
    return len(addresses)
