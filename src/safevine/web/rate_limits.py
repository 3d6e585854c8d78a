"""Rate limits on search: per client and per identifier, with the `limits` library.

Counters live in memory for one process, or in Redis (SAFEVINE_REDIS_URL) when several
web processes must share them. Keys are keyed hashes, so neither client addresses nor
searched identifiers are ever stored in the clear.
"""

import hashlib
import hmac
import math
import time

from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


class SearchLimiter:
    def __init__(
        self,
        secret: bytes,
        client_limits: str,
        identifier_limits: str,
        storage_url: str | None = None,
    ) -> None:
        self._secret = secret
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_url or "memory://"))
        self._client = parse_many(client_limits)
        self._identifier = parse_many(identifier_limits)

    def _key(self, kind: str, value: str) -> str:
        return hmac.new(self._secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def _hit(self, limits: list, key: str) -> int | None:  # type: ignore[type-arg]
        for item in limits:
            if not self._limiter.hit(item, "search", key):
                reset = self._limiter.get_window_stats(item, "search", key).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None

    def client(self, address: str) -> int | None:
        """None if this client may search now, else seconds until it may."""
        return self._hit(self._client, self._key("client", address))

    def identifier(self, canonical: str) -> int | None:
        """None if these identifiers may be searched now, else seconds until they may."""
        return self._hit(self._identifier, self._key("identifier", canonical))
