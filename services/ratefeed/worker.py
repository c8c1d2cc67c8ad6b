"""The rate-feed work: read providers, normalise to X/USD, cross-check, publish what is new.

Per quote, in as-of order: the accepted rate and the held quotes of the same
provider and currency decide whether it is news, its change and whether it is a
jump (jumps.assess, which knows about gaps); a jump that no other provider
confirms is held and goes to the dead letters once, and is published with the
quotes held before it when the move is confirmed, repeated or released; a late
quote is judged against the provider's published quotes before and after it, and
one that is published makes the quote after it published again, compared with it;
a quote that another provider contradicts for the same date is published with a
`disagrees:<provider>` flag.

Log lines carry `provider` (and `base` while a quote is settled) from the
structlog context, bound once per provider poll, per document and per quote.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog
from opentelemetry import trace
from structlog.contextvars import bound_contextvars

from services.ratefeed import metrics
from services.ratefeed.asof import check_as_of, days, local_today, stale_after
from services.ratefeed.catalog import detect, parse_document
from services.ratefeed.config import Provider, RatesConfig
from services.ratefeed.crosscheck import Candidate, comparable, confirmed, disagreements
from services.ratefeed.jumps import (
    Held,
    JumpOutcome,
    JumpPolicy,
    Step,
    assess,
    follow_up,
    release,
)
from services.ratefeed.peg import pegged_rates
from services.ratefeed.providers import OfficialRates, RatesError
from services.ratefeed.rates import LastRate, usd_rates, within_bounds
from services.ratefeed.status import ProviderStatus
from services.ratefeed.store import LastRateStore
from shared.backoff import POLL_RETRY_FIRST, Backoff
from shared.clients import REDIS_AWAY
from shared.entries import entry_command
from shared.events import DeadLetter, QuoteEvent
from shared.fetch import FetchError
from shared.fetcher import PoliteFetcher
from shared.index import CURRENCIES
from shared.leases import Command, Fence
from shared.tracing import failing_short

log = structlog.get_logger(__name__)

# The most days a poll reads back from a provider's history to fill what it missed.
CATCH_UP_DAYS = 14
_tracer = trace.get_tracer(__name__)

SERVICE = "ratefeed"


@dataclass(frozen=True)
class Reading:
    provider: Provider
    rates: OfficialRates


def first_of_each_day(readings: Iterable[Reading]) -> list[Reading]:
    """One reading per provider and day, the first read: a poll's own document before
    the history's. A history that answers another day's document (a weekend's with
    Friday's, or every day's with today's) read one day twice, and both went out as
    versions of one quote fetched at the same moment: the index kept the one it took
    first, the feed remembered the other."""
    firsts: dict[tuple[str, date], Reading] = {}
    for reading in readings:
        firsts.setdefault((reading.provider.name, reading.rates.as_of), reading)
    return list(firsts.values())


@dataclass(frozen=True)
class Outlets:
    """Where quotes go, where quarantined ones go, the memory of the last rates, the rules."""

    deadletters_stream: str
    quotes_stream: str
    maxlen: int | None
    store: LastRateStore
    confirmations: int
    gap_after_days: int

    def policy(self, config: RatesConfig) -> JumpPolicy:
        return JumpPolicy(config.crosscheck.jump_pct, self.gap_after_days, self.confirmations)

    def under(self, lease: Fence) -> Outlets:
        """The same outlets, the rate memory written through `lease` (the poller's)."""
        return dataclasses.replace(self, store=self.store.under(lease))


async def read_location(
    location: str,
    provider: Provider | None,
    config: RatesConfig,
    fetcher: PoliteFetcher,
    now: datetime,
) -> Reading:
    """One document from a URL or path, of the given provider or of the one it is detected as."""
    content = (await fetcher.fetch(location)).content
    if provider is None:
        kind = detect(content)
        provider = next(
            (p for p in config.providers if p.kind == kind), None
        ) or Provider.model_validate({"name": kind, "kind": kind, "url": location})
    with bound_contextvars(provider=provider.name):
        # Off the event loop: a document of 2 MiB takes a second to read, and the loop
        # renews the lease and answers the health checks meanwhile.
        rates = await asyncio.to_thread(parse_document, provider, content)
        return _checked(provider, rates, now)


async def read_provider(
    provider: Provider,
    config: RatesConfig,
    fetcher: PoliteFetcher,
    now: datetime,
    day: date | None = None,
) -> Reading:
    """The provider's current rates, or with `day` its rates of that day (history)."""
    with failing_short(_tracer, "ratefeed read", attributes={"caravan.provider": provider.name}):
        return await _read_provider(provider, config, fetcher, now, day)


async def _read_provider(
    provider: Provider, config: RatesConfig, fetcher: PoliteFetcher, now: datetime, day: date | None
) -> Reading:
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
    return await read_location(location, provider, config, fetcher, now)


def _checked(provider: Provider, rates: OfficialRates, now: datetime) -> Reading:
    check_as_of(rates, local_today(provider.timezone, now), provider.max_lead_days)
    _left_out(provider.name, rates.problems)
    return Reading(provider, rates)


# A document of 2 MiB holds 200,000 entries: the first few left out are told, the rest
# counted (one line each was 50 MB of log a poll).
PROBLEMS_LOGGED = 20


def _left_out(provider: str, problems: Sequence[str]) -> None:
    for problem in problems[:PROBLEMS_LOGGED]:
        log.warning("rate entry left out", detail=problem)
    if len(problems) > PROBLEMS_LOGGED:
        log.warning("more rate entries left out", count=len(problems) - PROBLEMS_LOGGED)
    metrics.LEFT_OUT.labels(provider).inc(len(problems))


async def publish_readings(
    readings: list[Reading], config: RatesConfig, outlets: Outlets, fetched_at: datetime
) -> list[QuoteEvent]:
    """Publish every new quote of the readings, oldest as-of date first."""
    settings: dict[str, Provider] = {r.provider.name: r.provider for r in readings}
    candidates: list[Candidate] = []
    for reading in readings:
        with bound_contextvars(provider=reading.provider.name):
            candidates += _candidates(reading)
    candidates.sort(key=lambda c: (c.as_of, c.provider, c.base))
    published: list[QuoteEvent] = []
    for candidate in candidates:
        with bound_contextvars(provider=candidate.provider, base=candidate.base):
            references = comparable(candidate, candidates)
            references += await _stored_references(candidate, references, config, outlets.store)
            published += await _settle_candidate(
                candidate, references, settings[candidate.provider], config, outlets, fetched_at
            )
    return published


def _candidates(reading: Reading) -> list[Candidate]:
    """The reading's X/USD rates within bounds; what is left out is logged and counted."""
    try:
        usd, rejected = within_bounds(usd_rates(reading.rates, CURRENCIES))
    except RatesError as exc:
        log.error("rates unusable", error=str(exc))
        return []
    _left_out(reading.provider.name, rejected)
    missing = sorted(set(CURRENCIES) - set(usd))
    if missing:
        log.info("currencies not in document", missing=missing)
    return [
        Candidate(reading.provider.name, base, reading.rates.as_of, rate)
        for base, rate in usd.items()
    ]


async def _stored_references(
    candidate: Candidate, known: list[Candidate], config: RatesConfig, store: LastRateStore
) -> list[Candidate]:
    """Other providers' stored rates of the same currency and date, from earlier polls.

    Held quotes count too: two providers stating the same jump confirm each other.
    """
    found: list[Candidate] = []
    seen = {c.provider for c in known} | {candidate.provider}
    for provider in config.providers:
        if provider.name in seen:
            continue
        stored = [
            e.rate
            for e in await store.held(provider.name, candidate.base)
            if e.as_of == candidate.as_of
        ]
        last = await store.get(provider.name, candidate.base)
        if last is not None and last.as_of == candidate.as_of:
            stored.append(last.rate)
        elif (
            last is not None
            and last.previous_as_of == candidate.as_of
            and last.previous_rate is not None
        ):
            stored.append(last.previous_rate)
        found += [
            Candidate(provider.name, candidate.base, candidate.as_of, rate) for rate in stored
        ]
    return found


async def _settle_candidate(
    candidate: Candidate,
    references: list[Candidate],
    provider: Provider,
    config: RatesConfig,
    outlets: Outlets,
    fetched_at: datetime,
) -> list[QuoteEvent]:
    store = outlets.store
    last = _believable(await store.get(candidate.provider, candidate.base), provider, fetched_at)
    held = await store.held(candidate.provider, candidate.base)
    before, same, after = await store.published(candidate.provider, candidate.base, candidate.as_of)
    late = last is not None and candidate.as_of < last.as_of
    if same is not None and same.rate == candidate.rate:
        # The day as published: a correction of it still held (a spike) is withdrawn, or
        # a release would publish it and other providers would read it as a reference.
        kept = [e for e in held if e.as_of != candidate.as_of]
        if len(kept) < len(held):
            await store.commit(store.held_commands(candidate.provider, candidate.base, kept))
            log.info("held correction withdrawn", as_of=str(candidate.as_of))
            held = kept
        if late:
            return []  # a late document read before: published already
    tolerance = config.crosscheck.tolerance_pct
    disagreeing = disagreements(candidate, references, tolerance)
    outcome = assess(
        last,
        tuple(Held(e.as_of, e.rate) for e in held),
        candidate.as_of,
        candidate.rate,
        confirmed(candidate, references, tolerance),
        outlets.policy(config),
        _quote(before),
        _quote(after),
    )
    fresh = QuoteEvent(
        base=candidate.base,
        rate=candidate.rate,
        as_of=candidate.as_of,
        provider=candidate.provider,
        fetched_at=fetched_at,
        primary=config.primary.get(candidate.base) == candidate.provider,
        flags=[f"disagrees:{name}" for name in sorted(disagreeing)],
        stale_after=stale_after(candidate.as_of, provider.stale_after_days),
    )
    reason = None
    if outcome.quarantine is not None and outcome.held_step is not None:
        # Kept as the dead letter carries it, so a release publishes that very event.
        fresh = _as_step(fresh, outcome.held_step)
        reason = f"{candidate.base}/USD {outcome.quarantine}"
    elif not outcome.publish and outcome.held is None:
        log.debug("rate unchanged", as_of=str(candidate.as_of))
    if disagreeing and outcome.publish:
        log.warning(
            "providers disagree",
            as_of=str(candidate.as_of),
            rate=str(candidate.rate),
            tolerance_pct=str(tolerance),
            gaps_pct={name: f"{gap:.4f}" for name, gap in disagreeing.items()},
        )
    letters = [_letter_command(fresh, reason, outlets)] if reason is not None else []
    published = await _apply(
        outcome, [*held, fresh], candidate.provider, candidate.base, outlets, "published", letters
    )
    if reason is not None:
        metrics.QUOTES.labels(candidate.provider, "quarantined").inc()
        log.warning("quote quarantined", as_of=str(candidate.as_of), reason=reason)
    if late and last is not None and after is not None and published:
        published += await _rederive_after(published[-1], after, last, config, outlets)
    return published


def _believable(last: LastRate | None, provider: Provider, now: datetime) -> LastRate | None:
    """The stored rate, unless dated a week past any as-of date the provider can mean
    (as _checked refuses): one restored, set by hand or from a clock far ahead made
    every new quote late, published unjudged against it, for good. The next rate stored
    replaces it. The week: a replica whose clock is behind at the provider's midnight,
    or a lowered max_lead_days, must not ignore a rate stored rightly (the next quote
    would go out unjudged, and the held ones with it)."""
    latest = local_today(provider.timezone, now) + timedelta(days=provider.max_lead_days + 7)
    if last is not None and last.as_of > latest:
        log.warning("stored rate ignored: dated after any as-of date", as_of=last.as_of.isoformat())
        return None
    return last


def _quote(event: QuoteEvent | None) -> Held | None:
    """A published quote's date and rate, as the jump rules read a neighbour."""
    return Held(event.as_of, event.rate) if event else None


async def _rederive_after(
    late: QuoteEvent, after: QuoteEvent, last: LastRate, config: RatesConfig, outlets: Outlets
) -> list[QuoteEvent]:
    """Publish the quote after a late one again, compared with it: a new version of the
    same event (same idempotency key, a later fetched_at, so a higher version)."""
    outcome = follow_up(
        last,
        Held(late.as_of, late.rate),
        Held(after.as_of, after.rate),
        Held(after.previous_as_of, after.previous_rate)
        if after.previous_as_of is not None and after.previous_rate is not None
        else None,
        tuple(after.flags),
        outlets.policy(config),
    )
    if not outcome.publish:
        return []
    # Strictly later than the version it replaces, even within one poll's fetched_at.
    version_time = max(late.fetched_at, after.fetched_at + timedelta(milliseconds=1))
    again = after.model_copy(update={"fetched_at": version_time})
    log.info(
        "quote re-derived after a late one",
        as_of=str(after.as_of),
        previous_as_of=str(late.as_of),
    )
    return await _apply(outcome, [again], after.provider, after.base, outlets, "rederived")


async def _apply(
    outcome: JumpOutcome,
    known: list[QuoteEvent],
    provider: str,
    base: str,
    outlets: Outlets,
    outcome_label: str,
    letters: Sequence[Command] = (),
) -> list[QuoteEvent]:
    """Publish the outcome's quotes in as-of order and remember what it says, at once,
    with the dead `letters` of the quotes it holds.

    One atomic write, through the poller's lease: the stream entries and the store's
    memory of them are kept or lost together. A Redis failover can lose a write the
    old primary acknowledged; had the entry been lost and the memory kept, the quote
    would never be published again (found by `make chaos`). Lost together, the next
    poll publishes it again, or the catch-up does once the bank has moved on. So with
    a held quote's letter: written apart, a letter kept and its hold lost was written
    again by the next poll, and a hold kept without its letter left nothing to release.
    The letters go first: a script stopped by a refused command keeps what it wrote
    before it, and a hold written before a refused letter (its stream of another type)
    was never lettered again.
    """
    store = outlets.store
    events = {e.as_of: e for e in known}
    published = [_as_step(events[step.as_of], step) for step in outcome.publish]
    commands = [*letters]
    commands += [entry_command(outlets.quotes_stream, e, outlets.maxlen) for e in published]
    commands += store.published_commands(published)
    if outcome.baseline is not None:
        commands += store.put_commands(provider, base, outcome.baseline)
    if outcome.held is not None:
        kept = {h.as_of for h in outcome.held}
        commands += store.held_commands(provider, base, [events[d] for d in sorted(kept)])
    if commands:
        await store.commit(commands)
    for event in published:
        metrics.QUOTES.labels(provider, outcome_label).inc()
        log.info(
            "quote published",
            event_id=str(event.event_id),
            rate=str(event.rate),
            as_of=str(event.as_of),
            flags=event.flags,
        )
    return published


def _as_step(event: QuoteEvent, step: Step) -> QuoteEvent:
    """The event as the step publishes it: compared with the step's previous quote."""
    own = [flag for flag in event.flags if flag.startswith("disagrees:")]
    return QuoteEvent.model_validate(
        {
            **event.model_dump(exclude={"idempotency_key", "version"}),
            "change_pct": step.change_pct,
            "previous_rate": step.previous_rate,
            "previous_as_of": step.previous_as_of,
            "flags": [*step.flags, *own],
        }
    )


def _letter_command(event: QuoteEvent, reason: str, outlets: Outlets) -> Command:
    # Held, not remembered as the baseline: tomorrow compares against the last
    # accepted rate, and the held ones are published once the move is accepted.
    letter = DeadLetter(
        stream=outlets.quotes_stream,
        entry_id=event.idempotency_key,
        payload=event.model_dump_json().encode(),
        error_class="RateJump",
        error_message=reason,
        service=SERVICE,
        attempts=1,
    )
    return entry_command(outlets.deadletters_stream, letter, outlets.maxlen)


def parse_quote_key(key: str) -> tuple[str, date, str]:
    """`KZT-USD-2015-08-20-nbk` (a dead letter's entry_id): currency, as-of date, provider."""
    parts = key.split("-", 5)
    try:
        base, _quote, year, month, day, provider = parts
        return base, date(int(year), int(month), int(day)), provider
    except ValueError as exc:
        msg = f"not a quote key like KZT-USD-2015-08-20-nbk: {key!r}"
        raise RatesError(msg) from exc


async def release_held(key: str, config: RatesConfig, outlets: Outlets) -> list[QuoteEvent]:
    """An operator accepts a held quote: it and the ones held before it are published."""
    base, as_of, provider = parse_quote_key(key)
    with bound_contextvars(provider=provider, base=base):
        return await _release(base, as_of, provider, key, config, outlets)


async def _release(
    base: str, as_of: date, provider: str, key: str, config: RatesConfig, outlets: Outlets
) -> list[QuoteEvent]:
    store = outlets.store
    held = await store.held(provider, base)
    last = await store.get(provider, base)
    before, _same, after = await store.published(provider, base, as_of)
    outcome = release(
        last,
        tuple(Held(e.as_of, e.rate) for e in held),
        as_of,
        outlets.policy(config),
        _quote(before),
    )
    if not outcome.publish:
        msg = (
            f"{key} is not held: it was published, or the provider's rate came back "
            "within the bound and the hold ended"
        )
        raise RatesError(msg)
    released = await _apply(outcome, held, provider, base, outlets, "released")
    if last is not None and as_of < last.as_of and after is not None:
        # A late quote released, as one published at once: the quote after it follows.
        released += await _rederive_after(released[-1], after, last, config, outlets)
    return released


async def poll_providers(
    providers: list[Provider],
    config: RatesConfig,
    outlets: Outlets,
    fetcher: PoliteFetcher,
    status: ProviderStatus,
    deadline: float,
) -> list[QuoteEvent]:
    """Read the providers at once, each with the days it missed; one that fails, or is not
    done within `deadline` seconds, does not hold up the others."""
    now = datetime.now(UTC)
    # Each provider's poll is a task of its own, so its binding stays with it.
    results = await asyncio.gather(
        *(
            _poll_within(p, config, outlets.store, fetcher, status, now, deadline)
            for p in providers
        ),
        return_exceptions=True,
    )
    readings: list[Reading] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        readings += result
    return await publish_readings(first_of_each_day(readings), config, outlets, now)


async def _poll_within(
    provider: Provider,
    config: RatesConfig,
    store: LastRateStore,
    fetcher: PoliteFetcher,
    status: ProviderStatus,
    now: datetime,
    deadline: float,
) -> list[Reading]:
    """One provider's reading and the days it missed, as far as `deadline` allows: the
    quotes are published once every provider is done, and a source answering a byte at a
    time held all of them for minutes a poll (hours, with days to catch up on)."""
    readings: list[Reading] = []
    within = asyncio.timeout(deadline)
    try:
        async with within:
            reading = await _poll_provider(provider, config, fetcher, status, now)
            if reading is None:
                return readings
            readings.append(reading)
            # A failure here costs the missed days not read yet, never what is in hand.
            try:
                async for missed in _catch_up(reading, config, store, fetcher, now):
                    readings.append(missed)
            except REDIS_AWAY:
                raise  # the lead waits for Redis and starts the work again
            except Exception as exc:
                with bound_contextvars(provider=provider.name):
                    log.warning("missed days not caught up", error=f"{type(exc).__name__}: {exc}")
    except TimeoutError:
        if not within.expired():
            raise  # Redis's own timeout (an OSError, so REDIS_AWAY), not the deadline
        with bound_contextvars(provider=provider.name):
            late = f"not done within {deadline:g}s"
            if readings:
                log.warning("missed days not caught up", error=late, caught_up=len(readings) - 1)
            else:
                log.error("rates poll failed", error=late, error_class="TimeoutError")
                status.failed(provider.name, TimeoutError(late))
    return readings


async def _catch_up(
    reading: Reading,
    config: RatesConfig,
    store: LastRateStore,
    fetcher: PoliteFetcher,
    now: datetime,
) -> AsyncIterator[Reading]:
    """The days a provider published between its last quote the feed remembers and this
    reading, read from its history (when it offers one, as a peg does): what an outage of
    the feed, or a Redis failover that lost its latest quotes and its memory of them, made
    it miss. At most CATCH_UP_DAYS; a longer outage is `caravan ratefeed backfill`'s. Each
    day as it is read: a poll cut short keeps the days read before."""
    provider = reading.provider
    if provider.history_url is None and provider.peg is None:
        return
    try:
        listed = usd_rates(reading.rates, CURRENCIES)
    except RatesError:
        return
    # Only the currencies this document lists: one the provider dropped is not missed.
    remembered = [
        last.as_of for base in listed if (last := await store.get(provider.name, base)) is not None
    ]
    if not remembered:
        return  # a first poll: nothing was missed
    since = max(min(remembered) + timedelta(days=1), reading.rates.as_of - timedelta(CATCH_UP_DAYS))
    until = reading.rates.as_of - timedelta(days=1)
    if since > until:
        return
    with bound_contextvars(provider=provider.name):
        log.info("catching up on missed days", since=str(since), until=str(until))
        async for missed in _history(provider, since, until, config, fetcher, now):
            yield missed


async def _poll_provider(
    provider: Provider,
    config: RatesConfig,
    fetcher: PoliteFetcher,
    status: ProviderStatus,
    now: datetime,
) -> Reading | None:
    """One provider's part of a poll, recorded in `status`: None when it failed."""
    with bound_contextvars(provider=provider.name):
        try:
            reading = await read_provider(provider, config, fetcher, now)
        except (FetchError, RatesError) as exc:
            log.error("rates poll failed", error=str(exc), error_class=type(exc).__name__)
            status.failed(provider.name, exc)
            return None
        except Exception as exc:
            # Whatever one provider's document makes a parser raise (RecursionError
            # from a deep nest, MemoryError, a bug) is that provider's failure: the
            # others go on, and the process does not exit to read it again on restart.
            log.exception("rates poll crashed", error=str(exc), error_class=type(exc).__name__)
            status.failed(provider.name, exc)
            return None
        rejected: list[str] = []
        try:
            usable, rejected = within_bounds(usd_rates(reading.rates, CURRENCIES))
        except RatesError as exc:
            usable, error = {}, exc
        else:
            error = RatesError(f"no rate of {', '.join(CURRENCIES)} within bounds")
        if not usable:
            _left_out(provider.name, rejected)  # why each rate was, told as any poll tells
            # Read, but nothing to publish: not a provider to show as healthy in /readyz.
            log.error("rates poll failed", error=str(error), error_class="RatesError")
            status.failed(provider.name, error)
            return None
    status.read(provider.name, reading.rates.as_of)
    return reading


async def backfill(
    providers: list[Provider],
    since: date,
    until: date,
    config: RatesConfig,
    outlets: Outlets,
    fetcher: PoliteFetcher,
) -> list[QuoteEvent]:
    """Load each day's rates from the providers that offer history, and publish them."""
    now = datetime.now(UTC)
    readings: list[Reading] = []
    for provider in providers:
        with bound_contextvars(provider=provider.name):
            readings += [r async for r in _history(provider, since, until, config, fetcher, now)]
    return await publish_readings(first_of_each_day(readings), config, outlets, now)


async def _history(
    provider: Provider,
    since: date,
    until: date,
    config: RatesConfig,
    fetcher: PoliteFetcher,
    now: datetime,
) -> AsyncIterator[Reading]:
    """The provider's reading of each day it could be read for, as each is read."""
    if provider.history_url is None and provider.peg is None:
        log.info("no history offered")
        return
    for day in days(since, until):
        try:
            reading = await read_provider(provider, config, fetcher, now, day)
        except Exception as exc:  # one day's document, whatever it raises, is that day's loss
            log.warning(
                "history day failed", day=str(day), error=str(exc), error_class=type(exc).__name__
            )
            continue
        yield reading


async def run_forever(
    config: RatesConfig,
    default_interval: float,
    outlets: Outlets,
    fetcher: PoliteFetcher,
    status: ProviderStatus,
    deadline: float,
) -> None:
    """Poll every provider on its own interval; those due together are polled together."""
    due = dict.fromkeys((p.name for p in config.providers), 0.0)
    rng = random.Random()  # noqa: S311 - jitter, not cryptography
    while True:
        started = time.monotonic()
        ready = [p for p in config.providers if due[p.name] <= started]
        if ready:
            await poll_providers(ready, config, outlets, fetcher, status, deadline)
        for provider in ready:
            interval = provider.interval or default_interval
            failures = status.failures(provider.name)
            # A failed provider is tried again sooner, backing off up to its interval.
            due[provider.name] = started + (
                Backoff(POLL_RETRY_FIRST, interval, rng).delay(failures) if failures else interval
            )
        await asyncio.sleep(max(0.0, min(due.values()) - time.monotonic()))
