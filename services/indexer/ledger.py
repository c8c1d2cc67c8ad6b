"""Settling stream entries: acknowledge them, or dead-letter them with the reason.

Also remembers, per pending entry, the last failure and whose fault it was, so
that a dead letter after too many deliveries says what went wrong, and an entry
held through a cluster outage is never taken for a poison.

Each of these writes waits Redis out, until asked to stop: a write that failed
instead would leave its entries pending, to be read, written and counted as
delivered again, and an entry whose acknowledgement Redis missed five times would
be dead-lettered for it, although stored.

Nothing an entry carries can make the dead-letter path raise: the letter is
built from bytes, the reason and the letter's size are bounded, and the event_id
for the log is found without parsing the payload (a payload of 100,000 `[` must
not recurse).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

import structlog
from redis.asyncio import Redis

from services.indexer import metrics
from services.indexer.failures import Fault
from services.indexer.hold import Hold
from shared.backoff import Backoff
from shared.clients import REDIS_AWAY, redis_trouble, wrong_type
from shared.consumer import Entry, GroupReader, parse_id, wait_or_stop
from shared.events import DeadLetter
from shared.groups import GroupState
from shared.streams import DATA_FIELD

log = structlog.get_logger(__name__)

SERVICE = "indexer"
# False when the letter was written before (services/indexer/deadletters.py).
PublishDeadLetter = Callable[[DeadLetter], Awaitable[Any]]
T = TypeVar("T")
# Enough for Elasticsearch's longest explanations; a reason is for people, not a payload copy.
MAX_REASON_CHARS = 4000
_EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([0-9A-Za-z_-]{1,64})"')
# Only the head of a payload is searched: the event_id is a top-level field written early.
_EVENT_ID_WINDOW = 4096
# A letter is one Redis entry whatever the entry held, and a Redis value is at most
# 512 MB, base64 adding a third: an entry of 410 MB could not be dead-lettered, stayed
# pending, and took the entries read with it to TooManyDeliveries. Past this many bytes
# a letter keeps the start of the entry, and says so. Caravan's events are far smaller.
MAX_LETTER_BYTES = 16 << 20
CUT = "the letter keeps the first"


def notes_key(deadletters: str, group: str) -> str:
    """The hash of the group's last failure per pending entry (`Entry.key` to a note)."""
    return f"{deadletters}:last-error:{group}"


def settled_notes(keys: Iterable[str], ours: Mapping[str, GroupState]) -> list[str]:
    """The notes among `keys` of entries the group (`ours`, per stream, read before the
    keys) had acknowledged: below its oldest pending entry, or any when none was pending,
    and delivered by then. Left behind when Redis refused their deletion, they would be
    kept for good; a note of an entry delivered since is newer, or of a pending one."""
    settled = []
    for key in keys:
        stream, _, entry_id = key.rpartition("/")
        group = ours.get(stream)
        try:
            entry = parse_id(entry_id)
            if group is None or entry > parse_id(group.last_delivered):
                continue
            if group.oldest_pending is None or entry < parse_id(group.oldest_pending):
                settled.append(key)
        except ValueError:
            continue  # not a note of Caravan's: another tool's field, left alone
    return settled


