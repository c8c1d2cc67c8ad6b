"""Following a stream from its end (the live ticker's reader) on the real Redis."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from shared.consumer import TailReader
from tests.conftest import Namespace

pytestmark = pytest.mark.integration


async def test_what_is_added_between_two_reads_is_not_skipped(
    redis: Redis, namespace: Namespace
) -> None:
    stream = namespace.streams.quotes
    await redis.xadd(stream, {"n": "before"})
    tail = TailReader(redis, stream, block_ms=10)
    assert await tail.read() == []
    # Added while the reader is not reading: Redis away, a failover, a backoff.
    await redis.xadd(stream, {"n": "meanwhile"})
    assert [entry.fields for entry in await tail.read()] == [{b"n": b"meanwhile"}]
