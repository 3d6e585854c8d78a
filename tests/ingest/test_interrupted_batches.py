"""A feed that stops half way (an upload cut off, a read error) is recorded as failed, not
as completed or still running, and keeps what it applied."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from safevine.ingest.events import EVENT_CHUNK, ingest_events
from safevine.ingest.roster import ingest_roster
from safevine.store.decoy import real_events
from safevine.store.schema import custody_events, ingest_batches, ingest_rejects
from tests.builders import NOW, csv_lines, days_ago, event, jsonl, load_facilities, person


def cut_off(lines: list[bytes], after: int) -> Iterator[bytes]:
    yield from lines[:after]
    raise ConnectionResetError("the upload was cut off")


def last_batch(engine: Engine) -> tuple[str, int, str]:
    with engine.connect() as connection:
        row = connection.execute(
            select(ingest_batches).order_by(ingest_batches.c.id.desc()).limit(1)
        ).one()
    return row.status, row.applied, row.message or ""


def test_an_event_feed_cut_off_is_failed_and_keeps_its_applied_chunks(engine: Engine) -> None:
    load_facilities(engine, "F1")
    total = 2 * EVENT_CHUNK + EVENT_CHUNK // 4
    feed = jsonl(
        *(event(f"e{i}", "booked", days_ago(1), person(f"2{i:08d}")) for i in range(total))
    )
    # The first chunk is applied while the second is read; the third fails.
    with pytest.raises(ConnectionResetError):
        ingest_events(engine, cut_off(feed, 2 * EVENT_CHUNK + 100), source="cut.jsonl", fmt="jsonl")
    status, applied, message = last_batch(engine)
    assert (status, applied) == ("failed", EVENT_CHUNK)
    assert "ConnectionResetError" in message and "cut off" not in message
    # A chunk of bookings into an empty facility trips a hold: what was applied is still
    # judged.
    assert "held for review" in message
    with engine.connect() as connection:
        stored = connection.execute(
            select(func.count()).select_from(custody_events).where(real_events())
        ).scalar()
    assert stored == EVENT_CHUNK

    again = ingest_events(engine, feed, source="cut.jsonl", fmt="jsonl")
    # The rest arrives; what was stored is recognised as sent before (and the burst is
    # held for review again, as the same feed in one piece would have been).
    assert (again.status, again.applied, again.duplicates) == (
        "held",
        total - EVENT_CHUNK,
        EVENT_CHUNK,
    )


def test_a_read_error_that_is_a_value_error_fails_the_batch_not_the_chunk_in_hand(
    engine: Engine,
) -> None:
    """On PostgreSQL the next chunk is read while the chunk before is applied, inside its
    transaction: a read failure there (here one that is also a ValueError, as a decoding
    error is) must stop the batch as itself, never be taken for a record's fault and turn
    the chunk in hand into rejects."""
    load_facilities(engine, "F1")
    feed = jsonl(
        *(
            event(f"v{i}", "booked", days_ago(1), person(f"4{i:08d}"))
            for i in range(2 * EVENT_CHUNK)
        )
    )

    def undecodable(lines: list[bytes], after: int) -> Iterator[bytes]:
        yield from lines[:after]
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    with pytest.raises(UnicodeDecodeError):
        ingest_events(engine, undecodable(feed, EVENT_CHUNK + 100), source="bad.jsonl", fmt="jsonl")
    status, applied, message = last_batch(engine)
    assert (status, applied) == ("failed", 0)
    assert "UnicodeDecodeError" in message
    with engine.connect() as connection:
        # Taken for the records' fault, each record of the chunk would have been tried
        # alone and counted as a reject, though none was kept.
        counted = connection.execute(
            select(ingest_batches.c.rejected).order_by(ingest_batches.c.id.desc()).limit(1)
        ).scalar_one()
        rejects = connection.execute(select(func.count()).select_from(ingest_rejects)).scalar()
        stored = connection.execute(
            select(func.count()).select_from(custody_events).where(real_events())
        ).scalar()
    assert (counted, rejects, stored) == (0, 0, 0)


def test_a_roster_cut_off_is_failed_and_the_same_snapshot_can_be_sent_again(
    engine: Engine,
) -> None:
    load_facilities(engine, "F1")
    header = ["snapshot_at", "facility_code", "a_number", "given_name", "family_name"]
    rows = [[NOW.isoformat(), "F1", f"3{i:08d}", "Ana", f"Pérez{i}"] for i in range(50)]
    snapshot = csv_lines(header, *rows)
    with pytest.raises(ConnectionResetError):
        ingest_roster(engine, cut_off(snapshot, 20), source="cut.csv")
    status, applied, message = last_batch(engine)
    assert (status, applied) == ("failed", 0)
    assert "ConnectionResetError" in message

    again = ingest_roster(engine, snapshot, source="cut.csv")
    assert (again.status, again.applied, again.derived_events) == ("completed", 50, 50)
