"""The statement replay under event ingest (`bench/statement_floor.py`): it replays a
feed's statements on a copy of the database as it was, stores what the feed stored, and
refuses a replay that stores anything else."""

from pathlib import Path

import pytest
from bench.dataset import event_feed, load_facilities, load_population, people, write_lines
from bench.harness import Databases
from sqlalchemy import func, select

from bench import statement_floor
from safevine.ingest.events import ingest_events
from safevine.store.engine import make_engine
from safevine.store.schema import custody_events


def _prepared(tmp_path: Path) -> tuple[str, Path, Path]:
    url = Databases("sqlite", tmp_path).fresh("floor")
    engine = make_engine(url)
    codes = load_facilities(engine, 12)
    everyone = people(60, 2017)
    load_population(engine, everyone[:50], codes, seed=2017)
    feed = event_feed(400, everyone[:50], everyone[50:], codes, 2017)
    engine.dispose()
    before = statement_floor.snapshot(url, tmp_path)
    return url, before, write_lines(tmp_path / "events.jsonl", feed.lines)


def _events(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(custody_events)).scalar_one()
    engine.dispose()
    return int(count)


def test_the_replay_stores_what_the_feed_stored_and_leaves_the_database_alone(
    tmp_path: Path,
) -> None:
    url, before, feed = _prepared(tmp_path)
    stored_before = _events(url)
    floor = statement_floor.measure(before, feed, tmp_path)
    # The copy was taken before the feed, and neither the recording nor the replay
    # touched the database it was copied from.
    assert _events(url) == stored_before
    assert floor.statements > 0 and floor.rows >= 380
    assert floor.seconds >= floor.commit_seconds > 0 and floor.cpu_seconds > 0
    # Only the database it was given is left: the copies are removed.
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == [
        Path(url.removeprefix("sqlite:///")).name
    ]
    # The timed feed can still run on the original afterwards, as the benchmark does.
    with feed.open("rb") as handle:
        summary = ingest_events(make_engine(url), handle, source=feed.name, fmt="jsonl")
    assert summary.applied > 0


def test_a_replay_that_stores_less_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, before, feed = _prepared(tmp_path)
    replay = statement_floor._replay

    def keeping_the_held_statuses(
        path: Path, steps: list[statement_floor.Step]
    ) -> statement_floor.Floor:
        # Confirming the batch deletes its held statuses: a replay without that delete
        # runs without an error and leaves rows the feed did not.
        [end] = [i for i, s in enumerate(steps) if s[1].startswith("DELETE FROM held_status")]
        return replay(path, steps[:end] + steps[end + 1 :])

    monkeypatch.setattr(statement_floor, "_replay", keeping_the_held_statuses)
    with pytest.raises(RuntimeError, match="the replayed statements stored"):
        statement_floor.measure(before, feed, tmp_path)
