"""Writing a batch to Elasticsearch until every entry in it is settled.

- Bulk requests are bounded by count and by bytes.
- Elasticsearch unreachable: wait (backoff with jitter) and send again, for as
  long as it takes or until stop. Nothing new is read meanwhile, so the backlog
  stays in Redis. An outage is never an entry's fault: nothing is dead-lettered.
- 429/5xx for the whole request: back off and resend; when it goes on, split
  the request in halves (smaller requests are also what an overloaded cluster
  needs). A lone entry still refused after `item_retries` tries is the poison:
  it is dead-lettered, but only if the cluster has accepted other writes in
  the last `item_retry_seconds`; otherwise the cluster is the problem and the
  entry is held.
- Any other refusal of the whole request (a 413, a 400) is bisected at once
  until the entry at fault is found and dead-lettered; the rest are stored.
- Per item: stored or stale (version conflict) is acknowledged; 429/5xx items
  are retried with backoff up to a number of attempts and a time budget, then
  dead-lettered; other refusals are dead-lettered at once with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import structlog
from elastic_transport import ConnectionError as ESConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, AsyncElasticsearch
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.indexer import metrics
from services.indexer.bulk import ItemResult, Outcome, classify_response
from services.indexer.decode import Entry
from services.indexer.documents import BulkAction
from services.indexer.ledger import Ledger
from shared.settings import IndexerSettings

log = structlog.get_logger(__name__)
_tracer = trace.get_tracer(__name__)
_propagator = TraceContextTextMapPropagator()

Work = list[tuple[Entry, BulkAction]]
# Only what classify_item reads: a smaller response to send, receive and parse.
BULK_RESPONSE = "errors,items.*.status,items.*.error"


def _trace_written(work: Work, results: list[ItemResult], started_ns: int) -> None:
    """A span per traced event, child of the publisher's: one article, one trace."""
    for (entry, action), result in zip(work, results, strict=True):
        if action.trace is None:
            continue
        span = _tracer.start_span(
            "index", context=_propagator.extract(action.trace), start_time=started_ns,
            kind=SpanKind.CONSUMER,
            attributes={"messaging.destination.name": entry.stream,
                        "messaging.message.id": entry.entry_id,
                        "caravan.document.id": action.doc_id,
                        "caravan.outcome": result.outcome.value})
        span.end()


def chunked(work: Work, max_count: int, max_bytes: int) -> Iterator[Work]:
    """Split work into bulk requests of at most `max_count` items and about `max_bytes`."""
    chunk: Work = []
    size = 0
    for item in work:
        weight = item[0].size
        if chunk and (len(chunk) >= max_count or size + weight > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += weight
    if chunk:
        yield chunk


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: between half and all of min(cap, base * 2^attempt)."""
    ceiling = min(cap, base * 2 ** min(attempt, 16))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not crypto)


class Writer:
    def __init__(
        self,
        es: AsyncElasticsearch,
        ledger: Ledger,
        settings: IndexerSettings,
        stopping: asyncio.Event,
    ) -> None:
        self._es = es
        self._ledger = ledger
        self._settings = settings
        self._stopping = stopping
        self._last_success = float("-inf")

    async def write(self, work: Work) -> None:
        for chunk in chunked(work, self._settings.batch_size, self._settings.bulk_max_bytes):
            await self._write(chunk)

    async def _write(self, work: Work) -> None:
        attempt = 0
        unreachable = 0
        refused = 0
        give_up_at = time.monotonic() + self._settings.item_retry_seconds
        while work and not self._stopping.is_set():
            started_ns = time.time_ns()
            try:
                results = await self._bulk([action for _, action in work])
            except (ESConnectionError, ConnectionTimeout) as exc:
                unreachable += 1
                log.warning("elasticsearch unreachable, holding the batch", error=str(exc),
                            entries=len(work), attempt=unreachable)
                await self._sleep(unreachable)
                continue
            except ApiError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    await self._isolate(work, exc)
                    return
                refused += 1
                if (len(work) > 1 and refused >= 2) or (
                        refused > self._settings.item_retries and self._cluster_writes()):
                    await self._isolate(work, exc)
                    return
                log.warning("elasticsearch refused the bulk request, backing off",
                            status=exc.status_code, entries=len(work), attempt=refused)
                await self._sleep(refused)
                continue
            self._last_success = time.monotonic()
            _trace_written(work, results, started_ns)
            final = attempt >= self._settings.item_retries or time.monotonic() > give_up_at
            work = await self._settle(work, results, final=final)
            if work:
                attempt += 1
                await self._sleep(attempt)
        if work:
            await self._ledger.remember([e for e, _ in work],
                                        "stopped before Elasticsearch confirmed")

    def _cluster_writes(self) -> bool:
        """Whether Elasticsearch stored anything lately: then a refusal is the entry's fault."""
        return time.monotonic() - self._last_success < self._settings.item_retry_seconds

    async def _isolate(self, work: Work, exc: ApiError) -> None:
        """The whole request was refused: find the entry at fault by halving."""
        if len(work) == 1:
            entry, _ = work[0]
            await self._ledger.dead_letter(entry, f"Elasticsearch{exc.status_code}",
                                           f"bulk request refused: {exc.message} ({exc.body})")
            return
        log.warning("bulk request refused, bisecting to find the entry at fault",
                    status=exc.status_code, entries=len(work))
        middle = len(work) // 2
        await self._write(work[:middle])
        await self._write(work[middle:])

    async def _bulk(self, actions: Sequence[BulkAction]) -> list[ItemResult]:
        # Headers are dicts, documents ready-made JSON text: the NDJSON serializer
        # passes text through, so each document is serialized once, by pydantic.
        operations: list[Any] = []
        for action in actions:
            operations.extend(action.operations())
        started = time.perf_counter()
        response = await self._es.bulk(operations=operations, filter_path=BULK_RESPONSE)
        metrics.BULK_SECONDS.observe(time.perf_counter() - started)
        return classify_response(dict(response))

    async def _settle(self, work: Work, results: list[ItemResult], *, final: bool) -> Work:
        """Acknowledge what is done, dead-letter what is refused; return what to retry."""
        done: list[Entry] = []
        retry: Work = []
        outcomes: Counter[tuple[str, str]] = Counter()
        for (entry, action), result in zip(work, results, strict=True):
            outcomes[action.index, result.outcome.value] += 1
            if result.done:
                done.append(entry)
            elif result.outcome is Outcome.REJECTED or final:
                await self._ledger.dead_letter(entry, f"Elasticsearch{result.status}",
                                               result.reason)
            else:
                retry.append((entry, action))
        for (index, outcome), count in outcomes.items():
            metrics.DOCUMENTS.labels(index, outcome).inc(count)
        await self._ledger.ack(done)
        if retry:
            reasons = "; ".join(sorted({r.reason for r in results if r.outcome is Outcome.RETRY}))
            log.warning("retrying items Elasticsearch could not take", count=len(retry),
                        reason=reasons)
            await self._ledger.remember([e for e, _ in retry], reasons)
        return retry

    async def _sleep(self, attempt: int) -> None:
        """Back off, but wake at once when asked to stop."""
        delay = backoff(attempt, self._settings.retry_base_delay, self._settings.retry_max_delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
