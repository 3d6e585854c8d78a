"""Real databases for every storage test: a SQLite file and a PostgreSQL server.

Each test gets a fresh database copied from a migrated template, so tests are isolated
and the migrations themselves are what build every schema under test. PostgreSQL comes
from SAFEVINE_TEST_POSTGRES_URL (default: the local server); with
SAFEVINE_REQUIRE_POSTGRES=1, as in CI, a server that does not answer fails the run.
"""

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from safevine.store import migrate
from safevine.store.engine import make_engine

POSTGRES_URL = os.environ.get(
    "SAFEVINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("SAFEVINE_REQUIRE_POSTGRES") == "1"
RETENTION_DAYS = 60


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine, RETENTION_DAYS)
    engine.dispose()
    return path


class _Postgres:
    """Creates databases from one migrated template on the test server."""

    def __init__(self) -> None:
        self.admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        self.template = f"sv_tpl_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.template}"'))
        engine = make_engine(self.url(self.template))
        migrate.upgrade(engine, RETENTION_DAYS)
        engine.dispose()

    def url(self, database: str) -> str:
        return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)

    def create(self) -> str:
        name = f"sv_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return name

    def drop(self, name: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres() -> Iterator[_Postgres]:
    try:
        server = _Postgres()
    except Exception as error:
        message = f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string()} unusable: {error}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    yield server
    server.drop(server.template)
    server.admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A fresh, migrated database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "safevine.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    server: _Postgres = request.getfixturevalue("postgres")
    name = server.create()
    yield server.url(name)
    server.drop(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    path = tmp_path / "safevine.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine(postgres: _Postgres) -> Iterator[Engine]:
    name = postgres.create()
    engine = make_engine(postgres.url(name))
    yield engine
    engine.dispose()
    postgres.drop(name)
