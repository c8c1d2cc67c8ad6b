"""One article followed from ingest to index through OpenTelemetry, across processes.

A real OTLP/HTTP receiver on loopback collects the spans that the ingest and
indexer processes export; the trace context travels inside each event.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from elasticsearch import AsyncElasticsearch
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from redis.asyncio import Redis

from shared.events import ArticleEvent
from tests.conftest import REALDATA, REPO, Namespace
from tests.loopback import LoopbackServer, Reply
from tests.processes import free_port
from tests.streams import entries
from tests.waiting import until

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


@pytest.fixture
def collector() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    server.routes["/v1/traces"] = lambda _: Reply(
        200, b"", {"Content-Type": "application/x-protobuf"}
    )
    server.start()
    yield server
    server.stop()


def _spans(collector: LoopbackServer) -> list[Span]:
    found = []
    for hit in collector.hits:
        request = ExportTraceServiceRequest()
        request.ParseFromString(hit.body)
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope in resource_spans.scope_spans:
                found += [
                    Span(service, s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex())
                    for s in scope.spans
                ]
    return found


async def test_an_article_is_one_trace_from_ingest_to_index(
    collector: LoopbackServer, namespace: Namespace, redis: Redis, es: AsyncElasticsearch
) -> None:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url(""),
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "CARAVAN_HEALTH_PORT": str(free_port()),
        "CARAVAN_INDEXER_BLOCK_MS": "100",
    }
    indexer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.indexer",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        ingest = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services",
            "ingest",
            "--source",
            str(REALDATA / "feed-andijonfk-uz.xml"),
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(ingest.communicate(), timeout=60)
        assert ingest.returncode == 0, stderr.decode()

        async def both_indexed() -> bool:
            if not await es.indices.exists_alias(name=namespace.articles):
                return False
            await es.indices.refresh(index=namespace.articles)
            return int((await es.count(index=namespace.articles))["count"]) == 2

        await until(both_indexed, "both articles to be indexed")
    finally:
        indexer.send_signal(signal.SIGTERM)
        await asyncio.wait_for(indexer.wait(), timeout=30)  # exiting flushes its spans

    events = [
        ArticleEvent.model_validate_json(fields[b"__data__"])
        for _, fields in await entries(redis, namespace.streams.articles)
    ]
    assert len(events) == 2
    assert all(e.traceparent for e in events)  # the context rode in the event itself

    spans = _spans(collector)
    by_id = {s.span_id: s for s in spans}
    indexed = [s for s in spans if s.service == "caravan-indexer" and s.name == "index"]
    assert len(indexed) == 2
    for span in indexed:
        publish = by_id[span.parent_id]  # the index span is the publish span's child...
        article = by_id[publish.parent_id]  # ...which is the ingested article's
        assert publish.service == article.service == "caravan-ingest"
        assert article.name == "ingest article"
        assert span.trace_id == publish.trace_id == article.trace_id
    assert len({s.trace_id for s in indexed}) == 1  # one poll, one trace
