"""A document too heavy with its own request (Elasticsearch counts the request's bytes and a
primary operation at about four times the document): others go on, it is tried alone, and
after NARROW_TRIES refusals alone it is one dead letter, where it was held for ever."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from elasticsearch import AsyncElasticsearch

from services.indexer.decode import decode_entry
from services.indexer.documents import BulkAction
from services.indexer.failures import Fault
from services.indexer.hold import Hold
from services.indexer.ledger import Ledger
from services.indexer.writer import NARROW_TRIES, Work, Writer
from shared.backoff import Backoff
from shared.consumer import Entry
from shared.events import ArticleEvent, content_hash
from shared.index import IndexNames
from shared.settings import CommonSettings, IndexerSettings
from shared.streams import DATA_FIELD, Streams

STREAMS = Streams(CommonSettings(stream_prefix="t:"))
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


class Letters:
    """What the writer asks of the ledger, kept."""

    def __init__(self) -> None:
        self.acked: list[str] = []
        self.letters: list[tuple[str, str, str]] = []

    async def ack(self, entries: list[Entry]) -> None:
        self.acked += [entry.entry_id for entry in entries]

    async def dead_letter(self, entry: Entry, error_class: str, message: str) -> None:
        self.letters.append((entry.entry_id, error_class, message))

    async def remember(self, entries: list[Entry], fault: Fault, reason: str) -> None:
        assert fault is Fault.CLUSTER


def _work(count: int) -> Work:
    work: Work = []
    for n in range(count):
        title = f"Article {n}"
        event = ArticleEvent(
            source="test",
            url=f"https://news.example/{n}",
            canonical_url=f"https://news.example/{n}",
            title=title,
            fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
            content_hash=content_hash(title, ""),
        )
        entry = Entry(STREAMS.articles, f"{n}-0", {DATA_FIELD: event.model_dump_json().encode()})
        action = decode_entry(entry, STREAMS, IndexNames("t-"))
        assert isinstance(action, BulkAction)
        work.append((entry, action))
    return work


async def _write(work: Work, heavy: list[int]) -> tuple[Node, Letters, Hold]:
    node = Node({work[n][1].doc_id for n in heavy})
    ledger, hold = Letters(), Hold()
    writer = Writer(
        cast("AsyncElasticsearch", node),
        cast("Ledger", ledger),
        IndexerSettings(),
        asyncio.Event(),
        hold,
        Backoff(0.001, 0.001),
    )
    await writer.write(work)
    return node, ledger, hold


async def test_the_others_are_stored_and_the_heavy_one_tried_alone_then_dead_lettered() -> None:
    node, ledger, hold = await _write(_work(8), heavy=[5])
    # At once alone after the request of eight, then again after each backoff.
    assert node.sent == [8] + [1] * NARROW_TRIES
    assert sorted(ledger.acked) == [f"{n}-0" for n in range(8) if n != 5]
    [(entry_id, error_class, message)] = ledger.letters
    assert (entry_id, error_class) == ("5-0", "Elasticsearch429")
    assert message.startswith("too heavy for any request: es_rejected")
    assert not hold.active


async def test_two_heavy_ones_are_split_apart_and_each_dead_lettered_once() -> None:
    node, ledger, hold = await _write(_work(8), heavy=[2, 6])
    assert node.sent == [8] + [1] * (2 * NARROW_TRIES)
    assert sorted(ledger.acked) == [f"{n}-0" for n in range(8) if n not in (2, 6)]
    assert sorted(letter[0] for letter in ledger.letters) == ["2-0", "6-0"]
    assert not hold.active
