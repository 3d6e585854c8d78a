"""Scripted answers for `webhook_destination.resolver`, the hook through which webhook host
names are resolved: no public DNS is reachable from the tests, and a rebinding attack needs
a name whose answers change."""

from collections.abc import Sequence

import pytest

from safevine.notify import webhook_destination

# Public addresses as the rules judge them; never connected to (only loopback exists here).
PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:4700:4700::1111"


class Answers:
    """A resolver that answers from a script, one entry per call (the last one repeats),
    and records each call's host and port."""

    def __init__(self, *script: Sequence[str] | BaseException) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        answer = self.script[min(len(self.calls), len(self.script)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def resolve_with(
    monkeypatch: pytest.MonkeyPatch, *script: Sequence[str] | BaseException
) -> Answers:
    """Make every webhook host name resolve by `script` until the test ends."""
    answers = Answers(*script)
    monkeypatch.setattr(webhook_destination, "resolver", answers)
    return answers


def resolve_names(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> list[str]:
    """Make the given names resolve to the given addresses; every other name is resolved
    by the system, as in production. Returns the names looked up, in order."""
    looked_up: list[str] = []

    def resolve(host: str, port: int) -> Sequence[str]:
        looked_up.append(host)
        if host in names:
            return names[host]
        return webhook_destination.system_resolver(host, port)

    monkeypatch.setattr(webhook_destination, "resolver", resolve)
    return looked_up
