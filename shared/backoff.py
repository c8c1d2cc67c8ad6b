"""When to try again: one backoff policy for every retry and hold, or what the server asked."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import wait_exponential

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_FIRST_POLL_RETRY = 30.0


class Backoff:
    """Exponential backoff with full jitter: retry n (1-based) waits U(0, min(cap, base·2^(n-1))).

    The ceiling is tenacity's exponential strategy; the jitter draws from a
    `random.Random` of the caller's (tenacity's random strategies use the
    module's generator, which a test cannot seed per policy). Full jitter
    spreads the retries of many clients that failed together, so replicas
    held by the same outage do not come back in step.
    """

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self._ceiling = wait_exponential(multiplier=base, max=cap)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def delay(self, attempt: int) -> float:
        ceiling = float(self._ceiling(_Attempt(max(attempt, 1))))  # type: ignore[arg-type]
        return self._rng.uniform(0, ceiling)


@dataclass(frozen=True)
class _Attempt:
    """The one field of tenacity's RetryCallState that its wait strategies read."""

    attempt_number: int


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


def retry_poll_in(failures: int, interval: float, rng: random.Random) -> float:
    """Seconds before polling a source again after `failures` failed polls in a row.

    From 30 s, doubling, up to the source's interval: a passing fault costs
    little, a lasting one no more requests than a healthy source. Half of it is
    jittered, so the sources that failed together (Redis away) come back apart.
    """
    ceiling = min(interval, _FIRST_POLL_RETRY * 2.0 ** min(failures - 1, 32))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
