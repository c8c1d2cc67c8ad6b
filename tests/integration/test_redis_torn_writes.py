"""A write on a connection torn down under it is a ConnectionError, which redis-py retries.

The race (redis/redis-py#4287, and the cluster client's topology refresh after a
failover): another task closes the connection while this one waits before writing.
Reproduced on the test Redis by closing the connection in that very wait.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.clients import TornWriteConnection, with_torn_writes_as_connection_errors
from tests.conftest import Namespace, _require


class _PlainClosedDuringHealthCheck(Connection):
    """Closed, once `armed`, in the wait before its next write (the health check)."""

    armed = False

    async def check_health(self) -> None:
        if self.armed:
            await self.disconnect()  # as another task does while this one waits to write


class _ClosedDuringHealthCheck(TornWriteConnection, _PlainClosedDuringHealthCheck):
    pass


def _address() -> tuple[str, int]:
    parts = urlsplit(_require("REDIS_URL"))
    return parts.hostname or "127.0.0.1", parts.port or 6379


async def test_plain_connection_leaks_the_transports_error(namespace: Namespace) -> None:
    # What the fix is for: redis-py's own connection lets a non-Redis error out.
    host, port = _address()
    connection = _PlainClosedDuringHealthCheck(host=host, port=port)
    await connection.connect()  # type: ignore[no-untyped-call]
    connection.armed = True
    with pytest.raises((AttributeError, TypeError)):
        await connection.send_command("PING")


async def test_torn_write_is_a_connection_error(namespace: Namespace) -> None:
    host, port = _address()
    connection = _ClosedDuringHealthCheck(host=host, port=port)
    await connection.connect()  # type: ignore[no-untyped-call]
    connection.armed = True
    with pytest.raises(RedisConnectionError) as raised:
        await connection.send_command("PING")
    # Exactly ConnectionError: the cluster client retries the types it lists, not subclasses.
    assert type(raised.value) is RedisConnectionError
    # The connection is usable again: the next command reconnects.
    healthy = TornWriteConnection(host=host, port=port)
    await healthy.send_command("PING")
    assert await healthy.read_response() in (b"PONG", "PONG")
    await healthy.disconnect()


def test_cluster_nodes_open_torn_write_connections() -> None:
    # Constructing a cluster client connects nowhere, so no cluster is needed here;
    # tests/cluster run the real one through a failover.
    cluster = with_torn_writes_as_connection_errors(
        RedisCluster(host="127.0.0.1", port=7999))
    assert cluster.connection_kwargs["connection_class"] is TornWriteConnection
    assert all(node.connection_class is TornWriteConnection
               for node in cluster.nodes_manager.startup_nodes.values())
