from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, text

from safevine.store import (
    migrate,
    schema,  # noqa: F401
)
from safevine.store.decoy import DECOY_PERSON_ID
from safevine.store.metadata import metadata
from safevine.store.schema import person_names, persons


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


def _searches(engine: Engine) -> set[str]:
    if engine.dialect.name == "sqlite":
        return set(inspect(engine).get_view_names()) & {
            "public_search_by_a_number",
            "public_search_by_name",
        }
    with engine.connect() as connection:
        return set(
            connection.execute(
                text("SELECT proname FROM pg_proc WHERE proname LIKE 'public_search_%'")
            ).scalars()
        )


def _decoy_rows(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return (
            connection.execute(
                select(func.count()).select_from(persons).where(persons.c.id == DECOY_PERSON_ID)
            ).scalar_one(),
            connection.execute(
                select(func.count())
                .select_from(person_names)
                .where(person_names.c.person_id == DECOY_PERSON_ID)
            ).scalar_one(),
        )


def test_the_constant_work_searches_come_and_go_with_0010(engine: Engine) -> None:
    assert _searches(engine) == {"public_search_by_a_number", "public_search_by_name"}
    assert _decoy_rows(engine) == (1, 2)
    with engine.begin() as connection:
        command.downgrade(migrate._config(connection), "0009")
    assert _searches(engine) == set() and _decoy_rows(engine) == (0, 0)
    migrate.upgrade(engine, 60)
    assert _searches(engine) == {"public_search_by_a_number", "public_search_by_name"}
    assert _decoy_rows(engine) == (1, 2)


def test_postgres_view_is_a_security_barrier(postgres_engine: Engine) -> None:
    with postgres_engine.connect() as connection:
        options = connection.exec_driver_sql(
            "SELECT reloptions FROM pg_class WHERE relname = 'public_persons'"
        ).scalar()
    assert "security_barrier=true" in options


def test_sqlite_runs_in_wal_mode(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
