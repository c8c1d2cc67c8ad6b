"""Abandoned consumer groups on the real Redis: reported, not obeyed; configured ones obeyed."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.indexer.ledger import notes_key
from services.indexer.upkeep import Upkeep
from services.ingest.backpressure import Backpressure
from shared.consumer import GroupReader
from shared.groups import drop_group, read_groups
from shared.settings import IndexerSettings
from tests.conftest import Namespace
from tests.streams import add
from tests.waiting import until

pytestmark = pytest.mark.integration

ENTRIES = 250


async def _stream_with_a_forgotten_group(redis: Redis, stream: str) -> None:
    # More than one radix-tree node (100 entries): approximate trimming drops whole nodes.
    for n in range(ENTRIES):
        await add(redis, stream, {"n": str(n)})
    # A debug session read once from the start and went away; its consumer is idle since.
    await redis.xgroup_create(stream, "debug", id="0")
    await redis.xreadgroup("debug", "laptop", {stream: ">"}, count=1)
    await redis.xgroup_create(stream, "indexer", id="$")  # ours is up to date


async def test_an_outside_group_never_pauses_ingest_and_once_abandoned_not_trimming(
    redis: Redis, namespace: Namespace
) -> None:
    stream = namespace.streams.articles
    await _stream_with_a_forgotten_group(redis, stream)
    (debug,) = [g for g in await read_groups(redis, stream) if g.name == "debug"]
    assert debug.behind == ENTRIES - 1
    idle = debug.idle_ms or 0

    # Only configured groups throttle ingest, active or not.
    backpressure = Backpressure(redis, stream, max_lag=10, configured=["indexer"])
    assert await backpressure.lag() == 0
    # Abandoned after `idle` ms: the group's consumer has been silent longer than that.
    upkeep = Upkeep(
        redis,
        namespace.streams,
        IndexerSettings(retention_hours=1e-9),
        ["indexer"],
        abandon_after_ms=idle,
    )
    await upkeep.trim({stream: await upkeep.stream_state(stream)})
    assert await redis.xlen(stream) < ENTRIES


async def test_a_configured_group_is_waited_for_however_long_it_is_away(
    redis: Redis, namespace: Namespace
) -> None:
    stream = namespace.streams.articles
    await _stream_with_a_forgotten_group(redis, stream)
    (debug,) = [g for g in await read_groups(redis, stream) if g.name == "debug"]
    idle = debug.idle_ms or 0

    backpressure = Backpressure(redis, stream, max_lag=10, configured=["indexer", "debug"])
    assert await backpressure.lag() == ENTRIES - 1
    upkeep = Upkeep(
        redis,
        namespace.streams,
        IndexerSettings(retention_hours=1e-9),
        ["indexer", "debug"],
        abandon_after_ms=idle,
    )
    await upkeep.trim({stream: await upkeep.stream_state(stream)})
    assert await redis.xlen(stream) == ENTRIES


async def test_only_a_missing_stream_reads_as_no_groups(redis: Redis, namespace: Namespace) -> None:
    missing, wrong = f"{namespace.stream_prefix}nothing", f"{namespace.stream_prefix}text"
    assert await read_groups(redis, missing) == []
    assert await drop_group(redis, missing, "indexer") is False
    # Any other refusal (here a key of another type; in a failover CLUSTERDOWN) is not
    # "no groups": the trim's floor would pass over entries still pending.
    await redis.set(wrong, "not a stream")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await read_groups(redis, wrong)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await drop_group(redis, wrong, "indexer")


async def test_names_that_are_not_utf8_are_read_and_stop_no_reader(
    redis: Redis, namespace: Namespace
) -> None:
    # Any bytes make a group's or a consumer's name: another team's tool, or a typo.
    stream = namespace.streams.articles
    await add(redis, stream, {"n": "1"})
    await redis.xgroup_create(stream, "indexer", id="0")
    for command in (
        ("XGROUP", "CREATE", stream, b"\xc3\x28", "0"),
        ("XREADGROUP", "GROUP", b"\xc3\x28", b"\xff", "COUNT", 1, "STREAMS", stream, ">"),
        ("XGROUP", "CREATECONSUMER", stream, "indexer", b"\xff\xfe"),
    ):
        await redis.execute_command(*command)  # type: ignore[no-untyped-call]

    groups = {g.name: g for g in await read_groups(redis, stream)}
    assert set(groups) == {"indexer", "\\xc3("}
    assert groups["\\xc3("].pending == 1
    assert groups["\\xc3("].idle_ms is not None
    # Asked only about some (ingest's lag check: its configured groups), only those.
    assert [g.name for g in await read_groups(redis, stream, only={"indexer"})] == ["indexer"]

    reader = GroupReader(
        redis,
        [stream],
        "indexer",
        "live",
        batch_size=10,
        block_ms=10,
        linger_ms=0,
        claim_idle_ms=1000,
    )
    await reader.forget_idle_consumers()
    (entry,) = await reader.read()
    assert entry.fields == {b"n": b"1"}


async def test_upkeep_forgets_error_notes_of_settled_entries_and_keeps_the_pending_ones(
    redis: Redis, namespace: Namespace
) -> None:
    # Notes the ledger could not delete after an acknowledgement (Redis refused the HDEL)
    # were kept for good: a hash that grew with every flaky hour.
    stream = namespace.streams.articles
    await redis.xgroup_create(stream, "indexer", id="0", mkstream=True)
    settled, pending = await add(redis, stream, {"n": "1"}), await add(redis, stream, {"n": "2"})
    await redis.xreadgroup("indexer", "live", {stream: ">"}, count=10)
    await redis.xack(stream, "indexer", settled)
    notes = notes_key(namespace.streams.deadletters, "indexer")
    await redis.hset(notes, mapping={f"{stream}/{settled}": "x", f"{stream}/{pending}": "y"})
    upkeep = Upkeep(redis, namespace.streams, IndexerSettings(), ["indexer"], abandon_after_ms=1)

    await upkeep.trim({stream: await upkeep.stream_state(stream)})

    assert await redis.hgetall(notes) == {f"{stream}/{pending}".encode(): b"y"}


async def test_a_dropped_group_leaves_no_gauges_behind(redis: Redis, namespace: Namespace) -> None:
    stream = namespace.streams.articles
    await _stream_with_a_forgotten_group(redis, stream)
    (debug,) = [g for g in await read_groups(redis, stream) if g.name == "debug"]
    upkeep = Upkeep(
        redis,
        namespace.streams,
        IndexerSettings(),
        ["indexer"],
        abandon_after_ms=debug.idle_ms or 0,
    )

    def abandoned(group: str) -> float | None:
        return REGISTRY.get_sample_value(
            "caravan_stream_group_abandoned", {"stream": stream, "group": group}
        )

    upkeep._publish_metrics({stream: await upkeep.stream_state(stream)})
    assert abandoned("debug") == 1
    await drop_group(redis, stream, "debug")
    upkeep._publish_metrics({stream: await upkeep.stream_state(stream)})
    # Its alert stops: the series are gone, not left at their last values.
    assert abandoned("debug") is None
    assert (
        REGISTRY.get_sample_value("caravan_stream_pending", {"stream": stream, "group": "debug"})
        is None
    )
    assert abandoned("indexer") == 0


def _trimmed_unread(stream: str, group: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "caravan_stream_trimmed_unread_total", {"stream": stream, "group": group}
        )
        or 0.0
    )


async def test_entries_a_cap_trims_before_a_configured_group_reads_them_are_counted(
    redis: Redis, namespace: Namespace
) -> None:
    stream = namespace.streams.quotes
    await redis.xgroup_create(stream, "indexer", id="0", mkstream=True)  # never reads
    for n in range(100):
        await add(redis, stream, {"n": str(n)})
    await redis.xgroup_create(stream, "reporting", id="0")  # reads 100, then goes away
    await redis.xreadgroup("reporting", "r", {stream: ">"}, count=100)
    await redis.xgroup_create(stream, "debug", id="0")  # not configured: not Caravan's word
    # The rate feed publishing with CARAVAN_STREAM_MAXLEN=1000 while nobody reads.
    for n in range(100, 5000):
        await redis.xadd(stream, {"n": str(n)}, maxlen=1000, approximate=True)
    await redis.xgroup_create(stream, "current", id="$")  # up to date: lost nothing
    removed = 5000 - int(await redis.xlen(stream))
    upkeep = Upkeep(
        redis,
        namespace.streams,
        IndexerSettings(stats_interval=0.01),
        ["indexer", "reporting", "current"],
        abandon_after_ms=1,
    )
    stopping = asyncio.Event()
    running = asyncio.create_task(upkeep.run(stopping))

    async def counted() -> bool:
        return _trimmed_unread(stream, "reporting") > 0

    try:
        await until(counted, "the upkeep counting the loss", within=10)
    finally:
        stopping.set()
        await running
    # Counted once, however often the upkeep finds the gap again, and when one look's
    # figure is a few too high (read while the stream grew) and the next one's right.
    state = await upkeep.stream_state(stream)
    upkeep.report_trimmed_unread({stream: replace(state, removed=state.removed + 5)})
    upkeep.report_trimmed_unread({stream: state})

    assert _trimmed_unread(stream, "indexer") == removed + 5
    assert _trimmed_unread(stream, "reporting") == removed - 100 + 5
    assert _trimmed_unread(stream, "current") == 0
    assert _trimmed_unread(stream, "debug") == 0
