"""Staff accounts and their sessions: a password (Argon2id) and a TOTP code (RFC 6238), or
an OpenID Connect subject; server-side sessions ended by logout, idleness, age, or a
change to the account.

Every function takes the time it runs at and the caller's connection; the caller's
action writes the audit entry in the same transaction. A failed login says the same
whatever failed (no such account, wrong password, locked, disabled), so the answer never
tells a stranger which accounts exist; the attempt table records what really happened.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, func, insert, select, update

from safevine.contact_vault import ContactVault
from safevine.domain.errors import FieldError, InvalidError, NotAllowedError, NotFoundError
from safevine.domain.staff_roles import Right, Role, rights_of, roles_from
from safevine.domain.value_ranges import NAME_LENGTH, check_text
from safevine.store.schema import staff_accounts, staff_login_attempts, staff_sessions

PASSWORD_MIN, PASSWORD_MAX = 12, 1024
TOTP_STEP_SECONDS = 30
_HASHER = PasswordHasher()  # argon2-cffi's defaults: Argon2id
REFUSED = "wrong name, password or code, or the account cannot sign in now"


class LoginRefusedError(NotAllowedError):
    """A login or second factor refused; the message never says which part was wrong."""

    def __init__(self) -> None:
        super().__init__(REFUSED)


@dataclass(frozen=True)
class LoginPolicy:
    idle: timedelta = timedelta(minutes=15)
    lifetime: timedelta = timedelta(hours=8)
    lockout_after: int = 5  # failures in a row lock the account until an admin unlocks it
    client_failures: int = 20  # failures from one client within the window stop it
    client_window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    roles: frozenset[Role]
    mfa_enrolled: bool
    oidc_subject: str | None
    locked: bool
    disabled: bool
    created_at: datetime

    @property
    def rights(self) -> frozenset[Right]:
        return frozenset() if self.disabled else rights_of(self.roles)


@dataclass(frozen=True)
class Session:
    id: int
    account: Account
    csrf_token: str
    mfa_passed: bool
    created_at: datetime
    last_seen_at: datetime


def _account(row: Any) -> Account:
    return Account(
        int(row.id),
        row.name,
        roles_from(list(row.roles)),
        row.totp_confirmed_at is not None,
        row.oidc_subject,
        row.locked_at is not None,
        row.disabled_at is not None,
        row.created_at,
    )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _context(name: str) -> str:
    return f"staff totp {name}"


def _name(name: str) -> str:
    name = check_text(name, "name", NAME_LENGTH).strip()
    if not name:
        raise FieldError("name", "is required")
    return name


def _password(password: str, name: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise FieldError("password", f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long")
    if "\x00" in password:
        raise FieldError("password", "must not contain a NUL character")
    if password.strip().casefold() == name.casefold():
        raise FieldError("password", "must not be the account's name")
    return password


def _roles(names: list[str]) -> frozenset[Role]:
    try:
        roles = roles_from(names)
    except ValueError as error:
        raise FieldError("roles", str(error)) from None
    if not roles:
        raise FieldError("roles", "at least one is required")
    return roles


def _row(connection: Connection, account_id: int) -> Any:
    row = connection.execute(
        select(staff_accounts).where(staff_accounts.c.id == account_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no account {account_id}")
    return row


def get(connection: Connection, account_id: int) -> Account:
    return _account(_row(connection, account_id))


def by_name(connection: Connection, name: str) -> Account:
    row = connection.execute(
        select(staff_accounts).where(staff_accounts.c.name == name.strip())
    ).first()
    if row is None:
        raise NotFoundError(f"no account named {name.strip()[:NAME_LENGTH]!r}")
    return _account(row)


def listing(connection: Connection) -> list[Account]:
    rows = connection.execute(select(staff_accounts).order_by(staff_accounts.c.name))
    return [_account(r) for r in rows]


def count(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(staff_accounts)).scalar_one())


@dataclass(frozen=True)
class Enrolment:
    """A TOTP secret to give its owner once: as a QR code of `uri`, or typed as `secret`."""

    secret: str
    uri: str


def _new_totp(vault: ContactVault, name: str) -> tuple[Enrolment, str, bytes]:
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name="safevine staff")
    key_id, blob = vault.encrypt(secret, _context(name))
    return Enrolment(secret, uri), key_id, blob


def create(
    connection: Connection,
    vault: ContactVault,
    name: str,
    roles: list[str],
    password: str | None,
    now: datetime,
    oidc_subject: str | None = None,
) -> tuple[Account, Enrolment | None]:
    """A new account and, for a password login, the TOTP enrolment to hand its owner."""
    name = _name(name)
    chosen = _roles(roles)
    if password is None and oidc_subject is None:
        raise FieldError("password", "is required (or an OpenID Connect subject)")
    if connection.execute(select(staff_accounts.c.id).where(staff_accounts.c.name == name)).first():
        raise InvalidError(f"an account named {name!r} already exists")
    enrolment, key_id, blob = (None, None, None)
    values: dict[str, Any] = {
        "name": name,
        "roles": sorted(r.value for r in chosen),
        "oidc_subject": oidc_subject,
        "created_at": now,
        "updated_at": now,
    }
    if password is not None:
        values["password_hash"] = _HASHER.hash(_password(password, name))
        values["password_changed_at"] = now
        enrolment, key_id, blob = _new_totp(vault, name)
        values.update(totp_key_id=key_id, totp_ciphertext=blob)
    account_id = connection.execute(
        insert(staff_accounts).values(**values).returning(staff_accounts.c.id)
    ).scalar_one()
    return get(connection, int(account_id)), enrolment


def _attempt(connection: Connection, name: str, client: str, outcome: str, now: datetime) -> None:
    connection.execute(
        insert(staff_login_attempts).values(
            at=now, account_name=name[:NAME_LENGTH], client=client[:64], outcome=outcome
        )
    )


def _client_stopped(
    connection: Connection, client: str, now: datetime, policy: LoginPolicy
) -> bool:
    failures = connection.execute(
        select(func.count())
        .select_from(staff_login_attempts)
        .where(
            staff_login_attempts.c.client == client[:64],
            staff_login_attempts.c.at > now - policy.client_window,
            staff_login_attempts.c.outcome != "success",
        )
    ).scalar_one()
    return int(failures) >= policy.client_failures


def _failed(connection: Connection, row: Any, now: datetime, policy: LoginPolicy) -> bool:
    """Count a failure against the account; True when it has now been locked."""
    failures = int(row.failed_logins) + 1
    lock = failures >= policy.lockout_after and row.locked_at is None
    connection.execute(
        update(staff_accounts)
        .where(staff_accounts.c.id == row.id)
        .values(failed_logins=failures, locked_at=now if lock else row.locked_at)
    )
    if lock:
        end_sessions_of(connection, int(row.id), now, "locked")
    return lock


@dataclass(frozen=True)
class Login:
    """What a login step did. Refusals are returned, not raised, so that the caller
    commits what they record (the attempt, the failure count, a lockout) and only then
    answers; `outcome` says what really happened, for the audit, never for the answer."""

    outcome: str
    account: Account | None
    session: Session | None = None
    token: str | None = None  # the cookie's secret, for a new session
    locked_now: bool = False

    @property
    def ok(self) -> bool:
        return self.session is not None


def _open_session(
    connection: Connection, account_id: int, client: str, now: datetime, mfa: bool
) -> tuple[Session, str]:
    token = secrets.token_urlsafe(32)
    connection.execute(
        insert(staff_sessions).values(
            token_hash=_digest(token),
            account_id=account_id,
            csrf_token=secrets.token_urlsafe(32),
            mfa_passed_at=now if mfa else None,
            created_at=now,
            last_seen_at=now,
            client=client[:64],
        )
    )
    session = session_for(connection, token, now, LoginPolicy())
    assert session is not None
    return session, token


def login_password(
    connection: Connection,
    name: str,
    password: str,
    client: str,
    now: datetime,
    policy: LoginPolicy,
) -> Login:
    """A session that may only offer its second factor, and the secret for its cookie."""
    name = name.strip()[:NAME_LENGTH]
    if _client_stopped(connection, client, now, policy):
        _attempt(connection, name, client, "client_limited", now)
        return Login("client_limited", None)
    row = connection.execute(
        select(staff_accounts).where(staff_accounts.c.name == name).with_for_update()
    ).first()
    good = _verify(row.password_hash if row is not None else None, password)
    if row is None or row.password_hash is None:
        _attempt(connection, name, client, "unknown_account", now)
        return Login("unknown_account", None)
    account = _account(row)
    if row.disabled_at is not None or row.locked_at is not None:
        outcome = "disabled" if row.disabled_at is not None else "locked"
        _attempt(connection, name, client, outcome, now)
        return Login(outcome, account)
    if not good:
        locked = _failed(connection, row, now, policy)
        _attempt(connection, name, client, "bad_password", now)
        return Login("bad_password", account, locked_now=locked)
    _attempt(connection, name, client, "password_ok", now)
    session, token = _open_session(connection, account.id, client, now, mfa=False)
    return Login("password_ok", account, session, token)


@cache
def dummy_hash() -> str:
    """Checked when no account has the name, so that a miss costs what a wrong password
    does. Made on first need, not at import: a hash takes Argon2's 64 MiB, which would
    become the peak memory of every process that imports this module, the public server's
    included. The staff service makes it at start (`create_staff_app`)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def _verify(stored: str | None, password: str) -> bool:
    # Made (once) whether or not the name has an account, so that where no service made it
    # at start (a command), the first login costs the same for a known name and an unknown.
    dummy = dummy_hash()
    try:
        checked = _HASHER.verify(stored or dummy, password[:PASSWORD_MAX])
        return checked and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def totp_secret(connection: Connection, vault: ContactVault, account_id: int) -> str:
    row = _row(connection, account_id)
    if row.totp_ciphertext is None:
        raise InvalidError("this account signs in through the agency's identity provider")
    return vault.decrypt(row.totp_key_id, row.totp_ciphertext, _context(row.name))


