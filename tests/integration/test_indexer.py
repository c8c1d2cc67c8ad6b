"""The indexer against the real Redis and Elasticsearch: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from services.cli import main
from services.indexer.consumer import Consumer
from services.indexer.deadletters import letter_writer, list_dead_letters, replay_dead_letters
from services.indexer.failures import Fault
from services.indexer.ledger import MAX_LETTER_BYTES
from services.indexer.writer import Work
from shared.clients import REDIS_AWAY, make_elasticsearch, make_redis
from shared.consumer import Entry
from shared.events import DeadLetter, QuoteEvent
from shared.index import IndexNames
from shared.settings import ElasticsearchSettings, IndexerSettings, Settings
from shared.streams import DATA_FIELD
from tests.acl import refusing
from tests.conftest import Namespace
from tests.integration.conftest import (
    MakeConsumer,
    article,
    dead_letters,
    drain,
    ids_in,
    pending,
    publish,
)
from tests.streams import add, entries, wait_claimable
from tests.waiting import until

pytestmark = pytest.mark.integration


async def test_every_event_is_indexed_once_under_its_idempotency_key(
    make_consumer: MakeConsumer, redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    articles = [article(n) for n in range(25)]
    quote = QuoteEvent(
        base="KGS",
        rate=Decimal("0.01127270157879752030906774677"),
        as_of=date(2023, 9, 27),
        provider="cbr",
        fetched_at=datetime.now(UTC),
    )
    await publish(redis, namespace.streams.articles, *articles)
    await publish(redis, namespace.streams.quotes, quote)

    await drain(make_consumer(batch_size=10), es)

    assert await ids_in(es, namespace.articles) == sorted(a.idempotency_key for a in articles)
    stored = await es.get(index=namespace.quotes, id=quote.idempotency_key)
    assert stored["_source"]["rate"] == "0.01127270157879752030906774677"
    assert await pending(redis, namespace.streams.articles) == 0
    assert await dead_letters(redis, namespace) == []


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[Redis]:
    """A Redis of the test's own, on a socket: one the test may fill, which the shared
    one, used by every other test meanwhile, must never be."""
    socket = tmp_path / "redis.sock"
    server = await asyncio.create_subprocess_exec(
        "redis-server",
        "--port",
        "0",
        "--unixsocket",
        str(socket),
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory-policy",
        "noeviction",
        stdout=subprocess.DEVNULL,
    )
    client = Redis(unix_socket_path=str(socket))

    async def answers() -> bool:
        with contextlib.suppress(*REDIS_AWAY):
            return bool(await client.ping())
        return False

    try:
        await until(answers, "the test's own redis-server", within=10)
        yield client
    finally:
        await client.aclose()
        server.terminate()
        await server.wait()


async def test_an_indexer_started_while_redis_is_full_drains_it(
    make_consumer: MakeConsumer, own_redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    articles = [article(n) for n in range(30)]
    await own_redis.xgroup_create(namespace.streams.articles, "indexer", id="0", mkstream=True)
    await own_redis.xgroup_create(namespace.streams.quotes, "indexer", id="0", mkstream=True)
    await publish(own_redis, namespace.streams.articles, *articles)
    # Over its maxmemory (noeviction) as the streams had filled it: writes are refused.
    await own_redis.config_set("maxmemory", 1)
    with pytest.raises(OutOfMemoryError):
        await own_redis.set("probe", "refused")

    async with asyncio.timeout(60):
        await drain(make_consumer(own_redis, batch_size=10), es)

    assert await ids_in(es, namespace.articles) == sorted(a.idempotency_key for a in articles)
    assert await pending(own_redis, namespace.streams.articles) == 0


async def test_invalid_entries_are_dead_lettered_with_reason_and_the_rest_indexed(
    make_consumer: MakeConsumer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
    settings: Settings,
) -> None:
    stream = namespace.streams.articles
    await publish(redis, stream, article(1))
    no_data = await add(redis, stream, {"title": "no envelope"})
    not_json = await add(redis, stream, {DATA_FIELD: b"\xff\xfe not json"})
    missing = await add(redis, stream, {DATA_FIELD: b'{"title": "only a title"}'})
    await publish(redis, stream, article(2))

    await drain(make_consumer(), es)

    assert await ids_in(es, namespace.articles) == sorted(
        [article(1).idempotency_key, article(2).idempotency_key]
    )
    letters = {d.entry_id: d for d in await dead_letters(redis, namespace)}
    assert set(letters) == {no_data, not_json, missing}
    assert letters[no_data].error_class == "MissingDataField"
    assert letters[no_data].other_fields == {"title": b"no envelope"}
    assert letters[not_json].payload == b"\xff\xfe not json"  # bytes kept intact
    assert "url: Field required" in letters[missing].error_message
    assert all(d.stream == stream and d.service == "indexer" for d in letters.values())
    assert await pending(redis, stream) == 0
    # Replayed, a letter is its entry again, on its stream, and is gone.
    [letter_id] = [
        letter_id
        for letter_id, fields in await entries(redis, namespace.streams.deadletters)
        if DeadLetter.model_validate_json(fields[DATA_FIELD]).entry_id == no_data
    ]
    outcomes = {i: outcome async for i, outcome in replay_dead_letters(settings, [letter_id])}
    assert outcomes[letter_id].startswith(f"replayed to {stream} as ")
    assert await redis.xlen(namespace.streams.deadletters) == 2
    [*_, (_, fields)] = await entries(redis, stream)
    assert fields == {b"title": b"no envelope"}


def _letter(stream: str, entry_id: str, message: str) -> dict[bytes, bytes]:
    """A dead letter's stream entry, as the indexer writes one."""
    made = DeadLetter(
        stream=stream,
        entry_id=entry_id,
        payload=b"{}",
        error_class="ValidationError",
        error_message=message,
        service="indexer",
        attempts=1,
    )
    return {DATA_FIELD: made.model_dump_json().encode()}


