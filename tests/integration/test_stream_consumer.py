"""The stream consumer on the real Redis: ownership of held entries, and the live tail."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from starlette.types import Message, Scope

from services.query.limits import Places
from services.query.live import LiveStream, QuoteBroadcaster, Subscription
from shared import consumer as consumer_module
from shared.consumer import Clock, Entry, GroupReader, read_range
from shared.events import QuoteEvent
from shared.streams import DATA_FIELD
from tests.conftest import Namespace
from tests.streams import add, wait_claimable
from tests.waiting import until

pytestmark = pytest.mark.integration

CLAIM_IDLE_MS = 300


def _reader(
    redis: Redis,
    streams: list[str],
    consumer: str,
    *,
    max_bytes: int = 32 * 1024 * 1024,
    clock: Clock = time.monotonic,
    linger_ms: int = 0,
    batch_size: int = 100,
    claim_idle_ms: int = CLAIM_IDLE_MS,
) -> GroupReader:
    return GroupReader(
        redis,
        streams,
        "indexer",
        consumer,
        batch_size=batch_size,
        block_ms=50,
        linger_ms=linger_ms,
        claim_idle_ms=claim_idle_ms,
        max_bytes=max_bytes,
        clock=clock,
    )


async def _pending(redis: Redis, stream: str) -> list[dict[str, Any]]:
    return cast(
        "list[dict[str, Any]]",
        await redis.xpending_range(stream, "indexer", min="-", max="+", count=1000),
    )


async def _holder_and_other(
    redis: Redis, namespace: Namespace
) -> tuple[str, GroupReader, GroupReader]:
    """The articles stream with its group, and two readers of it."""
    stream = namespace.streams.articles
    holder, other = _reader(redis, [stream], "holder"), _reader(redis, [stream], "other")
    await holder.ensure_groups()
    return stream, holder, other


async def _idle_past_claim_time(redis: Redis, stream: str) -> None:
    await wait_claimable(redis, stream, "indexer", CLAIM_IDLE_MS)


async def test_held_entries_are_not_claimable_and_keep_their_delivery_count(
    redis: Redis, namespace: Namespace
) -> None:
    stream, holder, _ = await _holder_and_other(redis, namespace)
    # A longer claim time than the others': what is asserted is that a refreshed entry
    # is not claimable, and a loop held up past 300 ms by a busy machine made it so.
    other = _reader(redis, [stream], "other", claim_idle_ms=2000)
    ids = [await add(redis, stream, {DATA_FIELD: b"{}"}) for _ in range(5)]
    assert [e.entry_id for e in await holder.read()] == ids
    assert holder.held == 5

    await wait_claimable(redis, stream, "indexer", 2000)
    assert await holder.refresh_ownership() == 5

    assert await other.claim_abandoned() == []
    pending = await _pending(redis, stream)
    assert {p["consumer"].decode() for p in pending} == {"holder"}
    assert {int(p["times_delivered"]) for p in pending} == {1}


async def test_entries_released_by_a_failed_batch_are_claimed_with_a_real_delivery(
    redis: Redis, namespace: Namespace
) -> None:
    stream, holder, other = await _holder_and_other(redis, namespace)
    await add(redis, stream, {DATA_FIELD: b"{}"})
    (entry,) = await holder.read()
    holder.release(stream, [entry.entry_id])
    assert await holder.refresh_ownership() == 0

    await _idle_past_claim_time(redis, stream)
    (claimed,) = await other.claim_abandoned()

    assert claimed.entry_id == entry.entry_id
    assert claimed.deliveries == 2


async def test_a_refresh_never_takes_back_an_entry_another_consumer_owns(
    redis: Redis, namespace: Namespace
) -> None:
    stream, holder, other = await _holder_and_other(redis, namespace)
    await add(redis, stream, {DATA_FIELD: b"{}"})
    await holder.read()
    await _idle_past_claim_time(redis, stream)
    assert len(await other.claim_abandoned()) == 1  # the holder stalled past the idle time

    assert await holder.refresh_ownership() == 0
    (pending,) = await _pending(redis, stream)
    assert pending["consumer"] == b"other"


async def test_the_live_ticker_is_capped_per_process_and_frees_its_places(
    redis: Redis, namespace: Namespace
) -> None:
    broadcaster = QuoteBroadcaster(
        redis, namespace.streams.quotes, Places(2, 1), lifetime=60, block_ms=50
    )
    first, second = broadcaster.subscribe(("a",)), broadcaster.subscribe(("b",))
    assert isinstance(first, Subscription)
    assert isinstance(second, Subscription)
    assert broadcaster.subscribe(("c",)) == "process"  # the cap: the API answers 503

    quote = QuoteEvent(
        base="KGS",
        rate=Decimal("0.01156"),
        as_of=date(2026, 11, 27),
        provider="cbr",
        fetched_at=datetime.now(UTC),
    )
    # The tail starts at the stream's end: publish until the reader has seen one.
    update = asyncio.ensure_future(first.next_message())
    while not update.done():
        await add(redis, namespace.streams.quotes, {DATA_FIELD: quote.model_dump_json().encode()})
        await asyncio.wait({update}, timeout=0.2)
    assert "KGS/USD = 0.01156" in update.result()

    first.close()
    first.close()  # closing twice gives one place back, not two
    assert isinstance(broadcaster.subscribe(("c",)), Subscription)
    assert broadcaster.subscribe(("d",)) == "process"
    await broadcaster.close()


async def test_the_live_ticker_shows_no_older_day_and_no_other_currency(
    redis: Redis, namespace: Namespace
) -> None:
    # A backfill's quotes of 2024 replaced the current rate on every open page, and a
    # currency the ticker does not show added a line.
    broadcaster = QuoteBroadcaster(
        redis, namespace.streams.quotes, Places(1, 1), lifetime=60, block_ms=50
    )
    page = broadcaster.subscribe(("a",))
    assert isinstance(page, Subscription)

    def quote(base: str, day: date, rate: str) -> dict[bytes, bytes]:
        event = QuoteEvent(
            base=base, rate=Decimal(rate), as_of=day, provider="cbr", fetched_at=datetime.now(UTC)
        )
        return {DATA_FIELD: event.model_dump_json().encode()}

    update = asyncio.ensure_future(page.next_message())
    while not update.done():
        await add(redis, namespace.streams.quotes, quote("KGS", date(2026, 11, 27), "0.01156"))
        await asyncio.wait({update}, timeout=0.2)
    await add(redis, namespace.streams.quotes, quote("KGS", date(2024, 1, 3), "0.0112"))
    await add(redis, namespace.streams.quotes, quote("EUR", date(2026, 11, 28), "1.05"))
    await add(redis, namespace.streams.quotes, quote("KGS", date(2026, 11, 28), "0.01157"))
    async with asyncio.timeout(10):
        shown = await page.next_message()
        while '"2026-11-27"' in shown:  # the first day, published until seen
            shown = await page.next_message()
    assert '"as_of": "2026-11-28"' in shown
    assert "KGS/USD = 0.01157" in shown
    page.close()
    await broadcaster.close()


async def test_a_write_that_finds_the_client_gone_ends_the_stream_and_frees_its_place(
    redis: Redis, namespace: Namespace
) -> None:
    broadcaster = QuoteBroadcaster(
        redis, namespace.streams.quotes, Places(1, 1), lifetime=60, block_ms=50
    )
    sent: list[Message] = []

    async def never_disconnects() -> Message:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def gone(message: Message) -> None:
        # How an ASGI 2.4 server says the client is gone.
        if message["type"] == "http.response.body":
            raise OSError("connection reset")
        sent.append(message)

    scope: Scope = {"type": "http", "method": "GET", "path": "/api/quotes/stream", "headers": []}
    await asyncio.wait_for(LiveStream(broadcaster, ("a",))(scope, never_disconnects, gone), 10)
    assert [m["status"] for m in sent] == [200]
    assert isinstance(broadcaster.subscribe(("a",)), Subscription)
    await broadcaster.close()


async def test_ownership_is_refreshed_across_pages_of_pending_entries(
    redis: Redis, namespace: Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer_module, "PENDING_PAGE", 7)
    stream, holder, other = await _holder_and_other(redis, namespace)
    for _ in range(30):
        await add(redis, stream, {DATA_FIELD: b"{}"})
    first: list[Entry] = []
    while len(first) < 30:
        first += await holder.read()
    # Entries of a failed batch stay pending here but are no longer held: skipped.
    holder.release(stream, [e.entry_id for e in first[:5]])

    await _idle_past_claim_time(redis, stream)
    assert await holder.refresh_ownership() == 25
    assert {e.entry_id for e in await other.claim_abandoned()} == {e.entry_id for e in first[:5]}


async def test_reads_stop_at_their_bytes_however_small_the_entries_before(
    redis: Redis, namespace: Namespace
) -> None:
    # A backlog of small articles, then large ones: a read sized by the small ones' count
    # brought in that many large ones, past the process's memory.
    stream = namespace.streams.articles
    reader = _reader(redis, [stream], "a", max_bytes=1024 * 1024)
    await reader.ensure_groups()
    for _ in range(60):
        await add(redis, stream, {DATA_FIELD: b"x" * 1000})
    for _ in range(40):
        await add(redis, stream, {DATA_FIELD: b"x" * 300_000})
    reads = []
    while batch := await reader.read():
        reads.append(batch)
    # The small ones and four large ones (the fourth passes 1 MiB); then four a read.
    assert [len(batch) for batch in reads] == [64] + [4] * 9
    assert all(sum(e.size for e in batch[:-1]) < 1024 * 1024 for batch in reads)
    added = cast("list[tuple[bytes, Any]]", await redis.xrange(stream))
    assert [e.entry_id for batch in reads for e in batch] == [i.decode() for i, _ in added]


async def test_a_read_larger_than_one_run_of_the_script_is_read_in_several(
    redis: Redis, namespace: Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis serves nobody else while the script runs: a batch_size of 600,000 held it
    # past a client's timeout. A read takes its batch in runs of SCRIPT_ENTRIES.
    monkeypatch.setattr(consumer_module, "SCRIPT_ENTRIES", 7)
    stream = namespace.streams.articles
    reader = _reader(redis, [stream], "a")
    await reader.ensure_groups()
    for _ in range(130):
        await add(redis, stream, {DATA_FIELD: b"{}"})
    assert [len(await reader.read()) for _ in range(3)] == [100, 30, 0]


async def test_abandoned_entries_past_one_reads_count_are_claimed_read_after_read(
    redis: Redis, namespace: Namespace
) -> None:
    stream, dead, _ = await _holder_and_other(redis, namespace)
    for _ in range(250):
        await add(redis, stream, {DATA_FIELD: b"{}"})
    abandoned: set[str] = set()
    while len(abandoned) < 250:
        abandoned |= {e.entry_id for e in await dead.read()}
    await _idle_past_claim_time(redis, stream)
    # A clock that never moves: no new round of claims is ever due after the first.
    heir = _reader(redis, [stream], "heir", clock=lambda: 0.0)
    sizes = []
    while batch := await heir.read():
        sizes.append(len(batch))
    assert sizes == [100, 100, 50]
    pending = await _pending(redis, stream)
    assert len(pending) == 250
    assert {p["consumer"] for p in pending} == {b"heir"}


def _sized_reader(redis: Redis, namespace: Namespace, consumer: str, clock: Clock) -> GroupReader:
    """A reader of articles and quotes with 1 MiB a read, half of it each stream's."""
    streams = [namespace.streams.articles, namespace.streams.quotes]
    return _reader(redis, streams, consumer, max_bytes=1024 * 1024, clock=clock)


