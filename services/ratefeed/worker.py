"""The rate-feed loop: fetch the provider document, compute X/USD, publish what is new."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import structlog
from faststream.redis.publisher.usecase import StreamPublisher

from services.ratefeed.cbr import parse_cbr
from services.ratefeed.providers import RatesError
from services.ratefeed.rates import decide, usd_rates
from services.ratefeed.store import LastRateStore
from shared.events import QuoteEvent
from shared.fetch import FetchError, fetch_bytes

log = structlog.get_logger(__name__)

CURRENCIES = ("KGS", "KZT", "TJS", "UZS", "TMT")
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024


async def poll_rates(
    location: str,
    publisher: StreamPublisher,
    store: LastRateStore,
    client: httpx.AsyncClient,
) -> list[QuoteEvent]:
    """Read one rates document and publish a QuoteEvent per new rate. Raises on bad input."""
    official = parse_cbr(await fetch_bytes(location, client, max_bytes=MAX_DOCUMENT_BYTES))
    for problem in official.problems:
        log.warning("rate entry left out", provider=official.provider, detail=problem)
    fetched_at = datetime.now(UTC)
    published: list[QuoteEvent] = []
    for base, rate in usd_rates(official, CURRENCIES).items():
        last = await store.get(official.provider, base)
        decision = decide(last, official.as_of, rate)
        if not decision.publish:
            log.debug("rate unchanged", base=base, as_of=str(official.as_of))
            continue
        event = QuoteEvent(base=base, rate=rate, change_pct=decision.change_pct,
                           previous_rate=decision.previous_rate, as_of=official.as_of,
                           provider=official.provider, fetched_at=fetched_at)
        await publisher.publish(event)
        # Remember the rate only once it is on the stream: a crash in between
        # re-publishes it next time (the indexer's _id makes that harmless).
        if decision.store:
            await store.put(official.provider, base, decision.store)
        published.append(event)
        log.info("quote published", event_id=str(event.event_id), base=base,
                 rate=str(rate), as_of=str(official.as_of))
    missing = sorted(set(CURRENCIES) - set(official.per_unit))
    if missing:
        log.warning("currencies missing from document", provider=official.provider,
                    missing=missing)
    return published


async def run_forever(
    location: str,
    interval: float,
    publisher: StreamPublisher,
    store: LastRateStore,
    client: httpx.AsyncClient,
) -> None:
    while True:
        try:
            await poll_rates(location, publisher, store, client)
        except (FetchError, RatesError) as exc:
            log.error("rates poll failed", source=location, error=str(exc),
                      error_class=type(exc).__name__)
        await asyncio.sleep(interval)
