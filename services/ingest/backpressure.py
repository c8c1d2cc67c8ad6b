"""Slow down when the articles stream's consumers fall behind.

Publishing into a stream nobody drains only grows Redis until it is trimmed
(and the trimmed entries are lost to the indexer), so ingest waits instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import structlog
from redis.asyncio import Redis

from services.ingest import metrics
from shared.groups import read_groups, worst_lag

log = structlog.get_logger(__name__)

# Reading the lag before every article would cost a round trip each. After a reading
# that found room, that many articles go on without one: half the room (other
# replicas publish into it too), never more than this.
_UNREAD_MOST = 100


def unread_allowance(lag: int, max_lag: int) -> int:
    """Articles that may be published before the lag is read again, after a reading of `lag`."""
    return max(0, min((max_lag - lag) // 2, _UNREAD_MOST))


class Backpressure:
    """Pauses while the slowest configured consumer group is more than `max_lag` behind.

    Only the groups in `CARAVAN_STREAM_GROUPS` (Caravan's own, by default the
    indexer) throttle ingest: a downstream team's outage must not stop the
    producer for everyone. Outside groups are measured and alerted on by the
    indexer's upkeep, and retention is the contract with them (docs/events.md).
    """

    def __init__(
        self,
        redis: Redis,
        stream: str,
        max_lag: int,
        configured: Collection[str],
        pause: float = 1.0,
    ) -> None:
        self._redis = redis
        self._stream = stream
        self._max_lag = max_lag
        self._configured = configured
        self._pause = pause
        self._allowance = 0
        # Articles in flight wait on one reading, not one each, and while paused one polls.
        self._reading = asyncio.Lock()

    async def lag(self) -> int:
        return worst_lag(await read_groups(self._redis, self._stream, only=self._configured))

    async def wait(self) -> None:
        """Return once the slowest configured consumer group is within `max_lag` entries
        (read again after at most `unread_allowance` articles)."""
        async with self._reading:
            if self._allowance > 0:
                self._allowance -= 1
                return
            lag = await self._within()
            self._allowance = unread_allowance(lag, self._max_lag)

    async def _within(self) -> int:
        lag = await self.lag()
        metrics.STREAM_LAG.set(lag)
        if lag <= self._max_lag:
            return lag
        metrics.BACKPRESSURE_WAITS.inc()
        log.warning(
            "consumers behind, ingest paused", stream=self._stream, lag=lag, max_lag=self._max_lag
        )
        while lag > self._max_lag:
            await asyncio.sleep(self._pause)
            lag = await self.lag()
            metrics.STREAM_LAG.set(lag)
        log.info("consumers caught up, ingest resumed", stream=self._stream, lag=lag)
        return lag
