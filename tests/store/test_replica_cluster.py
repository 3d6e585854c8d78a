"""The replica fixture itself: what the primary commits reaches the replica, a paused replay
holds it back, the replica takes no writes, and a migrated schema, with its public role,
is there on the replica as on the primary."""

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy.exc
from sqlalchemy import Engine, text

from safevine.store.engine import make_engine
from tests.canaries import NON_PUBLIC, PUBLIC, plant
from tests.replica_cluster import ReplicaPair


@pytest.fixture
def engines(replica_pair: ReplicaPair) -> Iterator[tuple[Engine, Engine]]:
    primary, replica = make_engine(replica_pair.primary_url), make_engine(replica_pair.replica_url)
    yield primary, replica
    primary.dispose()
    replica.dispose()


def _table(primary: Engine) -> str:
    """A table of this test's own: the pair is shared by the whole session."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    with primary.begin() as connection:
        connection.execute(text(f"CREATE TABLE {name} (id int PRIMARY KEY, note text)"))
    return name


def _notes(engine: Engine, table: str) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text(f"SELECT note FROM {table} ORDER BY id")).scalars())


def test_a_commit_on_the_primary_reaches_the_replica(
    replica_pair: ReplicaPair, engines: tuple[Engine, Engine]
) -> None:
    primary, replica = engines
    table = _table(primary)
    with primary.begin() as connection:
        connection.execute(text(f"INSERT INTO {table} VALUES (1, 'first')"))
    replica_pair.wait_caught_up()
    assert _notes(replica, table) == ["first"]


def test_a_paused_replay_holds_a_commit_back_until_resumed(
    replica_pair: ReplicaPair, engines: tuple[Engine, Engine]
) -> None:
    primary, replica = engines
    table = _table(primary)
    replica_pair.wait_caught_up()
    replica_pair.pause_replay()
    try:
        with primary.begin() as connection:
            connection.execute(text(f"INSERT INTO {table} VALUES (1, 'held back')"))
        assert _notes(primary, table) == ["held back"]
        assert _notes(replica, table) == []
    finally:
        replica_pair.resume_replay()
    replica_pair.wait_caught_up()
    assert _notes(replica, table) == ["held back"]


def test_the_replica_refuses_writes(
    replica_pair: ReplicaPair, engines: tuple[Engine, Engine]
) -> None:
    primary, replica = engines
    table = _table(primary)
    replica_pair.wait_caught_up()
    with (
        pytest.raises(sqlalchemy.exc.InternalError, match="read-only transaction"),
        replica.begin() as connection,
    ):
        connection.execute(text(f"INSERT INTO {table} VALUES (1, 'on the replica')"))
    assert _notes(primary, table) == []


def test_a_migrated_database_serves_the_public_role_on_the_replica(
    replica_pair: ReplicaPair,
) -> None:
    primary_url, replica_url = replica_pair.migrated_database()
    primary = make_engine(primary_url)
    plant(primary)
    primary.dispose()
    replica_pair.wait_caught_up()

    replica = make_engine(replica_url)
    try:
        with replica.connect() as connection:
            connection.execute(text("SET ROLE safevine_public"))
            listed = set(connection.execute(text("SELECT a_number FROM public_persons")).scalars())
        assert PUBLIC.a_number in listed
        assert not listed & {canary.a_number for canary in NON_PUBLIC}
        # The role reads the views and nothing else, on the replica as on the primary.
        with (
            pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"),
            replica.connect() as connection,
        ):
            connection.execute(text("SET ROLE safevine_public"))
            connection.execute(text("SELECT count(*) FROM persons"))
    finally:
        replica.dispose()