def enrolment(connection: Connection, vault: ContactVault, account_id: int) -> Enrolment:
    """The enrolment of an account that has not confirmed its second factor yet."""
    row = _row(connection, account_id)
    if row.totp_confirmed_at is not None:
        raise InvalidError("this account's second factor is already set up")
    secret = totp_secret(connection, vault, account_id)
    uri = pyotp.TOTP(secret).provisioning_uri(name=row.name, issuer_name="safevine staff")
    return Enrolment(secret, uri)


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (one before or after now included, for clock drift) whose code this is."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // TOTP_STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if secrets.compare_digest(totp.at(step * TOTP_STEP_SECONDS), code):
            return step
    return None


def second_factor(
    connection: Connection,
    vault: ContactVault,
    token: str,
    code: str,
    client: str,
    now: datetime,
    policy: LoginPolicy,
) -> Login:
    """The TOTP code for a half session: the session is then fully signed in. A code is
    accepted once only; a wrong or replayed one counts toward the lockout."""
    session = session_for(connection, token, now, policy)
    if session is None or session.mfa_passed:
        return Login("no_session", None)
    row = connection.execute(
        select(staff_accounts).where(staff_accounts.c.id == session.account.id).with_for_update()
    ).one()
    if _client_stopped(connection, client, now, policy):
        _attempt(connection, row.name, client, "client_limited", now)
        return Login("client_limited", session.account)
    step = _matching_step(totp_secret(connection, vault, int(row.id)), code, now)
    replayed = step is not None and row.totp_last_step is not None and step <= row.totp_last_step
    if step is None or replayed:
        outcome = "replayed_totp" if replayed else "bad_totp"
        locked = _failed(connection, row, now, policy)
        _attempt(connection, row.name, client, outcome, now)
        return Login(outcome, session.account, locked_now=locked)
    connection.execute(
        update(staff_accounts)
        .where(staff_accounts.c.id == row.id)
        .values(
            totp_last_step=step,
            totp_confirmed_at=row.totp_confirmed_at or now,
            failed_logins=0,
            updated_at=now,
        )
    )
    connection.execute(
        update(staff_sessions)
        .where(staff_sessions.c.id == session.id)
        .values(mfa_passed_at=now, last_seen_at=now)
    )
    _attempt(connection, row.name, client, "success", now)
    done = session_for(connection, token, now, policy)
    assert done is not None
    return Login("success", done.account, done)


