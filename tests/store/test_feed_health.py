"""Every facility's feed health evaluated on both databases: silence makes a facility late
then down, a new arrival recovers it, each change is recorded and audited, and a facility
staff paused raises nothing."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text

from safevine.domain.feed_health import Health, HealthRules
from safevine.ingest.events import ingest_events
from safevine.store.records import feed_health
from safevine.store.schema import (
    audit_log,
    facilities,
    facility_health,
    facility_health_changes,
)
from tests.builders import days_ago, event, jsonl, load_facilities, person
from tests.canaries import PUBLIC, plant

RULES = HealthRules()


def _age_everything(engine: Engine, hours: float) -> None:
    """As if everything arrived `hours` earlier than it did."""
    with engine.begin() as c:
        c.execute(
            text("UPDATE custody_events SET received_at = :t"),
            {"t": datetime.now(UTC) - timedelta(hours=hours)},
        )


def _evaluate(engine: Engine) -> dict[str, Health]:
    with engine.begin() as c:
        changes = feed_health.evaluate(c, datetime.now(UTC), RULES).changes
    return {change.code: change.after for change in changes}


def _send(engine: Engine, event_id: str) -> None:
    who = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country="MX")
    ingest_events(
        engine, jsonl(event(event_id, "transferred", days_ago(0.01), who)), source="f", fmt="jsonl"
    )


def test_silence_makes_a_facility_late_then_down_and_data_recovers_it(engine: Engine) -> None:
    plant(engine)
    assert _evaluate(engine) == {}  # current, and nothing to say
    _age_everything(engine, 40)
    assert _evaluate(engine) == {"F1": Health.LATE}
    assert _evaluate(engine) == {}  # no change, no second record
    _age_everything(engine, 80)
    assert _evaluate(engine) == {"F1": Health.DOWN}
    _send(engine, "back-1")
    assert _evaluate(engine) == {"F1": Health.RECOVERED}
    assert _evaluate(engine) == {"F1": Health.CURRENT}
    with engine.connect() as c:
        recorded = c.execute(
            select(
                facility_health_changes.c.from_state, facility_health_changes.c.to_state
            ).order_by(facility_health_changes.c.id)
        ).all()
        audited = (
            c.execute(select(audit_log.c.reason).where(audit_log.c.action == "feed_health"))
            .scalars()
            .all()
        )
    assert [tuple(r) for r in recorded] == [
        ("current", "late"),
        ("late", "down"),
        ("down", "recovered"),
        ("recovered", "current"),
    ]
    assert audited == [
        "current -> late",
        "late -> down",
        "down -> recovered",
        "recovered -> current",
    ]


def test_a_facility_paused_by_staff_raises_nothing(engine: Engine) -> None:
    plant(engine)
    _evaluate(engine)
    with engine.begin() as c:
        f1 = c.execute(select(facilities.c.id).where(facilities.c.code == "F1")).scalar_one()
        feed_health.hold(c, "sue", f1, Health.PAUSED, "renovation", datetime.now(UTC))
    assert _evaluate(engine) == {}  # the hold itself recorded the change
    _age_everything(engine, 200)
    assert _evaluate(engine) == {}
    with engine.connect() as c:
        assert feed_health.counts(c) == {"paused": 1}


def _arrived(engine: Engine, count: int, every: timedelta, last: datetime, tag: str) -> None:
    """`count` events at F1, `every` apart, the last arriving at `last`."""
    who = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country="MX")
    records = [event(f"{tag}-{n}", "transferred", days_ago(1), who) for n in range(count)]
    ingest_events(engine, jsonl(*records), source=tag, fmt="jsonl")
    with engine.begin() as c:
        for n in range(count):
            c.execute(
                text("UPDATE custody_events SET received_at = :t WHERE event_id = :id"),
                {"t": last - (count - 1 - n) * every, "id": f"{tag}-{n}"},
            )


def _events_cadence(engine: Engine) -> tuple[int, bool]:
    with engine.connect() as c:
        row = c.execute(
            text("SELECT events_every_minutes, cadence_learned FROM facility_health")
        ).one()
    return int(row[0]), bool(row[1])


def test_a_cadence_is_learned_from_history_and_again_at_most_hourly(engine: Engine) -> None:
    plant(engine)
    now = datetime.now(UTC)
    _arrived(engine, 8, timedelta(hours=6), now - timedelta(minutes=5), "six")
    with engine.begin() as c:
        feed_health.evaluate(c, now, RULES)
    assert _events_cadence(engine) == (360, True)
    # The feed speeds up: new deliveries every 20 minutes.
    _arrived(engine, 8, timedelta(minutes=20), now + timedelta(minutes=30), "fast")
    with engine.begin() as c:
        feed_health.evaluate(c, now + timedelta(minutes=31), RULES)
    assert _events_cadence(engine) == (360, True)  # learned within the hour: kept
    with engine.begin() as c:
        feed_health.evaluate(c, now + timedelta(minutes=61), RULES)
    assert _events_cadence(engine) == (20, True)
    # A cadence staff set is used at once, and forgetting it learns again at once.
    with engine.begin() as c:
        f1 = c.execute(select(facilities.c.id).where(facilities.c.code == "F1")).scalar_one()
        set_both = {"events_every_minutes": 90, "roster_every_minutes": 1440}
        feed_health.set_cadence(c, "sue", f1, set_both, now + timedelta(minutes=61, seconds=30))
        feed_health.evaluate(c, now + timedelta(minutes=62), RULES)
    assert _events_cadence(engine) == (90, False)
    with engine.begin() as c:
        forget = {"events_every_minutes": None, "roster_every_minutes": None}
        feed_health.set_cadence(c, "sue", f1, forget, now + timedelta(minutes=63))
        feed_health.evaluate(c, now + timedelta(minutes=64), RULES)
    assert _events_cadence(engine) == (20, True)


def _learned_at(engine: Engine) -> dict[str, datetime]:
    with engine.connect() as c:
        rows = c.execute(
            select(facilities.c.code, facility_health.c.cadence_at).join(
                facility_health, facility_health.c.facility_id == facilities.c.id
            )
        ).all()
    return {code: at for code, at in rows}


def test_routine_relearning_is_spread_over_evaluations_the_longest_waiting_first(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Facilities learned together (the first evaluation) are not all read again in one
    later evaluation: at most `RELEARN_AT_ONCE` of them, then the next ones."""
    load_facilities(engine, "A", "B", "C")
    who = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country="MX")
    now = datetime.now(UTC)

    def deliver(tag: str, at: datetime) -> None:
        records = [event(f"{tag}-{code}", "transferred", days_ago(1), who, code) for code in "ABC"]
        ingest_events(engine, jsonl(*records), source=tag, fmt="jsonl")
        with engine.begin() as c:
            c.execute(
                text("UPDATE custody_events SET received_at = :t WHERE event_id LIKE :tag"),
                {"t": at, "tag": f"{tag}-%"},
            )

    deliver("first", now - timedelta(minutes=1))
    with engine.begin() as c:
        feed_health.evaluate(c, now, RULES)
    first = _learned_at(engine)
    assert set(first) == {"A", "B", "C"} and len(set(first.values())) == 1
    monkeypatch.setattr(feed_health, "RELEARN_AT_ONCE", 2)
    later = now + timedelta(minutes=70)
    deliver("second", later - timedelta(minutes=1))
    with engine.begin() as c:
        feed_health.evaluate(c, later, RULES)
    relearned = {code for code, at in _learned_at(engine).items() if at != first[code]}
    assert len(relearned) == 2
    with engine.begin() as c:
        feed_health.evaluate(c, later + timedelta(minutes=5), RULES)
    # The one put off is read next, before those just read.
    after = _learned_at(engine)
    assert {code for code in "ABC" if after[code] != first[code]} == {"A", "B", "C"}
    (waited,) = {"A", "B", "C"} - relearned
    assert after[waited] > max(after[code] for code in relearned)
