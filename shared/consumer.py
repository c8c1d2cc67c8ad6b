"""Reading Redis Streams: a consumer group member that owns what it holds, and a tail.

`GroupReader` is what the indexer consumes with, and what any Python consumer
of Caravan's streams can reuse:

- `ensure_groups` creates the group at `0` where missing (BUSYGROUP is fine, and so
  is Redis at maxmemory refusing the create of a group that exists);
- `read` hands out a batch across streams: first, every so often, entries that
  a dead consumer left pending longer than `claim_idle_ms` (XAUTOCLAIM, a round
  going on read after read until it has seen every pending entry), then new ones
  (XREADGROUP `>`), lingering briefly to fill the batch. Each stream gives at
  most `batch_size` entries and about its share of `max_bytes`: Redis cannot
  bound a read or a claim in bytes, so a script reads or claims them one at a
  time until it has that many bytes (`_READ_BOUNDED`, `_CLAIM_BOUNDED`);
- every entry handed out is *held* until `settle` is called for it (acked or
  dead-lettered by the caller). `keep_ownership` refreshes the idle time of
  everything held (XCLAIM … JUSTID, which does not count a delivery), so an
  entry that waits out a long Elasticsearch outage in this process is never
  claimed by another replica: no duplicate write, and no false "delivered too
  often" verdict. The delivery count grows only when an entry really changes
  hands or is read again;
- one backoff policy (shared/backoff.py) for every wait after a failure;
- `forget_idle_consumers` removes consumers that hold nothing and have been
  silent for long (dead pods), so they do not pile up in XINFO.

`TailReader` follows a stream without a group (XREAD from `$`): for fan-out to
every process, such as the live ticker, where nobody owns or acknowledges.

Why not FastStream's stream subscriber: it calls a handler per message (or per
batch of one stream) and acknowledges when the handler returns; the indexer
needs one bulk request across two streams, an acknowledgement only after
Elasticsearch confirms (possibly much later, after a hold), the ability to
stop reading while holding, delivery counts, and ownership refresh of held
entries. Its `min_idle_time` mode claims others' entries *instead of* reading
new ones. FastStream stays the publisher and the AsyncAPI source.

Time comes from an injectable `clock` (monotonic seconds) so that claim and
refresh schedules can be tested without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import structlog
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError, ResponseError

from shared.clients import REDIS_AWAY, redis_trouble

log = structlog.get_logger(__name__)

Clock = Callable[[], float]
# Entries per XPENDING page when checking which held entries are still ours.
PENDING_PAGE = 1000
ReadReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes] | None]]]] | None
# The most entries one run of a script reads or claims: Redis serves nobody else meanwhile
# (about 6 ms for these), and a batch_size of 600,000 would have held it past a
# client's 5 s timeout.
SCRIPT_ENTRIES = 1000
# New entries of a stream, read one at a time until they reach the bytes given (the
# last may pass them) or their number does. XREADGROUP's COUNT alone let a read that
# met far larger entries than the last ones bring in its count of them: a backlog of
# small articles, then large ones, ran the indexer out of memory. About 6 µs of Redis
# CPU an entry, against 2 for one XREADGROUP of many (bench/README.md).
_READ_BOUNDED = """
local out, bytes = {}, 0
local most, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
while #out < most and bytes < budget do
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1,
    'STREAMS', KEYS[1], '>')
  if not reply then break end
  local entry = reply[1][2][1]
  out[#out + 1] = entry
  for _, part in ipairs(entry[2]) do bytes = bytes + #part end
end
return out
"""
# Abandoned entries of a stream, claimed one at a time from a round's cursor, as new
# ones are read: XAUTOCLAIM's COUNT alone let a round that grew on small entries claim
# its count of large ones. Each claim of one looks at up to ten pending entries, so a
# run looks at most ten times SCRIPT_ENTRIES of those live consumers hold. Each entry
# comes with its delivery count, this claim's included: read afterwards as one page
# of the range, the claimer's own entries in it crowded them out, and an entry that
# failed every delivery read as delivered once, never reaching the dead letters.
_CLAIM_BOUNDED = """
local out, counts, deleted, bytes, calls = {}, {}, {}, 0, 0
local cursor, most, budget = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
while #out < most and bytes < budget and calls < most do
  local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor,
    'COUNT', 1)
  calls = calls + 1
  cursor = reply[1]
  for _, entry in ipairs(reply[2]) do
    out[#out + 1] = entry
    counts[#counts + 1] = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)[1][4]
    for _, part in ipairs(entry[2]) do bytes = bytes + #part end
  end
  for _, id in ipairs(reply[3]) do deleted[#deleted + 1] = id end
  if cursor == '0-0' then break end
end
return {cursor, out, counts, deleted}
"""

# Entries of a stream after a given id, one at a time until they reach the bytes given
# (the last may pass them) or their number does: XRANGE's COUNT alone brings in that
# many of the largest entries a stream holds.
_RANGE_BOUNDED = """
local out, bytes, start = {}, 0, ARGV[1]
local most, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
while #out < most and bytes < budget do
  local entry = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1)[1]
  if not entry then break end
  out[#out + 1] = entry
  for _, part in ipairs(entry[2]) do bytes = bytes + #part end
  start = '(' .. entry[1]
end
return out
"""


@dataclass
class Entry:
    stream: str
    entry_id: str
    fields: dict[bytes, bytes]
    deliveries: int = 1

    @property
    def key(self) -> str:
        return f"{self.stream}/{self.entry_id}"

    @property
    def size(self) -> int:
        """Bytes on the wire: what a bulk request of this entry will roughly weigh."""
        return sum(len(k) + len(v) for k, v in self.fields.items())


async def wait_or_stop(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` unless asked to stop first; whether a stop was asked."""
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel that
    # arrives as the stop does (CPython gh-86296), and the caller would go on.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(seconds, 0)):
            await stopping.wait()
    return stopping.is_set()


class GroupReader:
    def __init__(
        self,
        redis: Redis,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        batch_size: int,
        block_ms: int,
        linger_ms: int,
        claim_idle_ms: int,
        max_bytes: int = 32 * 1024 * 1024,
        clock: Clock = time.monotonic,
    ) -> None:
        self._redis = redis
        self.streams = tuple(streams)
        self.group = group
        self.consumer = consumer
        self._batch_size = batch_size
        # Each stream's share of the bytes a read brings in.
        self._budget = max(1, max_bytes // len(self.streams))
        # A round of claims: where it goes on in each stream it has not finished.
        self._claim_from: dict[str, str] = {}
        self._block_ms = block_ms
        self._linger_ms = linger_ms
        self.claim_idle_ms = claim_idle_ms
        self._clock = clock
        self._next_claim = 0.0
        self._held: dict[str, set[str]] = {stream: set() for stream in self.streams}

    # Group set-up ------------------------------------------------------------

    async def ensure_groups(self) -> None:
        """Create the group at `0` where missing: everything retained gets read."""
        for stream in self.streams:
            try:
                await self._redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except OutOfMemoryError:
                # Redis at maxmemory refuses the create before it sees the group exists,
                # yet reads and acknowledgements go on: a replica started then must drain
                # what filled it.
                if not await self._has_group(stream):
                    raise
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _has_group(self, stream: str) -> bool:
        try:
            groups: list[dict[str, Any]] = await self._redis.xinfo_groups(stream)
        except ResponseError:
            return False  # no such stream: nothing to read, and it cannot be made now
        return any(redis_text(group["name"]) == self.group for group in groups)

    # Reading -----------------------------------------------------------------

    async def read(self) -> list[Entry]:
        """The next batch: abandoned entries when it is time to look, else new ones."""
        if self._claim_from or self._clock() >= self._next_claim:
            if not self._claim_from:  # a new round
                self._next_claim = self._clock() + self.claim_idle_ms / 2000
                await self.forget_idle_consumers()
            claimed = await self.claim_abandoned()
            if claimed:
                return self._hold(claimed)
        entries = await self._fill([])
        if not entries:
            entries = await self._fill(await self._wait_new(self.streams, self._block_ms))
        deadline = self._clock() + self._linger_ms / 1000
        while entries and (left_ms := int((deadline - self._clock()) * 1000)) > 0:
            taken = _taken(entries)
            unfilled = [s for s in self.streams if not self._full(*taken.get(s, (0, 0)))]
            # One stream full is a full batch: lingering is for a trickle on all of them.
            if len(unfilled) < len(self.streams):
                break
            more = await self._wait_new(unfilled, left_ms)
            if not more:
                break
            entries = await self._fill(entries + more)
        return self._hold(entries)

    def _full(self, count: int, size: int) -> bool:
        return count >= self._batch_size or size >= self._budget

    async def _fill(self, entries: list[Entry]) -> list[Entry]:
        """`entries` and, without waiting, each stream's new ones up to its own share.

        A stream at a time, each to its own bytes: an article can weigh a thousand
        quotes. Only a wait (blocking, lingering) asks them all at once, for one entry,
        and is followed by this.
        """
        taken = _taken(entries)
        filled = list(entries)
        for stream in self.streams:
            count, size = taken.get(stream, (0, 0))
            while not self._full(count, size):
                asked = min(SCRIPT_ENTRIES, self._batch_size - count)
                read = await self._read_bounded(stream, asked, self._budget - size)
                filled += read
                count, size = count + len(read), size + sum(entry.size for entry in read)
                if len(read) < asked and size < self._budget:
                    break  # none left
        return filled

    async def _read_bounded(self, stream: str, most: int, budget: int) -> list[Entry]:
        """Up to `most` new entries of `stream`, until they reach `budget` bytes."""
        reply = cast(
            "list[tuple[bytes, list[bytes]]]",
            await self._redis.eval(
                _READ_BOUNDED, 1, stream, self.group, self.consumer, most, budget
            ),
        )
        return _entries(stream, reply)

    async def _wait_new(self, streams: Sequence[str], block_ms: int) -> list[Entry]:
        """The first new entry of any of `streams`, waiting up to `block_ms`: what ends a
        wait may be many entries at once, so `_fill` reads the rest, bounded."""
        reply = cast(
            "ReadReply",
            await self._redis.xreadgroup(
                self.group,
                self.consumer,
                dict.fromkeys(streams, ">"),
                count=1,
                block=block_ms or None,
            ),
        )
        return [
            Entry(stream.decode(), entry_id.decode(), fields)
            for stream, items in reply or []
            for entry_id, fields in items
            # A trimmed entry still pending comes back with no fields: nothing to read.
            if fields is not None
        ]

    async def claim_abandoned(self) -> list[Entry]:
        """Take over entries idle past `claim_idle_ms` on any consumer of the group.

        A round goes through each stream's pending entries from the start, each claim
        taking what fits the stream's share of the bytes (as reads do), and goes on at
        the next call until it has seen them all.
        """
        if not self._claim_from:
            self._claim_from = dict.fromkeys(self.streams, "0-0")
        claimed: list[Entry] = []
        for stream in list(self._claim_from):
            batch: list[Entry] = []
            try:
                # A claim looks at a bounded number of pending entries: past those
                # others hold, it goes on, so a round ends or claims before returning.
                while not batch and stream in self._claim_from:
                    batch = await self._claim(stream)
            except REDIS_AWAY as exc:
                if not claimed:
                    raise
                # Those claimed are this consumer's now: handed out, not left a claim
                # period and a delivery more. The round goes on where it failed.
                log.warning(f"claims stopped: {redis_trouble(exc)}", stream=stream, error=str(exc))
                break
            claimed.extend(batch)
        if claimed:
            log.info("claimed abandoned entries", count=len(claimed))
        return claimed

    async def _claim(self, stream: str) -> list[Entry]:
        """One claim of a round, from where the round is in `stream`, up to the stream's
        share of the bytes (the last entry may pass it) and `batch_size` entries."""
        cursor, items, counts, deleted = cast(
            "tuple[bytes, list[tuple[bytes, list[bytes]]], list[int], list[bytes]]",
            await self._redis.eval(
                _CLAIM_BOUNDED,
                1,
                stream,
                self.group,
                self.consumer,
                self.claim_idle_ms,
                self._claim_from[stream],
                min(SCRIPT_ENTRIES, self._batch_size),
                self._budget,
            ),
        )
        if deleted:
            # Trimmed while pending (only possible with a MAXLEN cap).
            log.error(
                "pending entries were trimmed before being read",
                stream=stream,
                entry_ids=[d.decode() for d in deleted],
            )
        # A claim also returns this consumer's own entries when the loop stalled past
        # the idle time: those are in hand already, not abandoned.
        batch = []
        for entry, deliveries in zip(_entries(stream, items), counts, strict=True):
            if entry.entry_id not in self._held[stream]:
                entry.deliveries = deliveries
                batch.append(entry)
        if cursor == b"0-0":
            del self._claim_from[stream]
        else:
            self._claim_from[stream] = cursor.decode()
        return batch

    # Ownership ---------------------------------------------------------------

    def _hold(self, entries: list[Entry]) -> list[Entry]:
        for entry in entries:
            self._held[entry.stream].add(entry.entry_id)
        return entries

    @property
    def held(self) -> int:
        return sum(len(ids) for ids in self._held.values())

    async def ack(self, entries: Iterable[Entry]) -> None:
        """Acknowledge entries and stop holding them."""
        for stream, acked in _by_stream(entries).items():
            ids = [entry.entry_id for entry in acked]
            await self._redis.xack(stream, self.group, *ids)
            self.release(stream, ids)

    def release(self, stream: str, ids: Iterable[str]) -> None:
        """Stop holding entries without acknowledging them (another consumer may claim)."""
        self._held[stream].difference_update(ids)

    async def refresh_ownership(self) -> int:
        """Reset the idle time of every entry held here; how many were refreshed.

        Only entries still pending on this consumer are touched (XPENDING
        filtered by consumer), so an entry another consumer took over is
        never taken back. JUSTID leaves the delivery count as it is.
        """
        refreshed = 0
        for stream, held in self._held.items():
            if not held:
                continue
            # Typed as redis-py's stub wants its id list (a list is invariant).
            mine: list[int | bytes | str | memoryview[int]] = [
                i for i in await self._pending_here(stream, held) if i in held
            ]
            if mine:
                await self._redis.xclaim(
                    stream,
                    self.group,
                    self.consumer,
                    min_idle_time=0,
                    message_ids=mine,
                    justid=True,
                )
                refreshed += len(mine)
        return refreshed

    async def _pending_here(self, stream: str, among: set[str]) -> list[str]:
        """Ids pending on this consumer between the lowest and highest of `among`, paged."""
        ordered = sorted(among, key=parse_id)
        start, end = ordered[0], ordered[-1]
        found: list[str] = []
        while True:
            page = cast(
                "list[dict[str, Any]]",
                await self._redis.xpending_range(
                    stream,
                    self.group,
                    min=start,
                    max=end,
                    count=PENDING_PAGE,
                    consumername=self.consumer,
                ),
            )
            found.extend(d["message_id"].decode() for d in page)
            if len(page) < PENDING_PAGE:
                return found
            start = f"({found[-1]}"  # exclusive: the next page starts after the last id

    async def keep_ownership(self, stopping: asyncio.Event) -> None:
        """Refresh held entries three times per claim period until stopped."""
        period = self.claim_idle_ms / 3000
        while not await wait_or_stop(stopping, period):
            try:
                await self.refresh_ownership()
            except REDIS_AWAY as exc:
                # Redis is away: nobody can claim meanwhile, and the next round retries.
                log.warning(f"held entries not refreshed: {redis_trouble(exc)}", error=str(exc))

    async def forget_idle_consumers(self) -> None:
        """Remove consumers that hold nothing and have been silent for long: dead processes."""
        idle_limit = self.claim_idle_ms * 10
        for stream in self.streams:
            consumers: list[dict[str, Any]] = await self._redis.xinfo_consumers(stream, self.group)
            for consumer in consumers:
                name = redis_text(consumer["name"])
                if (
                    name != self.consumer
                    and consumer["pending"] == 0
                    and consumer["idle"] > idle_limit
                ):
                    # By the name's own bytes: any bytes make a name in Redis.
                    await self._redis.xgroup_delconsumer(stream, self.group, consumer["name"])
                    log.info("removed idle consumer", stream=stream, consumer=name)


def _taken(entries: Iterable[Entry]) -> dict[str, tuple[int, int]]:
    """Each stream's number of `entries` and their bytes."""
    taken: dict[str, tuple[int, int]] = {}
    for entry in entries:
        count, size = taken.get(entry.stream, (0, 0))
        taken[entry.stream] = (count + 1, size + entry.size)
    return taken


def _by_stream(entries: Iterable[Entry]) -> dict[str, list[Entry]]:
    by_stream: dict[str, list[Entry]] = {}
    for entry in entries:
        by_stream.setdefault(entry.stream, []).append(entry)
    return by_stream


async def read_range(
    redis: Redis, stream: str, after: str, *, most: int, budget: int
) -> list[Entry]:
    """Up to `most` entries of `stream` past `after` ("-" for the first), until they
    reach `budget` bytes: a page of a stream read whole, without a group."""
    reply = cast(
        "list[tuple[bytes, list[bytes]]]",
        await redis.eval(
            _RANGE_BOUNDED, 1, stream, after if after == "-" else f"({after}", most, budget
        ),
    )
    return _entries(stream, reply)


def _entries(stream: str, reply: list[tuple[bytes, list[bytes]]]) -> list[Entry]:
    """Entries as a script returns them, fields and values in one flat list."""
    # A field named twice keeps its last value, as redis-py's own reading does.
    return [
        Entry(stream, entry_id.decode(), dict(zip(parts[::2], parts[1::2], strict=True)))
        for entry_id, parts in reply
    ]


class TailReader:
    """Follows one stream from its end, without a group: every reader sees every entry."""

    def __init__(self, redis: Redis, stream: str, *, block_ms: int, count: int = 100) -> None:
        self._redis = redis
        self._stream = stream
        self._block_ms = block_ms
        self._count = count
        self._last = "$"

    async def read(self) -> list[Entry]:
        if self._last == "$":
            # Pinned to the entry that is last now: "$" asked again after Redis was
            # away (a failover) would skip whatever was added meanwhile.
            newest = cast(
                "list[tuple[bytes, Any]]", await self._redis.xrevrange(self._stream, count=1)
            )
            self._last = newest[0][0].decode() if newest else "0-0"
        reply = cast(
            "ReadReply",
            await self._redis.xread(
                {self._stream: self._last}, count=self._count, block=self._block_ms
            ),
        )
        entries: list[Entry] = []
        for _, items in reply or []:
            for entry_id, fields in items:
                self._last = entry_id.decode()
                if fields is not None:
                    entries.append(Entry(self._stream, self._last, fields))
        return entries


def parse_id(entry_id: str) -> tuple[int, int]:
    """A stream id as (milliseconds, sequence), for ordering and comparison."""
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


def redis_text(value: Any) -> str:
    """A name or id Redis answered, as text: any bytes make a group's or a consumer's
    name (another team's, or a typo's), and one not UTF-8 must not stop a reader."""
    return value.decode(errors="backslashreplace") if isinstance(value, bytes) else str(value)
