"""How many Redis calls a WorkShare has in flight at once, and its heartbeat meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Self, cast

import pytest
from redis.asyncio import Redis
from redis.exceptions import MaxConnectionsError

from shared import leases
from shared.leases import CALLS_IN_FLIGHT, WorkShare
from tests.logs import Said

ITEMS = [f"s{n}" for n in range(400)]


class SlowNode:
    """A Redis node behind a pool that refuses a call past `limit` at once, as the
    cluster client's does (100 a node); each call is answered once `answering` is set."""

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self.in_flight = 0
        self.most = 0
        self.beats = 0
        self.tokens = 0
        self.answering = asyncio.Event()

    async def _answer(self, answer: Any) -> Any:
        if self.in_flight >= self.limit:
            raise MaxConnectionsError()
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.answering.wait()
        finally:
            self.in_flight -= 1
        return answer

    async def eval(self, script: str, *_: Any) -> Any:
        if script == leases._BEAT:
            self.beats += 1
            return await self._answer([1, 0])
        if script == leases._ACQUIRE:
            self.tokens += 1
            return await self._answer([self.tokens, 0])
        return await self._answer(1)

    async def get(self, _: str) -> None:
        return cast("None", await self._answer(None))

    def pipeline(self, transaction: bool) -> Pipeline:
        return Pipeline(self)


class Pipeline:
    """Commands sent together on one connection."""

    def __init__(self, node: SlowNode) -> None:
        self.node = node
        self.sent = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    def eval(self, *_: Any) -> None:
        self.sent += 1

    async def execute(self) -> list[int]:
        return cast("list[int]", await self.node._answer([1] * self.sent))


async def _answer_once_beaten(node: SlowNode, beats: int) -> None:
    """Redis answers once the heartbeat's call reached it: run after the burst of item
    calls and the beat were issued, it finds the beat waiting in Redis, not in Caravan."""
    assert node.beats == beats, "the heartbeat waited behind the items' calls"
    node.answering.set()


async def _burst(node: SlowNode, calls: list[Awaitable[Any]], share: WorkShare) -> None:
    node.answering.clear()
    beats = node.beats + 1
    await asyncio.gather(*calls, share.beat(), _answer_once_beaten(node, beats))


async def test_a_share_keeps_its_items_calls_to_a_bound_and_its_heartbeat_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ingest with 400 sources takes every lease as it starts, then writes when each is
    # next due, all at once: a call past the pool's cap failed, the heartbeat's among them.
    said = Said()
    monkeypatch.setattr(leases, "log", said)
    node = SlowNode()
    share = WorkShare(cast("Redis", node), "{t}:", "ingest", ITEMS, "a", ttl=30)
    node.answering.set()
    await share.join()

    await _burst(node, [share.turn(item) for item in ITEMS], share)
    assert share.held == sorted(ITEMS)
    await _burst(node, [share.done(item, 60) for item in ITEMS], share)

    assert node.most <= CALLS_IN_FLIGHT + 1  # the items' calls, and the heartbeat's
    assert said.events("lease not taken") == []
    assert said.events("next turn not recorded") == []
    assert share.held == sorted(ITEMS)  # the beat renewed them all, with no lease lost