async def test_letters_that_do_not_read_are_listed_and_replay_goes_on_past_them(
    redis: Redis, namespace: Namespace, settings: Settings
) -> None:
    stream, letters = namespace.streams.articles, namespace.streams.deadletters

    def letter(n: int) -> dict[bytes, bytes]:
        return _letter(stream, f"{n}-0", "ArticleEvent: title: Field required")

    first = await add(redis, letters, letter(1))
    broken = await add(redis, letters, {DATA_FIELD: b"not json"})
    newer = await add(redis, letters, {DATA_FIELD: b'{"schema_version": 2}'})
    bare = await add(redis, letters, {b"other": b"field"})
    last = await add(redis, letters, letter(2))

    listed = dict(await list_dead_letters(settings, 10))
    assert list(listed) == [last, bare, newer, broken, first]
    assert isinstance(listed[first], DeadLetter)
    assert listed[bare] == "unreadable: no __data__ field"
    assert all(str(listed[i]).startswith("unreadable: ") for i in (broken, newer))

    outcomes = dict(
        [o async for o in replay_dead_letters(settings, [first, broken, newer, bare, last])]
    )
    assert outcomes[first].startswith(f"replayed to {stream} as ")
    assert outcomes[last].startswith(f"replayed to {stream} as ")
    assert all(outcomes[i].startswith("not replayed: unreadable") for i in (broken, newer, bare))
    assert await redis.xlen(letters) == 3


async def test_a_letter_is_replayed_only_into_a_stream_the_indexer_reads_and_by_its_whole_id(
    redis: Redis, namespace: Namespace, settings: Settings
) -> None:
    # A letter names its stream itself, and the rate feed's user may write letters: a
    # forged one had the operator's login add to the matches (or any key). And a time
    # alone replayed the first letter of that millisecond and deleted another id.
    def letter(stream: str) -> dict[bytes, bytes]:
        return _letter(stream, "1-0", "forged")

    letters = namespace.streams.deadletters
    forged = await add(redis, letters, letter(f"{namespace.stream_prefix}matches"))
    outside = await add(redis, letters, letter("someone-else:stream"))
    real = await add(redis, letters, letter(namespace.streams.articles))
    millisecond = real.split("-")[0]

    outcomes = dict(
        [o async for o in replay_dead_letters(settings, [forged, outside, millisecond, real])]
    )

    assert outcomes[forged].endswith("matches is no stream the indexer reads")
    assert outcomes[outside] == "not replayed: someone-else:stream is no stream the indexer reads"
    assert outcomes[millisecond].startswith("not replayed: not a whole entry id")
    assert outcomes[real].startswith(f"replayed to {namespace.streams.articles} as ")
    assert await redis.xlen(f"{namespace.stream_prefix}matches") == 0
    assert await redis.xlen(letters) == 2


