"""Event feeds in chunks bounded by count and by text, with the cyclic collector held back
while a feed is applied and put back as it was."""

import gc
import json
import weakref

import pytest
from sqlalchemy import Engine

from safevine.ingest.batch_run import chunks
from safevine.ingest.collector import COLLECT_EVERY, collections_between_chunks
from safevine.ingest.events import ingest_events
from tests.builders import days_ago, event, load_facilities, person


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_cycles_are_collected_every_few_chunks_and_the_collector_is_restored() -> None:
    assert gc.isenabled()
    with collections_between_chunks() as chunk_done:
        assert not gc.isenabled()
        gc.collect()
        Cycle()
        # A cycle made while the collector is off waits for the collection between chunks.
        assert sum(isinstance(o, Cycle) for o in gc.get_objects()) == 1
        for _ in range(COLLECT_EVERY):
            chunk_done()
        assert sum(isinstance(o, Cycle) for o in gc.get_objects()) == 0
    assert gc.isenabled()


def test_what_lived_before_is_left_out_of_the_collections_and_collected_after() -> None:
    gc.collect()
    before = Cycle()
    alive = weakref.ref(before)
    with collections_between_chunks() as chunk_done:
        assert gc.get_freeze_count() > 0
        # Dying during the batch, the earlier cycle waits for the batch's end: the
        # collections between chunks walk only what the batch made.
        del before
        for _ in range(COLLECT_EVERY):
            chunk_done()
        assert alive() is not None
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None


def test_a_block_that_raises_still_restores_the_collector() -> None:
    with pytest.raises(RuntimeError), collections_between_chunks():
        raise RuntimeError("feed broke off")
    assert (gc.isenabled(), gc.get_freeze_count()) == (True, 0)


def test_nested_blocks_leave_it_to_the_outermost() -> None:
    with collections_between_chunks():
        with collections_between_chunks():
            pass
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
    assert (gc.isenabled(), gc.get_freeze_count()) == (True, 0)


def test_an_ingest_leaves_the_collector_on(engine: Engine) -> None:
    load_facilities(engine, "F1")
    lines = [
        json.dumps(event(f"c{i}", "booked", days_ago(1), person(f"3{i:08d}"))).encode()
        for i in range(3)
    ]
    summary = ingest_events(engine, lines, source="small.jsonl", fmt="jsonl")
    assert (summary.applied, gc.isenabled()) == (3, True)


def test_chunks_end_at_their_count_or_their_weight_whichever_comes_first() -> None:
    words = ["a" * 5, "b" * 5, "c" * 30, "d", "e", "f", "g"]
    assert [len(c) for c in chunks(words, 3, weight=len, most=8)] == [2, 1, 3, 1]
    assert [len(c) for c in chunks(words, 2)] == [2, 2, 2, 1]
    assert list(chunks([], 3, weight=len, most=20)) == []
