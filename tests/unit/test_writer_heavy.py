"""A document too heavy with its own request (Elasticsearch counts the request's bytes and a
primary operation at about four times the document): others go on, it is tried alone, and
after NARROW_TRIES refusals alone it is one dead letter, where it was held for ever."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from services.indexer.hold import Hold
from services.indexer.writer import NARROW_TRIES, Work
from tests.writing import Letters, articles, writer_on

LIMIT = 10**9


class Node:
    """Stores every document but the heavy ones, refused for their request's own weight."""

    def __init__(self, heavy: set[str]) -> None:
        self.heavy = heavy
        self.sent: list[int] = []

    def options(self, **_: Any) -> Node:
        return self

    async def bulk(self, *, body: bytes, **_: Any) -> SimpleNamespace:
        ids = [json.loads(line)["index"]["_id"] for line in body.splitlines()[::2]]
        self.sent.append(len(ids))
        refusal = (
            f"rejected execution of primary operation [coordinating_and_primary_bytes="
            f"{len(body)}, replica_bytes=0, all_bytes={len(body)}, primary_operation_bytes="
            f"{LIMIT - len(body) // 2}, max_primary_bytes={LIMIT}]"
        )
        items = [
            {"index": {"status": 429, "error": {"type": "es_rejected", "reason": refusal}}}
            if doc_id in self.heavy
            else {"index": {"status": 201}}
            for doc_id in ids
        ]
        return SimpleNamespace(body={"errors": bool(self.heavy), "items": items})


async def _write(work: Work, heavy: list[int]) -> tuple[Node, Letters, Hold]:
    node = Node({work[n][1].doc_id for n in heavy})
    ledger, hold = Letters(), Hold()
    await writer_on(node, ledger, hold).write(work)
    return node, ledger, hold


async def test_the_others_are_stored_and_the_heavy_one_tried_alone_then_dead_lettered() -> None:
    node, ledger, hold = await _write(articles(8), heavy=[5])
    # At once alone after the request of eight, then again after each backoff.
    assert node.sent == [8] + [1] * NARROW_TRIES
    assert sorted(ledger.acked) == [f"{n}-0" for n in range(8) if n != 5]
    [(entry_id, error_class, message)] = ledger.letters
    assert (entry_id, error_class) == ("5-0", "Elasticsearch429")
    assert message.startswith("too heavy for any request: es_rejected")
    assert not hold.active


async def test_two_heavy_ones_are_split_apart_and_each_dead_lettered_once() -> None:
    node, ledger, hold = await _write(articles(8), heavy=[2, 6])
    assert node.sent == [8] + [1] * (2 * NARROW_TRIES)
    assert sorted(ledger.acked) == [f"{n}-0" for n in range(8) if n not in (2, 6)]
    assert sorted(letter[0] for letter in ledger.letters) == ["2-0", "6-0"]
    assert not hold.active
