"""A superseded document is deleted in a request of its own, after its successor is stored:
cluster trouble on that request holds only the delete, never loses the stored documents'
matching, and is never an entry's fault."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from elastic_transport import ConnectionTimeout

from services.indexer.hold import Hold
from services.indexer.writer import Work
from shared.events import SupersededKey
from tests.writing import Letters, articles, writer_on

OLD_KEY = "0" * 32


class Node:
    """Stores every document; holds OLD_KEY at version `there`; answers the first
    `troubles` delete requests with trouble (`timeout`: the request times out; else:
    its items are held, 429)."""

    def __init__(
        self, troubles: int, trouble: str, stop: asyncio.Event | None = None, there: int = 1
    ) -> None:
        self.troubles = troubles
        self.trouble = trouble
        self.stop = stop  # asked to stop while the documents' request is answered
        self.there = there
        self.stored: list[str] = []
        self.deleted: list[str] = []
        self.requests: list[str] = []

    async def mget(self, *, docs: list[dict[str, str]], **_: Any) -> SimpleNamespace:
        self.requests.append(f"read x{len(docs)}")
        if self.trouble == "proxy" and self.troubles:
            self.troubles -= 1
            return SimpleNamespace(body={"message": "down for maintenance"})  # with a 200
        return SimpleNamespace(
            body={"docs": [{"found": True, "_version": self.there} for _ in docs]}
        )

    def options(self, **_: Any) -> Node:
        return self

    async def bulk(
        self, *, body: bytes | None = None, operations: list[Any] | None = None, **_: Any
    ) -> SimpleNamespace:
        if body is not None:
            ids = [json.loads(line)["index"]["_id"] for line in body.splitlines()[::2]]
            self.requests.append(f"index x{len(ids)}")
            if self.stop is not None:
                self.stop.set()
            self.stored += ids
            return SimpleNamespace(body={"items": [{"index": {"status": 201}} for _ in ids]})
        assert operations is not None
        ids = [operation["delete"]["_id"] for operation in operations]
        self.requests.append(f"delete x{len(ids)}")
        if self.troubles:
            self.troubles -= 1
            if self.trouble == "timeout":
                raise ConnectionTimeout("timed out")
            overloaded = {"type": "es_rejected_execution_exception", "reason": "busy"}
            items = [{"delete": {"status": 429, "error": overloaded}} for _ in ids]
            return SimpleNamespace(body={"items": items})
        self.deleted += ids
        return SimpleNamespace(body={"items": [{"delete": {"status": 200}} for _ in ids]})


async def _write(
    node: Node, work: Work, stopping: asyncio.Event | None = None
) -> tuple[Letters, Hold, list[str]]:
    ledger, hold = Letters(), Hold()
    matched: list[str] = []
    writer = writer_on(
        node,
        ledger,
        hold,
        stopping,
        on_stored=lambda actions: matched.extend(action.doc_id for action in actions),
    )
    await writer.write(work)
    return ledger, hold, matched


async def test_the_delete_follows_the_stored_documents() -> None:
    work = articles(4, supersedes=[SupersededKey(key=OLD_KEY, version=1)])
    node = Node(troubles=0, trouble="")
    ledger, hold, matched = await _write(node, work)
    assert node.requests == ["index x4", "read x1", "delete x1"]
    assert node.deleted == [OLD_KEY]
    assert sorted(matched) == sorted(action.doc_id for _, action in work)
    assert sorted(ledger.acked) == [f"{n}-0" for n in range(4)]
    assert ledger.letters == []
    assert not hold.active


async def test_trouble_with_the_delete_holds_it_alone_and_every_document_is_matched() -> None:
    for trouble in ("timeout", "held", "proxy"):
        work = articles(4, supersedes=[SupersededKey(key=OLD_KEY, version=1)])
        node = Node(troubles=2, trouble=trouble)
        ledger, hold, matched = await _write(node, work)
        # The documents are not sent again (they would come back stale, and unmatched).
        # A proxy's page for the read back (a 200) is held too, never raised: raised, the
        # stored batch was neither acknowledged nor matched (helper-116).
        held = ["read x1"] * 2 if trouble == "proxy" else ["read x1", "delete x1"] * 2
        assert node.requests == ["index x4", *held, "read x1", "delete x1"], trouble
        assert node.deleted == [OLD_KEY]
        assert sorted(matched) == sorted(action.doc_id for _, action in work)
        assert sorted(ledger.acked) == [f"{n}-0" for n in range(4)]
        assert ledger.letters == []
        assert not hold.active


async def test_asked_to_stop_the_deletes_are_tried_once_and_every_document_matched() -> None:
    # Stopping while the documents' request was answered: no delete was sent, and the
    # superseding entry, redelivered, came back stale and was never matched (helper-112).
    for troubles, acked in ((0, 4), (1, 3)):
        work, stopping = (
            articles(4, supersedes=[SupersededKey(key=OLD_KEY, version=1)]),
            asyncio.Event(),
        )
        node = Node(troubles=troubles, trouble="timeout", stop=stopping)
        ledger, _, matched = await _write(node, work, stopping)
        assert node.requests == ["index x4", "read x1", "delete x1"]
        assert sorted(matched) == sorted(action.doc_id for _, action in work)
        # Its delete still owed, the superseding entry waits to be delivered again.
        assert sorted(ledger.acked) == [f"{n}-0" for n in range(4 - acked, 4)]
        assert ledger.letters == []


async def test_a_superseded_key_holding_another_version_is_left_alone() -> None:
    # Another article's document there since (a page declared its address), or the
    # article's own copy never stored: deleting at one past the version published
    # there would take the other article (helper-115).
    work = articles(4, supersedes=[SupersededKey(key=OLD_KEY, version=1)])
    node = Node(troubles=0, trouble="", there=7)
    ledger, _, matched = await _write(node, work)
    assert node.requests == ["index x4", "read x1"]
    assert node.deleted == []
    assert sorted(ledger.acked) == [f"{n}-0" for n in range(4)]
    assert len(matched) == 4
