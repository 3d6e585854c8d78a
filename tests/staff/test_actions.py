"""The actions: each writes its audit entry in the transaction of its change, and raises
an error whose kind alone decides the HTTP status and the exit code."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from safevine.actions import holds, ingest, persons, tokens
from safevine.actions.actor import Actor
from safevine.cli import exit_code
from safevine.domain.errors import (
    ConflictError,
    FieldError,
    InvalidError,
    NotAllowedError,
    NotFoundError,
)
from safevine.ingest.events import EVENT_CHUNK
from safevine.store.records.protection import ClearByAskerError, NoPendingClearError
from safevine.store.schema import audit_log, ingest_batches
from safevine.store.schema import persons as persons_table
from safevine.web.staff.refusals import status_of
from tests.builders import days_ago, event, jsonl, person
from tests.canaries import NON_PUBLIC, PUBLIC, plant

ANA, BEA = Actor("ana"), Actor("bea")
NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def _entries(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.target).order_by(
                audit_log.c.seq
            )
        ).all()
    return [tuple(r) for r in rows]


class _UndoneError(Exception):
    pass


def test_an_action_undone_leaves_neither_its_change_nor_its_entry(engine: Engine) -> None:
    plant(engine)
    before = _entries(engine)
    with pytest.raises(_UndoneError), engine.begin() as connection:
        persons.protect(connection, ANA, PUBLIC.a_number, "T visa", NOW)
        tokens.create(connection, ANA, "desk", ["read"], NOW)
        raise _UndoneError
    assert _entries(engine) == before
    with engine.connect() as connection:
        protection = connection.execute(
            select(persons_table.c.protection).where(persons_table.c.a_number == PUBLIC.a_number)
        ).scalar()
    assert protection == "cleared"
    with engine.begin() as connection:
        persons.protect(connection, ANA, PUBLIC.a_number, "T visa", NOW)
    assert _entries(engine)[-1][:2] == ("ana", "protect")


@pytest.mark.parametrize("fails_after", [EVENT_CHUNK + 1, 10], ids=["a chunk in", "at once"])
def test_a_batch_and_its_entry_commit_together_whatever_its_outcome(
    engine: Engine, fails_after: int
) -> None:
    plant(engine)
    who = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born)
    good = jsonl(event("act-1", "transferred", days_ago(1), who))
    summary = ingest.events(engine, ANA, iter(good), source="desk.jsonl", fmt="jsonl")
    batch = f"batch:{summary.batch_id}"
    assert ("ana", "ingest_events", batch) in _entries(engine)

    def broken() -> object:
        """A feed whose source fails once its first chunk was applied, or before."""
        for n in range(fails_after):
            yield from jsonl(event(f"act-{n + 2}", "transferred", days_ago(0.5), who))
        raise OSError("the disk went away")

    with pytest.raises(OSError):
        ingest.events(engine, BEA, broken(), source="desk.jsonl", fmt="jsonl")  # type: ignore[arg-type]
    with engine.connect() as connection:
        failed = connection.execute(
            select(ingest_batches.c.id, ingest_batches.c.status).order_by(
                ingest_batches.c.id.desc()
            )
        ).first()
        reasons = (
            connection.execute(
                select(audit_log.c.reason).where(audit_log.c.target == f"batch:{failed.id}")
            )
            .scalars()
            .all()
        )
    assert failed.status == "failed" and len(reasons) == 1 and reasons[0].startswith("failed")


def test_two_person_clear_needs_two_actors_and_says_why_not(engine: Engine) -> None:
    plant(engine)
    protected = NON_PUBLIC[0].a_number
    with engine.begin() as connection:
        asked = persons.clear(connection, ANA, protected, "screened", NOW, two_person=True)
    assert asked.request is not None
    with pytest.raises(ClearByAskerError) as same, engine.begin() as connection:
        persons.confirm_clear(connection, ANA, asked.request.id, NOW)
    with engine.begin() as connection:
        persons.confirm_clear(connection, BEA, asked.request.id, NOW)
    with pytest.raises(ConflictError) as twice, engine.begin() as connection:
        persons.confirm_clear(connection, BEA, asked.request.id, NOW)
    with pytest.raises(NoPendingClearError) as unknown, engine.begin() as connection:
        persons.confirm_clear(connection, BEA, 999, NOW)
    assert (status_of(same.value), exit_code(same.value)) == (403, 4)
    assert (status_of(twice.value), exit_code(twice.value)) == (409, 1)
    assert (status_of(unknown.value), exit_code(unknown.value)) == (404, 2)


def test_every_kind_has_one_status_and_one_exit_code(engine: Engine) -> None:
    plant(engine)
    with pytest.raises(NotFoundError) as nobody, engine.begin() as connection:
        persons.view(connection, ANA, "987654321", NOW)
    with pytest.raises(FieldError) as typo, engine.begin() as connection:
        persons.protect(connection, ANA, "12", "x", NOW)
    with pytest.raises(NotFoundError) as no_hold, engine.begin() as connection:
        holds.release(connection, ANA, 424242, NOW)
    with pytest.raises(InvalidError) as bad_scope, engine.begin() as connection:
        tokens.create(connection, ANA, "desk", ["root"], NOW)
    assert "A-987-654-321" in str(nobody.value) and typo.value.field == "a_number"
    assert status_of(typo.value) == 422
    assert [status_of(e.value) for e in (nobody, no_hold, bad_scope)] == [404, 404, 422]
    assert [exit_code(e.value) for e in (nobody, no_hold, bad_scope)] == [2, 2, 2]
    assert status_of(NotAllowedError("x")) == 403 and exit_code(NotAllowedError("x")) == 4
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(audit_log)).scalar()
    assert count == len(_entries(engine))
