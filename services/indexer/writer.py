"""Writing a batch to Elasticsearch until every entry in it is settled.

The failure policy is services/indexer/failures.py; this module applies it:

- Bulk requests are bounded by count and by bytes.
- The cluster's fault (unreachable, timeouts, 429 of any kind, 5xx, 401/403,
  blocks) for the whole request or for some items: hold. The entries stay
  pending and owned, the consumer stops reading (`Hold`), and the same
  entries are sent again after a jittered backoff, for as long as it takes or
  until stop. Nothing held is ever dead-lettered.
- A whole request refused for its content (400, 413, a request larger than
  the cluster's indexing-pressure limit) is split in halves until the entry
  at fault stands alone; that one is dead-lettered, the rest are stored.
- Per item: stored or stale (version conflict) is acknowledged; a document
  refused on its own (mapping or parse error) is dead-lettered at once.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import structlog
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.indexer import metrics
from services.indexer.bulk import (
    ItemOutcome,
    ItemResult,
    classify_response,
    multi_get_docs,
    still_published,
    superseding,
)
from services.indexer.concurrency import AdaptiveLimit
from services.indexer.documents import BulkAction, superseded_delete
from services.indexer.failures import Fault, Verdict, classify_request_error, describe_error
from services.indexer.grouping import groups
from services.indexer.hold import Hold
from services.indexer.ledger import Ledger
from shared.backoff import Backoff
from shared.consumer import Entry, wait_or_stop
from shared.settings import IndexerSettings

log = structlog.get_logger(__name__)
_tracer = trace.get_tracer(__name__)
_propagator = TraceContextTextMapPropagator()

Work = list[tuple[Entry, BulkAction]]
# Told the actions each bulk request stored (not those refused as stale), before they
# are acknowledged; must not wait nor fail (the saved-search matcher's `offer`).
OnStored = Callable[[list[BulkAction]], None]
# Only what classify_item reads: a smaller response to send, receive and parse.
BULK_RESPONSE = "errors,items.*.status,items.*.error"


async def delete_superseded(
    es: AsyncElasticsearch,
    actions: Sequence[BulkAction],
    positions: Sequence[int],
    index: str | None = None,
) -> tuple[list[int], str]:
    """One round of deleting what the actions at `positions` supersede (in `index`, or
    each action's own): the positions still owed, held by the cluster, and why. Each
    superseded document is read first and deleted only while it is still the version
    the article was published at there (bulk.still_published): an older or newer one
    may be another article's, which a delete at one past the version would take."""
    wanted = [
        (position, index or actions[position].index, doc_id, published)
        for position in positions
        for doc_id, published in actions[position].supersedes
    ]
    read = await es.mget(
        docs=[{"_index": where, "_id": doc_id} for _, where, doc_id, _ in wanted], source=False
    )
    owed: set[int] = set()
    reasons: set[str] = set()
    sent: list[tuple[int, dict[str, Any]]] = []
    found_docs = multi_get_docs(read.body, len(wanted))
    for (position, where, doc_id, published), found in zip(wanted, found_docs, strict=True):
        verdict = still_published(found, published)
        if verdict is None:
            owed.add(position)
            reasons.add(describe_error(found["error"]))
        elif verdict:
            sent.append((position, superseded_delete(where, doc_id, published)))
    if sent:
        answer = await es.bulk(operations=[delete for _, delete in sent], filter_path=BULK_RESPONSE)
        for (position, _), result in zip(
            sent, classify_response(answer.body, len(sent)), strict=True
        ):
            # A delete refused outright (none is known) is given up: the old copy stays.
            if result.outcome is ItemOutcome.HOLD:
                owed.add(position)
                reasons.add(result.reason)
    return sorted(owed), "; ".join(sorted(reasons))


def _trace_written(work: Work, results: list[ItemResult], started_ns: int) -> None:
    """A span per traced event, child of the publisher's: one article, one trace."""
    for (entry, action), result in zip(work, results, strict=True):
        if action.trace is None:
            continue
        span = _tracer.start_span(
            "index",
            context=_propagator.extract(action.trace),
            start_time=started_ns,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.destination.name": entry.stream,
                "messaging.message.id": entry.entry_id,
                "caravan.document.id": action.doc_id,
                "caravan.outcome": result.outcome.value,
            },
        )
        span.end()


