"""What the rate feed remembers per (provider, currency), in Redis, so a restart knows yesterday.

The accepted rate (the baseline a move is judged against) in one hash, and the
quotes held as jumps in another, keyed by as-of date, each the QuoteEvent that
went to the dead letters: published as it is once the move is accepted.
"""

from __future__ import annotations

from datetime import date

import structlog
from redis.asyncio import Redis

from services.ratefeed.rates import LastRate
from shared.decimals import RATE, BadDecimal, read_within
from shared.events import QuoteEvent

log = structlog.get_logger(__name__)


class LastRateStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, provider: str, base: str) -> str:
        return f"{self._prefix}ratefeed:last:{provider}:{base}"

    def _held_key(self, provider: str, base: str) -> str:
        return f"{self._prefix}ratefeed:held:{provider}:{base}"

    async def held(self, provider: str, base: str) -> list[QuoteEvent]:
        """The held quotes, oldest as-of date first."""
        raw: dict[bytes, bytes] = await self._redis.hgetall(self._held_key(provider, base))  # type: ignore[assignment]
        return sorted((QuoteEvent.model_validate_json(v) for v in raw.values()),
                      key=lambda event: event.as_of)

    async def put_held(self, provider: str, base: str, held: list[QuoteEvent]) -> None:
        key = self._held_key(provider, base)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if held:
                pipe.hset(key, mapping={e.as_of.isoformat(): e.model_dump_json() for e in held})
            await pipe.execute()

    async def get(self, provider: str, base: str) -> LastRate | None:
        raw: dict[bytes, bytes] = await self._redis.hgetall(self._key(provider, base))  # type: ignore[assignment]
        if not raw:
            return None
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        try:
            rate = read_within(fields["rate"], RATE)
            previous = read_within(p, RATE) if (p := fields.get("previous_rate")) else None
        except BadDecimal as exc:
            # Stored before rates were bounded: a change against it would overflow or
            # mean nothing, so the next rate counts as the first.
            log.warning("stored rate ignored", provider=provider, base=base, error=str(exc))
            return None
        return LastRate(
            as_of=date.fromisoformat(fields["as_of"]),
            rate=rate,
            previous_as_of=date.fromisoformat(p) if (p := fields.get("previous_as_of")) else None,
            previous_rate=previous,
        )

    async def put(self, provider: str, base: str, last: LastRate) -> None:
        mapping: dict[str | bytes, str | bytes] = {"as_of": last.as_of.isoformat(),
                                                   "rate": str(last.rate)}
        if last.previous_as_of and last.previous_rate:
            mapping |= {"previous_as_of": last.previous_as_of.isoformat(),
                        "previous_rate": str(last.previous_rate)}
        key = self._key(provider, base)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()
