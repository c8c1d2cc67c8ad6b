"""The rate-feed work: read providers, normalise to X/USD, cross-check, publish what is new.

Per quote, in as-of order: the last stored rate of the same provider and
currency decides whether it is news and its daily change (rates.decide); a
move beyond the jump bound that no other provider confirms goes to the dead
letters instead of the quotes stream; a quote that another provider contradicts
for the same date is published with a `disagrees:<provider>` flag.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx
import structlog
from faststream.redis.publisher.usecase import StreamPublisher
from opentelemetry import trace

from services.ratefeed import metrics
from services.ratefeed.asof import check_not_future, days, local_today, stale_after
from services.ratefeed.catalog import detect, parse_document
from services.ratefeed.config import Provider, RatesConfig
from services.ratefeed.crosscheck import Candidate, comparable, confirmed, disagreements
from services.ratefeed.peg import pegged_rates
from services.ratefeed.providers import OfficialRates, RatesError
from services.ratefeed.rates import decide, usd_rates, within_bounds
from services.ratefeed.status import ProviderStatus
from services.ratefeed.store import LastRateStore
from shared.events import DeadLetter, QuoteEvent
from shared.fetch import FetchError, fetch_bytes

log = structlog.get_logger(__name__)
_tracer = trace.get_tracer(__name__)

CURRENCIES = ("KGS", "KZT", "TJS", "UZS", "TMT")
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
SERVICE = "ratefeed"


@dataclass(frozen=True)
class Reading:
    provider: Provider
    rates: OfficialRates


@dataclass(frozen=True)
class Outlets:
    """Where quotes go, where quarantined ones go, and the memory of the last rates."""

    quotes: StreamPublisher
    quarantine: StreamPublisher
    quotes_stream: str
    store: LastRateStore


async def read_location(location: str, provider: Provider | None, config: RatesConfig,
                        client: httpx.AsyncClient, now: datetime) -> Reading:
    """One document from a URL or path, of the given provider or of the one it is detected as."""
    content = await fetch_bytes(location, client, max_bytes=MAX_DOCUMENT_BYTES)
    if provider is None:
        kind = detect(content)
        provider = next((p for p in config.providers if p.kind == kind), None) or \
            Provider.model_validate({"name": kind, "kind": kind, "url": location})
    return _checked(provider, parse_document(provider, content), now)


async def read_provider(provider: Provider, config: RatesConfig, client: httpx.AsyncClient,
                        now: datetime, day: date | None = None) -> Reading:
    """The provider's current rates, or with `day` its rates of that day (history)."""
    with _tracer.start_as_current_span("ratefeed read",
                                       attributes={"caravan.provider": provider.name}):
        return await _read_provider(provider, config, client, now, day)


async def _read_provider(provider: Provider, config: RatesConfig, client: httpx.AsyncClient,
                         now: datetime, day: date | None) -> Reading:
    if provider.peg is not None:
        on = day or local_today(provider.timezone, now)
        return _checked(provider, pegged_rates(provider.name, provider.peg, on), now)
    if day is None:
        location = provider.url or ""
    elif provider.history_url is not None:
        location = provider.history_url.format(date=day)
    else:
        msg = f"{provider.name} offers no history (no history_url)"
        raise RatesError(msg)
    return await read_location(location, provider, config, client, now)


def _checked(provider: Provider, rates: OfficialRates, now: datetime) -> Reading:
    check_not_future(rates, local_today(provider.timezone, now), provider.max_lead_days)
    for problem in rates.problems:
        _left_out(provider.name, problem)
    return Reading(provider, rates)


def _left_out(provider: str, problem: str) -> None:
    log.warning("rate entry left out", provider=provider, detail=problem)
    metrics.LEFT_OUT.labels(provider).inc()


async def publish_readings(readings: list[Reading], config: RatesConfig, outlets: Outlets,
                           fetched_at: datetime) -> list[QuoteEvent]:
    """Publish every new quote of the readings, oldest as-of date first."""
    settings: dict[str, Provider] = {r.provider.name: r.provider for r in readings}
    candidates: list[Candidate] = []
    for reading in readings:
        try:
            usd, rejected = within_bounds(usd_rates(reading.rates, CURRENCIES))
        except RatesError as exc:
            log.error("rates unusable", provider=reading.provider.name, error=str(exc))
            continue
        for problem in rejected:
            _left_out(reading.provider.name, problem)
        candidates += [Candidate(reading.provider.name, base, reading.rates.as_of, rate)
                       for base, rate in usd.items()]
        missing = sorted(set(CURRENCIES) - set(usd))
        if missing:
            log.info("currencies not in document", provider=reading.provider.name,
                     missing=missing)
    candidates.sort(key=lambda c: (c.as_of, c.provider, c.base))
    published: list[QuoteEvent] = []
    for candidate in candidates:
        references = comparable(candidate, candidates)
        references += await _stored_references(candidate, references, config, outlets.store)
        event = await _settle(candidate, references, settings[candidate.provider], config,
                              outlets, fetched_at)
        if event is not None:
            published.append(event)
    return published


async def _stored_references(candidate: Candidate, known: list[Candidate], config: RatesConfig,
                             store: LastRateStore) -> list[Candidate]:
    """Other providers' stored rates of the same currency and date, from earlier polls."""
    found: list[Candidate] = []
    seen = {c.provider for c in known} | {candidate.provider}
    for provider in config.providers:
        if provider.name in seen:
            continue
        last = await store.get(provider.name, candidate.base)
        if last is None:
            continue
        if last.as_of == candidate.as_of:
            found.append(Candidate(provider.name, candidate.base, last.as_of, last.rate))
        elif last.previous_as_of == candidate.as_of and last.previous_rate is not None:
            found.append(Candidate(provider.name, candidate.base, candidate.as_of,
                                   last.previous_rate))
    return found


