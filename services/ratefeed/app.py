"""ratefeed entry point: poll the configured rate providers forever, once, or back over history."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

from faststream.redis import StreamSub

from services.ratefeed.catalog import DOCUMENT_PARSERS
from services.ratefeed.config import Provider, RatesConfig, load_rates_config
from services.ratefeed.providers import RatesError
from services.ratefeed.status import ProviderStatus
from services.ratefeed.store import LastRateStore
from services.ratefeed.worker import (
    Outlets,
    backfill,
    poll_providers,
    publish_readings,
    read_location,
    release_held,
    run_forever,
)
from shared.clients import make_redis
from shared.events import DeadLetter, QuoteEvent
from shared.fetcher import FetchPolicy, PoliteFetcher
from shared.health import Readiness, ReadinessProbe
from shared.leases import Lease, WorkShare, lead
from shared.service import BackgroundService, ServiceContext
from shared.settings import FetchSettings, RateFeedSettings, Settings, default_consumer
from shared.ssrf import AllowList
from shared.streams import Publisher
from shared.tasks import together

SERVICE = "ratefeed"


def quotes_publisher(ctx: ServiceContext) -> Publisher[QuoteEvent]:
    return ctx.broker.publisher(
        stream=StreamSub(ctx.streams.quotes, maxlen=ctx.streams.maxlen),
        schema=QuoteEvent,
        title="quotes",
        description="One QuoteEvent per currency, provider and new as-of date: X/USD with "
        "its daily change and cross-check flags.",
    )


def quarantine_publisher(ctx: ServiceContext) -> Publisher[DeadLetter]:
    return ctx.broker.publisher(
        stream=StreamSub(ctx.streams.deadletters, maxlen=ctx.streams.maxlen),
        schema=DeadLetter,
        title="deadletters",
        description="Quarantined quotes: a day-on-day move beyond the configured bound, or a "
        "late quote beyond it from both its published neighbours, that no second provider "
        "confirms, with the reason (`RateJump`).",
    )


def _outlets(ctx: ServiceContext, settings: RateFeedSettings) -> tuple[Outlets, LastRateStore]:
    store = LastRateStore(make_redis(ctx.redis_settings), ctx.common.stream_prefix)
    quarantine_publisher(ctx)  # as the AsyncAPI document declares it; written with the hold
    return Outlets(
        ctx.streams.deadletters,
        ctx.streams.quotes,
        ctx.streams.maxlen,
        store,
        settings.jump_confirmations,
        settings.gap_after_days,
    ), store


def fetcher(user_agent: str, settings: RateFeedSettings, fetch: FetchSettings) -> PoliteFetcher:
    """Ingest's guarded fetcher, with the rate feed's limits: one request at a time per bank."""
    return PoliteFetcher(
        FetchPolicy(
            user_agent=user_agent,
            timeout=settings.timeout,
            max_bytes=settings.max_bytes,
            retries=settings.retries,
            host_delay=settings.host_delay,
            host_concurrency=1,
            max_retry_after=fetch.max_retry_after,
            max_crawl_delay=fetch.max_crawl_delay,
            allow=AllowList.parse(fetch.allow),
        )
    )


def readiness_probe(ctx: ServiceContext, status: ProviderStatus) -> ReadinessProbe:
    redis_probe = ctx.redis_probe(ctx.streams.quotes)

    async def probe() -> Readiness:
        readiness = await redis_probe()
        return Readiness(readiness.checks, {"providers": status.details(datetime.now(UTC))})

    return probe


def create_service(all_settings: Settings) -> BackgroundService:
    ctx = ServiceContext(SERVICE, all_settings)
    ctx.configure_logging()
    settings = all_settings.ratefeed
    config = load_rates_config(settings.providers)
    outlets, store = _outlets(ctx, settings)
    status = ProviderStatus(config.providers)

    async def poll() -> None:
        # The client's connections close with the task (on shutdown), not with the process.
        async with fetcher(ctx.common.user_agent, settings, all_settings.fetch) as client:
            await _lead(
                ctx,
                settings,
                lambda lease: run_forever(
                    config,
                    settings.interval,
                    outlets.under(lease),
                    client,
                    status,
                    settings.provider_deadline,
                ),
            )

    def tasks() -> Iterator[Awaitable[None]]:
        yield poll()

    return BackgroundService(
        ctx.broker,
        tasks,
        probe=readiness_probe(ctx, status),
        grace=all_settings.common.shutdown_grace,
        health=all_settings.health,
        health_port=8082,
        on_closed=store.close,
    )


async def _lead(
    ctx: ServiceContext, settings: RateFeedSettings, work: Callable[[Lease], Awaitable[None]]
) -> None:
    """Any number of replicas, one polling: the providers are cross-checked
    together, so they go together, under one lease."""
    redis = make_redis(ctx.redis_settings)
    share = WorkShare(
        redis,
        ctx.common.stream_prefix,
        SERVICE,
        ["providers"],
        default_consumer(),
        settings.lease_seconds,
        audit=ctx.common.lease_audit,
    )
    try:
        await share.join()
        await together([lead(share, "providers", work)], beside=[share.keep()])
    finally:
        try:
            # A rolling update hands the polling over now, not after the lease expires.
            await share.hand_over()
        finally:
            await redis.aclose()


@dataclass(frozen=True)
class _Session:
    config: RatesConfig
    outlets: Outlets
    fetcher: PoliteFetcher


@asynccontextmanager
async def _session(all_settings: Settings) -> AsyncIterator[_Session]:
    ctx = ServiceContext(SERVICE, all_settings)
    ctx.configure_logging()
    settings = all_settings.ratefeed
    config = load_rates_config(settings.providers)
    outlets, store = _outlets(ctx, settings)
    try:
        async with (
            ctx.broker,
            fetcher(ctx.common.user_agent, settings, all_settings.fetch) as client,
        ):
            await ctx.broker.connect()
            yield _Session(config, outlets, client)
    finally:
        await store.close()


def select_providers(
    config: RatesConfig, name: str | None, location: str | None = None
) -> list[Provider]:
    """The configured providers, the one named, or a built-in parser by its kind name."""
    if name is None:
        return list(config.providers)
    configured = config.provider(name)
    if configured is not None:
        return [configured]
    if name in DOCUMENT_PARSERS and location is not None:
        return [Provider.model_validate({"name": name, "kind": name, "url": location})]
    known = sorted({p.name for p in config.providers} | set(DOCUMENT_PARSERS))
    msg = f"unknown provider {name!r}: known are {', '.join(known)}"
    raise RatesError(msg)


async def ratefeed_once(
    settings: Settings, location: str | None = None, provider: str | None = None
) -> list[QuoteEvent]:
    """One document (`location`, its provider named or detected), or one poll of the providers.

    A single document's errors are raised; in a poll, a failing provider is
    logged and the others still publish.
    """
    async with _session(settings) as session:
        config, outlets, client = session.config, session.outlets, session.fetcher
        if location is None:
            return await poll_providers(
                select_providers(config, provider),
                config,
                outlets,
                client,
                ProviderStatus(config.providers),
                settings.ratefeed.provider_deadline,
            )
        chosen = select_providers(config, provider, location)[0] if provider else None
        now = datetime.now(UTC)
        reading = await read_location(location, chosen, config, client, now)
        return await publish_readings([reading], config, outlets, now)


async def ratefeed_backfill(
    settings: Settings, since: date, until: date | None = None, provider: str | None = None
) -> list[QuoteEvent]:
    async with _session(settings) as session:
        until = until or datetime.now(UTC).date()
        return await backfill(
            select_providers(session.config, provider),
            since,
            until,
            session.config,
            session.outlets,
            session.fetcher,
        )


def main(settings: Settings) -> None:
    create_service(settings).main()


async def ratefeed_release(settings: Settings, keys: list[str]) -> list[QuoteEvent]:
    """Publish held quotes an operator accepts (by their dead letters' entry_id)."""
    async with _session(settings) as session:
        released: list[QuoteEvent] = []
        for key in keys:
            released += await release_held(key, session.config, session.outlets)
        return released