def release_frames(exc: BaseException) -> None:
    """Drop the locals of the frames a failed request's exceptions hold.

    The transport's frames keep the serialized request body (megabytes) and sit
    in reference cycles with their exceptions, which only the cyclic collector
    frees, late: during a long hold every retry would add a body to the heap.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        pending.extend(e for e in getattr(current, "errors", ()) if isinstance(e, BaseException))


def chunked(work: Work, max_count: int, max_bytes: int) -> Iterator[Work]:
    """Split work into bulk requests of at most `max_count` items and about `max_bytes`."""
    # The document as sent, derived search fields included: what the cluster weighs.
    return groups(work, lambda item: item[1].size, max_bytes, max_count)


# Times one document alone in its request is refused for its own weight before it is
# the entry's fault: each after the hold's backoff.
NARROW_TRIES = 3


class Writer:
    def __init__(
        self,
        es: AsyncElasticsearch,
        ledger: Ledger,
        settings: IndexerSettings,
        stopping: asyncio.Event,
        hold: Hold,
        backoff: Backoff,
        *,
        limit: AdaptiveLimit | None = None,
        on_stored: OnStored | None = None,
    ) -> None:
        # The hold loop below is the one retry policy: the client's own retries would
        # only repeat a refused request at once and chain their errors.
        self._es = es.options(max_retries=0)
        self._ledger = ledger
        self._settings = settings
        self._stopping = stopping
        self._hold = hold
        self._backoff = backoff
        # Told how each request went, so the consumer keeps as many in flight as pay.
        self._limit = limit or AdaptiveLimit(settings.max_in_flight)
        self._on_stored = on_stored

    async def write(self, work: Work) -> None:
        for chunk in chunked(work, self._settings.batch_size, self._settings.bulk_max_bytes):
            await self._write(chunk)

    async def _write(self, work: Work) -> None:
        attempt = narrowed = 0
        while work and not self._stopping.is_set():
            started_ns = time.time_ns()
            try:
                results = await self._bulk([action for _, action in work])
            except (ApiError, TransportError) as exc:
                failure = classify_request_error(
                    exc, entries=len(work), size=sum(action.size for _, action in work)
                )
                release_frames(exc)
                if failure.verdict is Verdict.REJECT:
                    # The cluster answered, about the entry: a hold this batch entered
                    # (a timeout, then this answer) has nothing else to release it.
                    self._hold.release()
                    entry, _ = work[0]
                    await self._ledger.dead_letter(
                        entry,
                        f"Elasticsearch{failure.status}",
                        f"bulk request refused: {failure.reason}",
                    )
                    return
                if failure.verdict is Verdict.SPLIT:
                    log.warning(
                        "bulk request refused, splitting to find the entry at fault",
                        status=failure.status,
                        entries=len(work),
                        reason=failure.reason,
                    )
                    middle = len(work) // 2
                    await self._write(work[:middle])
                    await self._write(work[middle:])
                    return
                attempt += 1
                await self._hold_for(work, failure.reason, attempt)
                continue
            _trace_written(work, results, started_ns)
            results = await self._delete_superseded(work, results)
            if all(result.outcome is not ItemOutcome.HOLD for result in results):
                # Released only by an answer with nothing held: a bulk request answered
                # 200 whose items all meet an index block is still the cluster refusing.
                # Before settling, which fails the batch if Redis is away meanwhile.
                self._hold.release()
            sent = len(work)
            work = await self._settle_items(work, results)
            held = [result for result in results if result.outcome is ItemOutcome.HOLD]
            if held and all(result.narrow for result in held):
                # Held only for this request's own weight: smaller requests may fit.
                if len(work) > 1:
                    middle = len(work) // 2
                    await self._write(work[:middle])
                    await self._write(work[middle:])
                    return
                if sent > 1:
                    continue  # tried alone at once: no hold, no count yet
                # Alone, it is refused so whatever the load: the entry's fault, once the
                # refusal has repeated over the backoff (another node may yet take it).
                narrowed += 1
                if narrowed >= NARROW_TRIES:
                    self._hold.release()
                    await self._ledger.dead_letter(
                        work[0][0],
                        f"Elasticsearch{held[0].status}",
                        f"too heavy for any request: {held[0].reason}",
                    )
                    return
            if work:
                attempt += 1
                reasons = "; ".join(
                    sorted({r.reason for r in results if r.outcome is ItemOutcome.HOLD})
                )
                await self._hold_for(work, reasons, attempt)

    async def _hold_for(self, work: Work, reason: str, attempt: int) -> None:
        """Keep the entries, say why, and wait before sending them again."""
        self._hold.enter(reason)
        self._limit.refused()
        metrics.HOLD_RETRIES.inc()
        if attempt == 1:
            # Remembered once per hold: a restart mid-outage still knows these
            # entries are not poison, whatever their delivery count says.
            await self._ledger.remember([e for e, _ in work], Fault.CLUSTER, reason)
        delay = self._backoff.delay(attempt)
        log.warning(
            "holding entries for the cluster",
            entries=len(work),
            attempt=attempt,
            retry_in=round(delay, 2),
            reason=reason,
        )
        await wait_or_stop(self._stopping, delay)

    async def _bulk(self, actions: Sequence[BulkAction]) -> list[ItemResult]:
        # One bytes body joined from each action's ready-made lines: the client sends
        # bytes as they are, so each document is serialized once, by pydantic.
        body = b"".join([line for action in actions for line in action.lines()])
        started = time.perf_counter()
        response = await self._es.bulk(body=body, filter_path=BULK_RESPONSE)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        metrics.BULK_SECONDS.observe(seconds)
        self._limit.answered(seconds, len(body))
        metrics.IN_FLIGHT_LIMIT.set(self._limit.limit)
        return classify_response(response.body, len(actions), request_bytes=len(body))

    async def _delete_superseded(self, work: Work, results: list[ItemResult]) -> list[ItemResult]:
        """Delete what the documents just stored supersede, in requests of their own, held
        until the cluster takes them: no delete is an entry's fault, so none is split or
        refused, and the documents stay stored (matched once, as any). Tried once even
        when asked to stop; what is still owed then is matched now and not acknowledged:
        sent again, its document comes back stale (never matched twice) and its deletes go."""
        actions = [action for _, action in work]
        owed = superseding(actions, results)
        attempt = 0
        while owed:
            try:
                owed, reason = await delete_superseded(self._es, actions, owed)
            except (ApiError, TransportError) as exc:
                reason = classify_request_error(exc, entries=len(owed), size=0).reason
                release_frames(exc)
            if not owed or self._stopping.is_set():
                break
            attempt += 1
            await self._hold_for([work[position] for position in owed], reason, attempt)
            if self._stopping.is_set():
                break
        stored = [actions[p] for p in owed if results[p].outcome is ItemOutcome.STORED]
        if stored and self._on_stored is not None:
            self._on_stored(stored)
        held = ItemResult(ItemOutcome.HOLD, 503, "superseded documents not deleted yet")
        return [held if position in owed else result for position, result in enumerate(results)]

    async def _settle_items(self, work: Work, results: list[ItemResult]) -> Work:
        """Acknowledge what is done, dead-letter what is refused; return what to hold."""
        done: list[Entry] = []
        stored: list[BulkAction] = []
        held: Work = []
        outcomes: Counter[tuple[str, str]] = Counter()
        for (entry, action), result in zip(work, results, strict=True):
            outcomes[action.index, result.outcome.value] += 1
            if result.done:
                done.append(entry)
                if result.outcome is ItemOutcome.STORED:
                    stored.append(action)
            elif result.outcome is ItemOutcome.REJECTED:
                await self._ledger.dead_letter(
                    entry, f"Elasticsearch{result.status}", result.reason
                )
            else:
                held.append((entry, action))
        for (index, outcome), count in outcomes.items():
            metrics.DOCUMENTS.labels(index, outcome).inc(count)
        if stored and self._on_stored is not None:
            self._on_stored(stored)
        await self._ledger.ack(done)
        return held
