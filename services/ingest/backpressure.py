"""Slow down when the articles stream's consumers fall behind.

Publishing into a stream nobody drains only grows Redis until it is trimmed
(and the trimmed entries are lost to the indexer), so ingest waits instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.ingest import metrics

log = structlog.get_logger(__name__)


def worst_lag(groups: Sequence[Mapping[str, Any]]) -> int:
    """Entries the slowest group has yet to read (XINFO GROUPS `lag`, Redis 7+).

    `lag` is unknown (nil) after deletions or trimming; the group's pending
    count is then the best lower bound at hand.
    """
    lags = [int(g["lag"]) if g.get("lag") is not None else int(g.get("pending") or 0)
            for g in groups]
    return max(lags, default=0)


class Backpressure:
    def __init__(self, redis: Redis, stream: str, max_lag: int, pause: float = 1.0) -> None:
        self._redis = redis
        self._stream = stream
        self._max_lag = max_lag
        self._pause = pause

    async def lag(self) -> int:
        try:
            raw = await self._redis.xinfo_groups(self._stream)
        except ResponseError:  # no stream yet: nothing waits
            return 0
        groups = [{_text(k): v for k, v in group.items()} for group in raw]
        return worst_lag(groups)

    async def wait(self) -> None:
        """Return once the slowest consumer group is within `max_lag` entries."""
        lag = await self.lag()
        metrics.STREAM_LAG.set(lag)
        if lag <= self._max_lag:
            return
        metrics.BACKPRESSURE_WAITS.inc()
        log.warning("consumers behind, ingest paused", stream=self._stream, lag=lag,
                    max_lag=self._max_lag)
        while lag > self._max_lag:
            await asyncio.sleep(self._pause)
            lag = await self.lag()
            metrics.STREAM_LAG.set(lag)
        log.info("consumers caught up, ingest resumed", stream=self._stream, lag=lag)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
