"""A bulk-writing connection gets a larger SQLite page cache only while its batch runs,
its write-ahead log is copied into the database file by a thread beside it, and it may
keep its statement journals in memory."""

import logging
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from safevine.store.bulk_writes import (
    BULK_CACHE_KIB,
    bulk_writes,
    statement_journals_in_memory,
)
from safevine.store.wal_checkpointer import LOG_BOUND_PAGES


def _pragmas(connection: Connection) -> tuple[int, int, int]:
    cache = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
    checkpoint = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()
    temp_store = connection.exec_driver_sql("PRAGMA temp_store").scalar_one()
    return int(cache), int(checkpoint), int(temp_store)


def test_sqlite_settings_last_only_as_long_as_the_block(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        before = _pragmas(connection)
        connection.rollback()
        with bulk_writes(connection):
            assert _pragmas(connection) == (-BULK_CACHE_KIB, LOG_BOUND_PAGES, before[2])
            connection.rollback()
            with connection.begin():  # the caller's own transactions still work
                connection.execute(text("SELECT 1"))
        assert _pragmas(connection) == before
        connection.rollback()
        with bulk_writes(connection, checkpoints=False):
            assert _pragmas(connection) == (-BULK_CACHE_KIB, 0, before[2])
            statement_journals_in_memory(connection, True)
            assert _pragmas(connection)[2] == 2
            connection.rollback()
        assert _pragmas(connection) == before
        connection.rollback()


def test_settings_are_put_back_when_the_batch_fails(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        before = _pragmas(connection)
        connection.rollback()
        try:
            with bulk_writes(connection):
                statement_journals_in_memory(connection, True)
                connection.execute(text("SELECT 1"))  # a transaction left open by a failure
                raise RuntimeError("the feed broke")
        except RuntimeError:
            pass
        assert _pragmas(connection) == before
        connection.rollback()


def _file(engine: Engine) -> Path:
    assert engine.url.database
    return Path(engine.url.database)


def _write_pages(connection: Connection, pages: int) -> None:
    """Commit `pages` pages' worth of new rows (fewer than SQLite would checkpoint for)."""
    with connection.begin():
        connection.execute(text("CREATE TABLE IF NOT EXISTS bulk (filler BLOB)"))
        for _ in range(pages):
            connection.execute(text("INSERT INTO bulk VALUES (randomblob(4000))"))


def test_what_a_bulk_writer_commits_reaches_the_file_while_it_goes_on(
    sqlite_engine: Engine,
) -> None:
    """The writer's own connection checkpoints only past LOG_BOUND_PAGES, and SQLite's
    default would wait for 1,000 pages: the database file grows with 300 committed pages
    only because the thread beside it copied them, while the writer's block still runs."""
    path = _file(sqlite_engine)
    with sqlite_engine.connect() as connection, bulk_writes(connection):
        before = os.path.getsize(path)
        _write_pages(connection, 300)
        deadline = time.monotonic() + 10
        while os.path.getsize(path) < before + 300 * 4000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.path.getsize(path) >= before + 300 * 4000
        # The writer goes on writing; the next transaction is copied too.
        grown = os.path.getsize(path)
        _write_pages(connection, 100)
    # The block's end waited for a last checkpoint: everything is in the file.
    assert os.path.getsize(path) >= grown + 100 * 4000
    with sqlite_engine.connect() as connection:
        busy, logged, copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        assert (busy, logged) == (0, copied)


def test_without_the_thread_nothing_is_checkpointed_for_the_caller(sqlite_engine: Engine) -> None:
    """The purge checkpoints between its own transactions: nothing else does meanwhile."""
    path = _file(sqlite_engine)
    with sqlite_engine.connect() as connection, bulk_writes(connection, checkpoints=False):
        before = os.path.getsize(path)
        _write_pages(connection, 300)
        time.sleep(0.3)
        assert os.path.getsize(path) < before + 300 * 4000
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        connection.commit()
        assert os.path.getsize(path) >= before + 300 * 4000


def test_a_checkpointer_without_a_connection_stops_no_writer(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The thread cannot get a connection (the pool refuses it): it says so by the error's
    type and ends; the writer's transactions all land, and its own checkpoint is still
    there past the bound."""

    def refused() -> None:
        raise OSError("/secret/path: no more file handles")

    with sqlite_engine.connect() as connection:
        monkeypatch.setattr(sqlite_engine, "raw_connection", refused)
        with caplog.at_level(logging.WARNING, "safevine.store"), bulk_writes(connection):
            assert _pragmas(connection)[1] == LOG_BOUND_PAGES
            connection.rollback()
            _write_pages(connection, 50)
        rows = connection.execute(text("SELECT count(*) FROM bulk")).scalar_one()
        connection.rollback()
    assert rows == 50
    assert [r.getMessage() for r in caplog.records] == [
        "no connection to checkpoint the WAL with (OSError)"
    ]


def _temporary_files() -> list[str]:
    """SQLite's temporary files this process holds open (deleted as soon as created)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
        if "etilqs_" in target:
            found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux's /proc")
def test_statement_journals_kept_in_memory_write_no_temporary_file(
    sqlite_engine: Engine,
) -> None:
    with sqlite_engine.begin() as connection:
        connection.execute(text("CREATE TABLE journaled (n INTEGER CHECK (n >= 0), pad BLOB)"))
        connection.execute(
            text("INSERT INTO journaled VALUES (:n, randomblob(3000))"),
            [{"n": n} for n in range(200)],
        )
    spilled: dict[bool, list[str]] = {}
    with sqlite_engine.connect() as connection, bulk_writes(connection):
        for in_memory in (False, True):
            statement_journals_in_memory(connection, in_memory)
            with connection.begin():
                connection.execute(text("INSERT INTO journaled VALUES (0, NULL)"))
                # One statement changing some 200 pages that were there before it: each
                # is journaled so that it alone could be undone (the CHECK may fail).
                connection.execute(text("UPDATE journaled SET n = n + 1"))
                spilled[in_memory] = _temporary_files()
    assert len(spilled[False]) == 1
    assert spilled[True] == []


def test_postgresql_connections_are_left_alone(postgres_engine: Engine) -> None:
    with postgres_engine.connect() as connection, bulk_writes(connection) as same:
        assert same is connection
        assert not connection.in_transaction()
        statement_journals_in_memory(connection, True)
        assert not connection.in_transaction()