class Ledger:
    def __init__(
        self,
        redis: Redis,
        reader: GroupReader,
        errors_key: str,
        publish: PublishDeadLetter,
        *,
        stopping: asyncio.Event,
        backoff: Backoff,
        hold: Hold,
    ) -> None:
        self._redis = redis
        self._reader = reader
        self._errors_key = errors_key
        self._publish = publish
        self._stopping = stopping
        self._backoff = backoff
        self._hold = hold
        # Keys this process has remembered an error for: the only ones to forget
        # on ack, besides redelivered entries (which another process may have noted).
        self._noted: set[str] = set()

    async def ack(self, entries: Sequence[Entry]) -> None:
        await self._answered("acknowledge", lambda: self._reader.ack(entries))
        noted = [e.key for e in entries if e.key in self._noted or e.deliveries > 1]
        if noted:
            self._noted.difference_update(noted)
            # Tidying only: a note left behind is read for no other entry (entry ids are
            # never reused), so a refusal costs a warning, not a wait (upkeep forgets it).
            try:
                await self._redis.hdel(self._errors_key, *noted)
            except REDIS_AWAY as exc:
                log.warning("error notes left behind", entries=len(noted), error=str(exc))

    async def dead_letter(self, entry: Entry, error_class: str, message: str) -> None:
        reason = bounded(message)
        payload, other_fields, cut = kept_of(entry.fields)
        letter = DeadLetter(
            stream=entry.stream,
            entry_id=entry.entry_id,
            payload=payload,
            other_fields=other_fields,
            error_class=error_class or "Unknown",
            error_message=f"{reason} ({cut})" if cut else reason,
            service=SERVICE,
            attempts=max(entry.deliveries, 1),
        )
        # Everything logged from here on (publishing, acknowledging) names the event.
        with structlog.contextvars.bound_contextvars(
            stream=entry.stream, entry_id=entry.entry_id, event_id=event_id_of(letter.payload)
        ):
            # Written before the ack: a crash in between leaves the entry pending, and
            # whoever reads it again finds its letter written (`letter_writer`).
            written = await self._answered("dead_letter", lambda: self._publish(letter))
            # Counted either way: a letter found written may be this very call's, its
            # answer lost, or one whose writer stopped before it was scraped.
            metrics.DEADLETTERS.labels(entry.stream, error_class).inc()
            log.warning(
                "entry dead-lettered" if written is not False else "entry dead-lettered already",
                error_class=error_class,
                reason=reason,
                attempts=entry.deliveries,
            )
            await self.ack([entry])

    async def remember(self, entries: Sequence[Entry], fault: Fault, reason: str) -> None:
        if entries:
            note = json.dumps({"fault": fault.value, "reason": bounded(reason)})
            mapping: dict[str | bytes, str | bytes] = {e.key: note for e in entries}
            await self._answered(
                "note_error",
                lambda: self._redis.hset(self._errors_key, mapping=mapping),  # type: ignore[arg-type]
                own=self._errors_key,
            )
            self._noted.update(e.key for e in entries)

    async def last_error(self, entry: Entry) -> tuple[Fault, str] | None:
        raw: bytes | None = await self._answered(
            "read_error",
            lambda: self._redis.hget(self._errors_key, entry.key),  # type: ignore[arg-type,return-value]
            own=self._errors_key,
        )
        return None if raw is None else read_note(raw)

    async def _answered(
        self, doing: str, command: Callable[[], Awaitable[T]], *, own: str | None = None
    ) -> T:
        """`command`'s answer, once Redis gives one; Redis away after a stop was asked
        is raised, and the entries stay pending for whichever indexer reads them next.

        Meanwhile the indexer holds (reads nothing new, /readyz says why), as a holder
        of its own. A refusal for `own`, the ledger's own bookkeeping key, holding
        another type (not written by Caravan) replaces the key rather than waiting on it.
        """
        attempt = 0
        replace = replaced = False
        holder = object()
        try:
            while True:
                try:
                    if replace:
                        await _replace_unless_hash(self._redis, cast("str", own))
                        replace, replaced = False, True
                    return await command()
                except REDIS_AWAY as exc:
                    if self._stopping.is_set():
                        raise
                    if own is not None and wrong_type(exc):
                        log.warning("bookkeeping key of another type: replacing it", key=own)
                        replace = True
                        if not replaced:
                            continue  # at once, the first time; then as any refusal
                    attempt += 1
                    metrics.REDIS_RETRIES.labels(doing).inc()
                    log.warning(
                        f"{redis_trouble(exc)}, retrying",
                        doing=doing,
                        attempt=attempt,
                        error=str(exc),
                    )
                    self._hold.enter(f"Redis refuses to {doing.replace('_', ' ')}: {exc}", holder)
                    await wait_or_stop(self._stopping, self._backoff.delay(attempt))
        finally:
            self._hold.release(holder)


# In one step: replicas and batches note their errors at once when a hold begins, and
# a check, then a delete, could delete a note written in between.
_REPLACE_UNLESS_HASH = """
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return redis.call('DEL', KEYS[1]) end
return 0
"""


async def _replace_unless_hash(redis: Redis, key: str) -> None:
    await redis.eval(_REPLACE_UNLESS_HASH, 1, key)


def read_note(raw: bytes) -> tuple[Fault, str]:
    """A remembered failure; notes written before faults were recorded read as the entry's."""
    try:
        note = json.loads(raw)
        return Fault(note["fault"]), str(note["reason"])
    # RecursionError: a note of nested arrays (not the ledger's) stopped every batch
    # that held its entry, for good.
    except (ValueError, KeyError, TypeError, RecursionError):
        return Fault.ENTRY, raw.decode(errors="replace")


def kept_of(
    fields: dict[bytes, bytes], most: int = MAX_LETTER_BYTES
) -> tuple[bytes, dict[str, bytes], str]:
    """The payload and other fields a letter keeps of an entry, byte for byte up to
    `most` bytes in all, and what it says of the rest when it was cut."""
    payload = fields.get(DATA_FIELD, b"")
    others = {k.decode(errors="replace"): v for k, v in fields.items() if k != DATA_FIELD}
    # What the letter holds: the payload, and each other field's name and value.
    size = len(payload) + sum(len(name) + len(value) for name, value in others.items())
    if size <= most:
        return payload, others, ""
    room = most
    kept_payload, room = payload[:room], max(0, room - len(payload))
    kept: dict[str, bytes] = {}
    for name, value in others.items():
        if room <= len(name):
            break
        kept[name] = value[: room - len(name)]
        room = max(0, room - len(name) - len(value))
    digest = hashlib.sha256(payload).hexdigest()
    cut = (
        f"{CUT} {most} of the entry's {size} bytes; "
        f"the whole {DATA_FIELD.decode()} had {len(payload)} bytes, sha256 {digest}"
    )
    return kept_payload, kept, cut


def bounded(text: str) -> str:
    if len(text) <= MAX_REASON_CHARS:
        return text
    return f"{text[:MAX_REASON_CHARS]}… ({len(text) - MAX_REASON_CHARS} more characters)"


def event_id_of(payload: bytes) -> str | None:
    """The event_id of a payload, when it has one: logs follow an event end to end."""
    match = _EVENT_ID.search(payload[:_EVENT_ID_WINDOW])
    return match.group(1).decode() if match else None
