"""The two-sided Mann-Whitney U test, for telling two samples of timings apart.

The normal approximation with tie and continuity corrections, as
`scipy.stats.mannwhitneyu(x, y, method="asymptotic")` computes it; with thousands of
timings a sample, that is the method scipy itself would choose. Written out here so that
the benchmarks need nothing beyond the project's own dependencies.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RankTest:
    """U of the first sample, and the two-sided p-value that both come from one
    distribution (small: one tends to be larger than the other)."""

    u: float
    p_value: float


def mann_whitney_u(first: Sequence[float], second: Sequence[float]) -> RankTest:
    n1, n2 = len(first), len(second)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    pooled = sorted([(value, 0) for value in first] + [(value, 1) for value in second])
    n = n1 + n2
    first_rank_sum = 0.0
    ties = 0.0  # sum of t^3 - t over groups of t equal values
    start = 0
    while start < n:
        end = start
        while end + 1 < n and pooled[end + 1][0] == pooled[start][0]:
            end += 1
        rank = (start + end) / 2 + 1  # ranks start at 1; equal values share their mean
        size = end - start + 1
        ties += size**3 - size
        first_rank_sum += rank * sum(1 for i in range(start, end + 1) if pooled[i][1] == 0)
        start = end + 1
    u1 = first_rank_sum - n1 * (n1 + 1) / 2
    u = max(u1, n1 * n2 - u1)
    mean = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return RankTest(u1, 1.0)  # every value equal: nothing tells the samples apart
    z = (u - mean - 0.5) / math.sqrt(variance)
    return RankTest(u1, min(1.0, max(0.0, math.erfc(z / math.sqrt(2)))))