async def _settle(candidate: Candidate, references: list[Candidate], provider: Provider,
                  config: RatesConfig, outlets: Outlets,
                  fetched_at: datetime) -> QuoteEvent | None:
    last = await outlets.store.get(candidate.provider, candidate.base)
    decision = decide(last, candidate.as_of, candidate.rate)
    if not decision.publish:
        log.debug("rate unchanged", provider=candidate.provider, base=candidate.base,
                  as_of=str(candidate.as_of))
        return None
    tolerance = config.crosscheck.tolerance_pct
    disagreeing = disagreements(candidate, references, tolerance)
    event = QuoteEvent(
        base=candidate.base, rate=candidate.rate, change_pct=decision.change_pct,
        previous_rate=decision.previous_rate, as_of=candidate.as_of,
        provider=candidate.provider, fetched_at=fetched_at,
        primary=config.primary.get(candidate.base) == candidate.provider,
        flags=[f"disagrees:{name}" for name in sorted(disagreeing)],
        stale_after=stale_after(candidate.as_of, provider.stale_after_days),
    )
    change = decision.change_pct
    if (change is not None and abs(change) > config.crosscheck.jump_pct
            and not confirmed(candidate, references, tolerance)):
        metrics.QUOTES.labels(candidate.provider, "quarantined").inc()
        await _quarantine(event, f"{candidate.base}/USD moved {change:.4f}% from "
                                 f"{decision.previous_rate} to {candidate.rate} on "
                                 f"{candidate.as_of}, beyond the {config.crosscheck.jump_pct}% "
                                 "bound, and no other provider confirms it", outlets)
        return None
    if disagreeing:
        log.warning("providers disagree", provider=candidate.provider, base=candidate.base,
                    as_of=str(candidate.as_of), rate=str(candidate.rate),
                    tolerance_pct=str(tolerance),
                    gaps_pct={name: f"{gap:.4f}" for name, gap in disagreeing.items()})
    await outlets.quotes.publish(event)
    metrics.QUOTES.labels(candidate.provider, "published").inc()
    # Remember the rate only once it is on the stream: a crash in between
    # re-publishes it next time (the indexer's _id makes that harmless).
    if decision.store:
        await outlets.store.put(candidate.provider, candidate.base, decision.store)
    log.info("quote published", event_id=str(event.event_id), provider=candidate.provider,
             base=candidate.base, rate=str(candidate.rate), as_of=str(candidate.as_of),
             flags=event.flags)
    return event


async def _quarantine(event: QuoteEvent, reason: str, outlets: Outlets) -> None:
    # The store keeps the last good rate, so tomorrow compares against it, not the jump.
    letter = DeadLetter(stream=outlets.quotes_stream, entry_id=event.idempotency_key,
                        payload=event.model_dump_json().encode(), error_class="RateJump",
                        error_message=reason, service=SERVICE, attempts=1)
    await outlets.quarantine.publish(letter)
    log.warning("quote quarantined", provider=event.provider, base=event.base,
                as_of=str(event.as_of), reason=reason)


async def poll_providers(providers: list[Provider], config: RatesConfig, outlets: Outlets,
                         client: httpx.AsyncClient, status: ProviderStatus) -> list[QuoteEvent]:
    """Read the providers at once; one that fails or times out does not hold up the others."""
    now = datetime.now(UTC)
    results = await asyncio.gather(*(read_provider(p, config, client, now) for p in providers),
                                   return_exceptions=True)
    readings: list[Reading] = []
    for provider, result in zip(providers, results, strict=True):
        if isinstance(result, FetchError | RatesError):
            log.error("rates poll failed", provider=provider.name, error=str(result),
                      error_class=type(result).__name__)
            status.failed(provider.name, str(result))
        elif isinstance(result, BaseException):
            raise result
        else:
            status.read(provider.name, result.rates.as_of)
            readings.append(result)
    return await publish_readings(readings, config, outlets, now)


async def backfill(providers: list[Provider], since: date, until: date, config: RatesConfig,
                   outlets: Outlets, client: httpx.AsyncClient) -> list[QuoteEvent]:
    """Load each day's rates from the providers that offer history, and publish them."""
    now = datetime.now(UTC)
    readings: dict[tuple[str, date], Reading] = {}
    for provider in providers:
        if provider.history_url is None and provider.peg is None:
            log.info("no history offered", provider=provider.name)
            continue
        for day in days(since, until):
            try:
                reading = await read_provider(provider, config, client, now, day)
            except (FetchError, RatesError) as exc:
                log.warning("history day failed", provider=provider.name, day=str(day),
                            error=str(exc))
                continue
            # Weekends and holidays answer with the last business day's document.
            readings.setdefault((provider.name, reading.rates.as_of), reading)
    return await publish_readings(list(readings.values()), config, outlets, now)


async def run_forever(config: RatesConfig, default_interval: float, outlets: Outlets,
                      client: httpx.AsyncClient, status: ProviderStatus) -> None:
    """Poll every provider on its own interval; those due together are polled together."""
    due = dict.fromkeys((p.name for p in config.providers), 0.0)
    while True:
        started = time.monotonic()
        ready = [p for p in config.providers if due[p.name] <= started]
        if ready:
            await poll_providers(ready, config, outlets, client, status)
        for provider in ready:
            due[provider.name] = started + (provider.interval or default_interval)
        await asyncio.sleep(max(0.0, min(due.values()) - time.monotonic()))
