"""Starting a registration tells a stranger nothing about whether a contact follows a
person: the same statements, hashing and encryption, the same answer, and a pending token
that answers wrong codes the same way, whatever that address already has for that person.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from safevine.contact_vault import ContactVault
from safevine.domain.contact_address import Channel, mask_address
from safevine.store.public import registrations
from safevine.store.public.registrations import RegistrationRequest
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery

STATES = ("new", "pending", "active", "ended")


def _request(delivery: Delivery, address: str) -> RegistrationRequest:
    return RegistrationRequest(
        person_ref=delivery.ref(PUBLIC.a_number),
        channel=Channel.EMAIL,
        address=address,
        address_hint=mask_address(Channel.EMAIL, address),
        language="en",
        wording="standard",
        events=("released",),
    )


def _prepare(delivery: Delivery) -> dict[str, str]:
    """An address in each state for the public canary."""
    ref = delivery.ref(PUBLIC.a_number)
    addresses = {state: f"{state}@example.org" for state in STATES}
    with delivery.public.begin() as connection:
        registrations.start(
            connection, delivery.vault, _request(delivery, addresses["pending"]), _now()
        )
    delivery.register(ref, addresses["active"])
    ended = delivery.register(ref, addresses["ended"])
    with delivery.public.begin() as connection:
        assert registrations.end_by_manage_token(connection, ended.manage_token, _now())
    return addresses


def _now() -> datetime:
    return datetime.now(UTC)


class _Counting:
    """Wraps an object and counts calls of the named methods, in order."""

    def __init__(self, inner: Any, calls: list[str], *names: str) -> None:
        self._inner, self._calls, self._names = inner, calls, names

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in self._names:
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(name)
            return attribute(*args, **kwargs)

        return counted


@contextmanager
def _recorded(delivery: Delivery, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement (literals and parameters aside) and every hash or encryption."""
    calls: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        calls.append(re.sub(r"\s+", " ", sql))

    hasher = registrations._hasher
    monkeypatch.setattr(registrations, "_hasher", _Counting(hasher, calls, "hash", "verify"))
    event.listen(delivery.public, "before_cursor_execute", statement)
    try:
        yield calls
    finally:
        event.remove(delivery.public, "before_cursor_execute", statement)
        monkeypatch.setattr(registrations, "_hasher", hasher)


def test_starting_does_the_same_work_whatever_the_address_has(
    delivery: Delivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    addresses = _prepare(delivery)
    work: dict[str, list[str]] = {}
    for state in STATES:
        vault = ContactVault(delivery.settings.secret_key)
        with _recorded(delivery, monkeypatch) as calls, delivery.public.begin() as connection:
            counted = _Counting(vault, calls, "encrypt", "decrypt", "blind_index")
            registrations.start(
                connection,
                counted,  # type: ignore[arg-type]
                _request(delivery, addresses[state]),
                _now(),
            )
        work[state] = calls
    assert work["new"] and any(call == "hash" for call in work["new"])
    for state in STATES[1:]:
        assert work[state] == work["new"], state


def test_the_answers_and_the_pending_tokens_are_alike(delivery: Delivery) -> None:
    addresses = _prepare(delivery)
    delivery.dispatch()  # the codes of the registrations made so far
    delivery.sink.received.clear()
    app = create_public_app(delivery.settings)
    answers: dict[str, list[Any]] = {}
    with background_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        for state in STATES:
            started = client.post(
                "/api/v1/registrations",
                json={
                    "person": delivery.ref(PUBLIC.a_number),
                    "channel": "email",
                    "address": addresses[state],
                    "language": "en",
                },
            )
            token = started.json()["registration"]
            wrong = [
                client.post(
                    "/api/v1/registrations/confirm",
                    json={"registration": token, "code": "abcdef"},
                )
                for _ in range(6)
            ]
            answers[state] = [
                started.status_code,
                sorted(started.json()),
                started.json()["status"],
                len(token),
                [(w.status_code, w.json()) for w in wrong],
            ]
    app.state.safevine.public_engine.dispose()
    assert "Too many wrong codes" in str(answers["new"][-1][-1])
    for state in STATES[1:]:
        assert answers[state] == answers["new"], state
    # And each address got its code: the owner of an active one learns someone asked.
    delivery.dispatch()
    assert sorted(r.recipients[0] for r in delivery.sink.received) == sorted(addresses.values())
