"""The status a batch keeps for a person is the one from before it first changed them."""

from sqlalchemy import Engine, select

from safevine.ingest.events import ingest_events
from safevine.store.records.batches import start_batch
from safevine.store.records.holds import keep_prior_status
from safevine.store.records.persons import person_ids_by_a_number
from safevine.store.schema import facilities, held_status
from tests.builders import days_ago, event, jsonl, load_facilities, person

ANA = person("A-100-000-001", "Ana", "Pérez")


def test_a_second_change_in_the_same_batch_keeps_the_first_copy(engine: Engine) -> None:
    load_facilities(engine, "F1", "F2")
    ingest_events(engine, jsonl(event("e1", "booked", days_ago(3), ANA)), source="a", fmt="jsonl")
    with engine.begin() as connection:
        batch = start_batch(connection, "events", "test")
        ana = person_ids_by_a_number(connection, ["100000001"])["100000001"]
        keep_prior_status(connection, batch, [ana])
    moved = jsonl(event("e2", "transferred", days_ago(1), ANA, facility="F2"))
    ingest_events(engine, moved, source="b", fmt="jsonl")
    with engine.begin() as connection:
        keep_prior_status(connection, batch, [ana])
        kept = connection.execute(
            select(held_status.c.state, facilities.c.code)
            .join(facilities, facilities.c.id == held_status.c.facility_id)
            .where(held_status.c.batch_id == batch)
        ).all()
    assert [tuple(row) for row in kept] == [("in_custody", "F1")]
