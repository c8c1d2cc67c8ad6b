"""The query process works on at most CARAVAN_QUERY_MAX_IN_FLIGHT requests at once, of
all clients together: past it a reader gets a 503 and Retry-After at once, where
before every search queued in the node until they timed out for everyone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from services.query.middleware import BusyMiddleware
from tests.heldapp import HeldApp
from tests.querynode import Node, article, query_over
from tests.waiting import until


async def test_past_its_bound_the_process_sheds_requests_and_takes_them_again_after() -> None:
    slow = HeldApp()
    busy = BusyMiddleware(slow, most=2)
    transport = httpx.ASGITransport(app=busy, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
        first = [
            asyncio.create_task(client.get(path))
            for path in ("/api/search", "/api/articles/broken")
        ]
        # Not counted: a probe, the metrics, the page's files, the live ticker's streams.
        free = [
            asyncio.create_task(client.get(path))
            for path in ("/readyz", "/metrics", "/static/style.css", "/api/quotes/stream")
        ]
        await until(slow.have_entered(6), "two requests and the four uncounted ones in")
        before = REGISTRY.get_sample_value("caravan_query_shed_total") or 0.0
        shed = await client.get("/api/search", params={"q": "steppe"})
        assert shed.status_code == 503
        assert REGISTRY.get_sample_value("caravan_query_shed_total") == before + 1
        assert shed.headers["retry-after"] == "1"
        assert shed.json() == {"detail": "busy: too many requests at once; try again shortly"}
        slow.release.set()
        done = await asyncio.gather(*first, *free)
        assert [r.status_code for r in done] == [200, 500, 200, 200, 200, 200]
        # Both places given back, the failed request's too.
        again = await asyncio.gather(client.get("/api/search"), client.get("/api/search"))
        assert [r.status_code for r in again] == [200, 200]
        assert busy.taken == 0


async def test_no_bound_when_it_is_zero() -> None:
    slow = HeldApp()
    transport = httpx.ASGITransport(app=BusyMiddleware(slow, most=0))
    async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
        many = [asyncio.create_task(client.get("/api/search")) for _ in range(100)]
        await until(slow.have_entered(100), "a hundred requests in at once")
        slow.release.set()
        assert {r.status_code for r in await asyncio.gather(*many)} == {200}


class HeldNode(Node):
    """A node whose searches wait until `release` is set."""

    def __init__(self, *documents: dict[str, Any]) -> None:
        super().__init__(*documents)
        self.release = asyncio.Event()
        self.searching = 0

    async def perform_request(self, *args: Any, **kwargs: Any) -> Any:
        self.searching += 1
        await self.release.wait()
        return await super().perform_request(*args, **kwargs)


async def test_the_service_sheds_before_its_rate_limit_charges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = HeldNode(article("a"))
    async with query_over(
        node, monkeypatch, max_in_flight=1, rate_limit=0.001, rate_burst=2
    ) as client:
        held = asyncio.create_task(client.get("/api/search", params={"q": "caravan"}))

        async def at_the_node() -> bool:
            return node.searching == 1

        await until(at_the_node, "the first search at the node")
        shed = await client.get("/api/search", params={"q": "steppe"})
        assert shed.status_code == 503
        assert shed.headers["x-content-type-options"] == "nosniff"
        assert (await client.get("/healthz")).status_code == 200
        node.release.set()
        assert (await held).status_code == 200
        # Two tokens: the held search took one, the shed one none.
        assert (await client.get("/api/search", params={"q": "caravan"})).status_code == 200
        assert (await client.get("/api/search", params={"q": "caravan"})).status_code == 429
