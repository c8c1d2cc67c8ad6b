"""Typed helpers for reading and writing streams in tests (redis-py returns bytes | str)."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis


async def entries(redis: Redis, stream: str) -> list[tuple[str, dict[bytes, bytes]]]:
    raw = cast("list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(stream))
    return [(entry_id.decode(), fields) for entry_id, fields in raw]


async def add(redis: Redis, stream: str, fields: dict[bytes, bytes] | dict[str, str]) -> str:
    entry_id = cast("bytes", await redis.xadd(stream, fields))  # type: ignore[arg-type]
    return entry_id.decode()