def login_oidc(connection: Connection, subject: str, client: str, now: datetime) -> Login:
    """A full session for the account with this OpenID Connect subject (the provider did
    the second factor)."""
    row = connection.execute(
        select(staff_accounts).where(staff_accounts.c.oidc_subject == subject)
    ).first()
    if row is None or row.disabled_at is not None or row.locked_at is not None:
        _attempt(connection, f"oidc:{subject}", client, "unknown_account", now)
        return Login("unknown_account", _account(row) if row else None)
    _attempt(connection, row.name, client, "success", now)
    session, token = _open_session(connection, int(row.id), client, now, mfa=True)
    return Login("success", session.account, session, token)


def session_for(
    connection: Connection, token: str, now: datetime, policy: LoginPolicy
) -> Session | None:
    """The live session behind a cookie, seen now; None (and the session ended) when it
    has been idle or alive too long, or its account can no longer sign in."""
    row = connection.execute(
        select(staff_sessions).where(staff_sessions.c.token_hash == _digest(token))
    ).first()
    if row is None or row.ended_at is not None:
        return None
    account = get(connection, int(row.account_id))
    reason = None
    if now - row.last_seen_at > policy.idle:
        reason = "idle"
    elif now - row.created_at > policy.lifetime:
        reason = "expired"
    elif account.disabled or account.locked:
        reason = "disabled"
    if reason:
        _end(connection, [int(row.id)], now, reason)
        return None
    connection.execute(
        update(staff_sessions).where(staff_sessions.c.id == row.id).values(last_seen_at=now)
    )
    return Session(
        int(row.id), account, row.csrf_token, row.mfa_passed_at is not None, row.created_at, now
    )


