"""ArticleEvents from article pages, with what a feed or sitemap said as the fallback; pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import SplitResult, urlsplit

from services.ingest.dates import parse_date
from services.ingest.extract import Extracted
from services.ingest.sources import Source
from services.ingest.text import html_to_text
from services.ingest.urls import canonicalize_url, is_web_url
from shared.events import (
    SUMMARY_CHARS,
    TITLE_CHARS,
    ArticleEvent,
    article_tags,
    clipped,
    content_hash,
    labels,
    language_code,
    source_key,
    web_url,
)


@dataclass(frozen=True)
class Lead:
    """What pointed us at an article page: a feed item, a sitemap entry, a listing link."""

    url: str
    title: str = ""
    summary: str = ""
    published_at: datetime | None = None
    authors: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    language: str | None = None
    body: str = ""

    @classmethod
    def from_event(cls, event: ArticleEvent, link: str) -> Lead:
        """A feed item's event as a lead, with its `link` as the feed wrote it: the
        event's is escaped, and the article's key comes from the link as written."""
        return cls(
            url=link,
            title=event.title,
            summary=event.summary,
            published_at=event.published_at,
            authors=list(event.authors),
            tags=list(event.tags),
            language=event.language,
            body=event.body,
        )


class NoArticleError(ValueError):
    """Neither the page nor its lead has what an article needs (a title)."""


def page_event(
    lead: Lead, page: Extracted, source: Source, final_url: str, fetched_at: datetime
) -> ArticleEvent:
    """The article as its page shows it; the lead fills what the page lacks.

    The lead's date wins: feeds and news sitemaps carry a full timestamp, pages
    often only a day or a wrong one.
    """
    title = clipped(page.title or lead.title, TITLE_CHARS)
    if not title:
        raise NoArticleError(f"{final_url}: no title on the page or in the source")
    canonical = canonical_for(lead.url, page.canonical_url)
    return ArticleEvent(
        source=source.name,
        url=web_url(final_url),
        canonical_url=web_url(canonical),
        idempotency_key=source_key(canonical),
        title=title,
        summary=clipped(lead.summary or page.description, SUMMARY_CHARS),
        body=page.text,
        authors=labels(page.authors or lead.authors),
        published_at=lead.published_at or parse_date(page.date, source.zone, fetched_at),
        language=language_code(page.language) or language_code(lead.language) or source.language,
        tags=article_tags(source.tags, [*lead.tags, *page.tags]),
        countries=list(source.countries),
        fetched_at=fetched_at,
        content_hash=content_hash(title, page.text),
        site_name=page.site_name,
        # Shown as a picture by whoever reads the event: a web address or none.
        image_url=web_url(page.image) if page.image and is_web_url(page.image) else None,
        extraction="page",
    )


# A lead's title is parsed as HTML in the service's own process, not in a sandboxed
# worker: a sitemap's 9 MB news:title of tags took 6 s and 1.1 GB there. No title
# needs more than its first characters.
TITLE_HTML_CHARS = 4096


def lead_event(lead: Lead, source: Source, fetched_at: datetime) -> ArticleEvent:
    """The article as its lead describes it, when the page could not be read."""
    title = clipped(html_to_text(lead.title[:TITLE_HTML_CHARS]), TITLE_CHARS)
    if not title:
        raise NoArticleError(f"{lead.url}: page unreadable and no title in the source")
    body = lead.body or lead.summary
    canonical = canonicalize_url(lead.url)
    return ArticleEvent(
        source=source.name,
        url=web_url(lead.url),
        canonical_url=web_url(canonical),
        idempotency_key=source_key(canonical),
        title=title,
        summary=clipped(lead.summary, SUMMARY_CHARS),
        body=body,
        authors=labels(lead.authors),
        published_at=lead.published_at,
        language=language_code(lead.language) or source.language,
        tags=article_tags(source.tags, lead.tags),
        countries=list(source.countries),
        fetched_at=fetched_at,
        content_hash=content_hash(title, body),
        extraction="feed",
    )


def canonical_for(link: str, declared: str | None) -> str:
    """The page's own canonical URL when it is a plausible one, else the link's.

    Plausible: an article path on the same site. Misconfigured sites declare
    their home page, a section page (or a syndication partner) as canonical for every
    article, which would merge them all into one document.
    """
    own = canonicalize_url(link)
    # A declared URL that is no web address (a port past 65535, `http://[`) is as if
    # none were declared: the article keeps its link's.
    if not declared or not is_web_url(declared):
        return own
    candidate = canonicalize_url(declared)
    if _site(candidate) != _site(own) or _section_of(urlsplit(candidate), urlsplit(own).path):
        return own
    return candidate


# A home page's usual names: declared as every article's canonical, they merged them all.
_HOME_PAGE = re.compile(r"(?:index|default|home|main)(?:\.[a-z0-9]{2,5})?", re.IGNORECASE)
# What an article's other pages add to its address: its canonical is the rest.
_VARIANTS = frozenset({"amp", "amp.html", "print", "print.html", "mobile", "full", "m"})


def _section_of(declared: SplitResult, own: str) -> bool:
    """Whether a declared canonical is the site's home or a section the link's own path
    is in (`/ru/`, `/ru/news/` for `/ru/news/1-slug`): no article's. Kept: an article's
    address with its id in the query (`/index.php?newsid=5`), its own shorter address
    (`/post/` for `/post/amp/`), and one whose last segment holds a number (`/news/123`
    for `/news/123/slug`)."""
    segments = [part for part in declared.path.split("/") if part]
    if declared.query:
        return False
    if not segments or _HOME_PAGE.fullmatch(segments[-1]):
        return True
    base = declared.path.rstrip("/")
    if own.rstrip("/") == base or not own.startswith(base + "/"):
        return False
    rest = own[len(base) :].strip("/")
    return rest not in _VARIANTS and not any(char.isdigit() for char in segments[-1])


def on_site(source: Source, url: str) -> bool:
    """Whether `url` is on the source's own site: its host, or one the source's host is
    under (`feeds.site.kz` for `site.kz`). Not one above it: a source on `gov.kz` is no
    site of every `*.gov.kz`. Without a list of public suffixes, `www.` and `feeds.` of
    one name are two sites. A source read from a file has none."""
    own, other = _site(source.url), _site(url)
    return bool(own) and (own == other or own.endswith(f".{other}"))


def _site(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")
