"""When to try a failed delivery again: exponential backoff with full jitter, then give up."""

import random
from datetime import timedelta

BASE = timedelta(seconds=30)
CAP = timedelta(hours=1)
MAX_ATTEMPTS = 8


def next_delay(
    attempts: int, rng: random.Random | None = None, base: timedelta = BASE
) -> timedelta | None:
    """Delay before the next try after `attempts` failed ones; None once the cap is reached.

    Full jitter spreads retries from many workers so a recovering provider is not hit
    by all of them at once.
    """
    if attempts >= MAX_ATTEMPTS:
        return None
    ceiling = min(CAP, base * (2 ** max(0, attempts - 1)))
    fraction = (rng or random).uniform(0.5, 1.0)
    delay: timedelta = ceiling * fraction
    return delay