async def _reader_after_large_articles(
    redis: Redis, namespace: Namespace, consumer: str, articles: int
) -> GroupReader:
    """A sized reader, its group made, and `articles` articles of 300 KB added."""
    reader = _sized_reader(redis, namespace, consumer, time.monotonic)
    await reader.ensure_groups()
    for _ in range(articles):
        await add(redis, namespace.streams.articles, {DATA_FIELD: b"x" * 300_000})
    return reader


async def test_each_stream_is_read_by_the_size_of_its_own_entries(
    redis: Redis, namespace: Namespace
) -> None:
    reader = _sized_reader(redis, namespace, "a", lambda: 0.0)
    await reader.ensure_groups()
    for _ in range(20):
        await add(redis, namespace.streams.articles, {DATA_FIELD: b"x" * 300_000})
    for _ in range(200):
        await add(redis, namespace.streams.quotes, {DATA_FIELD: b"x" * 200})
    reads = []
    while batch := await reader.read():
        reads.append(Counter(e.stream.rsplit(":", 1)[-1] for e in batch))
    # Two articles a read (the second passes 512 KiB, a stream's share), while the quotes
    # come a whole batch a read, as they would alone: an article weighs 1,500 quotes.
    assert [r["articles"] for r in reads] == [2] * 10
    assert [r["quotes"] for r in reads][:2] == [100, 100]


