"""When traffic moves away from a provider, and when it comes back."""

from datetime import UTC, datetime, timedelta

import pytest

from safevine.domain.provider_health import FailoverRules, ProviderHealth

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
RULES = FailoverRules(minimum=10)


def health(*names: str) -> ProviderHealth:
    return ProviderHealth(list(names or ("a", "b")), RULES)


def test_traffic_goes_to_the_first_provider_while_it_is_well() -> None:
    h = health()
    for second in range(30):
        h.record_send("a", failed=second % 10 == 9, now=NOW + timedelta(seconds=second))
    assert h.choose(NOW + timedelta(minutes=1)) == "a"
    assert h.demoted(NOW + timedelta(minutes=1)) == {}


def test_too_many_failed_sends_move_traffic_to_the_next_and_it_comes_back_after_its_rest() -> None:
    h = health()
    demotions = [h.record_send("a", failed=True, now=NOW) for _ in range(10)]
    # Not before the minimum: nine failures of nine are too few to judge by.
    assert demotions[:9] == [None] * 9
    demotion = demotions[9]
    assert demotion is not None and demotion.provider == "a"
    assert demotion.until == NOW + RULES.rest and "10 of 10 sends failed" in demotion.reason
    assert h.choose(NOW) == "b"
    assert h.order(NOW) == ["b", "a"]
    later = NOW + RULES.rest
    assert h.choose(later) == "a"
    # A clean slate: its old failures do not demote it again at the next send.
    assert h.record_send("a", failed=True, now=later) is None


def test_failures_older_than_the_window_do_not_count() -> None:
    h = health()
    for _ in range(9):
        h.record_send("a", failed=True, now=NOW)
    for second in range(1, 60):
        h.record_send("a", failed=False, now=NOW + RULES.window + timedelta(seconds=second))
    assert h.record_send("a", failed=True, now=NOW + RULES.window + timedelta(minutes=1)) is None
    assert h.choose(NOW + RULES.window + timedelta(minutes=1)) == "a"


def test_late_receipts_demote_a_provider_as_notify_does() -> None:
    h = health()
    # 15% of texts in the window without a receipt within five minutes.
    assert h.record_receipts("a", taken=100, slow=14, now=NOW) is None
    demotion = h.record_receipts("a", taken=100, slow=15, now=NOW)
    assert demotion is not None and "15 of 100" in demotion.reason
    assert h.choose(NOW) == "b"


def test_a_lone_provider_is_never_moved_out_of_the_way() -> None:
    h = health("only")
    for _ in range(50):
        assert h.record_send("only", failed=True, now=NOW) is None
    assert h.choose(NOW, avoid="only") == "only"


def test_a_retry_avoids_the_provider_that_failed_it_if_another_is_well() -> None:
    h = health("a", "b", "c")
    assert h.choose(NOW, avoid="a") == "b"
    for _ in range(10):
        h.record_send("b", failed=True, now=NOW)
    assert h.choose(NOW, avoid="a") == "c"
    # When every other rests, the one that failed is still better than none.
    for _ in range(10):
        h.record_send("c", failed=True, now=NOW)
    assert h.choose(NOW, avoid="a") == "a"


def test_when_all_rest_the_one_back_soonest_is_used() -> None:
    h = health()
    for _ in range(10):
        h.record_send("a", failed=True, now=NOW)
    for _ in range(10):
        h.record_send("b", failed=True, now=NOW + timedelta(minutes=1))
    assert h.order(NOW + timedelta(minutes=2)) == ["a", "b"]


def test_unknown_providers_are_ignored() -> None:
    assert health().record_send("gone", failed=True, now=NOW) is None


def test_rules_come_from_the_environment_and_nonsense_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAFEVINE_FAILOVER_SLOW_PERCENT", "20")
    monkeypatch.setenv("SAFEVINE_FAILOVER_REST_MINUTES", "3")
    rules = FailoverRules.from_env()
    assert (rules.slow_share, rules.rest, rules.window) == (
        0.2,
        timedelta(minutes=3),
        timedelta(minutes=15),
    )
    monkeypatch.setenv("SAFEVINE_FAILOVER_FAILED_PERCENT", "150")
    with pytest.raises(ValueError, match="SAFEVINE_FAILOVER_FAILED_PERCENT"):
        FailoverRules.from_env()
