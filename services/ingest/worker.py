"""The Ingestor: one poll of a source. Fetch it, find its articles, read each
article's page, publish what is new or changed (schedule.py polls it again).

A source is a feed, a sitemap (or sitemap index), a listing page, or one
article page; which one is read from the document itself unless forced.
What was published, and the HTTP validators of what was fetched, live in
Redis (state.py), so a restarted ingest neither republishes unchanged
articles nor downloads unchanged documents again.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

import structlog
from opentelemetry import trace

from services.ingest import metrics
from services.ingest.articles import Lead, lead_event, on_site, page_event
from services.ingest.backpressure import Backpressure
from services.ingest.charset import decode, xml_as_utf8
from services.ingest.dates import parse_date
from services.ingest.deadline import paused
from services.ingest.extract import extract_article
from services.ingest.feeds import parse_feed
from services.ingest.kinds import Kind, document_kind
from services.ingest.listing import MAX_FEEDS, page_kind, read_listing
from services.ingest.results import PollResult, first_of_each
from services.ingest.sitemap_walk import SitemapWalk, dated_since, read_sitemap
from services.ingest.sitemaps import (
    ChildVisit,
    SitemapEntry,
    SitemapError,
    plan_children,
    settled,
)
from services.ingest.sources import Source
from services.ingest.state import IngestState, Novelty, Page, Record, superseded
from services.ingest.urls import canonicalize_url
from shared.entries import entry_command, payload_bytes
from shared.events import MAX_EVENT_BYTES, ArticleEvent, article_key
from shared.fetch import FetchError
from shared.fetcher import Fetched, HostDeferred, PoliteFetcher, Refused
from shared.leases import Fence
from shared.sandbox import ParseFailed, Sandbox, parses_of
from shared.tracing import failing_short

log = structlog.get_logger(__name__)
_tracer = trace.get_tracer(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ArticleStream:
    """Where article events go: the stream, and the cap it is trimmed to."""

    name: str
    maxlen: int | None = None


class Ingestor:
    def __init__(
        self,
        stream: ArticleStream,
        fetcher: PoliteFetcher,
        state: IngestState,
        sandbox: Sandbox,
        backpressure: Backpressure | None = None,
        *,
        sitemap_fetches: int = 50,
        articles_in_flight: int = 1,
    ) -> None:
        self._stream = stream
        self._fetcher = fetcher
        self._sandbox = sandbox  # where pages are parsed: bounded, off the event loop
        self._state = state
        self._backpressure = backpressure
        self._sitemap_fetches = sitemap_fetches  # child sitemaps fetched per poll at most
        # Articles of one document read at once (fetch, parse, publish): a poll holds
        # at most this many pages, however long its feed, sitemap or listing.
        self._articles_in_flight = articles_in_flight

    def poll_deadline(self, source: Source) -> float:
        """Seconds a scheduled poll of `source` may take: its interval, when its next
        poll is due anyway (hosts that answer slowly held a source, and its lease, for
        hours), but never less than one fetch may take."""
        return max(source.interval, self._fetcher.deadline)

    def under(self, lease: Fence) -> Ingestor:
        """The same ingestor, its state written through `lease` (a source's)."""
        fenced = copy.copy(self)
        fenced._state = self._state.under(lease)
        return fenced

    async def poll(
        self, source: Source, kind: Kind | None = None, since: datetime | None = None
    ) -> PollResult:
        """Read a source once and publish its new and changed articles.

        Raises FetchError, FeedError or SitemapError when the source itself
        cannot be read; a bad article is counted as failed and logged.
        `since` keeps only sitemap entries dated on or after it (backfill).
        """
        with (
            structlog.contextvars.bound_contextvars(source=source.name),
            parses_of(source.name),
            failing_short(
                _tracer,
                "ingest poll",
                attributes={"caravan.source": source.name, "url.full": source.url},
            ),
        ):
            return await self._poll(source, kind, since)

    async def _poll(self, source: Source, kind: Kind | None, since: datetime | None) -> PollResult:
        result = PollResult(source.name)
        fetched = await self._fetch_conditionally(source.url, source=source.name)
        if fetched.not_modified:
            result.not_modified = True
            log.info("source not modified since last poll")
            return result
        if kind is None:
            kind = source.kind or await self._kind(fetched)
        result.kind = kind
        complete = True
        if kind == "feed":
            await self._feed(source, fetched, result)
        elif kind == "sitemap":
            walk = SitemapWalk(since, datetime.now(UTC), self._sitemap_fetches)
            complete = await self._sitemap(
                source, source.url, fetched, result, source.sitemap_depth, walk
            )
        elif kind == "listing":
            await self._listing(source, fetched, result)
        else:
            await self._lead(source, Lead(url=fetched.url), result, page=fetched)
        if complete:
            # Not after a partial read of a sitemap index: a 304 for it next
            # time would stop the poll before it continued with the children.
            await self._state.remember_validators(source.url, fetched.validators, source.name)
        log.info(
            "source polled",
            kind=kind,
            published=result.published,
            new=result.new,
            updated=result.updated,
            unchanged=result.unchanged,
            failed=result.failed,
            left_out=dict(result.left_out),
            **(result.sitemaps if kind == "sitemap" else {}),
        )
        return result

    async def _fetch_conditionally(
        self, url: str, *, conditional: bool = True, source: str | None = None
    ) -> Fetched:
        """Fetch `url`, asking only for a change since the validators last kept for it:
        a `source`'s own document's, or an article page's without one."""
        web = url.startswith(("http://", "https://"))
        validators = await self._state.validators(url, source) if conditional and web else None
        try:
            fetched = await self._fetcher.fetch(url, validators)
        except Refused:
            metrics.FETCHES.labels("refused").inc()
            raise
        except HostDeferred:  # the host asked for a pause: not a failure of its own
            metrics.FETCHES.labels("deferred").inc()
            raise
        except FetchError:
            metrics.FETCHES.labels("failed").inc()
            raise
        metrics.FETCHES.labels("not_modified" if fetched.not_modified else "ok").inc()
        return fetched

    async def _kind(self, fetched: Fetched) -> Kind:
        found = document_kind(fetched.content)
        if found != "html":
            return found
        html = decode(fetched.content, fetched.content_type)[0]
        return await self._sandbox.run(page_kind, html, fetched.url)

    async def _feed(self, source: Source, fetched: Fetched, result: PollResult) -> None:
        now = datetime.now(UTC)
        parsed = await self._sandbox.run(
            parse_feed,
            xml_as_utf8(fetched.content, fetched.content_type),
            source,
            now,
            result.room(source.max_items),
        )
        if parsed.warning:
            log.warning("feed not well-formed, read what could be recovered", detail=parsed.warning)
        for skipped in parsed.skipped:
            log.warning("feed item skipped", position=skipped.position, reason=skipped.reason)
        if parsed.unusable > len(parsed.skipped):
            log.warning("more feed items skipped", count=parsed.unusable - len(parsed.skipped))
        metrics.ITEMS.labels(source.name, "skipped").inc(parsed.unusable)
        result.leave_out("unusable", parsed.unusable)
        # The same article twice in one feed is published once, as it first appears.
        result.leave_out("duplicate", parsed.repeats)
        result.leave_out("limit", parsed.beyond)
        result.requested_interval = parsed.requested_interval
        # A feed read from a file is a snapshot, typically offline: its items are
        # published from the feed's own fields, their pages are not fetched.
        from_web = fetched.url.startswith(("http://", "https://"))

        async def read(item: tuple[ArticleEvent, str]) -> None:
            event, link = item
            # An item whose link is shared with other items (keyed by guid) has
            # no page of its own: the link is the site's home page.
            own_page = from_web and "#" not in event.canonical_url
            await self._lead(
                source, Lead.from_event(event, link), result, fallback=event, fetch_page=own_page
            )

        await read_all(
            list(zip(parsed.events, parsed.links, strict=True)), read, self._articles_in_flight
        )

    async def _sitemap(
        self,
        source: Source,
        location: str,
        fetched: Fetched,
        result: PollResult,
        depth: int,
        walk: SitemapWalk,
    ) -> bool:
        """Read a sitemap, or a sitemap index and (within the walk's budget) its
        children; True when it was read in full: every entry looked at, every
        child read in full or unchanged."""
        selection = walk.selection(source, result.room(source.max_items))
        reading = await self._sandbox.run(read_sitemap, fetched.content, selection)
        complete = True
        if reading.sitemap.children:
            complete = await self._children(
                source, location, reading.sitemap.children, result, depth, walk
            )
        result.left_out.update(reading.left_out)

        async def read(entry: SitemapEntry) -> None:
            lead = Lead(
                url=entry.url,
                title=entry.news_title or "",
                published_at=parse_date(entry.date, source.zone, walk.now),
                language=entry.news_language,
                tags=entry.keywords,
            )
            await self._lead(source, lead, result)

        await read_all(reading.sitemap.entries, read, self._articles_in_flight)
        return complete and reading.whole

    async def _children(
        self,
        source: Source,
        index_url: str,
        children: list[SitemapEntry],
        result: PollResult,
        depth: int,
        walk: SitemapWalk,
    ) -> bool:
        """The children of an index due in this poll; True when every child is
        settled: a later poll, finding the index as it is, would fetch none of them."""
        if depth <= 0:  # as deep as configured: all there is to read here is read
            log.info("sitemap index deeper than configured, not followed", sitemap=index_url)
            return True
        listed = dated_since(children, walk.since)  # moments read where it was parsed
        visits = await self._state.recall_sitemap_children(index_url, {c.url for c in children})
        plan = plan_children(
            listed, visits, budget=walk.budget, now=walk.started, interval=source.interval
        )
        result.sitemaps_unchanged += plan.unchanged + plan.resting
        deferred = plan.deferred
        complete = len(listed) == len(children) and plan.resting == 0
        for position, child in enumerate(plan.fetch):
            # A nested index may have spent the budget meanwhile.
            if walk.budget <= 0 or result.full(source.max_items):
                deferred += len(plan.fetch) - position
                break
            walk.budget -= 1
            visit = await self._child(source, child, visits.get(child.url), result, depth, walk)
            await self._state.remember_sitemap_child(index_url, child.url, visit)
            complete = complete and settled(child, visit)
        result.sitemaps_deferred += deferred
        if deferred:
            log.info(
                "children of the sitemap index left for a later poll",
                sitemap=index_url,
                deferred=deferred,
                fetch_budget=self._sitemap_fetches,
            )
        return complete and deferred == 0

    async def _child(
        self,
        source: Source,
        child: SitemapEntry,
        previous: ChildVisit | None,
        result: PollResult,
        depth: int,
        walk: SitemapWalk,
    ) -> ChildVisit:
        """Fetch and read one child sitemap; what to remember of the visit."""
        try:
            document = await self._fetch_conditionally(child.url, source=source.name)
            if document.not_modified:  # its validators are kept only once read in full
                quiet = previous.quiet + 1 if previous else 1
                return ChildVisit(walk.started, child.lastmod, quiet)
            complete = await self._sitemap(source, child.url, document, result, depth - 1, walk)
        # ParseFailed: the sandbox's time or memory limit; one child's, not the index's.
        except (FetchError, SitemapError, ParseFailed) as exc:
            log.warning("child sitemap failed", sitemap=child.url, error=str(exc))
            return ChildVisit(walk.started)
        result.sitemaps_read += 1
        if not complete:
            return ChildVisit(walk.started)
        await self._state.remember_validators(child.url, document.validators, source.name)
        return ChildVisit(walk.started, child.lastmod)

    async def _listing(self, source: Source, fetched: Fetched, result: PollResult) -> None:
        page: Fetched | None = fetched
        seen_pages = {fetched.url}
        leads: list[tuple[str, Lead]] = []  # by canonical URL, made in the sandbox
        for number in range(1, source.max_pages + 1):
            if page is None:
                break
            listing = await self._sandbox.run(
                read_listing, decode(page.content, page.content_type)[0], page.url
            )
            if listing is None:
                break
            # As many in all as one page may name: pages are the site's to multiply.
            result.feeds = list(dict.fromkeys([*result.feeds, *listing.feeds]))[:MAX_FEEDS]
            leads.extend(
                (link.key, Lead(url=link.url, title=link.title, summary=link.excerpt))
                for link in listing.links
            )
            log.info(
                "listing page read",
                page=number,
                links=len(listing.links),
                next_page=listing.next_page,
            )
            page = None
            if (
                listing.next_page
                and listing.next_page not in seen_pages
                and number < source.max_pages
            ):
                seen_pages.add(listing.next_page)
                try:
                    page = await self._fetcher.fetch(listing.next_page)
                except FetchError as exc:
                    log.warning("next listing page failed", url=listing.next_page, error=str(exc))
        if result.feeds:
            log.info("listing advertises feeds", feeds=result.feeds)
        # Pages overlap (a headline moves to page 2 between two requests).
        firsts, repeats = first_of_each(leads, lambda keyed: keyed[0])
        unique = [lead for _, lead in firsts]
        result.leave_out("duplicate", repeats)

        async def read(lead: Lead) -> None:
            await self._lead(source, lead, result)

        await read_all(
            result.within_limit(unique, source.max_items), read, self._articles_in_flight
        )

    async def _lead(
        self,
        source: Source,
        lead: Lead,
        result: PollResult,
        *,
        fallback: ArticleEvent | None = None,
        fetch_page: bool = True,
        page: Fetched | None = None,
    ) -> None:
        """One article: skip it when nothing about it changed, else read and publish it."""
        # The article's own span: its page fetch and the publish (whose context
        # the event carries to the indexer) are its children.
        with failing_short(_tracer, "ingest article", attributes={"url.full": lead.url}):
            await self._article(source, lead, result, fallback, fetch_page, page)

    async def _article(
        self,
        source: Source,
        lead: Lead,
        result: PollResult,
        fallback: ArticleEvent | None,
        fetch_page: bool,
        page: Fetched | None,
    ) -> None:
        key = fallback.idempotency_key if fallback else _lead_key(lead)
        fingerprint = fallback.content_hash if fallback else _lead_fingerprint(lead)
        record = await self._state.record(key)
        if record and record.lead == fingerprint and page is None:
            # What pointed here is as it was: the page is not fetched again.
            await self._state.touch(key)
            self._count(source, result, Novelty.UNCHANGED)
            return
        try:
            event, page_read, read = await self._event(
                source, lead, fallback, page, fetch_page=fetch_page, conditional=record is not None
            )
        except ValueError as exc:  # NoArticleError, or pydantic refusing the event
            log.warning(
                "article failed", url=lead.url, error=str(exc), error_class=type(exc).__name__
            )
            self._count(source, result, "failed")
            return
        if event is None:  # 304, asked only about a page already published: as it was
            if record is not None:
                await self._state.remember(key, replace(record, lead=fingerprint))
            self._count(source, result, Novelty.UNCHANGED)
            return
        novelty = (
            Novelty.NEW
            if record is None
            else (Novelty.UNCHANGED if record.content == event.content_hash else Novelty.UPDATED)
        )
        # A page that could not be read is tried again the next time its lead is
        # seen, rather than the source's fields standing in for it for good. One that
        # was read but poisoned its parser is not: it would poison every poll.
        page_failed = fetch_page and event.extraction != "page" and not page_read
        if page_failed and record is not None and record.from_page:
            # The source's own fields never replace an article read from its page: a
            # page down for a moment would turn its text into a summary, and another
            # source's link to it, unfetchable on purpose, would put its words there.
            # Kept as it was, for another ttl, its page asked for when its lead is next
            # seen (with the validators of what was read of it now, if anything).
            log.warning("article page unreadable, the published article kept", url=lead.url)
            await self._state.remember(key, replace(record, lead=""), read)
            self._count(source, result, Novelty.UNCHANGED)
            return
        from_page, home = event.extraction == "page", on_site(source, str(event.url))
        if record is not None and not record.replaceable(source.name, home, from_page):
            log.warning("another source's article kept", url=lead.url, published_by=record.source)
            self._count(source, result, Novelty.UNCHANGED)
            return
        if replaced := superseded(record, event.idempotency_key):
            # Under another key than before (its page declared its canonical URL): the
            # document under that one is this article, which the event says, to remove.
            event = event.model_copy(update={"supersedes": replaced})
            novelty = Novelty.UPDATED
        lead_seen = "" if page_failed else fingerprint
        publisher, publisher_home = (
            (source.name, home)
            if record is None
            else record.after(source.name, home, novelty != Novelty.UNCHANGED, from_page)
        )
        # Where it stands, and at which version: what was published last, unless this is.
        kept = record if record and novelty == Novelty.UNCHANGED else None
        stands = (kept.key, kept.version) if kept else (event.idempotency_key, event.version)
        version = Record(
            event.content_hash, lead_seen, from_page, publisher, publisher_home, *stands
        )
        if novelty == Novelty.UNCHANGED:
            await self._state.remember(key, version, read)
        else:
            if self._backpressure is not None:
                with paused():  # the indexer behind: no slowness of the source's
                    await self._backpressure.wait()
            # Published and remembered at once, through the source's lease (a replica
            # that lost it publishes nothing): never remembered yet lost in a failover.
            entry = entry_command(self._stream.name, event, self._stream.maxlen)
            if (size := payload_bytes(entry)) > MAX_EVENT_BYTES:
                # A feed item's body of 10 MB of quotes, each escaped: no reader takes
                # it, so it is not published, and tried again at the next poll.
                log.warning(
                    "article too large to publish", url=lead.url, bytes=size, limit=MAX_EVENT_BYTES
                )
                self._count(source, result, "failed")
                return
            await self._state.publish(entry, key, version, read)
            metrics.EXTRACTIONS.labels(source.name, event.extraction or "feed").inc()
            log.debug(
                "article published",
                url=event.url,
                novelty=str(novelty),
                extraction=event.extraction,
            )
        self._count(source, result, novelty)

    async def _event(
        self,
        source: Source,
        lead: Lead,
        fallback: ArticleEvent | None,
        page: Fetched | None,
        *,
        fetch_page: bool,
        conditional: bool,
    ) -> tuple[ArticleEvent | None, bool, Page | None]:
        """The article from its page, else from its lead (None when the page is
        unchanged), whether the page was read but its parse failed for good, and the
        page read, whose validators are remembered with the article (one write).

        Only an article already published is fetched conditionally: a 304 for
        one whose publication was lost (a crash) would otherwise hide it forever.
        """
        now = datetime.now(UTC)
        if fetch_page:
            try:
                if page is None:
                    page = await self._fetch_conditionally(lead.url, conditional=conditional)
                if page.not_modified:
                    return None, False, None
                html, _ = decode(page.content, page.content_type)
                try:
                    extracted = await self._sandbox.run(extract_article, html, page.url)
                except Exception as exc:  # ParseFailed, or a crash of the extractor's own
                    log.warning(
                        "article page poisoned its parser, using the source's fields",
                        url=page.url,
                        error=str(exc),
                        error_class=type(exc).__name__,
                    )
                    metrics.PARSE_FAILURES.labels(source.name, type(exc).__name__).inc()
                    return fallback or lead_event(lead, source, now), True, None
                read = Page(lead.url, page.validators)
                try:
                    if extracted is not None:
                        return page_event(lead, extracted, source, page.url, now), False, read
                    log.warning(
                        "no article text on the page, using the source's fields", url=page.url
                    )
                    return fallback or lead_event(lead, source, now), False, read
                except ValueError:  # no event to remember it with, but the page was read
                    await self._state.remember_validators(read.url, read.validators)
                    raise
            except FetchError as exc:
                log.warning(
                    "article page unreadable, using the source's fields",
                    url=lead.url,
                    error=str(exc),
                )
        return fallback or lead_event(lead, source, now), False, None

    @staticmethod
    def _count(source: Source, result: PollResult, outcome: Novelty | str) -> None:
        result.count(outcome)
        metrics.ITEMS.labels(source.name, str(outcome)).inc()


async def read_all(items: Sequence[T], read: Callable[[T], Awaitable[None]], at_once: int) -> None:
    """`read` every item of a document, up to `at_once` of them at a time, so that the
    parse workers are busy while other pages are fetched and published. Items are
    taken in order, one at a time: a long document holds no more pages than that. An
    error (the lease lost, Redis away) ends the poll as it did one item at a time: the
    items in hand finish, no other starts, and the first error is raised. Politeness
    is the fetcher's, per host, whatever asks it."""
    pending = iter(items)
    errors: list[Exception] = []

    async def reader() -> None:
        for item in pending:  # shared: each item is taken by one reader
            if errors:
                return
            try:
                await read(item)
            except Exception as exc:
                errors.append(exc)
                return

    await asyncio.gather(*(reader() for _ in range(min(at_once, len(items)))))
    if errors:
        raise errors[0]


def _lead_key(lead: Lead) -> str:
    return article_key(canonicalize_url(lead.url))


def _lead_fingerprint(lead: Lead) -> str:
    text = "\n".join([lead.title, lead.summary, str(lead.published_at or "")])
    return hashlib.sha256(text.encode()).hexdigest()
