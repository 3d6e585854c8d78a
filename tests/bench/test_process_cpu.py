"""What a PostgreSQL server's processes spent over a stretch, read from /proc: the work of
the very connection the pool hands back counts, a connection opened meanwhile counts
whole, and SQLite has no server to read."""

import pytest
from bench.process_cpu import server_cpu_since, server_processes
from sqlalchemy import Engine, text

# Rows counted server-side: tenths of a second of a backend's CPU on any host here.
_BUSY = "SELECT count(*) FROM generate_series(1, 3000000)"


def _local(engine: Engine) -> dict[int, float]:
    before = server_processes(engine)
    if before is None:
        pytest.skip("the PostgreSQL server's processes are not on this machine")
    return before


def test_the_pooled_connection_that_read_the_server_counts_too(postgres_engine: Engine) -> None:
    before = _local(postgres_engine)
    # The pool gives back the connection `server_processes` just used.
    with postgres_engine.connect() as connection:
        connection.execute(text(_BUSY)).scalar()
    spent = server_cpu_since(postgres_engine, before)
    assert spent is not None and spent >= 0.05


def test_a_connection_opened_meanwhile_counts_whole(postgres_engine: Engine) -> None:
    before = _local(postgres_engine)
    with postgres_engine.connect() as first, postgres_engine.connect() as second:
        # `second` is a backend that did not exist when `before` was read.
        assert first.execute(text("SELECT 1")).scalar() == 1
        pid = second.execute(text("SELECT pg_backend_pid()")).scalar()
        assert pid not in before
        second.execute(text(_BUSY)).scalar()
        spent = server_cpu_since(postgres_engine, before)
    assert spent is not None and spent >= 0.05


def test_sqlite_has_no_server_to_read(sqlite_engine: Engine) -> None:
    assert server_processes(sqlite_engine) is None
    assert server_cpu_since(sqlite_engine, None) is None
