"""Every facility's feed health evaluated on both databases: silence makes a facility late
then down, a new arrival recovers it, each change is recorded and audited, and a facility
staff paused raises nothing."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, text

from safevine.domain.feed_health import Health, HealthRules
from safevine.ingest.events import ingest_events
from safevine.store.records import feed_health
from safevine.store.schema import audit_log, facilities, facility_health_changes
from tests.builders import days_ago, event, jsonl, person
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
