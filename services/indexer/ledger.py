"""Settling stream entries: acknowledge them, or dead-letter them with the reason.

Also remembers why an entry is still pending, so that when it is finally
dead-lettered (after too many deliveries) the letter says what went wrong.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis

from services.indexer import metrics
from services.indexer.decode import Entry
from shared.events import DeadLetter
from shared.streams import DATA_FIELD

log = structlog.get_logger(__name__)

SERVICE = "indexer"
PublishDeadLetter = Callable[[DeadLetter], Awaitable[Any]]


class Ledger:
    def __init__(
        self, redis: Redis, group: str, errors_key: str, publish: PublishDeadLetter
    ) -> None:
        self._redis = redis
        self._group = group
        self._errors_key = errors_key
        self._publish = publish
        # Keys this process has remembered an error for: the only ones to forget
        # on ack, besides redelivered entries (which another process may have noted).
        self._noted: set[str] = set()

    async def ack(self, entries: Sequence[Entry]) -> None:
        by_stream: dict[str, list[str]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry.entry_id)
        for stream, ids in by_stream.items():
            await self._redis.xack(stream, self._group, *ids)
        noted = [e.key for e in entries if e.key in self._noted or e.deliveries > 1]
        if noted:
            await self._redis.hdel(self._errors_key, *noted)
            self._noted.difference_update(noted)

    async def dead_letter(self, entry: Entry, error_class: str, message: str) -> None:
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
        # and the letter may be written twice (same idempotency_key), never lost.
        await self._publish(letter)
        metrics.DEADLETTERS.labels(entry.stream, error_class).inc()
        log.warning("entry dead-lettered", stream=entry.stream, entry_id=entry.entry_id,
                    event_id=_event_id(letter.payload), error_class=error_class,
                    reason=message, attempts=entry.deliveries)
        await self.ack([entry])

    async def remember(self, entries: Sequence[Entry], reason: str) -> None:
        if entries:
            mapping: dict[str | bytes, str | bytes] = {e.key: reason for e in entries}
            await self._redis.hset(self._errors_key, mapping=mapping)  # type: ignore[arg-type]
            self._noted.update(e.key for e in entries)

    async def last_error(self, entry: Entry) -> str | None:
        raw: bytes | None = await self._redis.hget(self._errors_key, entry.key)  # type: ignore[assignment]
        return raw.decode() if raw else None


def _event_id(payload: bytes) -> str | None:
    """The event_id of a payload, when it has one: logs follow an event end to end."""
    try:
        value = json.loads(payload).get("event_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
