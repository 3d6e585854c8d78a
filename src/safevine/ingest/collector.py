"""Python's cyclic garbage collector held back while a large batch is applied.

A chunk of parsed records is hundreds of thousands of small containers that all live
until the chunk is written. The collector's default thresholds count allocations, so it
ran full collections over them several times a chunk and found nothing to free: a third
of an event feed's time (BENCHMARKS.md, event ingest). What a batch allocates is freed by
reference counting when its chunk is done; the rare cycle waits for one full collection
every `COLLECT_EVERY` chunks, or for the collector to run again after the batch.

What lived before the batch (modules, caches, the engine) is frozen out of those
collections for the batch (`gc.freeze`): a full collection walked all of it every time,
to find the cycles of the chunks that came after. A cycle of it that dies during the
batch is collected after it.
"""

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

COLLECT_EVERY = 10


@contextmanager
def collections_between_chunks() -> Iterator[Callable[[], None]]:
    """Automatic collection off for the block (if it was on); yields what to call after
    each chunk. Process-wide, as the collector is: another thread's batch ending first
    turns it back on, which costs time, never memory."""
    was_enabled = gc.isenabled()
    gc.disable()
    if was_enabled:
        gc.freeze()
    done = 0

    def chunk_done() -> None:
        nonlocal done
        done += 1
        if done % COLLECT_EVERY == 0:
            gc.collect()

    try:
        yield chunk_done
    finally:
        if was_enabled:
            gc.unfreeze()
            gc.enable()
