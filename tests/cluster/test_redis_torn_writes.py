"""Caravan's Redis Cluster client retries a write on a connection torn down under it.

The race (redis/redis-py#4287, and the cluster client's topology refresh after a
failover): another task closes the connection while this one waits before writing.
Reproduced on the test cluster by closing the connection in that very wait, once.
"""

from __future__ import annotations

from uuid import uuid4

import pytest
from redis.asyncio.connection import Connection

from shared.clients import make_redis
from shared.settings import RedisSettings

pytestmark = pytest.mark.cluster


async def test_a_torn_write_is_retried_once_and_written_once(
    redis_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_redis(RedisSettings(url=redis_cluster, cluster=True))
    stream = f"{{torn-{uuid4().hex[:10]}}}:articles"
    assert await client.ping()  # connected, and the slot map known
    torn: list[Connection] = []

    async def closed_during_health_check(self: Connection) -> None:
        if not torn:
            torn.append(self)
            await self.disconnect()  # as another task does while this one waits to write

    monkeypatch.setattr(Connection, "check_health", closed_during_health_check)
    entry_id = await client.xadd(stream, {"__data__": b"{}"})

    assert torn  # the write did meet a torn connection
    assert [e[0] for e in await client.xrange(stream) or []] == [entry_id]
    await client.delete(stream)
    await client.aclose()
