"""Running a public search: the same steps, queries and hashing whether or not anyone matches."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from safevine.store.public import lookup
from safevine.store.public.lookup import PublicPerson
from safevine.web.public.search_query import Problem, SearchQuery, parse_query
from safevine.web.rate_limits import RateLimiter


def find(connection: Connection, query: SearchQuery) -> list[PublicPerson]:
    """Exact matches in the public projection; a non-public person is simply not there."""
    if query.a_number:
        return lookup.by_a_number(connection, query.a_number, query.country)
    assert query.given_key and query.family_key
    return lookup.by_name(
        connection, query.given_key, query.family_key, query.country, query.date_of_birth
    )


@dataclass
class SearchOutcome:
    people: list[PublicPerson] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    retry_after: int | None = None


def run_search(
    connection_factory: Any,
    limiter: RateLimiter | None,
    client: str,
    raw: Mapping[str, object],
) -> SearchOutcome:
    """Rate-limit the client, validate, rate-limit the identifiers, then look up."""
    if limiter is not None and (wait := limiter.check("search_client", client)) is not None:
        return SearchOutcome(retry_after=wait)
    parsed = parse_query(raw)
    if isinstance(parsed, list):
        return SearchOutcome(problems=parsed)
    if limiter is not None and (wait := limiter.check("search_identifier", parsed.canonical)):
        return SearchOutcome(retry_after=wait)
    with connection_factory() as connection:
        return SearchOutcome(people=find(connection, parsed))
