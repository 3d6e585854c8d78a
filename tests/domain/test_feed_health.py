"""The feed health rule: a facility through current, late, down and recovered on a clock
the test moves; an unchanged roster that hides stopped events; staff holds; cadences
learned from history within bounds."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safevine.domain.feed_health import (
    Arrivals,
    Cadence,
    Health,
    HealthRules,
    cadence_of,
    last_data,
    learned_cadence,
    state_of,
)

T0 = datetime(2026, 12, 5, tzinfo=UTC)
RULES = HealthRules()
HOUR = timedelta(hours=1)


def _state(arrivals: Arrivals, now: datetime, previous: Health | None = None) -> Health:
    return state_of(arrivals, Cadence(24 * HOUR, 12 * HOUR, RULES.down_after), now, previous)


def test_a_facility_goes_late_then_down_then_recovers() -> None:
    sent = Arrivals(last_roster=T0, last_roster_change=T0, last_event=T0)
    assert _state(sent, T0 + 35 * HOUR) == Health.CURRENT  # the roster is within 3 days
    # Events are 3 cadences late (36 h), the roster not yet (72 h): still current.
    assert _state(sent, T0 + 37 * HOUR) == Health.CURRENT
    quiet_roster = Arrivals(last_roster=None, last_roster_change=None, last_event=T0)
    assert _state(quiet_roster, T0 + 37 * HOUR) == Health.LATE
    assert _state(sent, T0 + 72 * HOUR) == Health.DOWN
    back = Arrivals(last_roster=T0 + 80 * HOUR, last_roster_change=T0 + 80 * HOUR, last_event=T0)
    assert _state(back, T0 + 81 * HOUR, previous=Health.DOWN) == Health.RECOVERED
    assert _state(back, T0 + 82 * HOUR, previous=Health.RECOVERED) == Health.CURRENT


def test_an_unchanged_roster_does_not_hide_stopped_events() -> None:
    # The roster still arrives every day, the same each time, and no event for 3 days.
    stale = Arrivals(last_roster=T0 + 71 * HOUR, last_roster_change=T0, last_event=T0)
    assert _state(stale, T0 + 72 * HOUR) == Health.DOWN
    # A roster that changes is a live feed, events or not.
    live = Arrivals(last_roster=T0 + 71 * HOUR, last_roster_change=T0 + 71 * HOUR, last_event=T0)
    assert _state(live, T0 + 72 * HOUR) == Health.CURRENT


def test_staff_holds_win_and_silence_is_not_judged_before_anything_arrived() -> None:
    silent = Arrivals(last_roster=T0, last_roster_change=T0, last_event=T0)
    for held in (Health.PAUSED, Health.CLOSED):
        every_hour = Cadence(HOUR, HOUR, RULES.down_after)
        assert state_of(silent, every_hour, T0 + 999 * HOUR, None, held) == held
    assert _state(Arrivals(None, None, None), T0 + 999 * HOUR) == Health.CURRENT


def test_a_cadence_is_learned_from_the_typical_gap_within_bounds() -> None:
    every_six = [T0 + n * 6 * HOUR for n in range(6)]
    assert learned_cadence(every_six, 24 * HOUR, RULES) == 6 * HOUR
    # One long outage among them does not move the median.
    assert learned_cadence([*every_six, T0 + 200 * HOUR], 24 * HOUR, RULES) == 6 * HOUR
    assert learned_cadence(every_six[:3], 24 * HOUR, RULES) == 24 * HOUR  # too little
    # Many events in one delivery teach nothing; deliveries minutes apart teach the floor.
    burst = [T0 + n * timedelta(seconds=10) for n in range(10)]
    assert learned_cadence(burst, 24 * HOUR, RULES) == 24 * HOUR
    hurried = [T0 + n * timedelta(minutes=2) for n in range(10)]
    assert learned_cadence(hurried, 24 * HOUR, RULES) == RULES.shortest
    sparse = [T0 + n * timedelta(days=30) for n in range(6)]
    assert learned_cadence(sparse, 24 * HOUR, RULES) == RULES.longest


def test_the_rules_come_from_the_environment_and_refuse_nonsense(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAFEVINE_FEED_DOWN_AFTER_HOURS", "48")
    assert HealthRules.from_env().down_after == 48 * HOUR
    for bad in ("0", "-3", "1e9"):
        monkeypatch.setenv("SAFEVINE_FEED_DOWN_AFTER_HOURS", bad)
        with pytest.raises(ValueError, match="SAFEVINE_FEED_DOWN_AFTER_HOURS"):
            HealthRules.from_env()


@given(
    roster=st.none() | st.integers(0, 500),
    change=st.integers(0, 500),
    event=st.none() | st.integers(0, 500),
    later=st.integers(0, 1000),
)
def test_more_silence_never_makes_a_facility_healthier(
    roster: int | None, change: int, event: int | None, later: int
) -> None:
    """Moving the clock on, with nothing new arriving, never turns late into current or
    down into late."""
    arrivals = Arrivals(
        T0 + roster * HOUR if roster is not None else None,
        T0 + min(change, roster) * HOUR if roster is not None else None,
        T0 + event * HOUR if event is not None else None,
    )
    now = T0 + 500 * HOUR
    rank = {Health.CURRENT: 0, Health.LATE: 1, Health.DOWN: 2}
    before = _state(arrivals, now)
    after = _state(arrivals, now + later * HOUR)
    assert rank[after] >= rank[before]


def test_a_set_cadence_wins_over_history_and_down_after_can_be_set_per_facility() -> None:
    every_six = [T0 + n * 6 * HOUR for n in range(6)]
    learned = cadence_of(every_six, every_six, RULES)
    assert (learned.roster_every, learned.events_every, learned.learned) == (
        6 * HOUR,
        6 * HOUR,
        True,
    )
    minute = timedelta(minutes=1)
    demo = cadence_of(every_six, every_six, RULES, minute, minute, 5 * minute)
    assert demo == Cadence(minute, minute, 5 * minute, learned=False)
    sent = Arrivals(T0, T0, T0)
    assert state_of(sent, demo, T0 + 2 * minute) == Health.CURRENT
    assert state_of(sent, demo, T0 + 3 * minute) == Health.LATE
    assert state_of(sent, demo, T0 + 5 * minute) == Health.DOWN


def test_last_received_is_the_freshest_sign_of_life_the_judgement_counts() -> None:
    cadence = Cadence(24 * HOUR, 12 * HOUR, RULES.down_after)
    stale = Arrivals(last_roster=T0 + 71 * HOUR, last_roster_change=T0, last_event=T0)
    # The roster kept arriving unchanged after events stopped: it proves nothing.
    assert last_data(stale, cadence, T0 + 72 * HOUR) == T0
    live = Arrivals(last_roster=T0 + 71 * HOUR, last_roster_change=T0, last_event=T0 + 70 * HOUR)
    assert last_data(live, cadence, T0 + 72 * HOUR) == T0 + 71 * HOUR
    assert last_data(Arrivals(None, None, None), cadence, T0) is None
