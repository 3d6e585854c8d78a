"""The Mann-Whitney U test the timing benchmark reports, against scipy's figures.

The expected values are `scipy.stats.mannwhitneyu(x, y, alternative="two-sided",
method="asymptotic")` (scipy 1.17) for the same samples."""

import random

import pytest
from bench.rank_test import mann_whitney_u


def _gauss_rounded() -> tuple[list[float], list[float]]:
    rng = random.Random(7)
    first = [float(round(rng.gauss(100, 10))) for _ in range(400)]
    second = [float(round(rng.gauss(101.5, 10))) for _ in range(500)]
    return first, second


@pytest.mark.parametrize(
    ("first", "second", "u", "p_value"),
    [
        ([1.0, 2, 3, 4, 5], [6.0, 7, 8, 9, 10], 0.0, 0.012185780355344813),
        ([1.0, 2, 2, 3, 3, 3, 4], [2.0, 3, 3, 4, 4, 5, 5, 6], 11.0, 0.04988443697992588),
        ([10.0, 12, 11, 15, 9, 13], [11.0, 14, 16, 12, 17, 18, 15], 7.5, 0.062203336674775296),
        (*_gauss_rounded(), 91454.0, 0.027354543918511078),
    ],
    ids=["apart", "ties", "overlap", "many-ties"],
)
def test_the_test_agrees_with_scipy(
    first: list[float], second: list[float], u: float, p_value: float
) -> None:
    found = mann_whitney_u(first, second)
    assert found.u == u
    assert found.p_value == pytest.approx(p_value, rel=1e-9)


def test_it_is_symmetric_and_finds_nothing_in_one_sample() -> None:
    first, second = _gauss_rounded()
    assert mann_whitney_u(first, second).p_value == pytest.approx(
        mann_whitney_u(second, first).p_value, rel=1e-12
    )
    assert mann_whitney_u(first, list(first)).p_value == 1.0
    assert mann_whitney_u([3.0, 3.0], [3.0, 3.0, 3.0]).p_value == 1.0


def test_empty_samples_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        mann_whitney_u([], [1.0])
