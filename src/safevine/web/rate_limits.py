"""Rate limits with the `limits` library: searches per client and per identifier, and
confirmation codes per client and per address, so nobody can flood a phone with codes.

Counters live in memory for one process, or in Redis (SAFEVINE_REDIS_URL) when several
web processes must share them. Keys are keyed hashes, so neither client addresses nor
searched identifiers nor contact addresses are ever stored in the clear.
"""

import hashlib
import hmac
import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from safevine.config import Settings


class RateLimiter:
    def __init__(
        self, secret: bytes, rules: dict[str, str], storage_url: str | None = None
    ) -> None:
        self._secret = secret
        storage = storage_url or "memory://"
        # Counting in memory is a few dictionary operations; in Redis each check is a
        # round trip, so a search that checks must leave the serving thread.
        self.blocks = not storage.startswith("memory://")
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage))
        self._rules: dict[str, list[RateLimitItem]] = {k: parse_many(v) for k, v in rules.items()}

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
        )

    def check(self, rule: str, value: str) -> int | None:
        """Count one use of `value` under `rule`: None if allowed, else seconds to wait."""
        key = hmac.new(self._secret, f"{rule}:{value}".encode(), hashlib.sha256).hexdigest()[:32]
        for item in self._rules[rule]:
            if not self._limiter.hit(item, rule, key):
                reset = self._limiter.get_window_stats(item, rule, key).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None
