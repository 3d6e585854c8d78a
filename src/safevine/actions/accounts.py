"""Staff accounts and signing in, audited: accounts made, roles changed, disabled,
unlocked, second factors reset; logins, failures, lockouts and logouts.

A refused login is recorded (the attempt, the failure count, a lockout, the audit entry)
and committed before the refusal is raised, so that no failure goes uncounted.
"""

from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

from safevine.actions.actor import Actor
from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.store.records import staff_accounts as accounts
from safevine.store.records.audit import append
from safevine.store.records.staff_accounts import (
    Account,
    Enrolment,
    Login,
    LoginPolicy,
    LoginRefusedError,
    Session,
)


def prepare_logins() -> None:
    """Make the hash a login for an unknown name is checked against now, at the staff
    service's start, so that the first such login costs what the others do."""
    accounts.dummy_hash()


def policy(settings: Settings) -> LoginPolicy:
    return LoginPolicy(
        idle=timedelta(minutes=settings.staff_idle_minutes),
        lifetime=timedelta(hours=settings.staff_session_hours),
        lockout_after=settings.staff_lockout_after,
        client_failures=settings.staff_client_failures,
    )


def _audit(
    connection: Connection, actor: str, action: str, target: str, reason: str | None, now: datetime
) -> None:
    append(connection, actor=actor, action=action, target=target, reason=reason, at=now)


def create(
    connection: Connection,
    vault: ContactVault,
    actor: Actor,
    name: str,
    roles: list[str],
    password: str | None,
    now: datetime,
    oidc_subject: str | None = None,
) -> tuple[Account, Enrolment | None]:
    account, enrolment = accounts.create(
        connection, vault, name, roles, password, now, oidc_subject
    )
    _audit(
        connection,
        actor.name,
        "account_create",
        f"account:{account.id}",
        ",".join(sorted(r.value for r in account.roles)),
        now,
    )
    return account, enrolment


def set_roles(
    connection: Connection, actor: Actor, account_id: int, roles: list[str], now: datetime
) -> Account:
    account = accounts.set_roles(connection, account_id, roles, now)
    _audit(
        connection,
        actor.name,
        "account_roles",
        f"account:{account_id}",
        ",".join(sorted(r.value for r in account.roles)),
        now,
    )
    return account


def set_disabled(
    connection: Connection, actor: Actor, account_id: int, disabled: bool, now: datetime
) -> Account:
    account = accounts.set_disabled(connection, account_id, disabled, now)
    action = "account_disable" if disabled else "account_enable"
    _audit(connection, actor.name, action, f"account:{account_id}", None, now)
    return account


def unlock(connection: Connection, actor: Actor, account_id: int, now: datetime) -> Account:
    account = accounts.unlock(connection, account_id, now)
    _audit(connection, actor.name, "account_unlock", f"account:{account_id}", None, now)
    return account


def reset_mfa(
    connection: Connection, vault: ContactVault, actor: Actor, account_id: int, now: datetime
) -> Enrolment:
    enrolment = accounts.reset_mfa(connection, vault, account_id, now)
    _audit(connection, actor.name, "account_mfa_reset", f"account:{account_id}", None, now)
    return enrolment


def _recorded(connection: Connection, login: Login, step: str, client: str, now: datetime) -> None:
    who = login.account.name if login.account else "(unknown)"
    target = f"account:{login.account.id}" if login.account else "account:none"
    if login.session is not None:
        # Signed in once the second factor passed; a password alone is only half way.
        if login.session.mfa_passed:
            _audit(connection, who, "login", target, f"from {client[:64]}", now)
        return
    _audit(connection, who, "login_failed", target, f"{step}: {login.outcome}", now)
    if login.locked_now:
        _audit(connection, who, "account_locked", target, "too many failures in a row", now)


def sign_in(
    engine: Engine, name: str, password: str, client: str, now: datetime, policy: LoginPolicy
) -> tuple[Session, str]:
    """Step one: a half session (it may only offer its code) and its cookie's secret.
    LoginRefusedError, after what it recorded is committed."""
    with engine.begin() as connection:
        login = accounts.login_password(connection, name, password, client, now, policy)
        _recorded(connection, login, "password", client, now)
    if login.session is None or login.token is None:
        raise LoginRefusedError()
    return login.session, login.token


def second_factor(
    engine: Engine,
    vault: ContactVault,
    token: str,
    code: str,
    client: str,
    now: datetime,
    policy: LoginPolicy,
) -> Session:
    with engine.begin() as connection:
        login = accounts.second_factor(connection, vault, token, code, client, now, policy)
        _recorded(connection, login, "second_factor", client, now)
    if login.session is None:
        raise LoginRefusedError()
    return login.session


def sign_in_oidc(engine: Engine, subject: str, client: str, now: datetime) -> tuple[Session, str]:
    """A full session for the account the provider vouched for (its subject); the second
    factor was the provider's. LoginRefusedError, after it is recorded, for no account."""
    with engine.begin() as connection:
        login = accounts.login_oidc(connection, subject, client, now)
        _recorded(connection, login, "oidc", client, now)
    if login.session is None or login.token is None:
        raise LoginRefusedError()
    return login.session, login.token


def sign_out(connection: Connection, session: Session, token: str, now: datetime) -> None:
    accounts.end_session(connection, token, now)
    _audit(connection, session.account.name, "logout", f"account:{session.account.id}", None, now)


def confirm_identity(
    engine: Engine,
    vault: ContactVault,
    name: str,
    password: str,
    code: str,
    client: str,
    now: datetime,
    policy: LoginPolicy,
) -> Account:
    """Password and code checked as a full sign-in would check them (counted, locked,
    audited), for a command that must know who confirms it; the session ends at once."""
    _, token = sign_in(engine, name, password, client, now, policy)
    session = second_factor(engine, vault, token, code, client, now, policy)
    with engine.begin() as connection:
        accounts.end_session(connection, token, now, "used_once")
    return session.account
