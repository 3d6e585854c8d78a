"""Which network addresses a webhook may reach, and which host spellings are refused.

Pure rules over `ipaddress` values and host text: the lookup and the connection live in
`safevine.notify.webhook_destination`. The tables are written out rather than left to
`ipaddress.is_global` alone because what that covers has changed between Python releases
(3.11.10 and 3.12.4 added ranges) and it judges IPv6 forms that carry an IPv4 address by
the form, not by the address they lead to.
"""

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# IANA's IPv4 special-purpose registry, and multicast. 192.0.0.9 and .10 are marked
# globally reachable there, but no webhook lives on them, so the whole /24 stays refused.
_IPV4_RANGES: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "shared address space"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "protocol assignment"),
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("192.88.99.0/24"), "reserved"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),
)

# Looked at before the forms that carry an IPv4 address, since both sit inside ::/96.
_IPV6_EXACT: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
)

# IANA's IPv6 special-purpose registry and address-space table. Teredo (2001::/32) falls
# in 2001::/23 and is refused whatever it carries; only 2000::/3 is global unicast.
_IPV6_RANGES: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("64:ff9b:1::/48"), "local-use NAT64"),
    (_V6("100::/64"), "discard-only"),
    (_V6("2001:2::/48"), "benchmarking"),
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("2001::/32"), "Teredo"),
    (_V6("2001::/23"), "protocol assignment"),
    (_V6("3fff::/20"), "documentation"),
    (_V6("5f00::/16"), "segment routing"),
    (_V6("fc00::/7"), "private"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local"),
    (_V6("ff00::/8"), "multicast"),
)
_GLOBAL_UNICAST = _V6("2000::/3")
_IPV4_COMPATIBLE = _V6("::/96")
_NAT64 = _V6("64:ff9b::/96")

# The last label of a host that browsers and C resolvers (inet_aton) read as a number.
_NUMERIC_LABEL = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)")
_CANONICAL_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")


def non_canonical_numeric_host(host: str) -> bool:
    """True for a host that is an IPv4 address spelt other than as four decimal numbers:
    `2130706433`, `0x7f.1`, `127.1`, `0177.0.0.1`, `127.0.0.1.`.

    C resolvers and browsers read all of these as addresses, so text checks miss them, and
    no real URL needs them. Following the URL standard, a host whose last label is a number
    is an IPv4 spelling, whatever comes before it. IPv6 literals (with a colon) are not
    IPv4 spellings, even when they end in one (`::ffff:127.0.0.1`).
    """
    if ":" in host:
        return False
    labels = host.split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1] or (labels[-2] if len(labels) > 1 else "")):
        return False
    canonical = len(labels) == 4 and all(
        _CANONICAL_OCTET.fullmatch(label) and int(label) <= 255 for label in labels
    )
    return not canonical


def non_public_kind(address: IPAddress) -> str | None:
    """None for a public unicast address; otherwise what it is ("loopback", "private",
    "link-local", ...). IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4,
    NAT64) are judged by the address they carry, since that is where they lead."""
    if isinstance(address, ipaddress.IPv4Address):
        return _ipv4_kind(address)
    for network, kind in _IPV6_EXACT:
        if address in network:
            return kind
    carried = _carried_ipv4(address)
    if carried is not None:
        inner = _ipv4_kind(carried)
        return None if inner is None else f"{inner} (inside an IPv6 address)"
    for network, kind in _IPV6_RANGES:
        if address in network:
            return kind
    if address not in _GLOBAL_UNICAST:
        return "reserved"
    return None if address.is_global and not address.is_multicast else "not global"


def _ipv4_kind(address: ipaddress.IPv4Address) -> str | None:
    for network, kind in _IPV4_RANGES:
        if address in network:
            return kind
    return None if address.is_global and not address.is_multicast else "not global"


def _carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _IPV4_COMPATIBLE or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None
