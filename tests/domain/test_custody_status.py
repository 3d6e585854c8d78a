from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from safevine.domain.custody_status import StatusEvent, advance, derive_status
from safevine.domain.event_kinds import CustodyState, EventKind, state_after

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)

events = st.builds(
    StatusEvent,
    event_id=st.text(alphabet="abcdef0123", min_size=1, max_size=6),
    kind=st.sampled_from(list(EventKind)),
    occurred_at=st.integers(0, 20).map(lambda h: T0 + timedelta(hours=h)),
    sequence=st.integers(0, 3),
    facility_code=st.sampled_from([None, "F1", "F2", "F3"]),
)
histories = st.lists(events, max_size=12, unique_by=lambda e: e.event_id)


def ev(
    event_id: str, kind: EventKind, hours: int, sequence: int = 0, facility: str | None = "F1"
) -> StatusEvent:
    return StatusEvent(event_id, kind, T0 + timedelta(hours=hours), sequence, facility)


def test_newest_event_decides() -> None:
    status = derive_status([ev("a", EventKind.BOOKED, 0), ev("b", EventKind.RELEASED, 5)])
    assert status is not None and status.state == CustodyState.RELEASED
    assert status.left_custody_at == T0 + timedelta(hours=5)


def test_a_late_event_never_overrides_a_newer_one() -> None:
    status = advance(None, ev("b", EventKind.RELEASED, 5))
    after_late = advance(status, ev("a", EventKind.TRANSFERRED, 1, facility="F2"))
    assert after_late is status


def test_ties_break_by_source_sequence() -> None:
    booked = ev("z", EventKind.BOOKED, 3, sequence=1)
    released = ev("a", EventKind.RELEASED, 3, sequence=2)
    assert derive_status([released, booked]).state == CustodyState.RELEASED  # type: ignore[union-attr]
    assert derive_status([booked, released]).state == CustodyState.RELEASED  # type: ignore[union-attr]


def test_hearing_moves_nobody() -> None:
    status = derive_status([ev("a", EventKind.BOOKED, 0), ev("h", EventKind.HEARING_SCHEDULED, 9)])
    assert status is not None and status.state == CustodyState.IN_CUSTODY and status.event_id == "a"


def test_transfer_moves_to_the_new_facility() -> None:
    status = derive_status(
        [ev("a", EventKind.BOOKED, 0), ev("t", EventKind.TRANSFERRED, 2, facility="F2")]
    )
    assert status is not None and status.facility_code == "F2" and status.left_custody_at is None


@given(histories, st.randoms())
def test_any_arrival_order_gives_the_same_status(history: list[StatusEvent], rng: object) -> None:
    shuffled = list(history)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert derive_status(shuffled) == derive_status(history)


@given(histories)
def test_status_is_that_of_the_greatest_moving_event(history: list[StatusEvent]) -> None:
    moving = [e for e in history if state_after(e.kind) is not None]
    status = derive_status(history)
    if not moving:
        assert status is None
    else:
        newest = max(moving, key=lambda e: e.order_key)
        assert status is not None
        assert (status.event_id, status.state) == (newest.event_id, state_after(newest.kind))


@given(histories, events)
def test_replaying_an_event_changes_nothing(history: list[StatusEvent], extra: StatusEvent) -> None:
    status = derive_status([*history, extra])
    assert advance(status, extra) == status
