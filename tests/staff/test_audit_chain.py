"""The audit chain: append-only in the database, and any tampering found by `verify`."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from safevine.store.records import audit

SAFEVINE = Path(sys.executable).parent / "safevine"


def fill(engine: Engine, count: int = 5) -> None:
    with engine.begin() as connection:
        for n in range(count):
            audit.append(
                connection,
                actor=f"desk-{n}",
                action="protect",
                target=f"person:{n}",
                reason=f"reason {n}",
                at=datetime.now(UTC),
            )


def bypass(engine: Engine, *statements: str) -> None:
    """What someone with direct database access could do, with the guard switched off."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        for statement in statements:
            connection.execute(text(statement))
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def test_an_intact_chain_verifies(engine: Engine) -> None:
    fill(engine)
    with engine.connect() as connection:
        result = audit.verify(connection)
    assert result.ok and result.entries == 5


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log"]
)
def test_the_database_refuses_to_change_or_delete_entries(engine: Engine, statement: str) -> None:
    fill(engine, 2)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))


@pytest.mark.parametrize(
    ("tamper", "broken_at", "problem"),
    [
        (["UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 3"], 3, "altered"),
        (["DELETE FROM audit_log WHERE seq = 2"], 3, "deleted"),
        # Swap entries 2 and 4 (through a spare number, since seq is unique): 4 now stands
        # where 2 should.
        (
            [
                "UPDATE audit_log SET seq = 99 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 4",
                "UPDATE audit_log SET seq = 4 WHERE seq = 99",
            ],
            4,
            "order",
        ),
    ],
    ids=["tampered", "deleted", "reordered"],
)
def test_tampering_is_found_at_the_first_broken_link(
    engine: Engine, tamper: list[str], broken_at: int, problem: str
) -> None:
    fill(engine)
    bypass(engine, *tamper)
    with engine.connect() as connection:
        result = audit.verify(connection)
    assert not result.ok
    assert result.broken_at == broken_at and problem in result.problem


def test_removing_the_newest_entries_is_found_with_an_exported_head(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    fill(sqlite_engine)
    env = {
        **os.environ,
        "SAFEVINE_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False),
    }
    exported = subprocess.run(
        [str(SAFEVINE), "audit", "export"], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    assert len(exported) == 6
    head = json.loads(exported[-1])["head"]
    ok = subprocess.run(
        [str(SAFEVINE), "audit", "verify", "--expect-head", head],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ok.returncode == 0 and "intact" in ok.stdout
    bypass(sqlite_engine, "DELETE FROM audit_log WHERE seq = 5")
    plain = subprocess.run(
        [str(SAFEVINE), "audit", "verify"], capture_output=True, text=True, env=env, check=False
    )
    assert plain.returncode == 0  # the chain itself still holds...
    found = subprocess.run(
        [str(SAFEVINE), "audit", "verify", "--expect-head", head],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (
        found.returncode == 1 and "no longer in the chain" in found.stderr
    )  # ...the head does not


def _rehash(engine: Engine, link: str, edit: bool) -> None:
    """What someone with the database but not the key does: change an entry, then
    recompute every link after it, keyed links with plain SHA-256 (they cannot make an
    HMAC) and marked as `link` says."""
    with engine.connect() as connection:
        rows = list(audit.entries(connection))
    statements, prev = [], audit.GENESIS
    for entry in rows:
        reason = "nothing to see" if edit and entry.seq == 2 else entry.reason
        digest = audit.entry_hash(
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.target,
            reason,
            prev,
            audit.UNKEYED,
        )
        statements.append(
            f"UPDATE audit_log SET reason = '{reason}', prev_hash = '{prev}', "
            f"hash = '{digest}', link = '{link}' WHERE seq = {entry.seq}"
        )
        prev = digest
    bypass(engine, *statements)


def test_links_are_keyed_and_cannot_be_recomputed_without_the_key(engine: Engine) -> None:
    fill(engine)
    with engine.connect() as connection:
        first = next(audit.entries(connection))
    assert first.link == audit.KEYED
    assert first.hash != audit.entry_hash(
        first.seq,
        first.at,
        first.actor,
        first.action,
        first.target,
        first.reason,
        first.prev_hash,
        audit.UNKEYED,
    )
    _rehash(engine, audit.KEYED, edit=True)
    with engine.connect() as connection:
        result = audit.verify(connection)
    assert not result.ok and result.broken_at == 1 and "altered" in result.problem


def test_an_unkeyed_entry_after_keyed_ones_is_a_rewritten_chain(engine: Engine) -> None:
    fill(engine)
    bypass(engine, "UPDATE audit_log SET link = 'sha256' WHERE seq = 4")
    with engine.connect() as connection:
        result = audit.verify(connection)
    assert not result.ok and result.broken_at == 4 and "without the key" in result.problem


def test_a_chain_made_with_another_key_does_not_verify(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(engine)
    with engine.connect() as connection:
        assert audit.verify(connection).ok
    monkeypatch.setenv("SAFEVINE_AUDIT_KEY", "another key entirely, not the one used")
    audit.chain_key.cache_clear()
    try:
        with engine.connect() as connection:
            result = audit.verify(connection)
        assert not result.ok and result.broken_at == 1
    finally:
        monkeypatch.delenv("SAFEVINE_AUDIT_KEY")
        audit.chain_key.cache_clear()
