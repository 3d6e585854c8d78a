from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safevine.domain.event_kinds import CustodyState
from safevine.domain.protection import Protection, feed_protection_change
from safevine.domain.publication import age_on, is_public

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ADULT = date(1990, 5, 1)


def public(**changes: object) -> bool:
    facts: dict[str, object] = {
        "protection": Protection.CLEARED,
        "date_of_birth": ADULT,
        "state": CustodyState.IN_CUSTODY,
        "left_custody_at": None,
        "now": NOW,
        "retention_days": 60,
    }
    facts.update(changes)
    return is_public(**facts)  # type: ignore[arg-type]


def test_a_cleared_adult_in_custody_is_public() -> None:
    assert public()


@pytest.mark.parametrize("protection", [Protection.UNSCREENED, Protection.PROTECTED])
def test_unscreened_and_protected_are_never_public(protection: Protection) -> None:
    assert not public(protection=protection)


@pytest.mark.parametrize(
    ("birth", "expected"),
    [
        (date(2008, 11, 26), False),  # 17, turns 18 tomorrow
        (date(2008, 11, 25), True),  # 18 today
        (date(2008, 11, 24), True),
        (None, False),  # unknown date of birth fails closed
    ],
)
def test_age_boundary(birth: date | None, expected: bool) -> None:
    assert public(date_of_birth=birth) is expected


@pytest.mark.parametrize(("days", "expected"), [(59, True), (60, False), (61, False)])
def test_retention_boundary(days: int, expected: bool) -> None:
    assert (
        public(state=CustodyState.RELEASED, left_custody_at=NOW - timedelta(days=days)) is expected
    )


def test_no_custody_record_is_not_public() -> None:
    assert not public(state=None)


def test_leap_day_birthdays_come_on_the_first_of_march() -> None:
    born = date(2008, 2, 29)
    assert age_on(born, date(2026, 2, 28)) == 17
    assert age_on(born, date(2026, 3, 1)) == 18


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 1, 1)),
    st.dates(min_value=date(2026, 1, 1), max_value=date(2100, 1, 1)),
)
def test_age_matches_calendar_years(born: date, day: date) -> None:
    years = age_on(born, day)
    assert years >= 0
    anniversary_month_day = (born.month, born.day)
    assert years == day.year - born.year - ((day.month, day.day) < anniversary_month_day)


@given(st.sampled_from(list(Protection)), st.sampled_from(list(Protection)))
def test_a_feed_protects_always_and_never_unprotects(
    current: Protection, asserted: Protection
) -> None:
    after = feed_protection_change(current, asserted)
    result = after or current
    if asserted == Protection.PROTECTED:
        assert result == Protection.PROTECTED
    if current == Protection.PROTECTED:
        assert result == Protection.PROTECTED
    if asserted == Protection.UNSCREENED:
        assert after is None
