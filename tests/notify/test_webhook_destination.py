"""Webhook destinations: the host resolved once, every address checked, and the address to
connect to is the one that was checked. `localhost` is resolved for real; other names go
through the module's resolver hook, since no public DNS is reachable from the tests."""

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Sequence

import pytest

from safevine.notify import webhook_destination
from safevine.notify.webhook_destination import Checked, Destination, Refused, Unresolved
from tests import loops
from tests.notify.resolvers import PUBLIC_V4, PUBLIC_V6, resolve_with


def both(url: str, allow_private: bool = False, timeout: float = 5.0) -> list[Checked]:
    """The answer from the event loop and from a worker thread: they must agree."""
    from_loop = loops.run(
        webhook_destination.check(url, allow_private=allow_private, timeout=timeout)
    )
    from_thread = webhook_destination.check_blocking(
        url, allow_private=allow_private, timeout=timeout
    )
    return [from_loop, from_thread]


def test_localhost_is_refused_by_what_it_resolves_to() -> None:
    # Real resolution (the system's hosts file): nothing in the name itself is refused.
    for checked in both("https://localhost/hook"):
        assert checked == Refused("webhook host resolves to a private address (loopback)")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/hook", "webhook host is a private address (loopback)"),
        ("https://[::1]/hook", "webhook host is a private address (loopback)"),
        (
            "https://[::ffff:127.0.0.1]/hook",
            "webhook host is a private address (loopback (inside an IPv6 address))",
        ),
        (
            "https://[::ffff:7f00:1]/hook",
            "webhook host is a private address (loopback (inside an IPv6 address))",
        ),
        ("https://169.254.169.254/latest", "webhook host is a private address (link-local)"),
        ("https://100.64.0.1/hook", "webhook host is a private address (shared address space)"),
        ("https://[fd00::1]/hook", "webhook host is a private address (private)"),
        (
            "https://2130706433/hook",
            "webhook address must not spell an IP address other than as a.b.c.d",
        ),
        (
            "https://0x7f.1/hook",
            "webhook address must not spell an IP address other than as a.b.c.d",
        ),
        (
            "https://127.1/hook",
            "webhook address must not spell an IP address other than as a.b.c.d",
        ),
        (
            "https://0177.0.0.1/hook",
            "webhook address must not spell an IP address other than as a.b.c.d",
        ),
        (
            "https://user@hooks.example.test/",
            "webhook address must not contain a user name or password",
        ),
        ("ftp://hooks.example.test/", "webhook address is not an http(s) URL"),
        ("http://hooks.example.test/hook", "webhook address must use https"),
    ],
)
def test_refused_without_a_lookup(monkeypatch: pytest.MonkeyPatch, url: str, reason: str) -> None:
    resolver = resolve_with(monkeypatch, [PUBLIC_V4])
    assert both(url) == [Refused(reason)] * 2
    assert resolver.calls == []


@pytest.mark.parametrize(
    "url", ["http://2130706433/hook", "http://0x7f.1/hook", "http://127.1/hook"]
)
def test_odd_numeric_spellings_are_refused_even_where_private_addresses_are_allowed(
    url: str,
) -> None:
    assert all(isinstance(checked, Refused) for checked in both(url, allow_private=True))


@pytest.mark.parametrize(
    ("answers", "kind"),
    [
        (["127.0.0.1"], "loopback"),
        (["10.0.0.7"], "private"),
        ([PUBLIC_V4, "10.0.0.7"], "private"),
        ([PUBLIC_V6, "fe80::1"], "link-local"),
        (["::ffff:192.168.1.1"], "private (inside an IPv6 address)"),
        (["64:ff9b::a9fe:a9fe"], "link-local (inside an IPv6 address)"),
        (["2002:a00:1::1"], "private (inside an IPv6 address)"),
        (["224.0.0.251"], "multicast"),
        (["0.0.0.0"], "unspecified"),
    ],
)
def test_a_name_is_refused_if_any_address_it_resolves_to_is_not_public(
    monkeypatch: pytest.MonkeyPatch, answers: list[str], kind: str
) -> None:
    resolve_with(monkeypatch, answers)
    assert (
        both("https://hooks.example.test/hook")
        == [Refused(f"webhook host resolves to a private address ({kind})")] * 2
    )


def test_a_public_name_is_pinned_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolver = resolve_with(monkeypatch, [PUBLIC_V4, PUBLIC_V6])
    for checked in both("https://Hooks.Example.test:8443/case/7?x=1"):
        assert isinstance(checked, Destination)
        assert str(checked.url) == f"https://{PUBLIC_V4}:8443/case/7?x=1"
        assert checked.host_header == "hooks.example.test:8443"
        assert checked.extensions == {"sni_hostname": "hooks.example.test"}
        assert checked.address == ipaddress.ip_address(PUBLIC_V4)
    assert resolver.calls == [("hooks.example.test", 8443)] * 2


def test_an_ipv6_answer_is_bracketed_and_the_default_port_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolve_with(monkeypatch, [PUBLIC_V6])
    [checked, _] = both("https://hooks.example.test/hook")
    assert isinstance(checked, Destination)
    assert (str(checked.url), checked.host_header) == (
        f"https://[{PUBLIC_V6}]/hook",
        "hooks.example.test",
    )


def test_an_international_name_is_resolved_and_named_as_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolver = resolve_with(monkeypatch, [PUBLIC_V4])
    [checked, _] = both("https://bücher.example.test/hook")
    assert isinstance(checked, Destination)
    assert checked.extensions == {"sni_hostname": "xn--bcher-kva.example.test"}
    assert resolver.calls[0] == ("xn--bcher-kva.example.test", 443)


def test_http_and_loopback_are_allowed_where_private_addresses_are() -> None:
    for checked in both("http://localhost:8080/hook", allow_private=True):
        assert isinstance(checked, Destination)
        assert checked.address.is_loopback
        assert checked.host_header == "localhost:8080"
        assert checked.extensions == {}


def test_a_name_that_does_not_resolve_is_not_a_destination() -> None:
    # .invalid never resolves (RFC 6761); the system's resolver says so.
    for checked in both("https://nothing.invalid/hook"):
        assert isinstance(checked, Unresolved)
        assert "nothing.invalid" not in checked.reason


def test_a_resolver_error_is_unresolved_and_names_no_host(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve_with(monkeypatch, socket.gaierror(socket.EAI_AGAIN, "Temporary failure"))
    assert (
        both("https://hooks.example.test/hook")
        == [Unresolved("webhook host name did not resolve (Temporary failure)")] * 2
    )


def test_a_lookup_that_hangs_is_given_up_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    released = threading.Event()

    def hang(host: str, port: int) -> Sequence[str]:
        released.wait(10)
        return [PUBLIC_V4]

    monkeypatch.setattr(webhook_destination, "resolver", hang)
    try:
        assert (
            both("https://hooks.example.test/hook", timeout=0.2)
            == [Unresolved("webhook host name did not resolve in time")] * 2
        )
    finally:
        released.set()


def test_the_event_loop_keeps_running_while_a_name_resolves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def slow(host: str, port: int) -> Sequence[str]:
        threading.Event().wait(0.3)
        return [PUBLIC_V4]

    monkeypatch.setattr(webhook_destination, "resolver", slow)

    async def race() -> tuple[Checked, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(tick())
        checked = await webhook_destination.check(
            "https://hooks.example.test/", allow_private=False
        )
        ticking.cancel()
        return checked, ticks

    checked, ticks = loops.run(race())
    assert isinstance(checked, Destination) and ticks >= 10
