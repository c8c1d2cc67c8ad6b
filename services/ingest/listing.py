"""HTML pages: article or listing, the article links of a listing, its next page,
and the feeds it advertises; pure.

A listing (a section front, search results "Viewing results 1 - 6 of 9") shows
articles as headline links, usually in <h2>/<h3> or <article> blocks, each
with an excerpt. Navigation, tag clouds and footers are links too; requiring a
headline-length text on a same-site link with a path leaves mostly articles.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml.etree import ParserError

from services.ingest.markup import page_with_few_attributes
from services.ingest.urls import canonicalize_url, is_web_url
from shared.events import TITLE_CHARS, clipped
from shared.text import normalize_whitespace

# A listing shows tens to a few hundred articles, and a poll reads 100 by default; a
# page of 833,000 headline links made the worker hold 684 MiB of them.
MAX_LINKS = 1_000
# A page names a feed or two (one per language or section); one of 100,000 such tags
# stalled the ingest worker for 89 s.
MAX_FEEDS = 20
# The seed page's excerpts run to 3,600 characters, and an excerpt is the article's
# body when its page cannot be read; a block of a thousand headlines made each
# excerpt the whole block's text.
EXCERPT_CHARS = 4_000
# Of a block's text, what its headline (a longer one than TITLE_CHARS is cut anyway)
# and an excerpt after it can take up; one more, so that clipped() sees it go on.
_BLOCK_HEAD_CHARS = TITLE_CHARS + EXCERPT_CHARS + 1
# Of a block's text as written, with its markup's indentation and line breaks.
_BLOCK_READ_CHARS = 10 * _BLOCK_HEAD_CHARS
_MIN_TITLE_CHARS = 15
_MIN_LISTING_LINKS = 3
_HEADLINE_TAGS = frozenset({"h1", "h2", "h3", "h4"})
_BLOCK_TAGS = frozenset({"article", "li", "div", "section"})
_NEXT_TEXTS = frozenset(
    {
        "next",
        "next page",
        "older",
        "older posts",
        "»",
        "›",
        ">",
        ">>",
        "следующая",
        "далее",
        "вперёд",
        "вперед",
        "keyingi",
        "келесі",
    }
)
_FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json"}
)
_ARTICLE_TYPES = frozenset(
    {
        "article",
        "newsarticle",
        "blogposting",
        "reportagenewsarticle",
        "analysisnewsarticle",
        "opinionnewsarticle",
    }
)
_LD_TYPE = re.compile(r'"@type"\s*:\s*"([A-Za-z]+)"')


@dataclass(frozen=True)
class ListingLink:
    url: str
    # Its canonical URL, made here in the sandbox: 5,000 links of 8 KB made on the
    # event loop held it 16 s.
    key: str
    title: str
    excerpt: str = ""


@dataclass(frozen=True)
class Listing:
    links: list[ListingLink] = field(default_factory=list)
    next_page: str | None = None
    feeds: list[str] = field(default_factory=list)


def parse_html(html: str) -> Any | None:
    try:
        return lxml.html.document_fromstring(page_with_few_attributes(html))
    except (ParserError, ValueError):
        return None


def read_listing(html: str, base_url: str) -> Listing | None:
    """The listing a page holds, or None when it does not parse: parse and read in one
    call, for a parsing worker (a tree cannot cross a process boundary)."""
    root = parse_html(html)
    return None if root is None else parse_listing(root, base_url)


def page_kind(html: str, base_url: str) -> Literal["article", "listing"]:
    """An HTML page is a listing when it lists enough headlines and does not say it is
    one article; one that does not parse is read as an article page."""
    root = parse_html(html)
    if root is None or is_article_page(root):
        return "article"
    return "listing" if is_listing(parse_listing(root, base_url)) else "article"


def is_article_page(root: Any) -> bool:
    """The page says it is one article (Open Graph or schema.org)."""
    for meta in root.iter("meta"):
        if (meta.get("property") or meta.get("name") or "").lower() == "og:type":
            return (meta.get("content") or "").strip().lower() == "article"
    for script in root.iter("script"):
        if (script.get("type") or "").lower() == "application/ld+json":
            types = {t.lower() for t in _LD_TYPE.findall(script.text or "")}
            if types & _ARTICLE_TYPES:
                return True
    return False


def is_listing(listing: Listing) -> bool:
    return len(listing.links) >= _MIN_LISTING_LINKS


def parse_listing(root: Any, base_url: str) -> Listing:
    base = _base(root, base_url)
    return Listing(
        links=_article_links(root, base),
        next_page=_next_page(root, base),
        feeds=advertised_feeds(root, base),
    )


def advertised_feeds(root: Any, base_url: str) -> list[str]:
    """The first MAX_FEEDS distinct feeds the page links to, in its order."""
    feeds: dict[str, None] = {}
    for link in root.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        feed_type = (link.get("type") or "").lower() in _FEED_TYPES
        if "alternate" in rels and feed_type and (href := _absolute(base_url, link.get("href"))):
            feeds[href] = None
            if len(feeds) == MAX_FEEDS:
                break
    return list(feeds)


def _article_links(root: Any, base: str) -> list[ListingLink]:
    """The first MAX_LINKS distinct headline links, in the page's order."""
    site = _site(base)
    page = canonicalize_url(base)
    found: dict[str, ListingLink] = {}
    block_heads: dict[Any, str] = {}
    for anchor in root.iter("a"):
        url = _absolute(base, anchor.get("href"))
        title = _clean_line(anchor.text_content())
        if (
            not url
            or len(title) < _MIN_TITLE_CHARS
            or _site(url) != site
            or not urlsplit(url).path.strip("/")
            or not _in_headline(anchor)
        ):
            continue
        key = canonicalize_url(url)  # once: 3 ms for a link of 8 KB
        if key != page and key not in found:
            found[key] = ListingLink(url, key, title, _excerpt(anchor, title, block_heads))
            if len(found) == MAX_LINKS:
                break
    return list(found.values())


