"""The indexer's consumer loop, top to bottom.

1. Make sure each stream has the consumer group (created at `0`, so entries
   published before the first indexer started are indexed too).
2. Loop until asked to stop:
   a. every so often, claim entries left pending by a dead consumer (XAUTOCLAIM);
   b. otherwise read new entries from both streams (XREADGROUP `>`);
   c. turn each entry into a bulk action; an entry that is not a valid event goes
      to the dead-letter stream with the reason, and is acknowledged;
   d. send the actions in one bulk request; acknowledge (XACK) each entry only
      once Elasticsearch has stored it (or already holds a newer version);
      retry 429/5xx items with backoff, dead-letter refused ones at once.
3. On stop, the batch in hand is finished; an entry not confirmed by then stays
   pending and another indexer claims it.

While Elasticsearch is unreachable the loop keeps retrying the batch in hand and
reads nothing new: the backlog waits in Redis, not in this process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from elastic_transport import ConnectionError as ESConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, AsyncElasticsearch
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.indexer import metrics
from services.indexer.bulk import ItemResult, Outcome, classify_response
from services.indexer.decode import Entry, Invalid, decode_entry
from services.indexer.documents import BulkAction
from services.indexer.mappings import IndexNames
from shared.events import DeadLetter
from shared.settings import IndexerSettings
from shared.streams import DATA_FIELD, Streams

log = structlog.get_logger(__name__)

SERVICE = "indexer"
PublishDeadLetter = Callable[[DeadLetter], Awaitable[Any]]
ReadResponse = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes] | None]]]] | None


class Consumer:
    def __init__(
        self,
        redis: Redis,
        es: AsyncElasticsearch,
        streams: Streams,
        names: IndexNames,
        settings: IndexerSettings,
        publish_dead_letter: PublishDeadLetter,
    ) -> None:
        self._redis = redis
        self._es = es
        self._streams = streams
        self._names = names
        self._settings = settings
        self._publish_dead_letter = publish_dead_letter
        self._stopping = asyncio.Event()
        self._next_claim = 0.0

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        log.info("indexer consuming", consumer=self._settings.consumer,
                 group=self._settings.group, streams=list(self._streams.consumed))
        await self.ensure_groups()
        failures = 0
        while not self.stopping:
            try:
                await self.step()
                failures = 0
            except (RedisConnectionError, RedisTimeoutError) as exc:
                failures += 1
                log.warning("redis unavailable, retrying", error=str(exc))
                await self._sleep(self._backoff(failures))
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("consumer group vanished, recreating it", error=str(exc))
                await self.ensure_groups()
            except Exception:
                # Whatever it was, the entries in hand are still pending: another
                # round (or another indexer) claims them, and the delivery count
                # sends a persistent offender to the dead letters.
                failures += 1
                log.exception("indexer round failed")
                await self._sleep(self._backoff(failures))
        log.info("indexer stopped", consumer=self._settings.consumer)

    async def step(self) -> int:
        """One read-and-index round; returns how many entries it handled."""
        entries = await self._claim_abandoned() if self._claim_due() else []
        if not entries:
            entries = await self._read_new()
        if entries:
            metrics.BATCH_SIZE.observe(len(entries))
            await self.handle(entries)
        return len(entries)

    async def ensure_groups(self) -> None:
        """Create the group at `0` where missing: everything retained gets indexed.

        A group that vanished (Redis lost it) is recreated the same way; that
        replays what the stream retains, which is harmless because documents are
        written with deterministic ids and external versions.
        """
        for stream in self._streams.consumed:
            try:
                await self._redis.xgroup_create(stream, self._settings.group, id="0",
                                                mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    # Reading -----------------------------------------------------------------

    async def _read_new(self) -> list[Entry]:
        response: ReadResponse = await self._redis.xreadgroup(  # type: ignore[assignment]
            self._settings.group,
            self._settings.consumer,
            dict.fromkeys(self._streams.consumed, ">"),
            count=self._settings.batch_size,
            block=self._settings.block_ms,
        )
        return [
            Entry(stream.decode(), entry_id.decode(), fields)
            for stream, items in response or []
            for entry_id, fields in items
            # A trimmed entry still pending comes back with no fields: nothing to index.
            if fields is not None
        ]

    def _claim_due(self) -> bool:
        return time.monotonic() >= self._next_claim

    async def _claim_abandoned(self) -> list[Entry]:
        """Take over entries idle past `claim_idle_ms` on any consumer of the group."""
        self._next_claim = time.monotonic() + self._settings.claim_idle_ms / 2000
        claimed: list[Entry] = []
        for stream in self._streams.consumed:
            _, items, deleted = await self._redis.xautoclaim(
                stream, self._settings.group, self._settings.consumer,
                min_idle_time=self._settings.claim_idle_ms, start_id="0-0",
                count=self._settings.batch_size,
            )
            if deleted:
                # Trimmed away while pending: XAUTOCLAIM already dropped them from the PEL.
                log.error("pending entries were trimmed before being indexed", stream=stream,
                          entry_ids=[d.decode() for d in deleted])
            batch = [Entry(stream, i.decode(), f) for i, f in items if f is not None]
            await self._load_delivery_counts(stream, batch)
            claimed.extend(batch)
        if claimed:
            log.info("claimed abandoned entries", count=len(claimed))
        await self._remove_dead_consumers()
        return claimed

    async def _load_delivery_counts(self, stream: str, batch: list[Entry]) -> None:
        if not batch:
            return
        details: list[dict[str, Any]] = await self._redis.xpending_range(
            stream, self._settings.group, min=batch[0].entry_id, max=batch[-1].entry_id,
            count=len(batch) * 2, consumername=self._settings.consumer,
        )
        counts = {d["message_id"].decode(): int(d["times_delivered"]) for d in details}
        for entry in batch:
            entry.deliveries = counts.get(entry.entry_id, entry.deliveries)

    async def _remove_dead_consumers(self) -> None:
        idle_limit = self._settings.claim_idle_ms * 10
        for stream in self._streams.consumed:
            consumers: list[dict[str, Any]] = await self._redis.xinfo_consumers(
                stream, self._settings.group)
            for consumer in consumers:
                name = consumer["name"]
                name = name.decode() if isinstance(name, bytes) else name
                if (name != self._settings.consumer and consumer["pending"] == 0
                        and consumer["idle"] > idle_limit):
                    await self._redis.xgroup_delconsumer(stream, self._settings.group, name)
                    log.info("removed idle consumer", stream=stream, consumer=name)

    # Handling ----------------------------------------------------------------

    async def handle(self, entries: Sequence[Entry]) -> None:
        work: list[tuple[Entry, BulkAction]] = []
        for entry in entries:
            if entry.deliveries > self._settings.max_deliveries:
                await self._dead_letter(entry, "TooManyDeliveries",
                                        await self._last_error(entry)
                                        or f"delivered {entry.deliveries} times without success")
                continue
            decoded = decode_entry(entry, self._streams, self._names)
            if isinstance(decoded, Invalid):
                await self._dead_letter(entry, decoded.error_class, decoded.message)
            else:
                work.append((entry, decoded))
        if work:
            await self._index(work)

    async def _index(self, work: list[tuple[Entry, BulkAction]]) -> None:
        item_attempt = 0
        request_failures = 0
        while work and not self.stopping:
            try:
                results = await self._bulk([action for _, action in work])
            except (ESConnectionError, ConnectionTimeout) as exc:
                request_failures += 1
                log.warning("elasticsearch unreachable, holding the batch", error=str(exc),
                            entries=len(work), attempt=request_failures)
                await self._sleep(self._backoff(request_failures))
                continue
            except ApiError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    raise
                request_failures += 1
                log.warning("elasticsearch refused the bulk request, backing off",
                            status=exc.status_code, entries=len(work))
                await self._sleep(self._backoff(request_failures))
                continue
            request_failures = 0
            final = item_attempt >= self._settings.item_retries
            work = await self._settle(work, results, final=final)
            if work:
                item_attempt += 1
                await self._sleep(self._backoff(item_attempt))
        if work:
            await self._remember_errors(work, "shutdown before Elasticsearch confirmed")

    async def _bulk(self, actions: list[BulkAction]) -> list[ItemResult]:
        operations: list[dict[str, Any]] = []
        for action in actions:
            operations.extend(action.operations())
        started = time.perf_counter()
        response = await self._es.bulk(operations=operations)
        metrics.BULK_SECONDS.observe(time.perf_counter() - started)
        return classify_response(dict(response))

    async def _settle(
        self, work: list[tuple[Entry, BulkAction]], results: list[ItemResult], *, final: bool
    ) -> list[tuple[Entry, BulkAction]]:
        """Acknowledge what is done, dead-letter what is refused; return what to retry."""
        done: list[Entry] = []
        retry: list[tuple[Entry, BulkAction]] = []
        for (entry, action), result in zip(work, results, strict=True):
            metrics.DOCUMENTS.labels(action.index, result.outcome.value).inc()
            if result.done:
                done.append(entry)
            elif result.outcome is Outcome.REJECTED or final:
                await self._dead_letter(entry, f"Elasticsearch{result.status}", result.reason,
                                        acknowledge=True)
            else:
                retry.append((entry, action))
        await self._ack(done)
        if retry:
            log.warning("retrying items Elasticsearch could not take", count=len(retry),
                        reason=results[-1].reason)
            await self._remember_errors(retry, "; ".join(
                {r.reason for r in results if r.outcome is Outcome.RETRY}))
        return retry

    async def _ack(self, entries: Sequence[Entry]) -> None:
        by_stream: dict[str, list[str]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry.entry_id)
        for stream, ids in by_stream.items():
            await self._redis.xack(stream, self._settings.group, *ids)
        if entries:
            await self._redis.hdel(self._errors_key, *(e.key for e in entries))

    async def _dead_letter(
        self, entry: Entry, error_class: str, message: str, *, acknowledge: bool = True
    ) -> None:
        letter = DeadLetter(
            stream=entry.stream,
            entry_id=entry.entry_id,
            payload=entry.fields.get(DATA_FIELD, b""),
            other_fields={k.decode(errors="replace"): v
                          for k, v in entry.fields.items() if k != DATA_FIELD},
            error_class=error_class,
            error_message=message,
            service=SERVICE,
            attempts=entry.deliveries,
        )
        # Published before the ack: a crash in between leaves the entry pending,
        # and the dead letter may be written twice (same idempotency_key), never lost.
        await self._publish_dead_letter(letter)
        metrics.DEADLETTERS.labels(entry.stream, error_class).inc()
        log.warning("entry dead-lettered", stream=entry.stream, entry_id=entry.entry_id,
                    error_class=error_class, reason=message, attempts=entry.deliveries)
        if acknowledge:
            await self._ack([entry])

    # Bookkeeping -------------------------------------------------------------

    @property
    def _errors_key(self) -> str:
        return f"{self._streams.deadletters}:last-error:{self._settings.group}"

    async def _remember_errors(self, work: list[tuple[Entry, BulkAction]], reason: str) -> None:
        """Keep why an entry is still pending, so its dead letter can say so later."""
        mapping: dict[str | bytes, str | bytes] = {e.key: reason for e, _ in work}
        await self._redis.hset(self._errors_key, mapping=mapping)  # type: ignore[arg-type]

    async def _last_error(self, entry: Entry) -> str | None:
        raw: bytes | None = await self._redis.hget(self._errors_key, entry.key)  # type: ignore[assignment]
        return raw.decode() if raw else None

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        ceiling = min(self._settings.retry_max_delay,
                      self._settings.retry_base_delay * 2 ** min(attempt, 16))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not crypto)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
