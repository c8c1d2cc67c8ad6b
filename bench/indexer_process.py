"""The indexer's consumer loop as a process of its own, for bench/indexer.py.

    python -m bench.indexer_process   (settings from the environment, stops on SIGTERM)

The real `Consumer` (reading, writing, acknowledging, dead-lettering) with the
service's settings, without the service shell around it (health server, stream
upkeep, FastStream's broker): what is timed is the consumer's work. Dead letters
are appended to the dead-letter stream directly; the bench expects none.
The templates and aliases are made by the bench before it starts this.
"""

from __future__ import annotations

import asyncio
import signal

from services.indexer.consumer import Consumer
from shared.clients import make_elasticsearch, make_redis
from shared.events import DeadLetter
from shared.index import IndexNames
from shared.runtime import settle_after_startup
from shared.settings import Settings
from shared.streams import DATA_FIELD, Streams


async def run(settings: Settings) -> None:
    common = settings.common
    redis = make_redis(settings.redis)
    es = make_elasticsearch(settings.elasticsearch)
    streams = Streams(common)

    async def publish_dead_letter(letter: DeadLetter) -> None:
        await redis.xadd(streams.deadletters, {DATA_FIELD: letter.model_dump_json()})

    consumer = Consumer(
        redis, es, streams, IndexNames(common.index_prefix), settings.indexer, publish_dead_letter
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, consumer.stop)
    try:
        await consumer.run()
    finally:
        await es.close()
        await redis.aclose()


if __name__ == "__main__":
    settle_after_startup()  # as the service's entry point does
    asyncio.run(run(Settings.from_env()))
