"""Staff API tokens: made (the secret shown once, only its hash kept) and revoked."""

from datetime import datetime

from sqlalchemy import Connection

from safevine.actions.actor import Actor
from safevine.store.records import staff_tokens
from safevine.store.records.audit import append


def create(
    connection: Connection, actor: Actor, name: str, scopes: list[str], now: datetime
) -> str:
    """The new token's secret."""
    secret = staff_tokens.create(connection, name, scopes, now)
    append(
        connection,
        actor=actor.name,
        action="token_create",
        target=f"token:{name.strip()}",
        reason=",".join(sorted(set(scopes))),
        at=now,
    )
    return secret


def revoke(connection: Connection, actor: Actor, name: str, now: datetime) -> None:
    staff_tokens.revoke(connection, name, now)
    append(
        connection,
        actor=actor.name,
        action="token_revoke",
        target=f"token:{name}",
        reason=None,
        at=now,
    )
