"""Variable envelope return paths: each email goes out with a return path of its own,
`bounces+<key>@domain` for a bounce address `bounces@domain`, so a bounce names the
notification it is about by the address it is sent to, whatever the bounce says or
leaves out. The key is the notification's idempotency key for the attempt: opaque and
random, it names nobody."""

import re

_KEY = re.compile(r"[0-9a-f]{8,48}(?:\.[0-9]{1,4})?")


def return_path(bounce_address: str, key: str) -> str:
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{key}@{domain}"


def key_of(recipient: str, bounce_address: str) -> str | None:
    """The key a bounce's recipient carries, or None if it is not one of ours."""
    local, _, domain = bounce_address.lower().rpartition("@")
    got_local, _, got_domain = recipient.strip().strip("<>").lower().rpartition("@")
    prefix, plus, key = got_local.partition("+")
    if got_domain != domain or prefix != local or not plus or not _KEY.fullmatch(key):
        return None
    return key
