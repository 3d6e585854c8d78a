"""What a feed's SQLite statements cost by themselves: the floor under event ingest.

After the timed feed, the same feed is applied again, untimed, on a copy of the database
as it was before the timed feed, through connections that keep every statement the
applying thread sends, with its parameters, and every commit. Those are then sent again,
in order, on another copy, by a loop that does nothing else, with the same settings and a
checkpointing thread as the feed has. What the replay takes is SQLite's share of the
feed: no path that stores what this one stores, statement for statement, can be faster on
this machine, whatever its Python does.

SQLite only: on PostgreSQL the client's work and the server's overlap (pipelined writes,
two halves of a chunk on two connections), and the server's own CPU time is measured
directly (`process_cpu`).
"""

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from safevine.ingest.collector import collections_between_chunks
from safevine.ingest.events import ingest_events
from safevine.store.engine import make_engine
from safevine.store.public.tables import notifications
from safevine.store.schema import custody_events, custody_status, held_status, persons
from safevine.store.wal_checkpointer import checkpointing

# (what: execute, executemany, commit or rollback; the SQL; its parameters; whether the
# recorded feed's statement failed, as a path that tries a record alone may expect)
Step = tuple[str, str, Any, bool]

# Tables whose row counts must come out the same from the replay as from the recording.
_COUNTED = (custody_events, custody_status, held_status, persons, notifications)


@dataclass(frozen=True)
class Floor:
    seconds: float
    cpu_seconds: float
    statements: int
    rows: int
    # Wall seconds in commits, within `seconds`.
    commit_seconds: float


def snapshot(url: str, folder: Path) -> Path:
    """A copy of the SQLite database at `url` as it is now, taken with SQLite's backup,
    which leaves the database and its log as they were."""
    copy = folder / "before-feed.db"
    _remove(copy)
    source = sqlite3.connect(url.removeprefix("sqlite:///"))
    target = sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return copy


def measure(before: Path, feed: Path, folder: Path) -> Floor:
    """Apply `feed` on a copy of `before`, keeping its statements, then replay them on
    another copy; raises if the replay stores other counts of rows than the feed did."""
    recorded = _copy(before, folder / "recorded.db")
    steps = _record(recorded, feed)
    replayed = _copy(before, folder / "replayed.db")
    floor = _replay(replayed, steps)
    want, got = _counts(recorded), _counts(replayed)
    if want != got:
        raise RuntimeError(f"the replayed statements stored {got}, the feed {want}")
    for path in (recorded, replayed, before):
        _remove(path)
    return floor


def _copy(before: Path, path: Path) -> Path:
    _remove(path)
    shutil.copyfile(before, path)
    return path


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class _Log:
    """The steps sent by one thread (the feed's applying thread), in order."""

    def __init__(self) -> None:
        self.thread = threading.current_thread()
        self.steps: list[Step] = []

    def keep(self, what: str, sql: str, parameters: Any, call: Callable[[], Any]) -> Any:
        if threading.current_thread() is not self.thread:
            return call()
        try:
            result = call()
        except sqlite3.Error:
            self.steps.append((what, sql, parameters, True))
            raise
        self.steps.append((what, sql, parameters, False))
        return result


# The log of the feed being recorded; connections are made by sqlite3, not by this module.
_log = _Log()


class _KeepingCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return _log.keep("execute", sql, parameters, partial(super().execute, sql, parameters))

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        rows = list(parameters)
        return _log.keep("executemany", sql, rows, partial(super().executemany, sql, rows))


class _KeepingConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _KeepingCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def commit(self) -> None:
        _log.keep("commit", "", None, super().commit)

    def rollback(self) -> None:
        _log.keep("rollback", "", None, super().rollback)


def _record(path: Path, feed: Path) -> list[Step]:
    global _log
    _log = _Log()
    engine = make_engine(f"sqlite:///{path}", connect_args={"factory": _KeepingConnection})
    try:
        with feed.open("rb") as handle:
            ingest_events(engine, handle, source=feed.name, fmt="jsonl")
    finally:
        engine.dispose()
    steps, _log = _log.steps, _Log()
    return steps


def _replay(path: Path, steps: Sequence[Step]) -> Floor:
    """Send `steps` again on `path`, doing nothing else, as the feed's thread sent them
    (the engine's own connection settings are among them, as the feed's connection ran
    them); a checkpointing thread beside, as the feed had."""
    engine = make_engine(f"sqlite:///{path}")
    connection = sqlite3.connect(path)
    cursor = connection.cursor()
    commit_seconds = 0.0
    try:
        with checkpointing(engine), collections_between_chunks():
            began, began_cpu = time.perf_counter(), time.process_time()
            for what, sql, parameters, failed in steps:
                try:
                    if what == "execute":
                        cursor.execute(sql, parameters).fetchall()
                    elif what == "executemany":
                        cursor.executemany(sql, parameters)
                    elif what == "commit":
                        at = time.perf_counter()
                        connection.commit()
                        commit_seconds += time.perf_counter() - at
                    else:
                        connection.rollback()
                except sqlite3.Error:
                    if not failed:
                        raise
                else:
                    if failed:
                        raise RuntimeError(f"a statement that failed in the feed did not: {sql}")
            seconds = time.perf_counter() - began
            cpu_seconds = time.process_time() - began_cpu
    finally:
        connection.close()
        engine.dispose()
    return Floor(
        seconds,
        cpu_seconds,
        statements=sum(1 for step in steps if step[0] in ("execute", "executemany")),
        rows=sum(len(step[2]) for step in steps if step[0] == "executemany"),
        commit_seconds=commit_seconds,
    )


def _counts(path: Path) -> dict[str, int]:
    engine: Engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            return {
                table.name: int(
                    connection.execute(select(func.count()).select_from(table)).scalar_one()
                )
                for table in _COUNTED
            }
    finally:
        engine.dispose()
