"""What the two awaited kinds of lookup share (`awaited_lookup` on PostgreSQL,
`lookup_process` on SQLite): a lookup waiting for its rows, the batch taken from those
waiting, and the two searches over an awaited `_run`."""

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from safevine.store.public.lookup import PublicPerson, name_values
from safevine.store.public.prepared_lookup import PreparedStatement

# Lookups in one batch at most. Under load the serving loop takes its searches in
# together and answers them together once their rows are back: with every waiting lookup
# in one batch, the web process idled while the database (or the lookup process) ran it,
# and the database idled while the web process answered. A few a batch, with a second
# batch sent meanwhile (another connection, or `lookup_process.IN_FLIGHT`), keeps both
# at work (BENCHMARKS.md, search, thirteenth session).
BATCH_MAX = 8

Rows = list[tuple[Any, ...]]


@dataclass(eq=False)
class Waiting:
    """A lookup waiting to be sent or answered; `answer` gets its rows or its error."""

    answer: asyncio.Future[Rows] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future(), kw_only=True
    )
    # Sent once already, and to be answered with its error if it fails again.
    again: bool = field(default=False, kw_only=True)

    def settle(self, rows: Rows | None = None, error: BaseException | None = None) -> None:
        """Answer the search, unless it went away meanwhile."""
        if self.answer.done():
            return
        if error is not None:
            self.answer.set_exception(error)
        else:
            self.answer.set_result(rows if rows is not None else [])


W = TypeVar("W", bound=Waiting)


def take_batch(pending: deque[W]) -> list[W]:
    """Up to `BATCH_MAX` of the lookups waiting, first come first; those whose search went
    away meanwhile are dropped."""
    batch: list[W] = []
    while pending and len(batch) < BATCH_MAX:
        waiting = pending.popleft()
        if not waiting.answer.done():
            batch.append(waiting)
    return batch


class AwaitedSearches:
    """`lookup.by_a_number` and `lookup.by_name` as coroutines, over `_run`."""

    _by_a_number: PreparedStatement
    _by_name: PreparedStatement

    async def _run(self, statement: PreparedStatement, values: Mapping[str, Any]) -> Rows:
        raise NotImplementedError

    async def by_a_number(self, a_number: str, country: str) -> list[PublicPerson]:
        """Public persons with this canonical A-number and country of birth (zero or one)."""
        rows = await self._run(self._by_a_number, {"a_number": a_number, "country": country})
        return [PublicPerson(*row) for row in rows]

    async def by_name(
        self,
        given_key: str,
        family_key: str,
        country: str,
        date_of_birth: date | None = None,
    ) -> list[PublicPerson]:
        """Public persons known by exactly this folded name (or alias) and country."""
        values = name_values(given_key, family_key, country, date_of_birth)
        return [PublicPerson(*row) for row in await self._run(self._by_name, values)]
