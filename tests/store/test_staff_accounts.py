"""Staff accounts on both databases: password and TOTP, a code used once, lockout, the
same answer for every failure, sessions that end by idleness, age and account changes."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import Connection, Engine, select

from safevine.contact_vault import ContactVault
from safevine.domain.errors import FieldError, InvalidError
from safevine.domain.staff_roles import Right, Role, scopes_allowed
from safevine.store.records import staff_accounts as accounts
from safevine.store.records.staff_accounts import Login, LoginPolicy
from safevine.store.schema import staff_accounts, staff_login_attempts, staff_sessions

VAULT = ContactVault(b"k" * 40)
T0 = datetime(2026, 12, 5, 9, 0, 0, tzinfo=UTC)
POLICY = LoginPolicy(lockout_after=3, client_failures=6)
PASSWORD = "correct horse battery"


def _code(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)


def _make(engine: Engine, name: str = "ana", roles: tuple[str, ...] = ("screener",)) -> str:
    with engine.begin() as c:
        _, enrolment = accounts.create(c, VAULT, name, list(roles), PASSWORD, T0)
    assert enrolment is not None and enrolment.uri.startswith("otpauth://totp/")
    return enrolment.secret


def _login(engine: Engine, name: str, password: str, at: datetime, client: str = "10.0.0.1") -> str:
    with engine.begin() as c:
        login = accounts.login_password(c, name, password, client, at, POLICY)
    assert login.ok and login.token is not None, login.outcome
    return login.token


def _second(engine: Engine, token: str, code: str, at: datetime, client: str = "10.0.0.1") -> None:
    with engine.begin() as c:
        assert accounts.second_factor(c, VAULT, token, code, client, at, POLICY).ok


def _refused(engine: Engine, step: Callable[[Connection], Login]) -> str:
    """The step refused; what it recorded is committed all the same."""
    with engine.begin() as c:
        login = step(c)
    assert not login.ok and login.session is None and login.token is None
    return login.outcome


def _outcomes(engine: Engine) -> list[str]:
    with engine.connect() as c:
        return list(
            c.execute(
                select(staff_login_attempts.c.outcome).order_by(staff_login_attempts.c.id)
            ).scalars()
        )


def test_password_then_a_code_signs_in_and_a_code_works_once(engine: Engine) -> None:
    secret = _make(engine)
    token = _login(engine, "ana", PASSWORD, T0)
    with engine.begin() as c:
        half = accounts.session_for(c, token, T0, POLICY)
    assert half is not None and not half.mfa_passed and not half.account.mfa_enrolled
    _second(engine, token, _code(secret, T0), T0)
    with engine.begin() as c:
        full = accounts.session_for(c, token, T0 + timedelta(minutes=1), POLICY)
    assert full is not None and full.mfa_passed and full.account.mfa_enrolled
    assert Right.SCREEN in full.account.rights and Right.CONFIRM_CLEAR not in full.account.rights
    # The same code again, even within its 30 seconds, on a new session: refused.
    again = _login(engine, "ana", PASSWORD, T0 + timedelta(seconds=5))
    outcome = _refused(
        engine,
        lambda c: accounts.second_factor(
            c, VAULT, again, _code(secret, T0), "10.0.0.1", T0 + timedelta(seconds=5), POLICY
        ),
    )
    assert outcome == "replayed_totp"
    # A code of a later step is fine.
    later = T0 + timedelta(seconds=60)
    _second(engine, again, _code(secret, later), later)


def test_every_failure_answers_alike_and_is_recorded_for_what_it_was(engine: Engine) -> None:
    secret = _make(engine)
    _make(engine, "bea")
    with engine.begin() as c:
        accounts.set_disabled(c, accounts.by_name(c, "bea").id, True, T0)
    outcomes = [
        _refused(
            engine, lambda c: accounts.login_password(c, "nobody", PASSWORD, "c1", T0, POLICY)
        ),
        _refused(
            engine, lambda c: accounts.login_password(c, "ana", "wrong password!", "c1", T0, POLICY)
        ),
        _refused(engine, lambda c: accounts.login_password(c, "bea", PASSWORD, "c1", T0, POLICY)),
    ]
    token = _login(engine, "ana", PASSWORD, T0, "c1")
    outcomes.append(
        _refused(
            engine, lambda c: accounts.second_factor(c, VAULT, token, "000000", "c1", T0, POLICY)
        )
    )
    assert outcomes == ["unknown_account", "bad_password", "disabled", "bad_totp"]
    assert _outcomes(engine) == [
        "unknown_account",
        "bad_password",
        "disabled",
        "password_ok",
        "bad_totp",
    ]
    assert _code(secret, T0) != "000000"


def test_failures_in_a_row_lock_the_account_until_an_admin_unlocks_it(engine: Engine) -> None:
    secret = _make(engine)
    for wrong in ("wrong password 1", "wrong password 2", "wrong password 3"):
        _refused(
            engine,
            lambda c, wrong=wrong: accounts.login_password(c, "ana", wrong, "c2", T0, POLICY),  # type: ignore[misc]
        )
    with engine.connect() as c:
        assert accounts.by_name(c, "ana").locked
    # Locked: even the right password is refused, with the same words.
    assert (
        _refused(engine, lambda c: accounts.login_password(c, "ana", PASSWORD, "c3", T0, POLICY))
        == "locked"
    )
    with engine.begin() as c:
        accounts.unlock(c, accounts.by_name(c, "ana").id, T0)
    token = _login(engine, "ana", PASSWORD, T0, "c3")
    _second(engine, token, _code(secret, T0), T0, "c3")


def test_one_client_failing_too_often_is_stopped_for_every_account(engine: Engine) -> None:
    _make(engine)
    for guess in [f"guess{n}" for n in range(6)]:
        _refused(
            engine,
            lambda c, guess=guess: accounts.login_password(  # type: ignore[misc]
                c, guess, PASSWORD, "203.0.113.9", T0, POLICY
            ),
        )
    assert (
        _refused(
            engine, lambda c: accounts.login_password(c, "ana", PASSWORD, "203.0.113.9", T0, POLICY)
        )
        == "client_limited"
    )
    # Another client is not stopped, and the window passes.
    _login(engine, "ana", PASSWORD, T0, "198.51.100.1")
    _login(engine, "ana", PASSWORD, T0 + timedelta(minutes=16), "203.0.113.9")


def test_sessions_end_when_idle_too_old_or_the_account_changes(engine: Engine) -> None:
    secret = _make(engine)
    token = _login(engine, "ana", PASSWORD, T0)
    _second(engine, token, _code(secret, T0), T0)
    with engine.begin() as c:
        assert accounts.session_for(c, token, T0 + timedelta(minutes=16), POLICY) is None
    moments = [T0 + timedelta(minutes=m) for m in range(0, 8 * 60 + 1, 10)]
    token = _login(engine, "ana", PASSWORD, moments[0])
    _second(engine, token, _code(secret, moments[0] + timedelta(seconds=31)), moments[0])
    with engine.begin() as c:
        for moment in moments[1:-1]:
            assert accounts.session_for(c, token, moment, POLICY) is not None
        assert accounts.session_for(c, token, moments[-1] + timedelta(minutes=1), POLICY) is None
    for change in (
        lambda c, a: accounts.set_roles(c, a, ["supervisor"], T0),
        lambda c, a: accounts.set_disabled(c, a, True, T0),
    ):
        with engine.begin() as c:
            accounts.set_disabled(c, accounts.by_name(c, "ana").id, False, T0)
        token = _login(engine, "ana", PASSWORD, T0 + timedelta(hours=9))
        with engine.begin() as c:
            change(c, accounts.by_name(c, "ana").id)
            assert accounts.session_for(c, token, T0 + timedelta(hours=9), POLICY) is None
    with engine.connect() as c:
        reasons = set(c.execute(select(staff_sessions.c.end_reason)).scalars())
    assert {"idle", "expired", "roles_changed", "disabled"} <= reasons


def test_logout_ends_the_session_on_the_server(engine: Engine) -> None:
    secret = _make(engine)
    token = _login(engine, "ana", PASSWORD, T0)
    _second(engine, token, _code(secret, T0), T0)
    with engine.begin() as c:
        accounts.end_session(c, token, T0)
        assert accounts.session_for(c, token, T0, POLICY) is None


def test_the_totp_secret_is_never_stored_as_itself(engine: Engine) -> None:
    secret = _make(engine)
    with engine.connect() as c:
        row = c.execute(select(staff_accounts)).one()
    assert secret.encode() not in bytes(row.totp_ciphertext)
    assert secret not in repr(tuple(row)) and PASSWORD not in repr(tuple(row))
    assert row.password_hash.startswith("$argon2id$")
    with engine.begin() as c:
        reset = accounts.reset_mfa(c, VAULT, row.id, T0)
        assert reset.secret != secret and not accounts.get(c, row.id).mfa_enrolled


def test_bad_account_input_is_a_field_error(engine: Engine) -> None:
    cases = [
        ("", ["screener"], PASSWORD, "name"),
        ("a\x00b", ["screener"], PASSWORD, "name"),
        ("x" * 100_000, ["screener"], PASSWORD, "name"),
        ("carla", ["root"], PASSWORD, "roles"),
        ("carla", [], PASSWORD, "roles"),
        ("carla", ["admin"], "short", "password"),
        ("carla", ["admin"], "p" * 100_000, "password"),
        ("carla", ["admin"], "pass\x00word-long-enough", "password"),
        ("carlacarlacarla", ["admin"], "CarlaCarlaCarla", "password"),
    ]
    for name, roles, password, field in cases:
        with pytest.raises(FieldError) as error, engine.begin() as c:
            accounts.create(c, VAULT, name, roles, password, T0)
        assert error.value.field == field, (name[:20], roles, password[:20])
    _make(engine, "carla")
    with pytest.raises(InvalidError), engine.begin() as c:
        accounts.create(c, VAULT, "carla", ["admin"], PASSWORD, T0)
    # A huge password at login is refused as any wrong one is, not hashed whole.
    assert (
        _refused(
            engine, lambda c: accounts.login_password(c, "carla", "p" * 10**6, "c", T0, POLICY)
        )
        == "bad_password"
    )


def test_a_token_gets_no_scope_its_account_lacks() -> None:
    assert scopes_allowed(frozenset({Role.SCREENER})) == {"protect", "read"}
    assert scopes_allowed(frozenset({Role.AUDITOR})) == {"report"}
    assert scopes_allowed(frozenset({Role.ADMIN})) == {"admin", "ingest", "correct"}
    # Retracting an event (and so correcting registrants) is a supervisor's or an admin's.
    assert scopes_allowed(frozenset({Role.SUPERVISOR})) == {"protect", "read", "correct"}
    assert scopes_allowed(frozenset(Role)) == {
        "admin",
        "ingest",
        "protect",
        "read",
        "report",
        "correct",
    }


def test_a_login_for_a_known_name_makes_the_unknown_names_hash_too(engine: Engine) -> None:
    # Where no service made it at start (a command), the first login pays for making it
    # whatever the name: otherwise only a miss would, and its time would tell.
    _make(engine)
    accounts.dummy_hash.cache_clear()
    _login(engine, "ana", PASSWORD, T0)
    assert accounts.dummy_hash.cache_info().currsize == 1
