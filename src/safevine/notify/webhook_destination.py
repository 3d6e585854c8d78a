"""Where a webhook may go: its host name resolved once, every address it resolves to
checked, and the request sent to the address that was checked.

Checking the URL's text and then letting the HTTP client resolve the name again misses
names that lead to private addresses and leaves a window for DNS rebinding (a public
answer at the check, 127.0.0.1 at the connection). So the name is resolved here, refused
if ANY of its addresses is not public (`safevine.domain.network_address`), and the
request is addressed to one checked address literally: the name goes in the Host header
and, for https, as TLS SNI and the name the certificate is verified against (httpcore's
`sni_hostname` extension becomes `server_hostname` in `start_tls`). That is the smallest
change that keeps httpx's own TLS verification; a custom network backend would have to
carry the checked address from here to the connection out of band.

Used at registration (`check_blocking`, from the registration flow's worker thread) and
before every send (`check`, in the dispatcher's event loop).
"""

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from safevine.domain.contact_address import Channel, normalise_address
from safevine.domain.errors import FieldError
from safevine.domain.network_address import (
    IPAddress,
    non_canonical_numeric_host,
    non_public_kind,
)

if TYPE_CHECKING:
    import httpx

# A resolver takes a host name (IDNA-encoded) and a port and answers address strings; it
# blocks, so it always runs in `_LOOKUPS`.
Resolver = Callable[[str, int], Sequence[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer (getaddrinfo), every address family."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in answers]


# The lookup used by `check` and `check_blocking`, read at each call: tests replace it
# (monkeypatch) to make a name lead where they need without public DNS.
resolver: Resolver = system_resolver
RESOLVE_SECONDS = 5.0
# Lookups get their own few threads: a DNS server that hangs then holds only these, not
# the threads the dispatcher and the web app use for the database. A lookup that times
# out cannot be cancelled (getaddrinfo has no timeout); its thread is freed when it ends.
_LOOKUPS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook-dns")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Destination:
    """A checked destination: `url` has the checked address as its host."""

    url: "httpx.URL"
    host_header: str
    address: IPAddress
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Refused:
    """Never to be sent to (a permanent failure); `reason` names the rule."""

    reason: str


@dataclass(frozen=True)
class Unresolved:
    """The name did not resolve now (a transient failure at send)."""

    reason: str


Checked = Destination | Refused | Unresolved


@dataclass(frozen=True)
class _Target:
    url: "httpx.URL"
    host: str  # IDNA-encoded, as resolved and as sent in SNI
    port: int
    literal: IPAddress | None


async def check(url: str, *, allow_private: bool, timeout: float = RESOLVE_SECONDS) -> Checked:
    """Check `url` from the event loop; the lookup runs in a thread, within `timeout`."""
    target = _target(url, allow_private)
    if isinstance(target, Refused):
        return target
    if target.literal is not None:
        return _choose(target, [target.literal], allow_private)
    lookup = asyncio.get_running_loop().run_in_executor(
        _LOOKUPS, resolver, target.host, target.port
    )
    try:
        answers = await asyncio.wait_for(lookup, timeout)
    except TimeoutError:
        return Unresolved("webhook host name did not resolve in time")
    except (OSError, UnicodeError) as error:
        return Unresolved(f"webhook host name did not resolve ({_why(error)})")
    return _choose(target, _addresses(answers), allow_private)


def check_blocking(url: str, *, allow_private: bool, timeout: float = RESOLVE_SECONDS) -> Checked:
    """Check `url` from a worker thread (never from the event loop): it waits for the
    lookup, at most `timeout` seconds."""
    target = _target(url, allow_private)
    if isinstance(target, Refused):
        return target
    if target.literal is not None:
        return _choose(target, [target.literal], allow_private)
    lookup = _LOOKUPS.submit(resolver, target.host, target.port)
    try:
        answers = lookup.result(timeout)
    except TimeoutError:
        return Unresolved("webhook host name did not resolve in time")
    except (OSError, UnicodeError) as error:
        return Unresolved(f"webhook host name did not resolve ({_why(error)})")
    return _choose(target, _addresses(answers), allow_private)


def _target(url: str, allow_private: bool) -> _Target | Refused:
    """What the URL asks for, or why it is refused before any lookup."""
    # Loaded here, not with the module: the public web process checks a webhook address
    # at registration and sends nothing, so it loads httpx only if someone registers one.
    import httpx

    try:
        normalise_address(Channel.WEBHOOK, url)
        parsed = httpx.URL(url)
    except FieldError as error:
        return Refused(f"webhook address {error.reason}")
    except httpx.InvalidURL:
        return Refused("webhook address is not a valid URL")
    # Decided on httpx's reading of the URL, since it is httpx that sends.
    if parsed.scheme != "https" and not (allow_private and parsed.scheme == "http"):
        return Refused("webhook address must use https")
    if parsed.userinfo:
        return Refused("webhook address must not contain a user name or password")
    host = parsed.raw_host.decode("ascii")
    if not host or non_canonical_numeric_host(host):
        return Refused("webhook host is an IP address not spelt as a.b.c.d")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    return _Target(parsed, host, port, literal)


def _addresses(answers: Sequence[str]) -> list[IPAddress]:
    return [ipaddress.ip_address(answer) for answer in answers]


def _choose(target: _Target, addresses: list[IPAddress], allow_private: bool) -> Checked:
    if not addresses:
        return Unresolved("webhook host name has no addresses")
    if not allow_private:
        for address in addresses:
            kind = non_public_kind(address)
            if kind is not None:
                verb = "is" if target.literal is not None else "resolves to"
                return Refused(f"webhook host {verb} a private address ({kind})")
    # The first answer, in the order getaddrinfo sorts them (RFC 6724: usable first).
    address = addresses[0]
    if target.literal is not None:
        return Destination(target.url, target.url.netloc.decode("ascii"), address)
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    return Destination(
        target.url.copy_with(host=str(address)),
        target.url.netloc.decode("ascii"),
        address,
        extensions,
    )


def _why(error: BaseException) -> str:
    """The resolver's words without the name: gaierror's strerror, or the error's type."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__
