"""When each source is polled: on its interval until asked to stop, a failed poll
retried with backoff, and whatever goes wrong in a poll kept to that source."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import structlog
from redis.exceptions import RedisError

from services.ingest import metrics
from services.ingest.deadline import pausable
from services.ingest.results import PollResult
from services.ingest.sources import Source
from services.ingest.worker import Ingestor
from shared.backoff import POLL_RETRY_FIRST, Backoff
from shared.fetch import FetchError
from shared.leases import LeaseLost, WorkShare

log = structlog.get_logger(__name__)

# FeedError, SitemapError and NoArticleError are ValueErrors, and so is pydantic's
# ValidationError: what a source's content or server does wrong, or Redis being
# away, fails that poll with a one-line error. Anything else is a bug, and fails
# that poll too (poll_safely). A lease lost to another replica mid-poll ends it
# without being the source's failure.
_LONGEST_REQUESTED_INTERVAL = 86400.0


class PollTooLong(Exception):
    """A poll cut at its deadline: what it published stays, the rest waits for the next."""


EXPECTED_ERRORS = (FetchError, ValueError, RedisError, PollTooLong)


async def poll_safely(ingestor: Ingestor, source: Source) -> PollResult:
    """Like Ingestor.poll, but whatever goes wrong is logged, counted and reported,
    never raised: one source's data, or a bug it brings out, stops that source's
    poll only, never the others or the process."""
    with structlog.contextvars.bound_contextvars(source=source.name):
        try:
            result = await _poll_within(ingestor, source)
        except LeaseLost as exc:
            # Not the source's failure: no error time, which the failing-source alert
            # compares with the successes of the replica that holds the source now.
            log.warning("poll ended: another replica holds the source", error=str(exc))
            metrics.POLLS.labels(source.name, "lease_lost").inc()
            return PollResult(source.name, error=f"{type(exc).__name__}: {exc}")
        except EXPECTED_ERRORS as exc:
            log.error("source failed", error=str(exc), error_class=type(exc).__name__)
            return _failed(source, exc)
        except Exception as exc:
            # Not an error a source is expected to cause: the traceback is for a bug report.
            log.exception("source poll crashed", error=str(exc), error_class=type(exc).__name__)
            return _failed(source, exc)
    metrics.POLLS.labels(source.name, "ok").inc()
    metrics.LAST_SUCCESS.labels(source.name).set(time.time())
    return result


async def _poll_within(ingestor: Ingestor, source: Source) -> PollResult:
    """One poll, cut at the ingestor's deadline for the source (PollTooLong); what it
    waits for the indexer (deadline.paused) does not count."""
    deadline = ingestor.poll_deadline(source)
    within = asyncio.timeout(deadline)
    try:
        async with within:
            with pausable(within):
                return await ingestor.poll(source)
    except TimeoutError as exc:
        if not within.expired():
            raise
        raise PollTooLong(f"poll not done within {deadline:g}s") from exc


def _failed(source: Source, exc: Exception) -> PollResult:
    metrics.POLLS.labels(source.name, "failed").inc()
    metrics.POLL_ERRORS.labels(source.name, type(exc).__name__).inc()
    metrics.LAST_ERROR.labels(source.name).set(time.time())
    return PollResult(source.name, error=f"{type(exc).__name__}: {exc}")


def next_poll_in(configured: float, requested: float | None) -> float:
    """A feed may ask for slower polling than configured, never for faster; and no
    slower than daily, so a feed claiming a week-long ttl is not lost for a week."""
    if requested is None:
        return configured
    return max(configured, min(requested, _LONGEST_REQUESTED_INTERVAL))


async def run_source_forever(
    ingestor: Ingestor,
    source: Source,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
    share: WorkShare | None = None,
    stopping: asyncio.Event | None = None,
) -> None:
    """Poll one source on its interval until `stopping` is set; a failed poll is
    retried with backoff, and whatever it raised stays with this source
    (poll_safely). With `share`, only while this replica holds the source's lease,
    and the next poll is due when the schedule kept with the lease says, whoever
    holds it then. On stop, the poll in hand is finished first."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    requested: float | None = None
    failures = 0
    with structlog.contextvars.bound_contextvars(source=source.name):
        # Asked, not only cancelled: a cancellation swallowed somewhere inside a poll
        # (a library that catches it) would otherwise leave the source polling after
        # its lease keeper stopped, and the process not exiting.
        while stopping is None or not stopping.is_set():
            polling = ingestor
            if share is not None:
                lease = await share.turn(source.name, stopping)
                if lease is None:
                    return  # asked to stop while waiting for the turn
                polling = ingestor.under(lease)
            result = await poll_safely(polling, source)
            if result.error is None:
                failures = 0
                if result.kind is not None:  # a not-modified poll read nothing new
                    requested = result.requested_interval
                wait = next_poll_in(source.interval, requested)
            else:
                failures += 1
                wait = Backoff(POLL_RETRY_FIRST, source.interval, rng).delay(failures)
                log.info("source poll will be retried", failures=failures, wait=round(wait, 1))
            if share is not None:
                await share.done(source.name, wait)
                continue
            await sleep(wait)
