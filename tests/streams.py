"""Typed helpers for reading and writing streams in tests (redis-py returns bytes | str)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio import Redis


async def entries(redis: Redis, stream: str) -> list[tuple[str, dict[bytes, bytes]]]:
    raw = cast("list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(stream))
    return [(entry_id.decode(), fields) for entry_id, fields in raw]


async def add(redis: Redis, stream: str, fields: dict[bytes, bytes] | dict[str, str]) -> str:
    entry_id = cast("bytes", await redis.xadd(stream, fields))  # type: ignore[arg-type]
    return entry_id.decode()


async def wait_claimable(redis: Redis, stream: str, group: str, idle_ms: int) -> None:
    """Wait on Redis's own clock until every pending entry of the group is idle past `idle_ms`."""
    while True:
        pending = cast(
            "list[dict[str, Any]]",
            await redis.xpending_range(stream, group, min="-", max="+", count=1000),
        )
        idle = min(int(p["time_since_delivered"]) for p in pending)
        if idle > idle_ms:
            return
        # The state waited on lives in Redis: sleep just as long as it still needs.
        await asyncio.sleep((idle_ms + 1 - idle) / 1000)
