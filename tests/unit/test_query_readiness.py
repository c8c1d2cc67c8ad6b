"""The query service's readiness answers within its checks' bounds whatever Elasticsearch's
search queue does: its count of unanalysed articles waited there unbounded, past the
probe's 5 s, and under search load every replica left its Service at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.query import app as query_app
from tests.querynode import Node, query_over


class QueuedCounts(Node):
    """A cluster whose health answers at once and whose counts never come back."""

    def __init__(self) -> None:
        super().__init__()
        self.cluster = self
        self.counting = asyncio.Event()

    async def health(self, **_: Any) -> dict[str, Any]:
        return {"status": "green", "timed_out": False}

    async def count(self, **_: Any) -> dict[str, Any]:
        self.counting.set()
        await asyncio.Event().wait()
        raise AssertionError


async def test_readiness_answers_while_a_count_waits_in_the_search_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = QueuedCounts()
    monkeypatch.setattr(query_app, "READY_TIMEOUT", 0.05)
    async with query_over(node, monkeypatch) as client:
        async with asyncio.timeout(10):  # a guard: unbounded, the reading never ended
            answer = await client.get("/readyz")
    assert node.counting.is_set()
    assert answer.status_code == 200
    body = answer.json()
    assert body["ready"] is True
    assert "unanalysed_articles" not in body["details"]["language"]