async def test_claims_are_bounded_by_bytes_as_reads_are(redis: Redis, namespace: Namespace) -> None:
    articles = namespace.streams.articles
    dead = _sized_reader(redis, namespace, "dead", time.monotonic)
    await dead.ensure_groups()
    # Small articles, then large ones: a claim's count grown on the first must not
    # bring in that count of the second (1 MiB a read, 512 KiB of it the articles').
    for _ in range(50):
        await add(redis, articles, {DATA_FIELD: b"x" * 200})
    for _ in range(12):
        await add(redis, articles, {DATA_FIELD: b"x" * 300_000})
    held = 0
    while held < 62:
        held += len(await dead.read())
    await _idle_past_claim_time(redis, articles)
    heir = _sized_reader(redis, namespace, "heir", lambda: 0.0)
    claims = []
    while batch := await heir.read():
        claims.append((len(batch), sum(entry.size for entry in batch)))
    # The small ones and two large (the second passes the share), then two at a time.
    assert [count for count, _ in claims] == [52, 2, 2, 2, 2, 2]
    assert max(size for _, size in claims) < 512 * 1024 + 300_100


async def test_claimed_entries_carry_their_own_delivery_counts(
    redis: Redis, namespace: Namespace
) -> None:
    # The claimer's own fresh entries between a dead consumer's: read as one page of
    # the range after the claim, they crowded the dead one's counts out.
    stream, live, _ = await _holder_and_other(redis, namespace)
    dead = _reader(redis, [stream], "dead", batch_size=1)  # between the live one's twenty
    for _ in range(5):
        await add(redis, stream, {DATA_FIELD: b"{}"})
        assert len(await dead.read()) == 1
        for _ in range(20):
            await add(redis, stream, {DATA_FIELD: b"{}"})
        assert len(await live.read()) == 20
    failing = [p["message_id"] for p in await _pending(redis, stream) if p["consumer"] == b"dead"]
    for _ in range(4):  # four more deliveries each, as failed claims leave them
        await redis.xclaim(stream, "indexer", "dead", 0, failing)
    await _idle_past_claim_time(redis, stream)
    assert await live.refresh_ownership() == 100
    claimed = await live.claim_abandoned()
    assert [(e.entry_id, e.deliveries) for e in claimed] == [(i.decode(), 6) for i in failing]


