"""A bulk-writing connection gets a larger SQLite page cache only while its batch runs."""

from sqlalchemy import Connection, Engine, text

from safevine.store.bulk_writes import BULK_CACHE_KIB, BULK_CHECKPOINT_PAGES, bulk_writes


def _pragmas(connection: Connection) -> tuple[int, int]:
    cache = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
    checkpoint = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()
    return int(cache), int(checkpoint)


def test_sqlite_settings_last_only_as_long_as_the_block(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        before = _pragmas(connection)
        connection.rollback()
        with bulk_writes(connection):
            assert _pragmas(connection) == (-BULK_CACHE_KIB, BULK_CHECKPOINT_PAGES)
            connection.rollback()
            with connection.begin():  # the caller's own transactions still work
                connection.execute(text("SELECT 1"))
        assert _pragmas(connection) == before
        connection.rollback()


def test_settings_are_put_back_when_the_batch_fails(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        before = _pragmas(connection)
        connection.rollback()
        try:
            with bulk_writes(connection):
                connection.execute(text("SELECT 1"))  # a transaction left open by a failure
                raise RuntimeError("the feed broke")
        except RuntimeError:
            pass
        assert _pragmas(connection) == before
        connection.rollback()


def test_postgresql_connections_are_left_alone(postgres_engine: Engine) -> None:
    with postgres_engine.connect() as connection, bulk_writes(connection) as same:
        assert same is connection
        assert not connection.in_transaction()