async def test_a_letter_is_listed_with_what_a_terminal_would_act_on_written_out(
    redis: Redis, namespace: Namespace, capsys: pytest.CaptureFixture[str]
) -> None:
    # A reason quotes the entry: this one retitles the window, clears the screen,
    # fakes the answer and hides what follows.
    hostile = (
        "\x1b]0;pwned\x07\x1b[2J\x1b[1;1Hno dead letters\x1b[8m \u202e\x9b31m"
        "\n1732665600123-0  caravan:articles 1-0  ValidationError"
    )
    letter = DeadLetter(
        stream=namespace.streams.articles,
        entry_id="1-0",
        payload=b"{}",
        error_class="ValidationError",
        error_message=f"title: {hostile}",
        service="indexer",
        attempts=1,
    )
    await add(redis, namespace.streams.deadletters, {DATA_FIELD: letter.model_dump_json().encode()})

    await asyncio.to_thread(main, ["deadletters", "list"])

    shown = capsys.readouterr().out
    assert "title: \\u001b]0;pwned\\u0007\\u001b[2J" in shown
    assert not {"\x1b", "\x07", "\u202e", "\x9b"} & set(shown)
    # The reason stays on its own line: no forged letter to replay.
    assert shown.count("\n") == 2
    assert "\\u000a1732665600123-0" in shown


async def test_an_entry_too_large_for_a_letter_is_dead_lettered_once_cut_and_said_so(
    make_consumer: MakeConsumer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
    settings: Settings,
) -> None:
    # Whole, its letter would not fit in Redis: the entry stayed pending, and the
    # entries read with it went to TooManyDeliveries.
    stream = namespace.streams.articles
    await publish(redis, stream, article(1))
    huge = await add(redis, stream, {b"blob": b"x" * (MAX_LETTER_BYTES + 1000)})
    await publish(redis, stream, article(2))

    await drain(make_consumer(), es)

    (letter,) = await dead_letters(redis, namespace)
    assert (letter.entry_id, letter.error_class) == (huge, "MissingDataField")
    assert len(letter.other_fields["blob"]) == MAX_LETTER_BYTES - len("blob")
    assert f"the letter keeps the first {MAX_LETTER_BYTES} of" in letter.error_message
    assert await ids_in(es, namespace.articles) == sorted(
        [article(1).idempotency_key, article(2).idempotency_key]
    )
    assert await pending(redis, stream) == 0
    # Replayed, the start of the entry would be another entry: it is kept, and said so.
    [(letter_id, _)] = await entries(redis, namespace.streams.deadletters)
    outcomes = [outcome async for outcome in replay_dead_letters(settings, [letter_id])]
    assert outcomes == [(letter_id, "not replayed: the letter holds only the entry's start")]
    assert await redis.xlen(namespace.streams.deadletters) == 1


