"""Staff API tokens: made (the secret shown once, only its hash kept) and revoked."""

from datetime import datetime

from sqlalchemy import Connection

from safevine.actions.actor import Actor
from safevine.domain.staff_roles import scopes_allowed
from safevine.store.records import staff_tokens
from safevine.store.records.audit import append
from safevine.store.records.staff_accounts import Account


def create(
    connection: Connection,
    actor: Actor,
    name: str,
    scopes: list[str],
    now: datetime,
    account: Account | None = None,
) -> str:
    """The new token's secret. A token of an account carries at most its rights."""
    allowed = scopes_allowed(account.roles) if account else frozenset(staff_tokens.SCOPES)
    secret = staff_tokens.create(
        connection, name, scopes, now, account.id if account else None, allowed
    )
    append(
        connection,
        actor=actor.name,
        action="token_create",
        target=f"token:{name.strip()}",
        reason=",".join(sorted(set(scopes))) + (f" for {account.name}" if account else ""),
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
