"""The indexer's consumer loop, top to bottom.

1. Make sure each stream has the consumer group (created at `0`, so entries
   published before the first indexer started are indexed too).
2. Loop until asked to stop:
   a. every so often, claim entries left pending by a dead consumer (XAUTOCLAIM);
   b. otherwise read new entries from both streams (XREADGROUP `>`), lingering
      briefly to fill the batch;
   c. hand the batch to a writer task; at most `max_in_flight` batches are in
      hand at once, so while Elasticsearch is slow or away the loop stops
      reading and the backlog waits in Redis, not in this process;
   d. in the batch: an entry that is not a valid event, or that was delivered
      too often, goes to the dead-letter stream with the reason; the rest go
      to Elasticsearch (services/indexer/writer.py) and are acknowledged only
      once stored.
3. On stop, the batches in hand are finished; an entry not confirmed by then
   stays pending and another indexer claims it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, cast

import structlog
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.indexer import metrics
from services.indexer.decode import Entry, Invalid, decode_entry
from services.indexer.ledger import Ledger, PublishDeadLetter
from services.indexer.mappings import IndexNames
from services.indexer.writer import Work, Writer, backoff
from shared.settings import IndexerSettings
from shared.streams import Streams

log = structlog.get_logger(__name__)

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
        self._streams = streams
        self._names = names
        self._settings = settings
        self._stopping = asyncio.Event()
        self._next_claim = 0.0
        self._ledger = Ledger(redis, settings.group,
                              f"{streams.deadletters}:last-error:{settings.group}",
                              publish_dead_letter)
        self._writer = Writer(es, self._ledger, settings, self._stopping)
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._in_flight: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> asyncio.Event:
        return self._stopping

    async def run(self) -> None:
        log.info("indexer consuming", consumer=self._settings.consumer,
                 group=self._settings.group, streams=list(self._streams.consumed))
        await self.ensure_groups()
        failures = 0
        while not self._stopping.is_set():
            try:
                entries = await self.read()
                if entries:
                    await self._dispatch(entries)
                failures = 0
            except (RedisConnectionError, RedisTimeoutError) as exc:
                failures += 1
                log.warning("redis unavailable, retrying", error=str(exc))
                await self._pause(failures)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("consumer group vanished, recreating it", error=str(exc))
                await self.ensure_groups()
        if self._in_flight:
            await asyncio.wait(self._in_flight)
        log.info("indexer stopped", consumer=self._settings.consumer)

    async def step(self) -> int:
        """Read one batch and write it before returning; how many entries it had."""
        entries = await self.read()
        if entries:
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

    async def read(self) -> list[Entry]:
        if time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + self._settings.claim_idle_ms / 2000
            claimed = await self._claim_abandoned()
            if claimed:
                return claimed
        entries = await self._read_new(self._settings.batch_size, self._settings.block_ms)
        deadline = time.monotonic() + self._settings.linger_ms / 1000
        while entries and len(entries) < self._settings.batch_size:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                break
            more = await self._read_new(self._settings.batch_size - len(entries), left_ms)
            if not more:
                break
            entries.extend(more)
        if entries:
            metrics.BATCH_SIZE.observe(len(entries))
        return entries

    async def _read_new(self, count: int, block_ms: int) -> list[Entry]:
        response = cast("ReadResponse", await self._redis.xreadgroup(
            self._settings.group,
            self._settings.consumer,
            dict.fromkeys(self._streams.consumed, ">"),
            count=count,
            block=block_ms,
        ))
        return [
            Entry(stream.decode(), entry_id.decode(), fields)
            for stream, items in response or []
            for entry_id, fields in items
            # A trimmed entry still pending comes back with no fields: nothing to index.
            if fields is not None
        ]

    async def _claim_abandoned(self) -> list[Entry]:
        """Take over entries idle past `claim_idle_ms` on any consumer of the group."""
        claimed: list[Entry] = []
        for stream in self._streams.consumed:
            _, items, deleted = await self._redis.xautoclaim(
                stream, self._settings.group, self._settings.consumer,
                min_idle_time=self._settings.claim_idle_ms, start_id="0-0",
                count=self._settings.batch_size,
            )
            if deleted:
                # Trimmed while pending (only possible with CARAVAN_STREAM_MAXLEN set).
                log.error("pending entries were trimmed before being indexed", stream=stream,
                          entry_ids=[d.decode() for d in deleted])
            batch = [Entry(stream, i.decode(), f) for i, f in items if f is not None]
            await self._load_delivery_counts(stream, batch)
            claimed.extend(batch)
        if claimed:
            log.info("claimed abandoned entries", count=len(claimed))
        await self._remove_idle_consumers()
        return claimed

    async def _load_delivery_counts(self, stream: str, batch: list[Entry]) -> None:
        if not batch:
            return
        details = cast("list[dict[str, Any]]", await self._redis.xpending_range(
            stream, self._settings.group, min=batch[0].entry_id, max=batch[-1].entry_id,
            count=len(batch) * 2, consumername=self._settings.consumer,
        ))
        counts = {d["message_id"].decode(): int(d["times_delivered"]) for d in details}
        for entry in batch:
            entry.deliveries = counts.get(entry.entry_id, entry.deliveries)

    async def _remove_idle_consumers(self) -> None:
        """Forget consumers that hold nothing and have been silent for long: dead processes."""
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

    async def _dispatch(self, entries: list[Entry]) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self.handle(entries))
        self._in_flight.add(task)
        task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The entries in hand are still pending: another round (or another
            # indexer) claims them, and the delivery count sends a persistent
            # offender to the dead letters.
            log.error("batch failed; its entries stay pending", exc_info=exc)

    async def handle(self, entries: Sequence[Entry]) -> None:
        work: Work = []
        for entry in entries:
            if entry.deliveries > self._settings.max_deliveries:
                reason = (await self._ledger.last_error(entry)
                          or f"delivered {entry.deliveries} times without success")
                await self._ledger.dead_letter(entry, "TooManyDeliveries", reason)
                continue
            decoded = decode_entry(entry, self._streams, self._names)
            if isinstance(decoded, Invalid):
                await self._ledger.dead_letter(entry, decoded.error_class, decoded.message)
            else:
                work.append((entry, decoded))
        if work:
            await self._writer.write(work)

    async def _pause(self, attempt: int) -> None:
        delay = backoff(attempt, self._settings.retry_base_delay, self._settings.retry_max_delay)
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            return
