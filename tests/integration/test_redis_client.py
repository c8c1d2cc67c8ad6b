"""The Redis client every service makes (shared/clients.py), on the real Redis."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from shared.leases import WorkShare
from tests.conftest import Namespace

pytestmark = pytest.mark.integration


async def test_a_replica_with_hundreds_of_sources_takes_every_lease_at_once(
    redis: Redis, namespace: Namespace
) -> None:
    # Ingest starting: one lease call per source at the same moment, and the replica's
    # heartbeat among them: past the pool's connections they wait, none fails.
    items = [f"s{n}" for n in range(300)]
    share = WorkShare(redis, namespace.stream_prefix, "ingest", items, "replica", ttl=30)
    *leases, _ = await asyncio.gather(*(share._try_acquire(item) for item in items), share.beat())
    assert all(leases)
    assert share.held == sorted(items)
