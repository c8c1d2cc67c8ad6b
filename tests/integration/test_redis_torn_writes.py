"""A write on a connection torn down under it is a ConnectionError, which the cluster retries.

The race (redis/redis-py#4287, and the cluster client's topology refresh after a
failover): another task closes the connection while this one waits before writing.
Reproduced on the test Redis by closing the connection in that very wait. What Caravan
promises holds whichever redis-py does the translation (see shared/clients.py).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import Namespace, _require


class _ClosedDuringHealthCheck(Connection):
    """Closed, once `armed`, in the wait before its next write (the health check)."""

    armed = False

    async def check_health(self) -> None:
        if self.armed:
            await self.disconnect()  # as another task does while this one waits to write


def _address() -> tuple[str, int]:
    parts = urlsplit(_require("REDIS_URL"))
    return parts.hostname or "127.0.0.1", parts.port or 6379


async def test_torn_write_is_a_connection_error_the_cluster_client_retries(
    namespace: Namespace,
) -> None:
    host, port = _address()
    connection = _ClosedDuringHealthCheck(host=host, port=port)
    await connection.connect()  # type: ignore[no-untyped-call]
    connection.armed = True
    with pytest.raises(RedisConnectionError) as raised:
        await connection.send_command("PING")
    # Exactly a type the cluster client retries: it matches the types it lists, not subclasses.
    assert type(raised.value) in RedisCluster.ERRORS_ALLOW_RETRY
    # The connection is usable again: the next command reconnects.
    connection.armed = False
    await connection.send_command("PING")
    assert await connection.read_response() in (b"PONG", "PONG")
    await connection.disconnect()
