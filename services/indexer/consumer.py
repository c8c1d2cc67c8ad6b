"""The indexer's consumer loop, top to bottom.

1. Make sure each stream has the consumer group (created at `0`, so entries
   published before the first indexer started are indexed too).
2. Loop until asked to stop (or, in burst mode, until a read finds nothing new and
   nothing is being written: how tests and one-off drains run the real loop):
   a. while holding for the cluster (services/indexer/writer.py, `Hold`), read
      nothing: the backlog waits in Redis, not in this process;
   b. read a batch: entries abandoned by a dead consumer every so often, else
      new ones (shared/consumer.py, `GroupReader`);
   c. prepare it while the batches before it are being written: an entry that
      is not a valid event, or that was delivered too often without ever being
      held for the cluster, goes to the dead-letter stream with the reason; the
      rest are decoded into bulk actions;
   d. wait for a slot (as many batches being written as the adaptive limit
      allows, services/indexer/concurrency.py, never more than `max_in_flight`)
      and write it: the entries are acknowledged only once stored. So the
      indexer holds at most `max_in_flight` + 1 batches.
3. Beside the loop, `keep_ownership` refreshes the idle time of every entry in
   hand, so that no other indexer claims what this one is still working on; and,
   when there is a matcher, the articles each bulk request stored are run against
   the saved searches (services/indexer/matcher.py), without the loop waiting.
4. On stop, the batches in hand are finished, then the matching of what they
   stored; an entry not confirmed by then stays pending and another indexer claims it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import structlog
from elasticsearch import AsyncElasticsearch
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.indexer import metrics
from services.indexer.concurrency import AdaptiveLimit
from services.indexer.decode import Invalid, decode_entries
from services.indexer.documents import BulkAction
from services.indexer.failures import Fault
from services.indexer.hold import Hold
from services.indexer.ledger import Ledger, PublishDeadLetter, notes_key
from services.indexer.matcher import Matcher
from services.indexer.writer import Work, Writer
from shared.backoff import Backoff
from shared.clients import REDIS_AWAY, redis_trouble
from shared.consumer import Clock, Entry, GroupReader, wait_or_stop
from shared.index import IndexNames
from shared.settings import IndexerSettings
from shared.streams import Streams
from shared.tasks import cancel_until_done

log = structlog.get_logger(__name__)


class Consumer:
    def __init__(
        self,
        redis: Redis,
        es: AsyncElasticsearch,
        streams: Streams,
        names: IndexNames,
        settings: IndexerSettings,
        publish_dead_letter: PublishDeadLetter,
        clock: Clock = time.monotonic,
        *,
        matcher: Matcher | None = None,
    ) -> None:
        self._streams = streams
        self._names = names
        self._settings = settings
        self._stopping = asyncio.Event()
        self._backoff = Backoff(settings.retry_base_delay, settings.retry_max_delay)
        self.reader = GroupReader(
            redis,
            streams.consumed,
            settings.group,
            settings.consumer,
            batch_size=settings.batch_size,
            block_ms=settings.block_ms,
            linger_ms=settings.linger_ms,
            claim_idle_ms=settings.claim_idle_ms,
            max_bytes=settings.read_max_bytes,
            clock=clock,
        )
        self.hold = Hold(clock)
        self._ledger = Ledger(
            redis,
            self.reader,
            notes_key(streams.deadletters, settings.group),
            publish_dead_letter,
            stopping=self._stopping,
            backoff=self._backoff,
            hold=self.hold,
        )
        self.limit = AdaptiveLimit(settings.max_in_flight, start=min(2, settings.max_in_flight))
        self.matcher = matcher
        self._writer = Writer(
            es,
            self._ledger,
            settings,
            self._stopping,
            self.hold,
            self._backoff,
            limit=self.limit,
            on_stored=self._stored if matcher is not None else None,
        )
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._groups_ready = False
        self._read_failures = 0

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> asyncio.Event:
        return self._stopping

    async def run(self, *, burst: bool = False) -> None:
        log.info(
            "indexer consuming",
            consumer=self._settings.consumer,
            group=self._settings.group,
            streams=list(self._streams.consumed),
        )
        keeper = asyncio.create_task(self.reader.keep_ownership(self._stopping))
        matching = asyncio.create_task(self.matcher.run()) if self.matcher else None
        while not self._stopping.is_set():
            if self.hold.active:
                await self.hold.wait_released(self._stopping)
                continue
            entries = await self._next_batch()
            if entries:
                await self._take(entries)
            elif burst and entries is not None:
                if not self._in_flight:
                    break
                await asyncio.wait(self._in_flight)  # a write that fails is read again
        if self._in_flight:
            await asyncio.wait(self._in_flight)
        if self.matcher is not None and matching is not None:
            self.matcher.close()
            await matching
        # A burst ends with no stop asked: the keeper ends only by its cancel, which
        # can be lost inside redis-py (shared/tasks.py).
        await cancel_until_done({keeper})
        if not keeper.cancelled() and (error := keeper.exception()) is not None:
            raise error  # as `await keeper` did: a failure of its own (not Redis away)
        log.info("indexer stopped", consumer=self._settings.consumer)

    async def _next_batch(self) -> list[Entry] | None:
        """The next batch (maybe empty); None after waiting out Redis or recreating groups."""
        try:
            # The groups are made (or found) on the first read that reaches Redis: a replica
            # starting while Redis fails over waits for it like one already running.
            if not self._groups_ready:
                await self.ensure_groups()
                self._groups_ready = True
            entries = await self._read()
        except REDIS_AWAY as exc:
            if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                log.warning("consumer group vanished, recreating it", error=str(exc))
                self._groups_ready = False
                return None
            self._read_failures += 1
            log.warning(f"reading stopped: {redis_trouble(exc)}, retrying", error=str(exc))
            await wait_or_stop(self._stopping, self._backoff.delay(self._read_failures))
            return None
        self._read_failures = 0
        return entries

    async def _take(self, entries: list[Entry]) -> None:
        """Prepare a batch and send it when a slot frees; else leave it pending."""
        # Decoded while the batches before it are being written: when a slot frees,
        # this one goes out at once instead of leaving the cluster idle while it decodes.
        try:
            work = await self.prepare(entries)
        except Exception:
            # Redis away while dead-lettering as the indexer stops (the ledger waits it
            # out until then), or any other failure: the entries stay pending.
            log.exception("batch failed; its entries stay pending")
            work = []
        if work:
            await self._wait_for_slot()
            if not self._stopping.is_set():
                self._dispatch(entries, work)
                return
        # Nothing to write (all dead-lettered, or the batch failed), or asked to stop
        # while waiting: what was not sent stays pending, and is claimed by another
        # indexer (or this one, restarted) after the claim idle time.
        self._release_unsettled(entries)

    async def ensure_groups(self) -> None:
        """Create the group at `0` where missing: everything retained gets indexed.

        A group that vanished (Redis lost it) is recreated the same way; that
        replays what the stream retains, which is harmless because documents are
        written with deterministic ids and external versions.
        """
        await self.reader.ensure_groups()

    async def _read(self) -> list[Entry]:
        entries = await self.reader.read()
        if entries:
            metrics.BATCH_SIZE.observe(len(entries))
        metrics.HELD_ENTRIES.set(self.reader.held)
        return entries

    async def _wait_for_slot(self) -> None:
        """Until fewer batches are in flight than the adaptive limit allows."""
        while len(self._in_flight) >= self.limit.limit:
            self._slot_freed.clear()
            await self._slot_freed.wait()

    # Handling ----------------------------------------------------------------

    def _stored(self, actions: list[BulkAction]) -> None:
        """Articles just stored, new or changed, for the saved searches to be run against."""
        assert self.matcher is not None
        self.matcher.offer([a.doc_id for a in actions if a.index == self._names.articles])

    def _dispatch(self, entries: list[Entry], work: Work) -> None:
        task = asyncio.create_task(self._write(entries, work))
        self._in_flight.add(task)
        task.add_done_callback(lambda done: self._batch_done(done, entries))

    def _batch_done(self, task: asyncio.Task[None], entries: list[Entry]) -> None:
        self._in_flight.discard(task)
        self._slot_freed.set()
        self._release_unsettled(entries)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The entries are still pending and no longer refreshed: after the claim
            # idle time this or another indexer claims them, and the delivery count
            # sends an entry that keeps breaking the batch to the dead letters.
            log.error("batch failed; its entries stay pending", exc_info=exc)
            if not self._in_flight:
                # A hold this batch entered (then failed: Redis away as it settled, once
                # a stop was asked, or anything else) has nothing left to release it:
                # released here, or the consumer would wait on it for ever. The next
                # batch the cluster refuses enters it again.
                self.hold.release()

    def _release_unsettled(self, entries: Sequence[Entry]) -> None:
        for stream in {e.stream for e in entries}:
            self.reader.release(stream, [e.entry_id for e in entries if e.stream == stream])
        metrics.HELD_ENTRIES.set(self.reader.held)

    async def _write(self, entries: Sequence[Entry], work: Work) -> None:
        with _batch_logged(entries):
            if work:
                await self._writer.write(work)

    async def prepare(self, entries: Sequence[Entry]) -> Work:
        """Dead-letter what cannot be indexed; the rest as bulk actions, to write."""
        with _batch_logged(entries):
            return await self._prepare(entries)

    async def _prepare(self, entries: Sequence[Entry]) -> Work:
        to_decode: list[Entry] = []
        for entry in entries:
            if entry.deliveries > self._settings.max_deliveries:
                last = await self._ledger.last_error(entry)
                if last is None or last[0] is not Fault.CLUSTER:
                    reason = (
                        last[1]
                        if last is not None
                        else f"delivered {entry.deliveries} times without success"
                    )
                    await self._ledger.dead_letter(entry, "TooManyDeliveries", reason)
                    continue
            to_decode.append(entry)
        # Deriving the search fields is the indexer's CPU work (about a tenth of a second
        # for a batch of 1,000). In a thread, the loop keeps sending and acknowledging
        # the batches in flight between the interpreter's switches, instead of leaving
        # their answers unread until this batch is decoded.
        decoded = await asyncio.to_thread(self._decode_all, to_decode)
        work: Work = []
        for entry, result in zip(to_decode, decoded, strict=True):
            if isinstance(result, Invalid):
                await self._ledger.dead_letter(entry, result.error_class, result.message)
            else:
                work.append((entry, result))
        return work

    def _decode_all(self, entries: Sequence[Entry]) -> list[BulkAction | Invalid]:
        return decode_entries(entries, self._streams, self._names)


def _batch_logged(entries: Sequence[Entry]) -> contextlib.AbstractContextManager[None]:
    # Bound once per batch (each batch is written in its own task, so its own context):
    # every line logged while preparing or writing it says which batch, at no cost per entry.
    return structlog.contextvars.bound_contextvars(
        batch_first=entries[0].key, batch_entries=len(entries)
    )
