"""Running a public search: the same steps, queries and hashing whether or not anyone matches."""

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from safevine.store.public.awaited_lookup import AwaitedLookups
from safevine.store.public.feed_delays import FacilityDelay
from safevine.store.public.lookup import Lookups, PublicPerson
from safevine.store.public.lookup_process import ProcessLookups
from safevine.store.public.replica_lookup import ReplicaLookups
from safevine.web.public.feed_delays import DelayBoard, describe_delay
from safevine.web.public.results import present
from safevine.web.public.search_query import Problem, SearchQuery, parse_query
from safevine.web.rate_limits import IdentifierCheck, RateLimiter

# What blocks in a search (a limiter counting in Redis, with SQLite's lookups after it; the
# delay board's reading when due) runs on at most this many threads, each holding its own
# connection: more threads than connections would open and close connections per search.
# PostgreSQL's lookups are awaited instead (`store.public.awaited_lookup`).
LOOKUP_THREADS = 4


def find(lookups: Lookups, query: SearchQuery) -> list[PublicPerson]:
    """Exact matches in the public projection; a non-public person is simply not there."""
    if query.a_number:
        return lookups.by_a_number(query.a_number, query.country)
    assert query.given_key and query.family_key
    return lookups.by_name(query.given_key, query.family_key, query.country, query.date_of_birth)


@dataclass
class SearchOutcome:
    people: list[PublicPerson] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    retry_after: int | None = None
    # The delay at the facility of each person found, by reference.
    delays: dict[str, FacilityDelay] = field(default_factory=dict)
    # The identifiers are searched by a crowd (`web.rate_limits`): the answer waits, and
    # `alert_key` (their keyed hash) is set when this search is the one to tell the staff.
    crowd: bool = False
    alert_key: str | None = None

    def presented(self, language: str, gettext: Callable[[str], str]) -> list[dict[str, Any]]:
        """The people found, as the page shows them and the API returns them."""
        return [
            present(
                person,
                language,
                gettext,
                describe_delay(self.delays[person.public_ref], language, gettext)
                if person.public_ref in self.delays
                else None,
            )
            for person in self.people
        ]


def admit(
    limiter: RateLimiter | None, client: str, raw: Mapping[str, object]
) -> SearchOutcome | tuple[SearchQuery, IdentifierCheck]:
    """Rate-limit the client, validate, then rate-limit this client's searches for these
    identifiers and check for a crowd: the query to look up and what the check found, or
    the answer when there is nothing to look up."""
    if limiter is not None and (wait := limiter.check("search_client", client)) is not None:
        return SearchOutcome(retry_after=wait)
    parsed = parse_query(raw)
    if isinstance(parsed, list):
        return SearchOutcome(problems=parsed)
    check = limiter.check_identifier(client, parsed.canonical) if limiter else IdentifierCheck()
    if check.wait is not None:
        return SearchOutcome(retry_after=check.wait)
    return parsed, check


def _found(
    people: list[PublicPerson], check: IdentifierCheck, board: DelayBoard | None
) -> SearchOutcome:
    """The outcome for the people found (and whether their facility's information is
    delayed)."""
    return SearchOutcome(
        people=people,
        delays=board.for_people(people) if board else {},
        crowd=check.crowd,
        alert_key=check.key if check.alert else None,
    )


def run_search(
    lookups: Lookups,
    limiter: RateLimiter | None,
    client: str,
    raw: Mapping[str, object],
    board: DelayBoard | None = None,
) -> SearchOutcome:
    """`admit`, then look up."""
    admitted = admit(limiter, client, raw)
    if isinstance(admitted, SearchOutcome):
        return admitted
    parsed, check = admitted
    return _found(find(lookups, parsed), check, board)


async def run_awaited_search(
    lookups: AwaitedLookups | ReplicaLookups | ProcessLookups,
    limiter: RateLimiter | None,
    client: str,
    raw: Mapping[str, object],
    board: DelayBoard,
) -> SearchOutcome:
    """`run_search` with the lookup awaited; what blocks (a limiter counting elsewhere,
    the delay board's reading when it is due) still goes to a thread."""
    loop = asyncio.get_running_loop()
    if limiter is not None and limiter.blocks:
        admitted = await loop.run_in_executor(_lookup_threads(), admit, limiter, client, raw)
    else:
        admitted = admit(limiter, client, raw)
    if isinstance(admitted, SearchOutcome):
        return admitted
    parsed, check = admitted
    if parsed.a_number:
        people = await lookups.by_a_number(parsed.a_number, parsed.country)
    else:
        assert parsed.given_key and parsed.family_key
        people = await lookups.by_name(
            parsed.given_key, parsed.family_key, parsed.country, parsed.date_of_birth
        )
    if people and not board.fresh():
        return await loop.run_in_executor(_lookup_threads(), _found, people, check, board)
    return _found(people, check, board)


@dataclass(frozen=True)
class CrowdAnswer:
    """How a crowded search is answered: after `delay` seconds, the first one in a period
    also telling the staff (`alert(identifiers_key, public_refs)`)."""

    delay: float
    alert: Callable[[str, list[str]], object]


class Searcher:
    """Runs searches for the app: on the serving thread when nothing in them blocks (a
    SQLite lookup, no limiter or one counting in memory), which saves handing each one to
    a thread and back; awaited there when the lookup is (PostgreSQL, with or without
    replicas; SQLite's lookup process); otherwise on the lookup threads."""

    def __init__(
        self,
        lookups: Lookups | AwaitedLookups | ReplicaLookups | ProcessLookups,
        limiter: RateLimiter | None,
        board: DelayBoard,
        crowd: CrowdAnswer | None = None,
    ) -> None:
        self.lookups = lookups
        self.limiter = limiter
        self.board = board
        self.crowd = crowd
        self.inline = not lookups.blocks and (limiter is None or not limiter.blocks)

    async def search(self, client: str, raw: Mapping[str, object]) -> SearchOutcome:
        if isinstance(self.lookups, AwaitedLookups | ReplicaLookups | ProcessLookups):
            outcome = await run_awaited_search(self.lookups, self.limiter, client, raw, self.board)
        elif self.inline:
            outcome = run_search(self.lookups, self.limiter, client, raw, self.board)
        else:
            outcome = await asyncio.get_running_loop().run_in_executor(
                _lookup_threads(), run_search, self.lookups, self.limiter, client, raw, self.board
            )
        if outcome.crowd and self.crowd is not None:
            loop = asyncio.get_running_loop()
            # The wait holds no thread; the alert (a rare write) is queued meanwhile.
            waits: list[Awaitable[object]] = [asyncio.sleep(self.crowd.delay)]
            if outcome.alert_key is not None:
                refs = [person.public_ref for person in outcome.people]
                waits.append(loop.run_in_executor(None, self.crowd.alert, outcome.alert_key, refs))
            await asyncio.gather(*waits)
        return outcome


_threads: ThreadPoolExecutor | None = None
_threads_lock = threading.Lock()


def _lookup_threads() -> ThreadPoolExecutor:
    """One small pool for the process (every app in it), made on first use."""
    global _threads
    with _threads_lock:
        if _threads is None:
            _threads = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="safevine-lookup")
        return _threads
