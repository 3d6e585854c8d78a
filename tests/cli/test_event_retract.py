"""`safevine event retract` as staff run it: a real process, on SQLite and PostgreSQL."""

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from safevine.ingest.events import ingest_events
from safevine.store.schema import audit_log, custody_events
from tests.builders import days_ago, event, jsonl, person
from tests.canaries import PUBLIC, plant
from tests.cli.test_cli import run

WHO = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country="MX")
MISTAKE = event("rel-wrong", "released", days_ago(1), WHO, reason="bond")


@pytest.fixture
def database(engine: Engine) -> str:
    """The URL of a migrated database (each kind) holding the canaries and a mistaken
    release of the public one."""
    plant(engine)
    summary = ingest_events(engine, jsonl(MISTAKE), source="feed.jsonl", fmt="jsonl")
    assert summary.applied == 1
    return engine.url.render_as_string(hide_password=False)


def test_retract_show_and_a_feed_that_sends_it_again(
    database: str, engine: Engine, tmp_path: Path
) -> None:
    done = run(database, "event", "retract", "rel-wrong", "--reason", "wrong person released")
    assert done.returncode == 0, done.stderr
    assert "event 'rel-wrong' (released) retracted" in done.stdout
    assert "is now in_custody at F1; it was released, facility F1" in done.stdout
    assert "0 unsent messages cancelled; 0 corrections queued" in done.stdout

    shown = json.loads(run(database, "person", "show", PUBLIC.a_number, "--json").stdout)
    assert shown["custody_state"] == "in_custody" and shown["facility_code"] == "F1"
    [kept] = [e for e in shown["history"] if e["event_id"] == "rel-wrong"]
    assert kept["retracted_by"].startswith("cli:")
    assert kept["retraction_reason"] == "wrong person released"
    table = run(database, "person", "show", PUBLIC.a_number).stdout
    assert "rel-wrong" in table and "RETRACTED" in table

    with engine.connect() as connection:
        [entry] = connection.execute(
            select(audit_log).where(audit_log.c.action == "retract_event")
        ).all()
    assert entry.actor.startswith("cli:") and entry.target.startswith("person:")
    assert entry.reason.startswith("wrong person released [")

    again = run(database, "event", "retract", "rel-wrong", "--reason", "once more")
    assert again.returncode == 1  # refused by the state of things, nothing changed
    assert "'rel-wrong' was already retracted" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    feed = tmp_path / "resend.jsonl"
    feed.write_text(json.dumps(MISTAKE) + "\n")
    resent = run(database, "ingest", "events", str(feed), "--json")
    assert resent.returncode == 3  # applied with rejected records
    summary = json.loads(resent.stdout)
    assert (summary["applied"], summary["rejected"]) == (0, 1)
    [reject] = summary["rejects"]
    assert reject["field"] == "event_id" and "'rel-wrong' was retracted" in reject["reason"]
    with engine.connect() as connection:
        assert connection.execute(
            select(custody_events.c.retracted_at).where(custody_events.c.event_id == "rel-wrong")
        ).scalar_one()


def test_json_says_what_it_did(database: str) -> None:
    done = run(database, "event", "retract", "rel-wrong", "--reason", "entered in error", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["event_id"] == "rel-wrong" and answer["retracted"] is True
    assert answer["status_before"] == {"custody_state": "released", "facility": "F1"}
    assert answer["status"] == {"custody_state": "in_custody", "facility": "F1"}
    assert (answer["cancelled"], answer["told"], answer["corrections"]) == (0, 0, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["no-such-event", "--reason", "typo"],
            "no custody event has the event id 'no-such-event'",
        ),
        (["rel-wrong"], "Missing option '--reason'"),
        (["rel-wrong", "--reason", ""], "--reason is required"),
        (["rel-wrong", "--reason", "  "], "--reason is required"),
        (["rel-wrong", "--reason", "x" * 2001], "longer than 2000 characters"),
        (["rel-wrong", "--reason", "a\x01b"], "contains control characters"),
        (["  ", "--reason", "typo"], "EVENT_ID is required"),
        (["x" * 201, "--reason", "typo"], "EVENT_ID is longer than 200 characters"),
    ],
)
def test_mistakes_are_one_line_exit_2_and_change_nothing(
    database: str, engine: Engine, args: list[str], message: str
) -> None:
    result = run(database, "event", "retract", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr
    with engine.connect() as connection:
        assert (
            connection.execute(
                select(custody_events.c.retracted_at).where(
                    custody_events.c.event_id == "rel-wrong"
                )
            ).scalar_one()
            is None
        )
