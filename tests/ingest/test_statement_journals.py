"""On SQLite a feed's chunks keep their statement journals in memory, but the last, whose
release of the batch's held alerts is one statement over the whole batch, keeps them on
file; and the setting ends with the feed."""

from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from safevine.ingest import events as event_ingest
from safevine.ingest.events import ingest_events
from tests.builders import days_ago, event, jsonl, load_facilities, person


def _temp_store(connection: Connection) -> int:
    return int(connection.exec_driver_sql("PRAGMA temp_store").scalar_one())


def test_every_chunk_but_the_last_journals_in_memory(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_facilities(sqlite_engine, "F1")
    seen: list[tuple[str, int]] = []
    record_events, confirm_batch = event_ingest.record_events, event_ingest.confirm_batch

    def recording(connection: Connection, *args: Any, **kwargs: Any) -> Any:
        seen.append(("chunk", _temp_store(connection)))
        return record_events(connection, *args, **kwargs)

    def confirming(connection: Connection, *args: Any, **kwargs: Any) -> Any:
        seen.append(("release", _temp_store(connection)))
        return confirm_batch(connection, *args, **kwargs)

    monkeypatch.setattr(event_ingest, "EVENT_CHUNK", 4)
    monkeypatch.setattr(event_ingest, "record_events", recording)
    monkeypatch.setattr(event_ingest, "confirm_batch", confirming)
    records = [event(f"j{i}", "booked", days_ago(1), person(f"A5000000{i:02d}"))
               for i in range(14)]  # fmt: skip
    summary = ingest_events(sqlite_engine, jsonl(*records), source="j.jsonl", fmt="jsonl")
    assert (summary.status, summary.applied) == ("completed", 14)
    assert seen == [("chunk", 2)] * 3 + [("chunk", 0), ("release", 0)]
    with sqlite_engine.connect() as connection:
        assert _temp_store(connection) == 0


def test_a_feed_of_one_chunk_leaves_them_as_they_were(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_facilities(sqlite_engine, "F1")
    seen: list[int] = []
    record_events = event_ingest.record_events

    def recording(connection: Connection, *args: Any, **kwargs: Any) -> Any:
        seen.append(_temp_store(connection))
        return record_events(connection, *args, **kwargs)

    monkeypatch.setattr(event_ingest, "record_events", recording)
    records = [event("k1", "booked", days_ago(1), person("A500000101"))]
    summary = ingest_events(sqlite_engine, jsonl(*records), source="k.jsonl", fmt="jsonl")
    assert summary.applied == 1 and seen == [0]
