"""The cluster's faults are held, never dead-lettered; the entries' faults cost one letter each.

Real Redis and Elasticsearch, indexers as their own processes. Each scenario
ends by checking that every good event is in the index exactly once, and adds
a row to test-artifacts/fault-report.jsonl (events sent, indexed,
dead-lettered, duplicated, time to recover).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from shared.events import QuoteEvent
from tests.faults.conftest import (
    Fixture,
    Servers,
    articles,
    duplicates,
    report,
)
from tests.faults.gate import ElasticsearchGate
from tests.faults.proxy import Proxy
from tests.waiting import wait_for

pytestmark = pytest.mark.faults

# Long enough for a dozen claim periods (CLAIM_IDLE_MS is 1 s in the fault world):
# what would have been claimed, re-delivered or dead-lettered has had every chance.
# CARAVAN_FAULT_HOLD_SECONDS=600 runs the holds for ten minutes, as an operator would see.
HOLD_SECONDS = float(os.environ.get("CARAVAN_FAULT_HOLD_SECONDS", "12"))


def _held_for(world: Fixture, name: str, seconds: float) -> bool:
    hold = world.hold(name)
    return hold is not None and hold["for_seconds"] >= seconds


def _blocked(es: Elasticsearch, index: str) -> bool:
    settings = es.indices.get_settings(index=index, name="index.blocks.read_only_allow_delete")
    return bool(settings.get(index, {}).get("settings"))


def _watermarks(free: str) -> dict[str, Any]:
    """Disk watermarks as free space: "1000tb" puts any real disk past the flood stage."""
    return {
        "cluster.routing.allocation.disk.threshold_enabled": True,
        "cluster.info.update.interval": "10s",  # its minimum
        "cluster.routing.allocation.disk.watermark.low": free,
        "cluster.routing.allocation.disk.watermark.high": free,
        "cluster.routing.allocation.disk.watermark.flood_stage": free,
    }


@contextmanager
def flood_stage(es: Elasticsearch, index: str) -> Iterator[None]:
    """The node's disk past the flood-stage watermark, as Elasticsearch itself judges it.

    Elasticsearch puts the read-only-allow-delete block on the index and, once
    the disk is below the watermarks again, takes it off by itself: the test
    does nothing to the index, only to what the node believes about its disk.
    """
    es.cluster.put_settings(persistent=_watermarks("1000tb"))
    try:
        wait_for(lambda: _blocked(es, index), 60, "Elasticsearch to apply the flood-stage block")
        yield
    finally:
        es.cluster.put_settings(persistent=_watermarks("1b"))
        try:
            wait_for(lambda: not _blocked(es, index), 60, "Elasticsearch to release the block")
        finally:
            es.cluster.put_settings(persistent=dict.fromkeys(_watermarks("1b")))


def test_a_flood_stage_block_holds_everything_and_resumes_by_itself(world: Fixture) -> None:
    before, during = articles(200, prefix="before"), articles(800, prefix="during")
    world.start_indexer("only", CARAVAN_INDEXER_BATCH_SIZE="100")
    world.publish(before)
    wait_for(lambda: world.count() == len(before), 60, "the first events")

    es = world.es()
    (index,) = es.indices.get_alias(name=world.alias)
    with flood_stage(es, str(index)):
        world.publish(during)
        wait_for(lambda: _held_for(world, "only", HOLD_SECONDS), HOLD_SECONDS + 60, "a long hold")
        readiness = world.readiness("only")
        assert readiness["ready"] is False
        assert readiness["checks"]["writing"] is False
        assert "flood-stage watermark" in readiness["details"]["hold"]["reason"]
        assert world.metric("only", "caravan_indexer_holding") == 1
        assert world.dead_letters() == []
    released = time.monotonic()

    wait_for(lambda: world.count() == 1000 and world.pending() == 0, 120, "the backlog")
    recovered = time.monotonic() - released
    ids = world.indexed_ids()
    assert ids == sorted(e.idempotency_key for e in before + during)
    assert world.dead_letters() == []
    wait_for(lambda: world.hold("only") is None, 30, "the hold to be released")
    assert world.metric("only", "caravan_indexer_documents_total", outcome="stale") == 0
    report(
        f"flood-stage disk watermark (429 block on every write), held {HOLD_SECONDS:.0f} s",
        sent=1000,
        indexed=len(ids),
        dead_lettered=0,
        duplicated=duplicates(ids),
        recovered_in=recovered,
    )


@pytest.fixture
def gate(servers: Servers) -> Iterator[ElasticsearchGate]:
    front = ElasticsearchGate(servers.es_url)
    front.start()
    yield front
    front.stop()


def test_an_expired_key_holds_and_a_valid_one_resumes(
    world: Fixture, gate: ElasticsearchGate
) -> None:
    before, during = articles(100, prefix="before"), articles(400, prefix="during")
    world.start_indexer("only", ELASTICSEARCH_URL=gate.url)
    world.publish(before)
    wait_for(lambda: world.count() == len(before), 60, "the first events")

    gate.refusing.set()
    world.publish(during)
    wait_for(lambda: _held_for(world, "only", HOLD_SECONDS), HOLD_SECONDS + 60, "a long hold")
    hold = world.hold("only")
    assert hold is not None
    assert "security_exception" in hold["reason"]
    assert "expired" in hold["reason"]
    assert world.dead_letters() == []
    released = time.monotonic()
    gate.refusing.clear()  # the operator rotated the key

    wait_for(lambda: world.count() == 500 and world.pending() == 0, 120, "the backlog")
    recovered = time.monotonic() - released
    ids = world.indexed_ids()
    assert ids == sorted(e.idempotency_key for e in before + during)
    assert world.dead_letters() == []
    assert gate.refused > 0
    report(
        f"401 expired API key, held {HOLD_SECONDS:.0f} s",
        sent=500,
        indexed=len(ids),
        dead_lettered=0,
        duplicated=duplicates(ids),
        recovered_in=recovered,
    )


def test_three_indexers_through_a_long_outage_write_once_and_dead_letter_nothing(
    world: Fixture, servers: Servers
) -> None:
    before, during = articles(600, prefix="before"), articles(3000, prefix="during")
    names = ("one", "two", "three")
    for name in names:
        world.start_indexer(name, CARAVAN_INDEXER_BATCH_SIZE="100")
    world.publish(before)
    wait_for(lambda: world.count() == len(before), 60, "the first events")

    servers.elasticsearch("stop")
    try:
        world.publish(during)
        # Every indexer holds entries it read, for many claim periods.
        wait_for(
            lambda: all(_held_for(world, n, HOLD_SECONDS) for n in names),
            HOLD_SECONDS + 90,
            "all three to hold",
        )
    finally:
        restarted = time.monotonic()
        servers.elasticsearch("start")

    wait_for(lambda: world.count() == 3600 and world.pending() == 0, 240, "the backlog")
    recovered = time.monotonic() - restarted
    ids = world.indexed_ids()
    assert ids == sorted(e.idempotency_key for e in before + during)
    assert world.dead_letters() == []
    # No entry changed hands while held, so none was written twice.
    stale = sum(world.metric(n, "caravan_indexer_documents_total", outcome="stale") for n in names)
    assert stale == 0
    assert all("claimed abandoned entries" not in world.log_of(n) for n in names)
    report(
        f"Elasticsearch down for {HOLD_SECONDS:.0f} s or more, 3 indexers",
        sent=3600,
        indexed=len(ids),
        dead_lettered=0,
        duplicated=duplicates(ids),
        recovered_in=recovered,
        resent_stale=int(stale),
    )


def test_a_black_holed_cluster_times_out_holds_and_recovers(
    world: Fixture, es_proxy: Proxy
) -> None:
    before, during = articles(200, prefix="before"), articles(600, prefix="during")
    world.start_indexer(
        "only", ELASTICSEARCH_URL=f"http://{es_proxy.listen}", ELASTICSEARCH_REQUEST_TIMEOUT="2"
    )
    world.publish(before)
    wait_for(lambda: world.count() == len(before), 60, "the first events")

    hole = es_proxy.timeout()  # packets vanish: no reset, no answer
    world.publish(during)
    wait_for(lambda: _held_for(world, "only", HOLD_SECONDS), HOLD_SECONDS + 60, "a long hold")
    assert world.dead_letters() == []
    released = time.monotonic()
    es_proxy.remove(hole)

    wait_for(lambda: world.count() == 800 and world.pending() == 0, 120, "the backlog")
    recovered = time.monotonic() - released
    ids = world.indexed_ids()
    assert ids == sorted(e.idempotency_key for e in before + during)
    assert world.dead_letters() == []
    # Only answers were swallowed: the requests reached the node and were applied, so
    # their resends are answered "stale" (external versions), never stored twice.
    stale = world.metric("only", "caravan_indexer_documents_total", outcome="stale")
    assert stale <= len(during)
    report(
        f"Elasticsearch black-holed (toxiproxy timeout), held {HOLD_SECONDS:.0f} s",
        sent=800,
        indexed=len(ids),
        dead_lettered=0,
        duplicated=duplicates(ids),
        recovered_in=recovered,
        resent_stale=int(stale),
    )


def test_redis_connections_reset_and_slow_lose_nothing(world: Fixture, redis_proxy: Proxy) -> None:
    events = articles(2000)
    world.start_indexer(
        "only", REDIS_URL=f"redis://{redis_proxy.listen}/0", CARAVAN_INDEXER_BATCH_SIZE="100"
    )
    world.publish(events[:500])
    wait_for(lambda: world.count() > 0, 60, "indexing to start")

    slow = redis_proxy.latency(200, jitter_ms=100)
    world.publish(events[500:1000])
    reset = redis_proxy.reset_peer(after_ms=100)
    world.publish(events[1000:])
    wait_for(lambda: "redis unreachable" in world.log_of("only"), 60, "the resets to bite")
    released = time.monotonic()
    redis_proxy.remove(reset)
    redis_proxy.remove(slow)

    wait_for(lambda: world.count() == 2000 and world.pending() == 0, 180, "every event")
    recovered = time.monotonic() - released
    ids = world.indexed_ids()
    assert ids == sorted(e.idempotency_key for e in events)
    assert world.dead_letters() == []
    report(
        "Redis connections reset and delayed (toxiproxy)",
        sent=2000,
        indexed=len(ids),
        dead_lettered=0,
        duplicated=duplicates(ids),
        recovered_in=recovered,
    )


def test_poison_of_every_shape_costs_one_dead_letter_and_stops_no_neighbour(
    world: Fixture,
) -> None:
    good = articles(300)
    quote = QuoteEvent.model_validate(
        {
            "base": "KZT",
            "rate": "0.00192",
            "as_of": "2026-11-27",
            "provider": "nbk",
            "fetched_at": "2026-11-27T09:00:00Z",
        }
    )
    valid = good[0].model_dump_json()
    poisons: dict[str, dict[bytes, bytes]] = {
        "deeply nested JSON": {b"__data__": b"[" * 100_000},
        "multi-megabyte entry": {b"__data__": b'{"title": "' + b"x" * (4 << 20) + b'"}'},
        "invalid UTF-8": {b"__data__": b'{"title": "\xff\xfe\xfd"}'},
        "no payload field": {b"title": b"an envelope of another system"},
        "unknown schema_version": {
            b"__data__": valid.replace('"schema_version":1', '"schema_version":99').encode()
        },
        "a quote on the article stream": {b"__data__": quote.model_dump_json().encode()},
        # Valid, but over the cluster's indexing-pressure limit: refused on its own.
        "a document the cluster cannot take": {
            b"__data__": articles(1, body_bytes=3 << 20, prefix="huge")[0]
            .model_dump_json()
            .encode()
        },
        # Under the limit alone (a primary operation weighs about four times the
        # document), over it with its own request's bytes: it was held for ever.
        "a document that fits in no request": {
            b"__data__": articles(1, body_bytes=160 << 10, prefix="heavy")[0]
            .model_dump_json()
            .encode()
        },
    }
    client = world.redis()
    world.publish(good[:150])
    for fields in poisons.values():
        client.xadd(world.articles_stream, fields)  # type: ignore[arg-type]
    world.publish(good[150:])

    indexer = world.start_indexer("only", CARAVAN_INDEXER_BATCH_SIZE="100")
    wait_for(
        lambda: (
            len(world.dead_letters()) >= len(poisons)
            and world.pending() == 0
            and world.count() == len(good)
        ),
        120,
        "every poison to be dead-lettered",
    )

    ids = world.indexed_ids()
    assert ids == sorted(e.idempotency_key for e in good)
    letters = world.dead_letters()
    assert len(letters) == len(poisons)  # one each, however often they were seen
    classes = sorted(letter["error_class"] for letter in letters)
    assert classes == sorted(
        [
            "ValidationError",
            "ValidationError",
            "ValidationError",
            "MissingDataField",
            "UnknownSchemaVersion",
            "ValidationError",
            "Elasticsearch429",
            "Elasticsearch429",
        ]
    )
    huge, heavy = sorted(
        (x for x in letters if x["error_class"] == "Elasticsearch429"),
        key=lambda x: "too heavy for any request" in x["error_message"],
    )
    assert "es_rejected_execution_exception" in huge["error_message"]
    assert heavy["error_message"].startswith(
        "too heavy for any request: es_rejected_execution_exception"
    )
    assert all(len(x["error_message"]) < 5000 for x in letters)
    assert indexer.poll() is None
    report(
        "poison: 8 shapes among 300 good events",
        sent=307,
        indexed=len(ids),
        dead_lettered=len(letters),
        duplicated=duplicates(ids),
        recovered_in=None,
    )
