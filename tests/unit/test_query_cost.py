"""The rate limit charges what a client's searches cost the cluster (their `took`), not
only how many it sends: within the limit, one client's long texts of place names (500 ms
of Elasticsearch each) kept the node's cores busy for everyone."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.query.limits import (
    MOST_DEBT_SECONDS,
    SPENT,
    Places,
    RateLimiter,
    Spent,
    TrustedProxies,
    charged,
)
from services.query.middleware import RateLimitMiddleware
from tests.heldapp import HeldApp
from tests.querynode import Node, article, query_over
from tests.waiting import until

ONE = ("203.0.113.7",)
NO_PROXY = TrustedProxies()


def test_a_request_costs_a_token_per_search_ms_it_took_beyond_the_first() -> None:
    limiter = RateLimiter(rate=1, burst=3, search_ms=25)
    assert limiter.acquire(ONE, now=0) == 0
    limiter.charge(ONE, 25)  # within its one token
    assert limiter.acquire(ONE, now=0) == 0
    limiter.charge(ONE, 100)  # four tokens in all: three more, and one is left
    assert limiter.acquire(ONE, now=0) == pytest.approx(3.0)  # paid back at the rate
    assert limiter.acquire(ONE, now=3.0) == 0


def test_the_charge_falls_on_every_network_of_the_client_and_no_other() -> None:
    limiter = RateLimiter(rate=0.001, burst=2, search_ms=10)
    v6 = ("20010db800010001/64", "20010db80001/56", "20010db80001/48")
    assert limiter.acquire(v6, now=0) == 0
    limiter.charge(v6, 80)  # seven tokens more: its /56 (8) spent, its /48 (32) not
    other_64 = ("20010db800010002/64", "20010db80001/56", "20010db80001/48")
    assert limiter.acquire(other_64, now=0) > 0  # its /56 spent
    assert limiter.acquire(("20010db800010102/64", "20010db8000101/56", v6[2]), now=0) == 0
    assert limiter.acquire(ONE, now=0) == 0


def test_without_search_ms_every_request_costs_one() -> None:
    limiter = RateLimiter(rate=0.001, burst=2)
    assert limiter.acquire(ONE, now=0) == 0
    limiter.charge(ONE, 60_000)
    assert limiter.acquire(ONE, now=0) == 0


@pytest.mark.parametrize(("took", "search_ms", "answered"), [(5, 25, 3), (500, 25, 1), (500, 0, 3)])
async def test_a_search_that_took_the_cluster_long_costs_its_client_more(
    monkeypatch: pytest.MonkeyPatch, took: int, search_ms: float, answered: int
) -> None:
    node = Node(article("a" * 32), article("b" * 32), took=took)
    limits = {
        "rate_limit": 0.001,
        "rate_burst": 3,
        "rate_limit_search_ms": search_ms,
        "trusted_proxies": 1,
    }
    async with query_over(node, monkeypatch, **limits) as client:
        # The short path, the route (a page past the short path's bounds), the page, similar
        # articles, the feed, suggestions and the quotes: each alone, each client a fresh one.
        paths = [
            "/api/search?q=caravan",
            "/api/search?q=caravan&page=01",
            "/?q=caravan",
            f"/api/articles/{'a' * 32}/similar",
            "/api/search.atom?q=caravan",
            "/api/suggest?q=ca",
            "/api/quotes/latest",
            "/api/quotes/UZS/history?from=2000-01-01",
        ]
        for n, path in enumerate(paths):
            forwarded = {"X-Forwarded-For": f"198.51.100.{n}"}
            statuses = [(await client.get(path, headers=forwarded)).status_code for _ in range(3)]
            assert statuses == [200] * answered + [429] * (3 - answered), path


# Mounted under a prefix by a proxy, the paths keep their rules.
@pytest.mark.parametrize("root", ["", "/caravan"])
async def test_a_client_has_so_many_requests_in_flight_and_a_refused_one_costs_nothing(
    root: str,
) -> None:
    slow = HeldApp()
    limiter = RateLimiter(rate=0.001, burst=11)
    limited = RateLimitMiddleware(slow, limiter, NO_PROXY, in_flight=Places(None, 8))
    transport = httpx.ASGITransport(app=limited, client=("203.0.113.7", 40000), root_path=root)
    async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
        searches = [asyncio.create_task(client.get(f"{root}/api/search")) for _ in range(10)]
        # The stream has places of its own; a static file is not limited at all.
        stream = asyncio.create_task(client.get(f"{root}/api/quotes/stream"))
        style = asyncio.create_task(client.get(f"{root}/static/style.css"))

        async def eight_searches_and_the_others_in() -> bool:
            return slow.entered == 10 and sum(task.done() for task in searches) == 2

        await until(
            eight_searches_and_the_others_in, "eight searches, the stream and the file let in"
        )
        refused = [task for task in searches if task.done()]
        assert [(await task).status_code for task in refused] == [429, 429]
        slow.release.set()
        answered = await asyncio.gather(*(t for t in searches if t not in refused), stream, style)
        assert {response.status_code for response in answered} == {200}
        # 11 tokens: the 9 let through took theirs, the two refused took none.
        again = [(await client.get(f"{root}/api/search")).status_code for _ in range(3)]
        assert again == [200, 200, 429]


async def test_a_search_that_ends_without_an_answer_costs_the_time_waited() -> None:
    async def timed_out() -> None:
        await asyncio.sleep(0.05)
        raise TimeoutError

    record = Spent()
    token = SPENT.set(record)
    try:
        with pytest.raises(TimeoutError):
            await charged(timed_out())
        await charged(asyncio.sleep(0, result={"took": 7}))
    finally:
        SPENT.reset(token)
    assert 57 <= record.ms < 1000


def test_debt_stops_at_thirty_seconds_of_the_rate() -> None:
    limiter = RateLimiter(rate=2, burst=4, search_ms=25)
    assert limiter.acquire(ONE, now=0) == 0
    limiter.charge(ONE, 3_600_000)  # an hour of searching: a cluster away, not a client
    assert limiter.acquire(ONE, now=0) == pytest.approx((1 + 2 * MOST_DEBT_SECONDS) / 2)
