"""The workers' Redis readiness: bounded, whatever Redis does."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from redis.asyncio import Redis

from shared import health
from shared.health import redis_ready
from tests.loopback import black_hole


async def test_a_redis_that_answers_nothing_is_not_ready_within_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A node failing over, seen from the client: a read that would wait out every retry.
    monkeypatch.setattr(health, "READY_TIMEOUT", 0.3)
    async with black_hole() as port:
        client = Redis(port=port, socket_timeout=30)
        # The bound, not the client's 30 s: past 10 the test fails.
        async with asyncio.timeout(10):
            assert not await redis_ready(client, "s:quotes")
        await client.aclose()


async def test_metrics_are_served_at_their_path_not_redirected() -> None:
    # Mounted, /metrics answered 307 to /metrics/: down, to a scraper that follows none.
    async def ready() -> health.Readiness:
        return health.Readiness({})

    app = health.health_app(ready)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "process_cpu_seconds_total" in response.text
