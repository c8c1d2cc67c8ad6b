"""What the rate feed remembers per (provider, currency), in Redis, so a restart knows yesterday.

The accepted rate (the baseline a move is judged against) in one hash, the
quotes held as jumps in another, keyed by as-of date, each the QuoteEvent that
went to the dead letters: published as it is once the move is accepted; and the
quotes published, in a sorted set scored by as-of date (the newest
`HISTORY_QUOTES`), so that a quote arriving late finds the one before it and
the one after it, whatever the order the documents came in.

Each update is atomic, through the store's fence (shared/leases.py). The
long-running poller works under the rate feed's lease, with `store.under(lease)`:
its updates go through that lease, so a poller that stalled past it cannot
overwrite what its successor stored (LeaseLost); quotes and the dead letters of
held ones are written in the same fenced step. One-shot commands (a single poll,
backfill, release) hold no lease and write in one script, unfenced.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import cast

import structlog
from pydantic import ValidationError
from redis.asyncio import Redis

from services.ratefeed.rates import LastRate
from shared.decimals import RATE, BadDecimal, read_within
from shared.events import QuoteEvent
from shared.leases import Command, Fence, Unfenced, forget_foreign, read_hash

log = structlog.get_logger(__name__)

# About eight years of business days per provider and currency (~350 bytes each).
HISTORY_QUOTES = 2000


class LastRateStore:
    def __init__(self, redis: Redis, prefix: str, fence: Fence | None = None) -> None:
        self._redis = redis
        self._prefix = prefix
        self._fence = fence or Unfenced(redis)

    def under(self, fence: Fence) -> LastRateStore:
        """The same store, written through `fence` (the poller's lease)."""
        return LastRateStore(self._redis, self._prefix, fence)

    def _key(self, provider: str, base: str) -> str:
        return f"{self._prefix}ratefeed:last:{provider}:{base}"

    def _held_key(self, provider: str, base: str) -> str:
        return f"{self._prefix}ratefeed:held:{provider}:{base}"

    def _history_key(self, provider: str, base: str) -> str:
        return f"{self._prefix}ratefeed:history:{provider}:{base}"

    async def published(
        self, provider: str, base: str, as_of: date
    ) -> tuple[QuoteEvent | None, QuoteEvent | None, QuoteEvent | None]:
        """The quotes published before `as_of` (the latest), on it, and after it (the earliest)."""
        key = self._history_key(provider, base)
        day = as_of.toordinal()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrevrangebyscore(key, f"({day}", "-inf", start=0, num=1)
            pipe.zrangebyscore(key, day, day)
            pipe.zrangebyscore(key, f"({day}", "+inf", start=0, num=1)
            found: list[list[bytes] | Exception] = await pipe.execute(raise_on_error=False)
        for answer in found:
            # An error is an answer here (a cluster's pipeline puts a dropped
            # connection there too): one of another type is forgotten, the rest raised.
            if isinstance(answer, Exception):
                await forget_foreign(self._fence, key, answer)
                return None, None, None
        before, same, after = (
            _stored_quote(members[0]) if members else None
            for members in cast("list[list[bytes]]", found)
        )
        return before, same, after

    async def commit(self, commands: Sequence[Command]) -> None:
        """Run `commands` in one atomic write through the store's fence."""
        await self._fence.write(commands)

    async def remember_published(self, events: list[QuoteEvent]) -> None:
        await self._fence.write(self.published_commands(events))

    def published_commands(self, events: list[QuoteEvent]) -> list[Command]:
        """Keep each as the version of its day; the oldest beyond HISTORY_QUOTES go."""
        commands: list[Command] = []
        for event in events:
            key = self._history_key(event.provider, event.base)
            day = event.as_of.toordinal()
            commands += [
                ("ZREMRANGEBYSCORE", key, day, day),
                ("ZADD", key, day, event.model_dump_json()),
                ("ZREMRANGEBYRANK", key, 0, -(HISTORY_QUOTES + 1)),
            ]
        return commands

    async def held(self, provider: str, base: str) -> list[QuoteEvent]:
        """The held quotes, oldest as-of date first."""
        raw = await read_hash(self._redis, self._fence, self._held_key(provider, base))
        held = [event for v in raw.values() if (event := _stored_quote(v)) is not None]
        return sorted(held, key=lambda event: event.as_of)

    async def put_held(self, provider: str, base: str, held: list[QuoteEvent]) -> None:
        await self._fence.write(self.held_commands(provider, base, held))

    def held_commands(self, provider: str, base: str, held: list[QuoteEvent]) -> list[Command]:
        key = self._held_key(provider, base)
        commands: list[Command] = [("DEL", key)]
        if held:
            commands.append(
                (
                    "HSET",
                    key,
                    *(word for e in held for word in (e.as_of.isoformat(), e.model_dump_json())),
                )
            )
        return commands

    async def get(self, provider: str, base: str) -> LastRate | None:
        raw = await read_hash(self._redis, self._fence, self._key(provider, base))
        if not raw:
            return None
        fields = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in raw.items()}
        previous_as_of, previous_rate = fields.get("previous_as_of"), fields.get("previous_rate")
        try:
            return LastRate(
                as_of=date.fromisoformat(fields["as_of"]),
                rate=read_within(fields["rate"], RATE),
                previous_as_of=date.fromisoformat(previous_as_of) if previous_as_of else None,
                previous_rate=read_within(previous_rate, RATE) if previous_rate else None,
            )
        # BadDecimal is a ValueError: named for the reader.
        except (BadDecimal, ValueError, KeyError) as exc:
            # Stored before rates were bounded, or damaged: a change against it would
            # overflow or mean nothing, so the next rate counts as the first.
            log.warning("stored rate ignored", provider=provider, base=base, error=repr(exc))
            return None

    async def put(self, provider: str, base: str, last: LastRate) -> None:
        await self._fence.write(self.put_commands(provider, base, last))

    def put_commands(self, provider: str, base: str, last: LastRate) -> list[Command]:
        fields = ["as_of", last.as_of.isoformat(), "rate", str(last.rate)]
        if last.previous_as_of and last.previous_rate:
            fields += [
                "previous_as_of",
                last.previous_as_of.isoformat(),
                "previous_rate",
                str(last.previous_rate),
            ]
        key = self._key(provider, base)
        return [("DEL", key), ("HSET", key, *fields)]

    async def close(self) -> None:
        await self._redis.aclose()


def _stored_quote(raw: bytes) -> QuoteEvent | None:
    """A quote the store kept; None for one the contract no longer admits (stored
    before rates were bounded): forgotten with a warning, as `get` forgets such a rate,
    rather than refusing every poll after it."""
    try:
        return QuoteEvent.model_validate_json(raw)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False)
        log.warning("stored quote ignored", errors=[f"{e['loc']}: {e['msg']}" for e in problems])
        return None
