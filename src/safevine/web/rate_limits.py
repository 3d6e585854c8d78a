"""Rate limits with the `limits` library: searches per client and per client and
identifier, a crowd check per identifier, and confirmation codes per client and per
address, so nobody can flood a phone with codes.

No count is shared by everyone who searches for a person: such a count would let one
party (a stranger on many addresses, or an abuser) lock everybody else out of that person,
a victim checking on an abuser included. Many different clients searching the same
identifiers is instead a *crowd*: the staff are told once, and every answer for those
identifiers is slowed, never refused (docs/rate-limits.md has the threat model).

Counters live in memory for one process, or in Redis (SAFEVINE_REDIS_URL) when several
web processes must share them. Keys are keyed hashes, so neither client addresses nor
searched identifiers nor contact addresses are ever stored in the clear.
"""

import hashlib
import hmac
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from safevine.config import Settings


@dataclass(frozen=True)
class IdentifierCheck:
    """What the limits say about one client's search for one set of identifiers."""

    # Seconds this client must wait: it alone searched these identifiers too often.
    wait: int | None = None
    # More different clients than the crowd threshold searched them within its period.
    crowd: bool = False
    # This search is the first to find the crowd in its period: tell the staff.
    alert: bool = False
    # The identifiers' keyed hash, for the staff alert (never the identifiers).
    key: str = ""


class RateLimiter:
    def __init__(
        self,
        secret: bytes,
        rules: dict[str, str],
        storage_url: str | None = None,
        crowd: str = "20/hour",
    ) -> None:
        self._secret = secret
        storage = storage_url or "memory://"
        # Counting in memory is a few dictionary operations; in Redis each check is a
        # round trip, so a search that checks must leave the serving thread.
        self.blocks = not storage.startswith("memory://")
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage))
        self._rules: dict[str, list[RateLimitItem]] = {k: parse_many(v) for k, v in rules.items()}
        # The crowd: distinct clients per identifier, each counted on its first search in
        # the period (`_first`), and one alert per identifier per period.
        self._crowd = parse(crowd)
        self._once = type(self._crowd)(1, self._crowd.multiples)

    @classmethod
    def from_settings(cls, settings: Settings) -> "RateLimiter":
        return cls(
            settings.secret_key,
            {
                "search_client": settings.rate_limit_client,
                "search_identifier": settings.rate_limit_identifier,
                "register_client": settings.registration_limit_client,
                "register_address": settings.registration_limit_address,
            },
            settings.redis_url,
            settings.search_crowd,
        )

    def _key(self, rule: str, value: str) -> str:
        return hmac.new(self._secret, f"{rule}:{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def check(self, rule: str, value: str) -> int | None:
        """Count one use of `value` under `rule`: None if allowed, else seconds to wait."""
        key = self._key(rule, value)
        for item in self._rules[rule]:
            if not self._limiter.hit(item, rule, key):
                reset = self._limiter.get_window_stats(item, rule, key).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None

    def check_identifier(self, client: str, identifier: str) -> IdentifierCheck:
        """Count one search by `client` for `identifier` (a `SearchQuery.canonical`)."""
        # A client and a NUL cannot be confused with the identifier's own characters.
        pair = f"{client}\0{identifier}"
        wait = self.check("search_identifier", pair)
        if wait is not None:
            return IdentifierCheck(wait=wait)
        key = self._key("search_crowd", identifier)
        if self._limiter.hit(self._once, "search_first", self._key("search_first", pair)):
            crowd = not self._limiter.hit(self._crowd, "search_crowd", key)
        else:
            crowd = not self._limiter.test(self._crowd, "search_crowd", key)
        alert = crowd and self._limiter.hit(self._once, "search_alert", key)
        return IdentifierCheck(crowd=crowd, alert=alert, key=key)
