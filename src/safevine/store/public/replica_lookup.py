"""Public searches on PostgreSQL streaming replicas, with no window for a protection.

A replica replays the primary's changes a little later, so a protection committed on the
primary may not have reached it yet. A replica's answer is therefore only a list of
candidates: each is read again on the primary by its reference (`public_persons`, by its
unique key) and answered as the primary shows it now, or not at all. A replica that lags
can hide a person for a moment (a clear not yet replayed), never show one the primary no
longer would: a search whose confirmation starts after a protection's commit cannot show
that person. A miss needs no confirmation (a protection only removes people), so the
expensive part of every search, the constant-work index lookups, runs on the replicas,
and the primary answers only a lookup by key for each person found.

Replicas take searches in turn. One that fails is skipped for `REST_SECONDS`, and its
searches are answered by the primary meanwhile. Every lookup, on a replica or on the
primary, is awaited on the serving loop (`awaited_lookup`).
"""

import itertools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import date

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError

from safevine.store.public.awaited_lookup import AwaitedLookups
from safevine.store.public.lookup import PublicPerson

log = logging.getLogger("safevine.web")
REST_SECONDS = 10.0


class ReplicaLookups:
    """`AwaitedLookups`' searches, on the replicas and confirmed on the primary."""

    blocks = True

    def __init__(self, primary: Engine, replicas: Sequence[Engine]) -> None:
        self._primary = AwaitedLookups(primary)
        self._replicas = [AwaitedLookups(replica) for replica in replicas]
        self._engines = list(replicas)
        self._turn = itertools.count()
        self._resting: dict[int, float] = {}
        self._lock = threading.Lock()
        # The app disposes of its public engine when it stops; the replicas go with it.
        event.listen(primary, "engine_disposed", self._dispose)

    async def by_a_number(self, a_number: str, country: str) -> list[PublicPerson]:
        return await self._search(lambda lookups: lookups.by_a_number(a_number, country))

    async def by_name(
        self, given_key: str, family_key: str, country: str, date_of_birth: date | None = None
    ) -> list[PublicPerson]:
        return await self._search(
            lambda lookups: lookups.by_name(given_key, family_key, country, date_of_birth)
        )

    async def _search(
        self, lookup: Callable[[AwaitedLookups], Awaitable[list[PublicPerson]]]
    ) -> list[PublicPerson]:
        chosen = self._choose()
        if chosen is None:
            return await lookup(self._primary)
        try:
            candidates = await lookup(self._replicas[chosen])
        except DBAPIError as error:
            self._rest(chosen, error)
            return await lookup(self._primary)
        return await self._confirmed(candidates)

    async def _confirmed(self, candidates: list[PublicPerson]) -> list[PublicPerson]:
        """The candidates the primary shows now, as it shows them, in the replica's order."""
        if not candidates:
            return []
        refs = [c.public_ref for c in candidates]
        current = {p.public_ref: p for p in await self._primary.by_reference(refs)}
        return [current[c.public_ref] for c in candidates if c.public_ref in current]

    def _choose(self) -> int | None:
        now = time.monotonic()
        with self._lock:
            for _ in range(len(self._replicas)):
                index = next(self._turn) % len(self._replicas)
                if self._resting.get(index, 0.0) <= now:
                    return index
        return None

    def _rest(self, index: int, error: DBAPIError) -> None:
        with self._lock:
            self._resting[index] = time.monotonic() + REST_SECONDS
        log.warning(
            "search replica %d failed (%s); the primary answers for %.0f s",
            index + 1,
            type(error.orig).__name__,
            REST_SECONDS,
        )

    def _dispose(self, _engine: Engine) -> None:
        for engine in self._engines:
            engine.dispose()
