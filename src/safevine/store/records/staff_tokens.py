"""Bearer tokens for the staff API: shown once when made, kept only as a hash, scoped."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from safevine.domain.errors import InvalidError, NotFoundError
from safevine.store.schema import staff_tokens

SCOPES = ("ingest", "protect", "read", "report", "admin")
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


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(connection: Connection, name: str, scopes: list[str], now: datetime) -> str:
    """Make a token and return it; it is never shown again."""
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenError("a token needs a name of 1 to 100 characters")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise TokenError(
            f"scopes must be among {', '.join(SCOPES)} (got {', '.join(scopes) or 'none'})"
        )
    if connection.execute(select(staff_tokens.c.id).where(staff_tokens.c.name == name)).first():
        raise TokenError(f"a token named {name!r} already exists")
    token = PREFIX + secrets.token_urlsafe(32)
    connection.execute(
        insert(staff_tokens).values(
            name=name, token_hash=_digest(token), scopes=sorted(set(scopes)), created_at=now
        )
    )
    return token


def authenticate(connection: Connection, token: str, now: datetime) -> StaffToken | None:
    """The live token behind this secret, or None (unknown or revoked)."""
    row = connection.execute(
        select(staff_tokens).where(staff_tokens.c.token_hash == _digest(token))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    connection.execute(
        update(staff_tokens).where(staff_tokens.c.id == row.id).values(last_used_at=now)
    )
    return _token(row)


def _token(row: Any) -> StaffToken:
    return StaffToken(
        row.id, row.name, tuple(row.scopes), row.created_at, row.revoked_at, row.last_used_at
    )


def listing(connection: Connection) -> list[StaffToken]:
    return [_token(r) for r in connection.execute(select(staff_tokens).order_by(staff_tokens.c.id))]


def revoke(connection: Connection, name: str, now: datetime) -> StaffToken:
    row = connection.execute(select(staff_tokens).where(staff_tokens.c.name == name)).first()
    if row is None:
        raise NoSuchTokenError(f"no token named {name!r}")
    if row.revoked_at is None:
        connection.execute(
            update(staff_tokens).where(staff_tokens.c.id == row.id).values(revoked_at=now)
        )
    return _token(row)