def _end(connection: Connection, ids: list[int], now: datetime, reason: str) -> None:
    connection.execute(
        update(staff_sessions)
        .where(staff_sessions.c.id.in_(ids), staff_sessions.c.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )


def end_session(connection: Connection, token: str, now: datetime, reason: str = "logout") -> None:
    connection.execute(
        update(staff_sessions)
        .where(staff_sessions.c.token_hash == _digest(token), staff_sessions.c.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )


def end_sessions_of(connection: Connection, account_id: int, now: datetime, reason: str) -> None:
    connection.execute(
        update(staff_sessions)
        .where(staff_sessions.c.account_id == account_id, staff_sessions.c.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )


def set_roles(connection: Connection, account_id: int, roles: list[str], now: datetime) -> Account:
    """New roles take effect at once: the account's sessions end and it signs in again."""
    chosen = _roles(roles)
    _row(connection, account_id)
    connection.execute(
        update(staff_accounts)
        .where(staff_accounts.c.id == account_id)
        .values(roles=sorted(r.value for r in chosen), updated_at=now)
    )
    end_sessions_of(connection, account_id, now, "roles_changed")
    return get(connection, account_id)


def set_disabled(connection: Connection, account_id: int, disabled: bool, now: datetime) -> Account:
    _row(connection, account_id)
    connection.execute(
        update(staff_accounts)
        .where(staff_accounts.c.id == account_id)
        .values(disabled_at=now if disabled else None, updated_at=now)
    )
    if disabled:
        end_sessions_of(connection, account_id, now, "disabled")
    return get(connection, account_id)


def unlock(connection: Connection, account_id: int, now: datetime) -> Account:
    _row(connection, account_id)
    connection.execute(
        update(staff_accounts)
        .where(staff_accounts.c.id == account_id)
        .values(locked_at=None, failed_logins=0, updated_at=now)
    )
    return get(connection, account_id)


def reset_mfa(
    connection: Connection, vault: ContactVault, account_id: int, now: datetime
) -> Enrolment:
    """A new TOTP secret, unconfirmed until its owner enters a code from it; every session
    of the account ends."""
    row = _row(connection, account_id)
    if row.password_hash is None:
        raise InvalidError("this account signs in through the agency's identity provider")
    new, key_id, blob = _new_totp(vault, row.name)
    connection.execute(
        update(staff_accounts)
        .where(staff_accounts.c.id == account_id)
        .values(
            totp_key_id=key_id,
            totp_ciphertext=blob,
            totp_confirmed_at=None,
            totp_last_step=None,
            updated_at=now,
        )
    )
    end_sessions_of(connection, account_id, now, "mfa_reset")
    return new


def set_password(connection: Connection, account_id: int, password: str, now: datetime) -> None:
    """A new password; every session of the account ends and its failures are forgiven."""
    row = _row(connection, account_id)
    connection.execute(
        update(staff_accounts)
        .where(staff_accounts.c.id == account_id)
        .values(
            password_hash=_HASHER.hash(_password(password, row.name)),
            password_changed_at=now,
            failed_logins=0,
            locked_at=None,
            updated_at=now,
        )
    )
    end_sessions_of(connection, account_id, now, "password_changed")
