"""Which addresses a webhook may reach, and which numeric host spellings are refused."""

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safevine.domain.network_address import non_canonical_numeric_host, non_public_kind


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "127.1",
        "127.0.1",
        "0177.0.0.1",
        "127.0.0.01",
        "127.0.0.1.",
        "0x7F.0.0.1",
        "1.2.3.4.5",
        "256.0.0.1",
        "hooks.example.123",
        "0x",
    ],
)
def test_ipv4_spelt_otherwise_than_a_b_c_d_is_refused(host: str) -> None:
    assert non_canonical_numeric_host(host)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "8.8.8.8", "0.0.0.0", "hooks.example.org", "example.org.", "1e100.net", "::1"],
)
def test_names_and_canonical_addresses_are_not(host: str) -> None:
    assert not non_canonical_numeric_host(host)


def test_an_ipv6_literal_ending_in_an_ipv4_address_is_not_an_ipv4_spelling() -> None:
    assert not non_canonical_numeric_host("::ffff:127.0.0.1")


def _spelling(parts: list[int], bases: list[str]) -> str:
    formats = {"dec": "{}", "hex": "0x{:x}", "oct": "0{:o}"}
    return ".".join(formats[base].format(part) for part, base in zip(parts, bases, strict=True))


@st.composite
def ipv4_spellings(draw: st.DrawFn) -> str:
    """The forms C's inet_aton reads: a, a.b (b 24 bits), a.b.c (c 16 bits), a.b.c.d, each
    part in decimal, hex or octal."""
    value = draw(st.integers(0, 2**32 - 1))
    count = draw(st.integers(1, 4))
    octets = list(value.to_bytes(4, "big"))
    parts = [*octets[: count - 1], int.from_bytes(bytes(octets[count - 1 :]), "big")]
    bases = draw(st.lists(st.sampled_from(["dec", "hex", "oct"]), min_size=count, max_size=count))
    return _spelling(parts, bases)


@given(ipv4_spellings())
def test_every_spelling_the_c_resolver_reads_as_an_address_is_caught(host: str) -> None:
    # inet_aton is the parser getaddrinfo uses for numeric hosts: whatever it accepts
    # reaches an address, so only the canonical spelling may pass.
    canonical = str(ipaddress.IPv4Address(socket.inet_aton(host)))
    assert non_canonical_numeric_host(host) == (host != canonical)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared address space"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("198.18.0.1", "benchmarking"),
        ("192.0.2.1", "documentation"),
        ("192.0.0.9", "protocol assignment"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("2001:2::1", "benchmarking"),
        ("100::1", "discard-only"),
        ("64:ff9b:1::1", "local-use NAT64"),
        ("4000::1", "reserved"),
        ("::ffff:127.0.0.1", "loopback (inside an IPv6 address)"),
        ("::ffff:10.0.0.1", "private (inside an IPv6 address)"),
        ("::127.0.0.1", "loopback (inside an IPv6 address)"),
        ("2002:7f00:1::1", "loopback (inside an IPv6 address)"),
        ("2002:a9fe:a9fe::1", "link-local (inside an IPv6 address)"),
        ("64:ff9b::7f00:1", "loopback (inside an IPv6 address)"),
        ("64:ff9b::192.168.0.1", "private (inside an IPv6 address)"),
        # Teredo, carrying 127.0.0.1 as its server and 10.0.0.1 (obfuscated) as its client.
        ("2001:0:7f00:1::f5ff:fffe", "Teredo"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ],
)
def test_non_public_addresses_are_named(address: str, kind: str) -> None:
    assert non_public_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "2002:808:808::1",
        "64:ff9b::808:808",
    ],
)
def test_public_unicast_addresses_pass(address: str) -> None:
    assert non_public_kind(ipaddress.ip_address(address)) is None


@given(st.ip_addresses(v=4))
def test_ipv4_is_public_only_where_python_agrees(address: ipaddress.IPv4Address) -> None:
    # Never laxer than the standard library: whatever it calls non-global stays refused.
    if not address.is_global or address.is_multicast:
        assert non_public_kind(address) is not None


CARRYING_IPV4 = [ipaddress.IPv6Network(n) for n in ("::/96", "::ffff:0:0/96", "64:ff9b::/96")]


@given(st.ip_addresses(v=6))
def test_ipv6_passes_only_as_global_unicast_or_carrying_ipv4(
    address: ipaddress.IPv6Address,
) -> None:
    if non_public_kind(address) is None:
        in_global_unicast = address in ipaddress.IPv6Network("2000::/3") and (
            address.is_global or address.sixtofour is not None
        )
        assert in_global_unicast or any(address in network for network in CARRYING_IPV4)
