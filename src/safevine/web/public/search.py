"""Running a public search: the same steps, queries and hashing whether or not anyone matches."""

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from safevine.store.public.feed_delays import FacilityDelay
from safevine.store.public.lookup import Lookups, PublicPerson
from safevine.web.public.feed_delays import DelayBoard, describe_delay
from safevine.web.public.results import present
from safevine.web.public.search_query import Problem, SearchQuery, parse_query
from safevine.web.rate_limits import IdentifierCheck, RateLimiter

# Lookups that block (PostgreSQL) run on at most this many threads, each holding its own
# connection: more threads than connections would open and close connections per search.
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


def run_search(
    lookups: Lookups,
    limiter: RateLimiter | None,
    client: str,
    raw: Mapping[str, object],
    board: DelayBoard | None = None,
) -> SearchOutcome:
    """Rate-limit the client, validate, rate-limit this client's searches for these
    identifiers and check for a crowd, then look up (and, for anyone found, whether their
    facility's information is delayed)."""
    if limiter is not None and (wait := limiter.check("search_client", client)) is not None:
        return SearchOutcome(retry_after=wait)
    parsed = parse_query(raw)
    if isinstance(parsed, list):
        return SearchOutcome(problems=parsed)
    check = limiter.check_identifier(client, parsed.canonical) if limiter else IdentifierCheck()
    if check.wait is not None:
        return SearchOutcome(retry_after=check.wait)
    people = find(lookups, parsed)
    return SearchOutcome(
        people=people,
        delays=board.for_people(people) if board else {},
        crowd=check.crowd,
        alert_key=check.key if check.alert else None,
    )


@dataclass(frozen=True)
class CrowdAnswer:
    """How a crowded search is answered: after `delay` seconds, the first one in a period
    also telling the staff (`alert(identifiers_key, public_refs)`)."""

    delay: float
    alert: Callable[[str, list[str]], object]


class Searcher:
    """Runs searches for the app: on the serving thread when nothing in them blocks (a
    SQLite lookup, no limiter or one counting in memory), which saves handing each one to
    a thread and back; otherwise on the lookup threads."""

    def __init__(
        self,
        lookups: Lookups,
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
        loop = asyncio.get_running_loop()
        if self.inline:
            outcome = run_search(self.lookups, self.limiter, client, raw, self.board)
        else:
            outcome = await loop.run_in_executor(
                _lookup_threads(), run_search, self.lookups, self.limiter, client, raw, self.board
            )
        if outcome.crowd and self.crowd is not None:
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
