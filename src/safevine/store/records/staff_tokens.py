"""Bearer tokens for the staff API: shown once when made, kept only as a hash, scoped."""

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from safevine.domain.errors import InvalidError, NotFoundError
from safevine.domain.staff_roles import roles_from, scopes_allowed
from safevine.store.schema import staff_accounts, staff_tokens

SCOPES = ("ingest", "protect", "read", "report", "admin", "correct")
PREFIX = "svt_"


class TokenError(InvalidError):
    """A token that cannot be made as asked; the message says why."""


class NoSuchTokenError(TokenError, NotFoundError):
    pass


@dataclass(frozen=True)
class StaffToken:
    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    # The account it belongs to (None for a token made at the command line without one).
    account: str | None = None

    @property
    def actor(self) -> str:
        """Who acts with it, as the audit log and the two-person rule name them: its
        account, so that one person's token and console session are one person."""
        return self.account or self.name


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    connection: Connection,
    name: str,
    scopes: list[str],
    now: datetime,
    account_id: int | None = None,
    allowed: frozenset[str] = frozenset(SCOPES),
) -> str:
    """Make a token and return it; it is never shown again. A token of an account may
    carry only the scopes its roles allow (`allowed`)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenError("a token needs a name of 1 to 100 characters")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise TokenError(
            f"scopes must be among {', '.join(SCOPES)} (got {', '.join(scopes) or 'none'})"
        )
    beyond = sorted(set(scopes) - allowed)
    if beyond:
        raise TokenError(f"the account's roles do not allow the scopes {', '.join(beyond)}")
    if connection.execute(select(staff_tokens.c.id).where(staff_tokens.c.name == name)).first():
        raise TokenError(f"a token named {name!r} already exists")
    token = PREFIX + secrets.token_urlsafe(32)
    connection.execute(
        insert(staff_tokens).values(
            name=name,
            token_hash=_digest(token),
            scopes=sorted(set(scopes)),
            created_at=now,
            account_id=account_id,
        )
    )
    return token


def authenticate(connection: Connection, token: str, now: datetime) -> StaffToken | None:
    """The live token behind this secret, or None (unknown, revoked, or its account can
    no longer sign in). A token of an account has the scopes its account's roles allow
    now, whatever it was given: an account that loses a role, its tokens lose it too."""
    row = connection.execute(
        select(
            staff_tokens,
            staff_accounts.c.name.label("account"),
            staff_accounts.c.roles,
            staff_accounts.c.disabled_at,
            staff_accounts.c.locked_at,
        )
        .outerjoin(staff_accounts, staff_accounts.c.id == staff_tokens.c.account_id)
        .where(staff_tokens.c.token_hash == _digest(token))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.account_id is not None and (row.disabled_at is not None or row.locked_at is not None):
        return None
    connection.execute(
        update(staff_tokens).where(staff_tokens.c.id == row.id).values(last_used_at=now)
    )
    found = _token(row)
    if row.account_id is None:
        return found
    allowed = scopes_allowed(roles_from(list(row.roles)))
    return replace(found, scopes=tuple(s for s in found.scopes if s in allowed))


def _token(row: Any) -> StaffToken:
    return StaffToken(
        row.id,
        row.name,
        tuple(row.scopes),
        row.created_at,
        row.revoked_at,
        row.last_used_at,
        getattr(row, "account", None),
    )


def listing(connection: Connection) -> list[StaffToken]:
    rows = connection.execute(
        select(staff_tokens, staff_accounts.c.name.label("account"))
        .outerjoin(staff_accounts, staff_accounts.c.id == staff_tokens.c.account_id)
        .order_by(staff_tokens.c.id)
    )
    return [_token(r) for r in rows]


def revoke(connection: Connection, name: str, now: datetime) -> StaffToken:
    row = connection.execute(select(staff_tokens).where(staff_tokens.c.name == name)).first()
    if row is None:
        raise NoSuchTokenError(f"no token named {name!r}")
    if row.revoked_at is None:
        connection.execute(
            update(staff_tokens).where(staff_tokens.c.id == row.id).values(revoked_at=now)
        )
    return _token(row)