async def test_a_title_with_the_suggesters_separators_is_indexed_without_them(
    make_consumer: MakeConsumer, redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    # The completion field refused the whole document: the article was lost to search.
    spoiled = article(1, title="Caspian\x00 ferry\x1f timetable\x1e")
    await publish(redis, namespace.streams.articles, spoiled, article(2, title="\x1f"))

    await drain(make_consumer(), es)

    assert await dead_letters(redis, namespace) == []
    stored = await es.get(index=namespace.articles, id=spoiled.idempotency_key)
    assert stored["_source"]["title_suggest"] == {"input": ["Caspian ferry timetable"]}


async def test_replaying_the_stream_twice_neither_duplicates_nor_rolls_back(
    make_consumer: MakeConsumer, redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    old = article(7, fetched_at=datetime(2026, 1, 1, tzinfo=UTC), title="Old title")
    new = article(7, fetched_at=datetime(2026, 1, 2, tzinfo=UTC), title="New title")
    # The newer version arrives first, then the older one, then everything again.
    await publish(redis, namespace.streams.articles, new, old, new, old)

    await drain(make_consumer(), es)

    assert await ids_in(es, namespace.articles) == [new.idempotency_key]
    stored = await es.get(index=namespace.articles, id=new.idempotency_key)
    assert stored["_source"]["title"] == "New title"
    assert stored["_version"] == new.version
    assert await dead_letters(redis, namespace) == []


async def test_entries_left_pending_by_a_dead_consumer_are_claimed(
    make_consumer: MakeConsumer, redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    stream = namespace.streams.articles
    live = make_consumer(claim_idle_ms=1000)
    await live.ensure_groups()
    events = [article(n) for n in range(5)]
    await publish(redis, stream, *events)
    # A consumer reads the entries and dies before acknowledging them.
    await redis.xreadgroup("indexer", "dead", {stream: ">"}, count=10)
    assert await pending(redis, stream) == 5

    await wait_claimable(redis, stream, "indexer", 1000)
    await drain(live, es)

    assert await ids_in(es, namespace.articles) == sorted(e.idempotency_key for e in events)
    assert await pending(redis, stream) == 0


async def test_an_entry_that_keeps_failing_ends_in_the_dead_letters(
    make_consumer: MakeConsumer, redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    stream = namespace.streams.articles
    live = make_consumer(claim_idle_ms=1000, max_deliveries=3)
    await live.ensure_groups()
    poison_id = await add(redis, stream, {DATA_FIELD: article(1).model_dump_json().encode()})
    await redis.xreadgroup("indexer", "dead", {stream: ">"}, count=1)
    # It has been delivered (and has failed) many times already.
    await redis.xclaim(
        stream, "indexer", "dead", min_idle_time=0, message_ids=[poison_id], retrycount=7
    )
    await publish(redis, stream, article(2))

    await wait_claimable(redis, stream, "indexer", 1000)
    await drain(live, es)

    (letter,) = await dead_letters(redis, namespace)
    assert letter.entry_id == poison_id
    assert letter.error_class == "TooManyDeliveries"
    assert letter.attempts > 3
    assert await ids_in(es, namespace.articles) == [article(2).idempotency_key]
    assert await pending(redis, stream) == 0


async def test_a_document_elasticsearch_refuses_is_dead_lettered_with_its_reason(
    make_consumer: MakeConsumer, redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    consumer = make_consumer()
    # Point the alias at an index whose mapping refuses our documents: `source`
    # must be a number there, and events carry a name.
    broken = f"{namespace.articles}-broken"
    await es.indices.delete(index=IndexNames.versioned(namespace.articles))
    await es.indices.create(
        index=broken,
        aliases={namespace.articles: {"is_write_index": True}},
        mappings={"properties": {"source": {"type": "long"}}},
    )
    await publish(redis, namespace.streams.articles, article(1))

    await drain(consumer, es)

    (letter,) = await dead_letters(redis, namespace)
    assert letter.error_class == "Elasticsearch400"
    assert "document_parsing_exception" in letter.error_message
    assert "[source]" in letter.error_message
    assert await ids_in(es, namespace.articles) == []
    assert await pending(redis, namespace.streams.articles) == 0


async def test_a_refusal_that_quotes_the_clusters_words_is_still_the_documents(
    make_consumer: MakeConsumer, redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    # Elasticsearch refuses the whole bulk for an id past 512 bytes, quoting the id: these
    # words in it held the entry (and the indexer) for ever as the cluster's state.
    quote = QuoteEvent(
        base="KGS",
        rate=Decimal("0.0115"),
        as_of=date(2026, 12, 4),
        provider="index_closed_exception " + "p" * 600,
        fetched_at=datetime.now(UTC),
    )
    await publish(redis, namespace.streams.quotes, quote)
    await publish(redis, namespace.streams.articles, article(1))

    await drain(make_consumer(), es)

    (letter,) = await dead_letters(redis, namespace)
    assert letter.error_class == "Elasticsearch400"
    assert "is too long" in letter.error_message
    assert await ids_in(es, namespace.articles) == [article(1).idempotency_key]
    assert await pending(redis, namespace.streams.quotes) == 0


async def test_a_vanished_group_is_recreated_without_skipping_entries(
    make_consumer: MakeConsumer, redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    stream = namespace.streams.articles
    consumer = make_consumer()
    running = asyncio.create_task(consumer.run())

    async def indexed(count: int) -> bool:
        await es.indices.refresh(index=namespace.articles)
        return len(await ids_in(es, namespace.articles)) == count

    await publish(redis, stream, article(1))
    await until(lambda: indexed(1), "article 1 to be indexed")
    # Redis lost the group (a failover to a replica that never had it, a FLUSHALL):
    # the running loop reads NOGROUP, recreates the group at 0 and replays the stream.
    await redis.xgroup_destroy(stream, "indexer")
    await publish(redis, stream, article(2))
    await until(lambda: indexed(2), "article 2 to be indexed")
    consumer.stop()
    await running

    assert await ids_in(es, namespace.articles) == sorted(
        [article(1).idempotency_key, article(2).idempotency_key]
    )


async def test_stop_mid_outage_leaves_the_batch_pending_for_another_indexer(
    redis: Redis, es: AsyncElasticsearch, namespace: Namespace, settings: Settings
) -> None:
    # Elasticsearch unreachable: the batch is held, never acknowledged, never dropped.
    down = make_elasticsearch(ElasticsearchSettings(url="http://127.0.0.1:1", request_timeout=0.2))
    consumer = Consumer(
        redis,
        down,
        namespace.streams,
        IndexNames(namespace.index_prefix),
        IndexerSettings(consumer="doomed", block_ms=50, retry_base_delay=0.05),
        letter_writer(redis, namespace.streams, settings.indexer.retention_hours),
    )
    await consumer.ensure_groups()
    await publish(redis, namespace.streams.articles, article(1), article(2))

    task = asyncio.create_task(consumer.run(burst=True))
    while not consumer.hold.active:  # the batch is read, the write refused: holding
        await asyncio.wait({task}, timeout=0.05)
        assert not task.done()
    assert "ConnectionError" in (consumer.hold.reason or "")
    consumer.stop()
    await asyncio.wait_for(task, timeout=5)
    await down.close()

    assert await pending(redis, namespace.streams.articles) == 2
    assert await dead_letters(redis, namespace) == []


async def test_acknowledgements_redis_refuses_wait_for_it_and_cost_no_dead_letter(
    make_consumer: MakeConsumer, redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    # Redis serves reads but refuses the acknowledgements (an ACL without XACK on the
    # real server, as a failing-over node would time them out): the stored batch waits,
    # owned and delivered once, and is acknowledged when Redis takes it. Before, the
    # batch failed, was read again after the claim idle time, and past max_deliveries
    # went to the dead letters although stored.
    async with refusing(redis, "xack") as user:
        refused = make_redis(user)
        consumer = make_consumer(
            refused,
            consumer="refused",
            claim_idle_ms=1000,
            max_deliveries=1,
            retry_base_delay=0.05,
            retry_max_delay=0.2,
        )
        await consumer.ensure_groups()
        events = [article(n) for n in range(3)]
        await publish(redis, namespace.streams.articles, *events)
        before = _acknowledgements_retried()
        task = asyncio.create_task(consumer.run(burst=True))
        # Twelve refusals take over a second even at the shortest backoff: past the
        # claim idle time, when the old code read the batch again.
        await until(lambda: _retried(before + 12, task), "twelve refused acknowledgements")
        held = await redis.xpending_range(
            namespace.streams.articles, "indexer", min="-", max="+", count=10
        )
        assert [(p["consumer"], p["times_delivered"]) for p in held] == [(b"refused", 1)] * 3
        assert "Redis refuses to acknowledge" in (consumer.hold.reason or "")
        # Each call sets the user whole: enabled, as redis-py's default would disable it.
        await redis.acl_setuser(str(user.username), enabled=True, commands=["+xack"])
        await asyncio.wait_for(task, timeout=30)
        await refused.aclose()

    assert await pending(redis, namespace.streams.articles) == 0
    assert await dead_letters(redis, namespace) == []
    await es.indices.refresh(index=namespace.articles)
    assert await ids_in(es, namespace.articles) == sorted(e.idempotency_key for e in events)


async def test_an_entry_read_again_after_its_letter_was_written_gets_no_second_letter(
    make_consumer: MakeConsumer, redis: Redis, es: AsyncElasticsearch, namespace: Namespace
) -> None:
    # The letter is written, then the indexer stops (a crash, a deploy) before Redis
    # takes the acknowledgement: another indexer reads the entry again after the claim
    # idle time and fails it the same way. Before, that wrote a second letter, as did a
    # letter sent again after its answer was lost.
    stream = namespace.streams.articles
    async with refusing(redis, "xack") as user:
        refused = make_redis(user)
        first = make_consumer(refused, consumer="first", retry_base_delay=0.05)
        await first.ensure_groups()
        poison = await add(redis, stream, {DATA_FIELD: b"not json"})
        task = asyncio.create_task(first.run(burst=True))
        await until(lambda: _letters_or_stopped(redis, namespace, task), "the first letter")
        first.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=10)  # the refused acknowledgement raised
        await refused.aclose()
    assert await pending(redis, stream) == 1

    second = make_consumer(consumer="second", claim_idle_ms=1000)
    await wait_claimable(redis, stream, "indexer", 1000)
    await drain(second, es)

    (letter,) = await dead_letters(redis, namespace)
    assert letter.entry_id == poison
    assert await pending(redis, stream) == 0


async def _letters_or_stopped(redis: Redis, namespace: Namespace, task: asyncio.Task[None]) -> bool:
    assert not task.done(), "the indexer stopped before writing its letter"
    return bool(await redis.xlen(namespace.streams.deadletters))


def _acknowledgements_retried() -> float:
    return (
        REGISTRY.get_sample_value("caravan_indexer_redis_retries_total", {"doing": "acknowledge"})
        or 0.0
    )


async def _retried(count: float, task: asyncio.Task[None]) -> bool:
    assert not task.done(), "the indexer stopped while Redis refused its acknowledgements"
    return _acknowledgements_retried() >= count


async def test_the_next_batch_is_prepared_while_one_is_being_written(
    make_consumer: MakeConsumer,
    redis: Redis,
    es: AsyncElasticsearch,
    namespace: Namespace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    articles = [article(n) for n in range(30)]
    await publish(redis, namespace.streams.articles, *articles)
    # One write slot: without reading ahead, the second batch would be read only after
    # the first is written, and the cluster would wait for its decoding.
    consumer = make_consumer(batch_size=10, max_in_flight=1)
    second_prepared = asyncio.Event()
    prepared = 0
    prepare, write = consumer.prepare, consumer._writer.write  # observed, not replaced

    async def counting_prepare(entries: Sequence[Entry]) -> Work:
        nonlocal prepared
        work = await prepare(entries)
        prepared += 1
        if prepared == 2:
            second_prepared.set()
        return work

    ready_while_writing: list[bool] = []
    written: list[Work] = []
    all_written = asyncio.Event()

    async def observed_write(work: Work) -> None:
        if not ready_while_writing:  # the first write: the next batch gets ready meanwhile
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(second_prepared.wait(), timeout=10)
            ready_while_writing.append(second_prepared.is_set())
        await write(work)  # stored and acknowledged when it returns
        written.append(work)
        if sum(map(len, written)) == len(articles):
            all_written.set()

    monkeypatch.setattr(consumer, "prepare", counting_prepare)
    monkeypatch.setattr(consumer._writer, "write", observed_write)
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(all_written.wait(), timeout=60)
    consumer.stop()
    await running
    await es.indices.refresh(index=namespace.articles)

    assert ready_while_writing == [True]
    assert await pending(redis, namespace.streams.articles) == 0
    assert await ids_in(es, namespace.articles) == sorted(a.idempotency_key for a in articles)


async def test_the_ledgers_notes_of_another_type_are_replaced_not_waited_on(
    redis: Redis, namespace: Namespace
) -> None:
    # Set by hand to a string: every read of a note was refused, and the indexer waited
    # for ever at the first entry past max_deliveries.
    unused = make_elasticsearch(ElasticsearchSettings(url="http://127.0.0.1:1"))
    consumer = Consumer(
        redis,
        unused,
        namespace.streams,
        IndexNames(namespace.index_prefix),
        IndexerSettings(),
        _no_letters,
    )
    notes = f"{namespace.streams.deadletters}:last-error:indexer"
    await redis.set(notes, "not a hash")
    entry = Entry(namespace.streams.articles, "1-0", {}, deliveries=9)
    ledger = consumer._ledger
    async with asyncio.timeout(10):
        assert await ledger.last_error(entry) is None
        await ledger.remember([entry], Fault.CLUSTER, "ConnectionError")
        assert await ledger.last_error(entry) == (Fault.CLUSTER, "ConnectionError")
    assert not consumer.hold.active
    await unused.close()


async def _no_letters(_: DeadLetter) -> None:
    raise AssertionError("nothing is dead-lettered here")
