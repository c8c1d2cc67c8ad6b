"""Periodic upkeep of the streams: stream metrics, retention, idle consumers.

Retention trims by MINID, never by count: an entry is removed only once it is
older than the retention period AND every consumer group of the stream (ours
and anyone else's) has had it delivered and acknowledged. So trimming never
drops an entry still pending or not yet read, and the retained window is what
`caravan reindex --from-streams` can replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from services.indexer import metrics
from shared.consumer import parse_id
from shared.settings import IndexerSettings
from shared.streams import Streams

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class GroupState:
    name: str
    last_delivered: str
    pending: int
    oldest_pending: str | None
    lag: int | None


def trim_floor(now_ms: int, retention_ms: int, groups: list[GroupState]) -> str:
    """The MINID below which entries may go: old enough, and settled for every group."""
    floor = (max(now_ms - retention_ms, 0), 0)
    for group in groups:
        floor = min(floor, parse_id(group.last_delivered))
        if group.oldest_pending is not None:
            floor = min(floor, parse_id(group.oldest_pending))
    return f"{floor[0]}-{floor[1]}"


def pending_age_seconds(oldest_pending: str | None, now_ms: int) -> float:
    if oldest_pending is None:
        return 0.0
    return max(now_ms - parse_id(oldest_pending)[0], 0) / 1000


@dataclass(frozen=True)
class StreamState:
    length: int
    groups: list[GroupState]


class Upkeep:
    def __init__(self, redis: Redis, streams: Streams, settings: IndexerSettings) -> None:
        self._redis = redis
        self._streams = streams
        self._settings = settings
        self.snapshot: dict[str, Any] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        next_trim = 0.0
        while not stopping.is_set():
            try:
                states = {s: await self.stream_state(s) for s in self._streams.consumed}
                dead_letters = int(await self._redis.xlen(self._streams.deadletters))
                metrics.DEADLETTER_COUNT.set(dead_letters)
                self.snapshot = {"streams": self._publish_metrics(states),
                                 "deadletters": dead_letters}
                if time.monotonic() >= next_trim:
                    next_trim = time.monotonic() + self._settings.trim_interval
                    await self.trim(states)
            except RedisError as exc:
                log.warning("stream upkeep failed, will retry", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self._settings.stats_interval)

    async def stream_state(self, stream: str) -> StreamState:
        length = int(await self._redis.xlen(stream))
        try:
            raw: list[dict[str, Any]] = await self._redis.xinfo_groups(stream)
        except ResponseError:  # no such stream yet
            return StreamState(length, [])
        groups = []
        for info in raw:
            name = _text(info["name"])
            oldest = None
            if info["pending"]:
                summary: dict[str, Any] = await self._redis.xpending(stream, name)
                oldest = _text(summary["min"]) if summary.get("min") else None
            groups.append(GroupState(name, _text(info["last-delivered-id"]),
                                     int(info["pending"]), oldest,
                                     None if info.get("lag") is None else int(info["lag"])))
        return StreamState(length, groups)

    async def trim(self, states: dict[str, StreamState]) -> None:
        now_ms = int(time.time() * 1000)
        retention_ms = int(self._settings.retention_hours * 3_600_000)
        for stream, state in states.items():
            floor = trim_floor(now_ms, retention_ms, state.groups)
            removed = await self._redis.xtrim(stream, minid=floor, approximate=True)
            if removed:
                log.info("stream trimmed", stream=stream, removed=removed, below=floor)
        # Dead letters have no consumer group: only the retention period applies.
        cutoff = max(now_ms - retention_ms, 0)
        await self._redis.xtrim(self._streams.deadletters, minid=f"{cutoff}-0", approximate=True)

    def _publish_metrics(self, states: dict[str, StreamState]) -> dict[str, Any]:
        """Set the gauges; return our group's figures per stream for /readyz."""
        now_ms = int(time.time() * 1000)
        snapshot: dict[str, Any] = {}
        for stream, state in states.items():
            metrics.STREAM_LENGTH.labels(stream).set(state.length)
            for group in state.groups:
                age = pending_age_seconds(group.oldest_pending, now_ms)
                metrics.PENDING.labels(stream, group.name).set(group.pending)
                metrics.OLDEST_PENDING_SECONDS.labels(stream, group.name).set(age)
                if group.lag is not None:
                    metrics.LAG.labels(stream, group.name).set(group.lag)
                if group.name == self._settings.group:
                    snapshot[stream] = {"pending": group.pending, "lag": group.lag,
                                        "oldest_pending_seconds": round(age, 1)}
        return snapshot


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
