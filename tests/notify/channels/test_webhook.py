"""The webhook transport against real receivers on 127.0.0.1: it sends to the address that
was checked, under the original name (Host header, TLS SNI and certificate), resolves once,
follows no redirect, and refuses before connecting."""

import json
import socket
import ssl
from collections.abc import Iterator

import httpx
import pytest

from safevine.config import Settings
from safevine.notify.channels.base import DeliveryResult, OutgoingMessage
from safevine.notify.channels.webhook import WebhookTransport
from safevine.notify.messages import Rendered
from tests import loops
from tests.notify.resolvers import PUBLIC_V4, resolve_with
from tests.notify.servers import Provider, provider_stub
from tests.notify.tls_receiver import tls_receiver

NAME = "hooks.example.test"  # .test never resolves (RFC 6761): only the hook makes it


@pytest.fixture
def receiver() -> Iterator[Provider]:
    with provider_stub() as provider:
        yield provider


def send(url: str, allow_private: bool, trusted: ssl.SSLContext | None = None) -> DeliveryResult:
    message = OutgoingMessage(
        idempotency_key="key-1",
        address=url,
        rendered=Rendered("", "", "", "", "", data={"type": "test"}),
        language="en",
        webhook_secret="secret",
    )

    async def once() -> DeliveryResult:
        async with httpx.AsyncClient() as shared:
            settings = Settings(webhook_allow_private=allow_private)
            transport = WebhookTransport(settings, shared, trusted)
            try:
                return await transport.send(message)
            finally:
                await transport.close()

    return loops.run(once())


def port_of(provider: Provider) -> int:
    return int(provider.base.rsplit(":", 1)[1])


def test_a_name_is_sent_to_the_address_it_was_checked_at(
    receiver: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The system cannot resolve NAME: only the checked answer leads to the receiver.
    answers = resolve_with(monkeypatch, ["127.0.0.1"])
    url = f"http://{NAME}:{port_of(receiver)}/hook"
    assert send(url, allow_private=True).ok
    [request] = receiver.requests
    assert request["headers"]["host"] == f"{NAME}:{port_of(receiver)}"
    assert json.loads(request["body"]) == {"type": "test"}
    assert answers.calls == [(NAME, port_of(receiver))]


def test_no_second_lookup_sends_to_where_a_rebinding_answer_points(
    receiver: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # localhost answers 127.0.0.1 (where the receiver listens) to the system's resolver,
    # and to the hook from its second call; the first, checked answer is 127.0.0.2, where
    # nothing listens. A client that looked the name up again would reach the receiver.
    answers = resolve_with(monkeypatch, ["127.0.0.2"], ["127.0.0.1"])
    assert socket.getaddrinfo("localhost", None)[0][4][0] in ("127.0.0.1", "::1")
    url = f"http://localhost:{port_of(receiver)}/hook"
    first = send(url, allow_private=True)
    assert not first.ok and not first.permanent
    assert first.error.startswith("webhook unreachable: ConnectError")
    assert receiver.requests == []
    assert len(answers.calls) == 1
    # The next send checks again, gets the new answer, and that is where it goes.
    assert send(url, allow_private=True).ok
    assert len(receiver.requests) == 1 and len(answers.calls) == 2


def test_https_verifies_the_certificate_for_the_name_not_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolve_with(monkeypatch, ["127.0.0.1"])
    with tls_receiver(NAME) as tls:
        result = send(f"https://{NAME}:{tls.port}/hook", allow_private=True, trusted=tls.trusted)
        assert result.ok, result.error
        assert tls.server_names == [NAME]
        [request] = tls.requests
        assert request["headers"]["Host"] == f"{NAME}:{tls.port}"


def test_a_certificate_for_another_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve_with(monkeypatch, ["127.0.0.1"])
    with tls_receiver("other.example.test") as tls:
        result = send(f"https://{NAME}:{tls.port}/hook", allow_private=True, trusted=tls.trusted)
        assert not result.ok and "CERTIFICATE_VERIFY_FAILED" in result.error
        assert tls.connections == 1 and tls.server_names == [NAME] and tls.requests == []


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"])
def test_loopback_is_refused_before_any_connection(host: str) -> None:
    with tls_receiver("localhost") as tls:
        result = send(f"https://{host}:{tls.port}/hook", allow_private=False, trusted=tls.trusted)
        assert result.permanent and "a private address (loopback" in result.error
        assert tls.connections == 0
        # The same address is reached once private addresses are allowed (the tripwire
        # works): over IPv4 the handshake completes or fails, but a connection is made.
        if host != "[::1]":
            send(f"https://{host}:{tls.port}/hook", allow_private=True, trusted=tls.trusted)
            assert tls.connections == 1


def test_http_is_refused_where_private_addresses_are_not_allowed(
    receiver: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = resolve_with(monkeypatch, [PUBLIC_V4])
    result = send(f"http://{NAME}:{port_of(receiver)}/hook", allow_private=False)
    assert (result.permanent, result.error) == (True, "webhook address must use https")
    assert answers.calls == [] and receiver.requests == []


@pytest.mark.parametrize("spelling", ["2130706433", "0x7f.1", "127.1", "0177.0.0.1", "0x7f000001"])
def test_odd_numeric_spellings_are_refused_even_where_loopback_is_allowed(
    receiver: Provider, spelling: str
) -> None:
    # Left to the C resolver, each of these reaches the receiver on 127.0.0.1.
    result = send(f"http://{spelling}:{port_of(receiver)}/hook", allow_private=True)
    assert result.permanent and "IP address other than as a.b.c.d" in result.error
    assert receiver.requests == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_permanent_failure_and_is_not_followed(
    receiver: Provider, status: int
) -> None:
    receiver.hook_answer = (status, b"", {"location": f"{receiver.base}/hook"})
    result = send(f"{receiver.base}/hook", allow_private=True)
    assert (result.permanent, result.error) == (
        True,
        f"webhook receiver answered {status}, a redirect, which is not followed",
    )
    assert len(receiver.requests) == 1


def test_a_lookup_failure_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve_with(monkeypatch, socket.gaierror(socket.EAI_AGAIN, "Temporary failure"))
    result = send(f"https://{NAME}/hook", allow_private=False)
    assert (result.ok, result.permanent) == (False, False)
    assert result.error == "webhook host name did not resolve (Temporary failure)"