def _in_headline(anchor: Any) -> bool:
    """In an <h1>-<h4>, or the headline link of an <article>."""
    for ancestor in anchor.iterancestors():
        if ancestor.tag in _HEADLINE_TAGS:
            return True
        if ancestor.tag == "article":
            return "title" in (anchor.get("class") or "") or ancestor.find(".//a") is anchor
    return False


def _excerpt(anchor: Any, title: str, block_heads: dict[Any, str]) -> str:
    """The text of the headline's block (its <article>, <li> or <div>), minus the headline,
    at most EXCERPT_CHARS of it. `block_heads` holds the blocks read so far."""
    for ancestor in anchor.iterancestors():
        if ancestor.tag in _BLOCK_TAGS:
            # Once per block, not per headline: one <div> may hold a thousand of them.
            if ancestor not in block_heads:
                block_heads[ancestor] = _block_head(ancestor)
            # The head is clean already: only the headline's place needs closing up.
            excerpt = " ".join(block_heads[ancestor].replace(title, "", 1).split())
            return clipped(excerpt, EXCERPT_CHARS)
    return ""


def _block_head(block: Any) -> str:
    """The start of a block's text as shown, as much as a headline and its excerpt can
    take up. Only that much is read and cleaned: each of 250 nested blocks may hold
    the whole page's text."""
    pieces: list[str] = []
    read = 0
    for piece in _shown(block):
        pieces.append(piece[: _BLOCK_READ_CHARS - read])
        read += len(pieces[-1])
        if read == _BLOCK_READ_CHARS:
            break
    return normalize_whitespace(" ".join("".join(pieces).split())[:_BLOCK_HEAD_CHARS])


# Elements a browser shows on lines of their own: in minified pages their text touches
# the next one's, and "close.</p><span>12 May" read as "close.12 May".
_LINES = frozenset(
    {
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "br",
        "tr",
        "td",
        "th",
        "section",
        "article",
        "header",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "time",
        "figure",
        "figcaption",
        "blockquote",
        "dt",
        "dd",
    }
)


def _shown(block: Any) -> Iterator[str]:
    """The pieces of a block's text in order, as itertext, with a space where a browser
    would start a line (inline elements, as a word's <b>, add none). A stack, not
    recursion: a page may nest thousands of elements."""
    stack: list[tuple[Any, bool]] = [(block, False)]
    while stack:
        element, done = stack.pop()
        named = isinstance(element.tag, str)
        if done:  # after its children: its end, then what follows it
            if named and element.tag in _LINES:
                yield " "
            if element is not block and element.tail:
                yield element.tail
            continue
        if named and element.tag in _LINES:
            yield " "
        if named and element.text:
            yield element.text
        stack.append((element, True))
        stack.extend((child, False) for child in reversed(element))


def _next_page(root: Any, base: str) -> str | None:
    for element in root.iter("link", "a"):
        if "next" in (element.get("rel") or "").lower().split():
            return _absolute(base, element.get("href"))
    for anchor in root.iter("a"):
        label = _clean_line(anchor.text_content()).lower()
        if label in _NEXT_TEXTS or (anchor.get("aria-label") or "").lower() in _NEXT_TEXTS:
            return _absolute(base, anchor.get("href"))
    return None


def _clean_line(text: str) -> str:
    """One line of text as shown: single spaces, no invisible characters, NFC."""
    return normalize_whitespace(" ".join(text.split()))


def _base(root: Any, url: str) -> str:
    for base in root.iter("base"):
        if href := base.get("href"):
            return _absolute(url, str(href)) or url
    return url


def _absolute(base: str, href: str | None) -> str | None:
    if not href or href.startswith(("#", "javascript:", "mailto:")):
        return None
    try:
        url = urljoin(base, href.strip())
    except ValueError:  # "Invalid IPv6 URL"
        return None
    return url if is_web_url(url) else None


def _site(url: str) -> str:
    return (urlsplit(url).hostname or "").removeprefix("www.")
