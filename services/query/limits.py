"""Per-client rate limiting and a short-lived response cache, both in process memory.

Both take the time as an argument, so their rules are tested without clocks.
They hold at most `max_keys` entries and drop the least recently used, so a
flood of distinct clients or queries cannot grow the process without bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token bucket per client: `rate` requests a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def acquire(self, client: str, now: float) -> float:
        """0 when the request may go on, else the seconds until it would be allowed."""
        bucket = self._buckets.pop(client, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[client] = bucket
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


class TtlCache(Generic[V]):
    """Values kept for `seconds`; a `seconds` of 0 keeps nothing."""

    def __init__(self, seconds: float, max_keys: int = 1_000) -> None:
        self.seconds = seconds
        self.max_keys = max_keys
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def get(self, key: Hashable, now: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: Hashable, value: V, now: float) -> None:
        if self.seconds <= 0:
            return
        self._entries[key] = (now + self.seconds, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
