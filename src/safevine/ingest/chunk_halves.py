"""PostgreSQL: a feed's chunk split into two halves of disjoint people, for two connections.

On PostgreSQL a chunk's writes go out pipelined and the server applies them while this
process parses the next chunk; everything this process does before the writes (people,
statuses, who wants to hear, the rows) runs while the server waits, and the server's
reads and writes while this process waits. With the chunk in two halves on two
connections, the second half's work before its writes runs while the server applies the
first half's (`ingest.events`).

Two transactions that run side by side must never wait for each other's locks: this
process waits for the second inside the first, so the first could never commit. So the
halves share nothing either writes:
- people, by A-number: a person's events all go to one half, in feed order, so facts are
  merged, names kept and statuses derived as they would be in one transaction;
- event ids: a chunk in which one id is sent for people of both halves (a reuse, which
  the feed's order settles) is applied whole;
- protections: a chunk in which any record asks for one (stored or refused) is applied
  whole, as a protection writes the audit log, whose entries are chained under one lock.
What both read (facilities, the batch, registrations) neither writes in a chunk.
"""

from collections.abc import Sequence

from safevine.domain.custody_event import CustodyEventInput
from safevine.ingest.event_record import asserted_protection
from safevine.ingest.parsed import Parsed

Chunk = list[Parsed[CustodyEventInput]]


def halves(chunk: Sequence[Parsed[CustodyEventInput]]) -> tuple[Chunk, Chunk] | None:
    """The chunk as two halves by person, the first also holding every record that could
    not be read (in order, each half); None when it must be applied whole (see above), or
    when one half would be empty."""
    first: Chunk = []
    second: Chunk = []
    ids: list[set[str]] = [set(), set()]
    for parsed in chunk:
        event = parsed.value
        if event is None:
            if asserted_protection(parsed.record):
                return None
            first.append(parsed)
            continue
        if event.person.protection is not None:
            return None
        side = ord(event.person.a_number[-1:] or "0") & 1
        (second if side else first).append(parsed)
        ids[side].add(event.event_id)
    if not ids[0] or not ids[1] or not ids[0].isdisjoint(ids[1]):
        return None
    return first, second
