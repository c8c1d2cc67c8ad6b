"""Periodic upkeep of the streams: stream metrics, retention, idle consumers, and the
ledger's notes of errors that outlived their entries.

Retention trims by MINID, never by count: an entry is removed only once it is
older than the retention period AND every live consumer group of the stream
(ours and anyone else's, see shared/groups.py) has had it delivered and
acknowledged. An abandoned group is reported, not obeyed. So trimming never
drops an entry still pending or not yet read, and the retained window is what
`caravan reindex --from-streams` can replay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis

from services.indexer import metrics
from services.indexer.ledger import notes_key, settled_notes
from shared.clients import REDIS_AWAY, redis_trouble
from shared.consumer import parse_id, redis_text, wait_or_stop
from shared.groups import GroupState, read_groups, split_groups, trim_floor, trimmed_unread
from shared.settings import IndexerSettings
from shared.streams import Streams

log = structlog.get_logger(__name__)


def pending_age_seconds(oldest_pending: str | None, now_ms: int) -> float:
    if oldest_pending is None:
        return 0.0
    return max(now_ms - parse_id(oldest_pending)[0], 0) / 1000


@dataclass(frozen=True)
class StreamState:
    length: int
    groups: list[GroupState]
    first_entry: str | None = None
    # Entries the stream ever lost from its head (trimmed): added minus those left.
    removed: int = 0


class Upkeep:
    def __init__(
        self,
        redis: Redis,
        streams: Streams,
        settings: IndexerSettings,
        configured_groups: Collection[str],
        abandon_after_ms: int,
    ) -> None:
        self._redis = redis
        self._streams = streams
        self._settings = settings
        self._configured = {*configured_groups, settings.group}
        self._abandon_after_ms = abandon_after_ms
        self._reported: set[tuple[str, str]] = set()
        # (stream, group) of the gauges set last time: those gone are removed.
        self._exported: set[tuple[str, str]] = set()
        # (stream, group): the group's last delivered entry and the entries found trimmed
        # unread then. Redis 7.0 keeps them in a group's count of unread entries after
        # it reads on, so a later gap counts them again: only what is above the figure
        # found before is new, and a lower figure counts afresh only once it read on.
        self._trimmed_unread: dict[tuple[str, str], tuple[str, int]] = {}
        self.snapshot: dict[str, Any] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        next_trim = 0.0
        while not stopping.is_set():
            try:
                # The matches stream is read by downstream groups alone: kept for them
                # as the others are, by age and never past a live group's position.
                watched = (*self._streams.consumed, self._streams.matches)
                states = {s: await self.stream_state(s) for s in watched}
                dead_letters = int(await self._redis.xlen(self._streams.deadletters))
                metrics.DEADLETTER_COUNT.set(dead_letters)
                self.snapshot = {
                    "streams": self._publish_metrics(states),
                    "deadletters": dead_letters,
                }
                self.report_trimmed_unread(states)
                if time.monotonic() >= next_trim:
                    next_trim = time.monotonic() + self._settings.trim_interval
                    await self.trim(states)
            except REDIS_AWAY as exc:
                log.warning(
                    f"stream upkeep failed, will retry: {redis_trouble(exc)}", error=str(exc)
                )
            await wait_or_stop(stopping, self._settings.stats_interval)

    async def stream_state(self, stream: str) -> StreamState:
        length = int(await self._redis.xlen(stream))
        groups = await read_groups(self._redis, stream)
        if not length:
            return StreamState(length, groups)
        info: dict[str, Any] = await self._redis.xinfo_stream(stream)
        # Emptied since XLEN, or a Redis before 7.0 (no entries-added): nothing to tell.
        first, added = info.get("first-entry"), info.get("entries-added")
        if not first or added is None:
            return StreamState(length, groups)
        # Its own length, read with entries-added at once: XLEN's, read before, was a
        # few entries short under publishing, and the next round's figure then dropped.
        removed = int(added) - int(info["length"])
        return StreamState(length, groups, redis_text(first[0]), removed)

    def report_trimmed_unread(self, states: dict[str, StreamState]) -> None:
        """Say when a MAXLEN cap (`CARAVAN_STREAM_MAXLEN`) trimmed entries a configured
        group had not read: the group goes on at the oldest entry left, and nothing else
        would tell. Each entry is counted once while this process runs."""
        for stream, state in states.items():
            for group in state.groups:
                if group.name not in self._configured:
                    continue
                # At 0 before any loss: an alert sees the increase of a series born with it.
                trimmed = metrics.TRIMMED_UNREAD.labels(stream, group.name)
                lost = trimmed_unread(group, state.first_entry, state.removed)
                if not lost:
                    continue
                seen_at, counted = self._trimmed_unread.get((stream, group.name), ("", 0))
                if lost >= counted:
                    new = lost - counted
                else:
                    # Below the figure found before: once the group read on, Redis counts
                    # afresh (it had to guess where the group was), and all of it is new.
                    new = lost if group.last_delivered != seen_at else 0
                self._trimmed_unread[(stream, group.name)] = (group.last_delivered, lost)
                if new:
                    trimmed.inc(new)
                    log.error(
                        "entries trimmed before the group read them: CARAVAN_STREAM_MAXLEN "
                        "is too low for how far behind it fell",
                        stream=stream,
                        group=group.name,
                        entries=new,
                        last_delivered=group.last_delivered,
                        first_entry=state.first_entry,
                    )

    async def trim(self, states: dict[str, StreamState]) -> None:
        now_ms = int(time.time() * 1000)
        retention_ms = int(self._settings.retention_hours * 3_600_000)
        for stream, state in states.items():
            live, _ = split_groups(state.groups, self._configured, self._abandon_after_ms)
            floor = trim_floor(now_ms, retention_ms, live)
            removed = await self._redis.xtrim(stream, minid=floor, approximate=True)
            if removed:
                log.info("stream trimmed", stream=stream, removed=removed, below=floor)
        # Dead letters have no consumer group: only the retention period applies.
        cutoff = max(now_ms - retention_ms, 0)
        await self._redis.xtrim(self._streams.deadletters, minid=f"{cutoff}-0", approximate=True)
        await self.forget_settled_notes(states)

    async def forget_settled_notes(self, states: dict[str, StreamState]) -> None:
        """The ledger's notes of errors that outlived their entries (ledger.settled_notes)."""
        ours = {
            stream: group
            for stream, state in states.items()
            for group in state.groups
            if group.name == self._settings.group
        }
        key = notes_key(self._streams.deadletters, self._settings.group)
        if await self._redis.type(key) != b"hash":
            return  # none, or not Caravan's: the ledger replaces it when it next notes
        fields = [redis_text(field) async for field, _ in self._redis.hscan_iter(key)]
        settled = settled_notes(fields, ours)
        if settled:
            await self._redis.hdel(key, *settled)
            log.info("error notes of settled entries forgotten", notes=len(settled))

    def _publish_metrics(self, states: dict[str, StreamState]) -> dict[str, Any]:
        """Set the gauges; return our group's figures per stream for /readyz."""
        now_ms = int(time.time() * 1000)
        snapshot: dict[str, Any] = {}
        self._forget_gone({(s, g.name) for s, state in states.items() for g in state.groups})
        for stream, state in states.items():
            metrics.STREAM_LENGTH.labels(stream).set(state.length)
            _, abandoned = split_groups(state.groups, self._configured, self._abandon_after_ms)
            self._report_abandoned(stream, state.groups, abandoned)
            for group in state.groups:
                age = pending_age_seconds(group.oldest_pending, now_ms)
                metrics.PENDING.labels(stream, group.name).set(group.pending)
                metrics.OLDEST_PENDING_SECONDS.labels(stream, group.name).set(age)
                if group.lag is not None:
                    metrics.LAG.labels(stream, group.name).set(group.lag)
                if group.name == self._settings.group:
                    snapshot[stream] = {
                        "pending": group.pending,
                        "lag": group.lag,
                        "oldest_pending_seconds": round(age, 1),
                    }
        return snapshot

    def _forget_gone(self, groups: set[tuple[str, str]]) -> None:
        """Remove the gauges of groups no longer there: a dropped group went on saying
        abandoned (its alert firing) until a restart, and anyone who may create groups
        could grow every indexer's series without end."""
        for labels in self._exported - groups:
            for gauge in (
                metrics.PENDING,
                metrics.OLDEST_PENDING_SECONDS,
                metrics.LAG,
                metrics.GROUP_ABANDONED,
            ):
                gauge.remove(*labels)  # a label set never set is no error
            self._reported.discard(labels)
        self._exported = groups

    def _report_abandoned(
        self, stream: str, groups: list[GroupState], abandoned: list[GroupState]
    ) -> None:
        for group in groups:
            gone = group in abandoned
            metrics.GROUP_ABANDONED.labels(stream, group.name).set(1 if gone else 0)
            key = (stream, group.name)
            if gone and key not in self._reported:
                log.warning(
                    "consumer group abandoned: no longer waited for nor kept from "
                    "trimming; `caravan groups drop` removes it",
                    stream=stream,
                    group=group.name,
                    behind=group.behind,
                    idle_ms=group.idle_ms,
                )
                self._reported.add(key)
            elif not gone:
                self._reported.discard(key)
