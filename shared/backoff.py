"""When to try again: one backoff policy for every retry and hold, or what the server asked."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# A source or provider whose poll failed is polled again from this many seconds,
# doubling up to its own interval: a passing fault costs little, a lasting one no
# more requests than a healthy source.
POLL_RETRY_FIRST = 30.0


class Backoff:
    """Retry n (1-based) waits between half and all of min(cap, first·2^(n-1)), at random.

    Doubling keeps a lasting fault cheap. The random half ("equal jitter")
    spreads the retries of clients that failed together (replicas held by one
    outage, sources that failed while Redis was away, services that fell at
    once) so that they do not come back in step; the fixed half means a retry
    is never immediate, so nothing spins. `rng` is the caller's, so that a test
    can seed one policy.
    """

    def __init__(self, first: float, cap: float, rng: random.Random | None = None) -> None:
        self.first = first
        self.cap = cap
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.first * 2.0 ** min(max(attempt, 1) - 1, 64))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)


def retry_after_seconds(value: str | None, now: datetime, cap: float) -> float | None:
    """The Retry-After header as seconds from `now`, at most `cap`: delta-seconds (ASCII
    digits only) or an HTTP date; None for anything else.

    A server's header is not trusted with how long a worker waits: `99999999999`
    would defer its host for millennia, and `²` passes str.isdigit() but not int().
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return capped_seconds(float(value[:12]), cap)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return capped_seconds((moment - now).total_seconds(), cap)


def capped_seconds(value: float, cap: float) -> float:
    """A delay a remote party asked for (Retry-After, Crawl-delay), within [0, cap]:
    NaN and negatives are 0, infinity is `cap`."""
    if math.isnan(value) or value <= 0:
        return 0.0
    return min(value, cap)
