"""The indexer's writer on a fake node: articles as decoded entries, a ledger that keeps
what it is asked, and the writer built the service's way (unit tests only)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from elasticsearch import AsyncElasticsearch

from services.indexer.decode import decode_entry
from services.indexer.documents import BulkAction
from services.indexer.failures import Fault
from services.indexer.hold import Hold
from services.indexer.ledger import Ledger
from services.indexer.writer import OnStored, Work, Writer
from shared.backoff import Backoff
from shared.consumer import Entry
from shared.events import ArticleEvent, SupersededKey, content_hash
from shared.index import IndexNames
from shared.settings import CommonSettings, IndexerSettings
from shared.streams import DATA_FIELD, Streams

STREAMS = Streams(CommonSettings(stream_prefix="t:"))


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


def articles(count: int, supersedes: Sequence[SupersededKey] = ()) -> Work:
    """`count` articles as the writer gets them, the first superseding `supersedes`."""
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
            supersedes=list(supersedes) if n == 0 and supersedes else None,
        )
        entry = Entry(STREAMS.articles, f"{n}-0", {DATA_FIELD: event.model_dump_json().encode()})
        action = decode_entry(entry, STREAMS, IndexNames("t-"))
        assert isinstance(action, BulkAction)
        work.append((entry, action))
    return work


def writer_on(
    node: object,
    ledger: Letters,
    hold: Hold,
    stopping: asyncio.Event | None = None,
    on_stored: OnStored | None = None,
) -> Writer:
    return Writer(
        cast("AsyncElasticsearch", node),
        cast("Ledger", ledger),
        IndexerSettings(),
        stopping or asyncio.Event(),
        hold,
        Backoff(0.001, 0.001),
        on_stored=on_stored,
    )
