from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from safevine.store import (
    migrate,
    schema,  # noqa: F401
)
from safevine.store.metadata import metadata


def test_migrations_build_exactly_the_declared_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = [d for d in compare_metadata(context, metadata)]
    assert differences == []


def test_the_database_is_current_and_upgrading_again_changes_nothing(engine: Engine) -> None:
    assert migrate.is_current(engine)
    migrate.upgrade(engine, 60)
    assert migrate.is_current(engine)


def test_public_views_exist(engine: Engine) -> None:
    views = set(inspect(engine).get_view_names())
    assert {"public_persons", "public_person_names"} <= views


def test_postgres_view_is_a_security_barrier(postgres_engine: Engine) -> None:
    with postgres_engine.connect() as connection:
        options = connection.exec_driver_sql(
            "SELECT reloptions FROM pg_class WHERE relname = 'public_persons'"
        ).scalar()
    assert "security_barrier=true" in options


def test_sqlite_runs_in_wal_mode(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
