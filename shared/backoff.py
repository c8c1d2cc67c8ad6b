"""When to try a fetch again: exponential backoff with jitter, or what the server asked."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_FIRST_POLL_RETRY = 30.0


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before retry number `attempt` (1-based): "full jitter" over base·2^(attempt-1).

    Full jitter spreads the retries of many clients that failed together.
    """
    return rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """The Retry-After header as seconds from `now`: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def retry_poll_in(failures: int, interval: float, rng: random.Random) -> float:
    """Seconds before polling a source again after `failures` failed polls in a row.

    From 30 s, doubling, up to the source's interval: a passing fault costs
    little, a lasting one no more requests than a healthy source. Half of it is
    jittered, so the sources that failed together (Redis away) come back apart.
    """
    ceiling = min(interval, _FIRST_POLL_RETRY * 2.0 ** min(failures - 1, 32))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