async def test_a_range_is_read_to_its_bytes(redis: Redis, namespace: Namespace) -> None:
    stream = namespace.streams.articles
    for _ in range(5):
        await add(redis, stream, {DATA_FIELD: b"x" * 300_000})
    ids = [e.entry_id for e in await read_range(redis, stream, "-", most=10, budget=10**9)]
    pages = []
    after = "-"
    while page := await read_range(redis, stream, after, most=10, budget=512 * 1024):
        pages.append([e.entry_id for e in page])
        after = page[-1].entry_id
    # The second entry passes the budget: two a page, in order, each once.
    assert pages == [ids[:2], ids[2:4], ids[4:]]
    assert len(await read_range(redis, stream, "-", most=3, budget=10**9)) == 3


async def test_a_claim_looks_past_the_entries_live_consumers_hold(
    redis: Redis, namespace: Namespace
) -> None:
    stream, live, heir = await _holder_and_other(redis, namespace)
    dead = _reader(redis, [stream], "dead")
    for _ in range(100):
        await add(redis, stream, {DATA_FIELD: b"{}"})
    held = 0
    while held < 100:
        held += len(await live.read())
    for _ in range(5):
        await add(redis, stream, {DATA_FIELD: b"{}"})
    assert len(await dead.read()) == 5
    await _idle_past_claim_time(redis, stream)
    assert await live.refresh_ownership() == 100
    # A claim of 8 looks at 80 pending entries, all the live consumer's: the round goes
    # on to the dead one's rather than returning none (which ends a burst).
    assert len(await heir.claim_abandoned()) == 5


async def test_entries_that_end_a_wait_are_read_by_their_own_streams_count(
    redis: Redis, namespace: Namespace
) -> None:
    # Its connections named, so that its block is told from other clients' (the
    # suite's other worker uses this Redis too).
    name = f"{namespace.stream_prefix}reader".replace(":", "-")
    own = Redis.from_url(os.environ["REDIS_URL"], client_name=name)
    reader = await _reader_after_large_articles(own, namespace, "a", 2)
    assert len(await reader.read()) == 2
    waiting = asyncio.ensure_future(reader.read())

    async def blocked() -> bool:
        return any(
            client["name"] == name and "b" in client["flags"]
            for client in await redis.client_list()
        )

    try:
        await until(blocked, "the reader blocking on both streams")
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(50):
                pipe.xadd(namespace.streams.quotes, {DATA_FIELD: b"x" * 200})
            await pipe.execute()
        # The wait ends on one entry; the quotes that came with it are then read to their
        # own stream's bytes, not the articles'.
        assert len(await waiting) == 50
    finally:
        await own.aclose()


async def test_a_stream_that_fills_its_read_is_not_lingered_on_for_the_others(
    redis: Redis, namespace: Namespace
) -> None:
    streams = [namespace.streams.articles, namespace.streams.quotes]
    reader = _reader(redis, streams, "a", linger_ms=60_000)
    await reader.ensure_groups()
    for _ in range(120):
        await add(redis, namespace.streams.articles, {DATA_FIELD: b"{}"})
    # A batch of articles fills the first read: no minute spent waiting for quotes (nor
    # a wait cut by the client's 5 s read timeout, which fails the read).
    assert len(await asyncio.wait_for(reader.read(), 30)) == 100
