"""Which consumer groups of a stream count: for ingest's backpressure and for trimming.

A group counts ("live") when it is configured (`CARAVAN_STREAM_GROUPS`: ours and
the downstream teams' that must never miss an entry) or when one of its consumers
has talked to Redis within `CARAVAN_STREAM_GROUP_ABANDON_HOURS`. Any other group
(a renamed one, a debug session's) is *abandoned*: it is reported (metric, log,
`caravan groups`) and no longer obeyed, so one forgotten group can neither pause
ingest forever nor keep the stream from ever being trimmed. `caravan groups
drop` removes it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.consumer import parse_id, redis_text


class LimitsError(ValueError):
    """Settings that contradict each other; the service refuses to start on them."""


@dataclass(frozen=True)
class GroupState:
    name: str
    last_delivered: str
    pending: int
    oldest_pending: str | None
    lag: int | None
    consumers: int = 0
    # Milliseconds since the group's most recently active consumer talked to Redis.
    idle_ms: int | None = None
    # Entries Redis counts as read by the group (XINFO GROUPS `entries-read`, Redis 7+);
    # None when it cannot tell.
    entries_read: int | None = None

    @property
    def behind(self) -> int:
        """Entries not yet read (XINFO GROUPS `lag`, Redis 7+).

        `lag` is unknown (nil) after deletions or trimming; the pending count
        is then the best lower bound at hand.
        """
        return self.lag if self.lag is not None else self.pending


def is_live(group: GroupState, configured: Collection[str], abandon_after_ms: int) -> bool:
    if group.name in configured:
        return True
    return group.idle_ms is not None and group.idle_ms < abandon_after_ms


def split_groups(
    groups: Sequence[GroupState], configured: Collection[str], abandon_after_ms: int
) -> tuple[list[GroupState], list[GroupState]]:
    """(live, abandoned), each in the given order."""
    live = [g for g in groups if is_live(g, configured, abandon_after_ms)]
    return live, [g for g in groups if g not in live]


def worst_lag(groups: Sequence[GroupState]) -> int:
    """Entries the slowest of these groups has yet to read."""
    return max((g.behind for g in groups), default=0)


def trim_floor(now_ms: int, retention_ms: int, groups: Sequence[GroupState]) -> str:
    """The MINID below which entries may go: old enough, and settled for every group given."""
    floor = (max(now_ms - retention_ms, 0), 0)
    for group in groups:
        floor = min(floor, parse_id(group.last_delivered))
        if group.oldest_pending is not None:
            floor = min(floor, parse_id(group.oldest_pending))
    return f"{floor[0]}-{floor[1]}"


def trimmed_unread(group: GroupState, first_entry: str | None, removed: int) -> int:
    """Entries a MAXLEN cap trimmed before `group` read them, of the `removed` entries the
    stream ever lost from its head, as far as Redis can count (0 when it cannot).

    Only while the group's last delivered entry is older than the stream's first: once
    it reads on, Redis counts the gap as read. Caravan's own trimming never passes a live
    group's position, so a gap can only come from the cap.
    """
    if first_entry is None or parse_id(group.last_delivered) >= parse_id(first_entry):
        return 0
    if group.entries_read is not None:
        read = group.entries_read
    elif group.last_delivered == "0-0":
        read = 0  # a group that never read: every entry removed was unread
    else:
        return 0
    return max(removed - read, 0)


def check_lag_within_maxlen(max_lag: int, maxlen: int | None) -> None:
    """Refuse a MAXLEN cap that would trim entries before the backpressure pauses ingest."""
    if maxlen is not None and max_lag >= maxlen:
        msg = (
            f"CARAVAN_INGEST_MAX_LAG ({max_lag}) must be below CARAVAN_STREAM_MAXLEN "
            f"({maxlen}): otherwise the cap trims entries no consumer has read "
            "before ingest pauses. Lower the lag or raise (or unset) the cap."
        )
        raise LimitsError(msg)


async def read_groups(
    redis: Redis, stream: str, only: Collection[str] | None = None
) -> list[GroupState]:
    """The groups of a stream as Redis sees them now (`only` these names, when given: each
    group costs two more round trips, and anyone may add groups); none when the stream
    does not exist."""
    try:
        raw: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    except ResponseError as exc:
        if _no_such_stream(exc):
            return []
        raise
    groups = []
    for info in raw:
        # Asked about by the name's own bytes, shown as text (redis_text).
        raw_name = info["name"]
        if only is not None and redis_text(raw_name) not in only:
            continue
        oldest = None
        if info["pending"]:
            summary: dict[str, Any] = await redis.xpending(stream, raw_name)
            oldest = redis_text(summary["min"]) if summary.get("min") else None
        idle = None
        if info["consumers"]:
            consumers: list[dict[str, Any]] = await redis.xinfo_consumers(stream, raw_name)
            idle = min((int(c["idle"]) for c in consumers), default=None)
        groups.append(
            GroupState(
                redis_text(raw_name),
                redis_text(info["last-delivered-id"]),
                int(info["pending"]),
                oldest,
                None if info.get("lag") is None else int(info["lag"]),
                int(info["consumers"]),
                idle,
                None if info.get("entries-read") is None else int(info["entries-read"]),
            )
        )
    return groups


async def drop_group(redis: Redis, stream: str, name: str) -> bool:
    """Destroy a group on one stream; whether it existed. Its pending entries go with it."""
    try:
        return bool(await redis.xgroup_destroy(stream, name))
    except ResponseError as exc:
        if _no_such_stream(exc):
            return False
        raise


def _no_such_stream(exc: ResponseError) -> bool:
    """Whether Redis refused a command because the stream does not exist; any other
    refusal (CLUSTERDOWN, MASTERDOWN, in a failover) is not "no groups": read as that,
    the trim's floor would pass over entries still pending."""
    message = str(exc)
    return "no such key" in message or "requires the key to exist" in message
