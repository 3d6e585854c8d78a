"""Who is asking, for the per-client rate limits: the peer of the connection, or, only when
that peer is a configured trusted proxy (SAFEVINE_TRUSTED_PROXIES), the address that proxy
says it received the request from.

Forwarding headers are trusted from nobody by default: a header any client can write must
not choose the key its requests are counted under, and a proxy on the same host would
otherwise make every client one (or let each request claim to be a new one).
"""

import ipaddress
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# An entry of X-Forwarded-For longer than this is not an address; it is kept cut short.
_LONGEST = 64


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


class ClientAddresses:
    """Resolves the client of an ASGI scope, trusting forwarding headers only from
    `trusted` networks."""

    def __init__(self, trusted: Iterable[str] = ()) -> None:
        """`trusted`: addresses or CIDR networks (as `Settings.trusted_proxies` holds them)."""
        self.trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(network, strict=False) for network in trusted
        )

    def _is_trusted(self, address: Address | None) -> bool:
        return address is not None and any(address in network for network in self.trusted)

    def of(self, scope: Any) -> str:
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        if not self.trusted or not self._is_trusted(_address(peer)):
            return peer
        # Each proxy appends the address it received the request from; walked from the
        # right, the first entry no trusted proxy wrote is the client. What lies left of it
        # was written by the client itself.
        hops: list[str] = []
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                hops.extend(value.decode("latin-1").split(","))
        for hop in reversed(hops):
            entry = hop.strip()
            if not entry:
                continue
            if not self._is_trusted(_address(entry)):
                return entry[:_LONGEST]
        return peer
