"""Redis away, as a failover shows it, never ends or freezes the indexer or the live ticker.

Fakes stand in for Redis and Elasticsearch here: the errors are the ones redis-py
raises in a Redis Cluster failover (CLUSTERDOWN, TRYAGAIN, "TTL exhausted", no node
answering), which the real cluster tests (tests/cluster) meet only by chance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders
from elastic_transport import ConnectionError as ESConnectionError
from elasticsearch import ApiError, AsyncElasticsearch
from redis.asyncio import Redis
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    ConnectionError,
    MasterDownError,
    RedisClusterUnreachableError,
    ResponseError,
    TryAgainError,
)

from services.indexer import hold as hold_module
from services.indexer.consumer import Consumer
from services.indexer.hold import Hold
from services.indexer.ledger import Ledger
from services.indexer.writer import Writer
from services.query.limits import Places
from services.query.live import QuoteBroadcaster
from services.ratefeed.store import LastRateStore
from shared.backoff import Backoff
from shared.consumer import Entry, GroupReader
from shared.events import ArticleEvent, QuoteEvent, content_hash
from shared.index import IndexNames
from shared.settings import CommonSettings, IndexerSettings
from shared.streams import DATA_FIELD, Streams
from tests.logs import Said

STREAMS = Streams(CommonSettings())
NAMES = IndexNames("away-")
FAILOVER = [
    ClusterDownError("CLUSTERDOWN The cluster is down"),
    MasterDownError("MASTERDOWN Link with MASTER is down"),
    TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot"),
    ClusterError("TTL exhausted."),
    RedisClusterUnreachableError("no node of the cluster answers"),
    TimeoutError(),
    ConnectionRefusedError(),
]


def _entry() -> Entry:
    title, body = "Caravan away", "Body of the article."
    event = ArticleEvent(
        source="test",
        url="https://news.example/1",
        canonical_url="https://news.example/1",
        title=title,
        body=body,
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
        content_hash=content_hash(title, body),
    )
    return Entry(STREAMS.articles, "1-0", {DATA_FIELD: event.model_dump_json().encode()})


class FakeElasticsearch:
    """Refuses connections `refusals` times, then stores every document."""

    def __init__(self, refusals: float) -> None:
        self.refusals = refusals

    def options(self, **_: Any) -> FakeElasticsearch:
        return self

    async def bulk(self, **_: Any) -> SimpleNamespace:
        if self.refusals > 0:
            self.refusals -= 1
            raise ESConnectionError("connection refused")
        return SimpleNamespace(body={"errors": False, "items": [{"index": {"status": 201}}]})


class FakeRedis:
    """A Redis whose every command fails as in a failover."""

    def __getattr__(self, command: str) -> Callable[..., Any]:
        async def away(*_: Any, **__: Any) -> None:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:7312. Connection refused.")

        return away


def _consumer(
    es: FakeElasticsearch, read: Callable[[], Any], redis: FakeRedis | None = None
) -> Consumer:
    settings = IndexerSettings(retry_base_delay=0.01, retry_max_delay=0.01)

    async def publish(_: Any) -> None:
        raise AssertionError("nothing is dead-lettered for Redis or the cluster being away")

    consumer = Consumer(
        cast("Redis", redis or FakeRedis()),
        cast("AsyncElasticsearch", es),
        STREAMS,
        NAMES,
        settings,
        publish,
    )
    consumer.reader.read = read  # type: ignore[method-assign]
    consumer.reader.ensure_groups = _nothing  # type: ignore[method-assign]
    return consumer


async def _nothing() -> None:
    return None


@pytest.mark.parametrize("error", FAILOVER, ids=lambda e: type(e).__name__)
async def test_a_read_that_meets_a_failover_is_retried_not_the_end_of_the_indexer(
    error: Exception,
) -> None:
    reads: list[int] = []

    async def read() -> list[Entry]:
        reads.append(1)
        if len(reads) == 1:
            raise error
        return []

    consumer = _consumer(FakeElasticsearch(0), read)
    async with asyncio.timeout(10):
        await consumer.run(burst=True)
    assert len(reads) == 2


async def test_a_vanished_group_is_made_again_and_other_refusals_are_waited_out() -> None:
    made: list[int] = []
    errors = [ResponseError("NOGROUP No such key 'articles' or consumer group 'indexer'")]

    async def read() -> list[Entry]:
        if errors:
            raise errors.pop()
        return []

    async def ensure_groups() -> None:
        made.append(1)

    consumer = _consumer(FakeElasticsearch(0), read)
    consumer.reader.ensure_groups = ensure_groups  # type: ignore[method-assign]
    async with asyncio.timeout(10):
        await consumer.run(burst=True)
    assert made == [1, 1]


async def test_a_batch_held_for_the_cluster_waits_redis_out_as_it_notes_why() -> None:
    # Elasticsearch and Redis away together: the batch holds for the cluster and, as
    # it notes why, waits for Redis instead of failing (which would leave it to be
    # read and counted as delivered again). Asked to stop, it ends with the hold released.
    noted = asyncio.Event()

    class Away(FakeRedis):
        notes = 0

        async def hset(self, *_: Any, **__: Any) -> int:
            self.notes += 1
            if self.notes == 3:
                noted.set()
            raise ConnectionError("Connection reset by peer")

    batches = [[_entry()]]

    async def read() -> list[Entry]:
        return batches.pop() if batches else []

    consumer = _consumer(FakeElasticsearch(float("inf")), read, Away())
    running = asyncio.create_task(consumer.run(burst=True))
    async with asyncio.timeout(10):
        await noted.wait()
        assert consumer.hold.active
        assert not running.done()
        consumer.stop()
        await running
    assert not consumer.hold.active


async def test_an_acknowledgement_redis_missed_is_sent_again_until_it_lands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    acknowledged: list[tuple[Any, ...]] = []
    hold = Hold()
    held: list[bool] = []

    class Flapping(FakeRedis):
        misses = 2

        async def xack(self, *args: Any) -> int:
            held.append(hold.active)
            if self.misses:
                self.misses -= 1
                raise ConnectionError("Connection reset by peer")
            acknowledged.append(args)
            return 1

    redis = Flapping()
    consumer = _consumer(FakeElasticsearch(0), _nothing, redis)
    entry = _entry()
    work = await consumer.prepare([entry])
    writer = _writer(
        FakeElasticsearch(0), _ledger(redis, asyncio.Event(), consumer.reader, hold), hold
    )
    said = Said()
    monkeypatch.setattr(hold_module, "log", said)
    async with asyncio.timeout(10):
        await writer.write(work)
    assert acknowledged == [(STREAMS.articles, "indexer", entry.entry_id)]
    # Not "the cluster cannot take writes": that sent operators to the wrong system.
    assert said.events("holding") == ["holding: redis cannot settle entries"]
    # Held (nothing new read, /readyz not ready) while Redis refused, released after.
    assert held == [False, True, True]
    assert not hold.active


async def test_a_bookkeeping_key_of_another_type_is_replaced_not_waited_on() -> None:
    # The ledger's own notes of errors, set by hand to a string: every read of them was
    # refused, and the indexer waited for ever on the first entry past max_deliveries.
    class Damaged(FakeRedis):
        def __init__(self) -> None:
            self.deleted: list[str] = []

        async def hget(self, key: str, _: str) -> bytes | None:
            if key not in self.deleted:
                raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind")
            return None

        async def eval(self, _: str, keys: int, key: str) -> int:
            # The ledger's replacing script: a key that is not a hash is deleted.
            self.deleted.append(key)
            return keys

    redis = Damaged()
    ledger = _ledger(redis, asyncio.Event())
    async with asyncio.timeout(10):
        assert await ledger.last_error(_entry()) is None
    assert redis.deleted == ["errors"]


async def test_the_answer_that_takes_the_batch_releases_the_hold_before_redis_is_asked() -> None:
    # Elasticsearch back, the acknowledgement refused by a Redis failing over (which
    # took the note of why the batch was held, before), as the indexer stops.
    class Noting(FakeRedis):
        async def hset(self, *_: Any, **__: Any) -> int:
            return 1

    stopping = asyncio.Event()
    stopping.set()
    hold = Hold()
    writer = _writer(FakeElasticsearch(1), _ledger(Noting(), stopping, hold=hold), hold)
    entry = _entry()
    consumer = _consumer(FakeElasticsearch(0), _nothing)
    work = await consumer.prepare([entry])
    with pytest.raises(ConnectionError):
        await writer.write(work)
    assert not hold.active


def _ledger(
    redis: FakeRedis,
    stopping: asyncio.Event,
    reader: Any = None,
    hold: Hold | None = None,
    publish: Callable[[Any], Any] | None = None,
) -> Ledger:
    return Ledger(
        cast("Redis", redis),
        cast("GroupReader", reader or redis),
        "errors",
        publish or _no_dead_letters,
        stopping=stopping,
        backoff=Backoff(0.01, 0.01),
        hold=hold or Hold(),
    )


def _writer(es: FakeElasticsearch, ledger: Ledger, hold: Hold) -> Writer:
    return Writer(
        cast("AsyncElasticsearch", es),
        ledger,
        IndexerSettings(),
        asyncio.Event(),
        hold,
        Backoff(0.01, 0.01),
    )


async def _no_dead_letters(_: Any) -> None:
    raise AssertionError("nothing is dead-lettered here")


async def test_the_live_ticker_follows_on_after_no_node_of_the_cluster_answered() -> None:
    answers: list[Any] = [RedisClusterUnreachableError("no node of the cluster answers")]
    quote = QuoteEvent.model_validate(
        {
            "provider": "cbr",
            "base": "KGS",
            "quote": "USD",
            "rate": "0.01156",
            "as_of": "2026-12-05",
            "fetched_at": "2026-12-05T10:00:00Z",
            "primary": True,
        }
    )

    class Stream:
        async def xrevrange(self, *_: Any, **__: Any) -> list[Any]:
            if answers:
                raise answers.pop()
            return []

        async def xread(self, *_: Any, **__: Any) -> list[Any]:
            await asyncio.sleep(0.01)
            return [[b"quotes", [(b"2-0", {DATA_FIELD: quote.model_dump_json().encode()})]]]

    broadcaster = QuoteBroadcaster(cast("Redis", Stream()), "quotes", Places(1, 1), 60)
    with broadcaster.subscribe(("203.0.113.7",)) as subscription:  # type: ignore[union-attr]
        async with asyncio.timeout(10):
            message = await subscription.next_message()
    await broadcaster.close()
    assert message.startswith("event: quote")


async def test_an_error_a_cluster_pipeline_answers_is_raised_as_redis_away() -> None:
    # Asked not to raise on errors, redis-py's cluster pipeline puts a connection lost
    # mid-read among the answers: taken for stored quotes, it crashed the rate feed.
    class Pipeline:
        def __getattr__(self, _: str) -> Callable[..., None]:
            return lambda *_, **__: None

        async def execute(self, **_: Any) -> list[Exception]:
            return [ConnectionError("Connection lost")] * 3

        async def __aenter__(self) -> Pipeline:
            return self

        async def __aexit__(self, *_: object) -> None:
            return None

    class Dropping(FakeRedis):
        def pipeline(self, **_: Any) -> Pipeline:
            return Pipeline()

    store = LastRateStore(cast("Redis", Dropping()), "caravan:")
    with pytest.raises(ConnectionError):
        await store.published("nbk", "KZT", date(2026, 1, 2))


def test_each_holder_releases_only_its_own_part_of_the_hold() -> None:
    # The writer holds for Elasticsearch while two batches wait on Redis: neither
    # Redis coming back for one batch, nor for both, ends the writer's hold.
    hold = Hold()
    first, second = object(), object()
    hold.enter("Elasticsearch: ConnectionError")
    hold.enter("Redis refuses to acknowledge", first)
    hold.enter("Redis refuses to acknowledge", second)
    hold.release(first)
    hold.release(second)
    assert hold.reason == "Elasticsearch: ConnectionError"
    hold.enter("Redis refuses to dead letter", first)
    hold.release()  # the cluster takes writes again; Redis still refuses
    assert hold.reason == "Redis refuses to dead letter"
    hold.release(first)
    assert not hold.active


async def test_an_entry_refused_after_a_hold_releases_it() -> None:
    # A timeout held the batch; the cluster then answers that the entry is too large.
    class Refusing(FakeElasticsearch):
        async def bulk(self, **_: Any) -> SimpleNamespace:
            if self.refusals > 0:
                self.refusals -= 1
                raise ESConnectionError("timed out")
            meta = ApiResponseMeta(413, "1.1", HttpHeaders(), 0.0, None)  # type: ignore[arg-type]
            raise ApiError("413", meta, "<html>Request Entity Too Large</html>")

    letters: list[Any] = []

    async def publish(letter: Any) -> None:
        letters.append(letter)

    class Settling(FakeRedis):
        async def hset(self, *_: Any, **__: Any) -> int:
            return 1

        async def xack(self, *_: Any) -> int:
            return 1

    redis = Settling()
    consumer = _consumer(FakeElasticsearch(0), _nothing, redis)
    work = await consumer.prepare([_entry()])
    hold = Hold()
    ledger = _ledger(redis, asyncio.Event(), consumer.reader, hold, publish)
    writer = _writer(Refusing(1), ledger, hold)
    async with asyncio.timeout(10):
        await writer.write(work)
    assert [letter.error_class for letter in letters] == ["Elasticsearch413"]
    assert not hold.active
