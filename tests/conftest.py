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


def migrate_database(url: str) -> None:
    """Run the migrations on the database at `url`: they build every schema under test."""
    engine = make_engine(url)
    migrate.upgrade(engine, RETENTION_DAYS)
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate_database(f"sqlite:///{path}")
    return path


class _Postgres:
    """Creates databases from one migrated template on the test server."""

    def __init__(self) -> None:
        self.admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        self.template = f"sv_tpl_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.template}"'))
        migrate_database(self.url(self.template))

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


class Databases:
    """Fresh migrated databases of either kind, dropped when the test ends."""

    def __init__(self, request: pytest.FixtureRequest, folder: Path, template: Path) -> None:
        self._request, self._folder, self._template = request, folder, template
        self._dropped: list[tuple[_Postgres, str]] = []

    def create(self, kind: str) -> str:
        if kind == "sqlite":
            path = self._folder / f"safevine-{uuid.uuid4().hex[:8]}.db"
            shutil.copy(self._template, path)
            return f"sqlite:///{path}"
        server: _Postgres = self._request.getfixturevalue("postgres")
        name = server.create()
        self._dropped.append((server, name))
        return server.url(name)

    def close(self) -> None:
        for server, name in self._dropped:
            server.drop(name)


@pytest.fixture
def databases(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Databases]:
    factory = Databases(request, tmp_path, sqlite_template)
    yield factory
    factory.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, databases: Databases) -> str:
    """A fresh, migrated database of each kind."""
    return databases.create(request.param)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(databases: Databases) -> Iterator[Engine]:
    engine = make_engine(databases.create("sqlite"))
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine(databases: Databases) -> Iterator[Engine]:
    engine = make_engine(databases.create("postgresql"))
    yield engine
    engine.dispose()


# A PostgreSQL primary and its streaming replica on loopback (tests/replica_cluster.py).
from tests.replica_cluster import replica_pair  # noqa: E402, F401
