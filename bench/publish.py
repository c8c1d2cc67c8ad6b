"""Events into a stream as the services publish them, a thousand per round trip."""

from __future__ import annotations

from redis.asyncio import Redis

from shared.streams import DATA_FIELD


async def publish(redis: Redis, stream: str, payloads: list[str]) -> None:
    for chunk in range(0, len(payloads), 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for payload in payloads[chunk : chunk + 1000]:
                pipe.xadd(stream, {DATA_FIELD: payload})
            await pipe.execute()
