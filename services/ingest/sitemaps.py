"""XML sitemaps, sitemap indexes and Google News sitemaps; pure.

Elements are matched by local name: sitemaps in the wild omit or misspell the
namespace, and the news extension's prefix varies.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from services.ingest.urls import is_web_url
from shared.events import labels
from shared.text import normalize_whitespace


class SitemapError(ValueError):
    """Not a sitemap we can read."""


@dataclass(frozen=True)
class SitemapEntry:
    url: str
    lastmod: str | None = None
    news_title: str | None = None
    news_date: str | None = None
    news_language: str | None = None
    keywords: list[str] = field(default_factory=list)
    # When its date says, as a timestamp, read once where the sitemap is parsed
    # (read_sitemap); -inf without a date.
    moment: float = -math.inf

    @property
    def date(self) -> str | None:
        return self.news_date or self.lastmod


@dataclass(frozen=True)
class Sitemap:
    entries: list[SitemapEntry] = field(default_factory=list)
    children: list[SitemapEntry] = field(default_factory=list)  # of a sitemap index


@dataclass(frozen=True)
class ChildVisit:
    """What a poll remembers of one child of a sitemap index."""

    visited: float  # when the poll that fetched it started (epoch seconds)
    # The lastmod the index gave the child when it was last read in full; None
    # when it had none, or when the read was cut short or failed.
    lastmod: str | None = None
    quiet: int = 0  # visits in a row it answered 304 Not Modified


@dataclass(frozen=True)
class ChildPlan:
    fetch: list[SitemapEntry]  # in this order
    unchanged: int = 0  # read in full under the lastmod the index still gives it
    resting: int = 0  # no lastmod, answered 304 lately: asked again later
    deferred: int = 0  # due, but over this poll's fetch budget


_LONGEST_REST = 86400.0
# What read_visit parses at most. A visit Caravan writes is under a hundred bytes but
# for its lastmod, the index's own text (JSON writes a non-ASCII character in 6 bytes):
# 64 KiB holds any lastmod a sitemap can mean, and parses in about a millisecond.
_LONGEST_VISIT = 64 << 10
# A W3C datetime is at most about 35 characters; room for whitespace around it.
MAX_DATE_CHARS = 256
# An index lists at most this many sitemaps (sitemaps.org); of a longer one, a poll reads
# the newest (read_sitemap). The children go back to the event loop, which looks each
# up: 173,668 of them held it 0.7 s and 150 MB.
MAX_CHILDREN = 50_000


def read_visit(raw: bytes) -> ChildVisit | None:
    """A child's visit as `IngestState.remember_sitemap_child` stored it (a JSON object);
    None when it is not one: written by hand, cut, or by a Caravan that stores other
    fields (unknown ones are left out, so a newer or older version reads it too)."""
    if len(raw) > _LONGEST_VISIT:
        return None
    try:
        fields = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(fields, dict):
        return None
    visited, lastmod, quiet = fields.get("visited"), fields.get("lastmod"), fields.get("quiet", 0)
    if (
        not isinstance(visited, int | float)
        or isinstance(visited, bool)
        or not math.isfinite(visited)
        or not (lastmod is None or isinstance(lastmod, str))
        or not isinstance(quiet, int)
        or isinstance(quiet, bool)
        or quiet < 0
    ):
        return None
    return ChildVisit(float(visited), lastmod, quiet)


def plan_children(
    children: Sequence[SitemapEntry],
    visits: Mapping[str, ChildVisit],
    *,
    budget: int,
    now: float,
    interval: float,
) -> ChildPlan:
    """Which children of a sitemap index one poll fetches, and in what order.

    A child read in full under the lastmod the index still gives it is not
    fetched at all. One without a lastmod that answered 304 rests for twice the
    poll interval, then four times, up to a day. The rest go newest lastmod first
    (new articles are in the newest child), then the least recently visited,
    so a poll stopped by the budget is continued by the next one, not restarted.
    """
    due: list[SitemapEntry] = []
    unchanged = resting = 0
    for child in children:
        visit = visits.get(child.url)
        if visit is None:
            due.append(child)
        elif settled(child, visit):
            unchanged += 1
        # A visit from the future (another replica's clock, or a value nobody should
        # have written) is no reason to rest: the child would rest until then.
        elif child.lastmod is None and 0 <= now - visit.visited < _rest(visit.quiet, interval):
            resting += 1
        else:
            due.append(child)
    # Two stable sorts: least recently visited first, then newest lastmod first (by its
    # moment: as text, an RFC 822 date or another offset sorted wrong).
    due.sort(key=lambda c: visits[c.url].visited if c.url in visits else 0.0)
    due.sort(key=lambda c: c.moment, reverse=True)
    fetch = due[: max(0, budget)]
    return ChildPlan(fetch, unchanged, resting, len(due) - len(fetch))


def settled(child: SitemapEntry, visit: ChildVisit) -> bool:
    """Read in full (or answered 304) under the lastmod the index still gives it.
    A child without a lastmod never is: only fetching it tells whether it changed."""
    return child.lastmod is not None and visit.lastmod == child.lastmod


def _rest(quiet: int, interval: float) -> float:
    return 0.0 if quiet == 0 else min(_LONGEST_REST, interval * 2.0 ** min(quiet, 32))


def is_sitemap(content: bytes) -> bool:
    head = content[:2048]
    return b"<urlset" in head or b"<sitemapindex" in head


def parse_sitemap(content: bytes) -> Sitemap:
    # No DTDs, entities or network: a sitemap is untrusted input (XXE, billion laughs).
    parser = etree.XMLParser(
        recover=True, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise SitemapError(f"not a readable sitemap: {exc}") from exc
    if root is None:
        raise SitemapError("not a readable sitemap: empty document")
    try:
        tag = root.tag
    except UnicodeDecodeError as exc:  # as every element's in it (see _name)
        raise SitemapError("not a readable sitemap: its namespace is not text") from exc
    name = _local_name(tag) if isinstance(tag, str) else ""
    if name == "sitemapindex":
        return Sitemap(children=[e for node in _children(root, "sitemap") if (e := _entry(node))])
    if name == "urlset":
        return Sitemap(entries=[e for node in _children(root, "url") if (e := _entry(node))])
    raise SitemapError(f"not a sitemap: the root element is <{name}>")


def _children(node: Any, name: str) -> list[Any]:
    return [child for child in node if _name(child) == name]


def _firsts(node: Any) -> dict[str, Any]:
    """A node's child elements by local name, the first of each: one pass over them."""
    found: dict[str, Any] = {}
    for child in node:
        if name := _name(child):
            found.setdefault(name, child)
    return found


# lxml keeps a character reference to a surrogate (`&#xD800;`, any encoding) as bytes no
# decoder reads, and reading the text or name it is in raises UnicodeDecodeError: every
# entry of the sitemap was lost, and an index's poll with it. Such a text is not one.
def _name(node: Any) -> str:
    """An element's local name; "" for a comment or processing instruction, or for an
    element in a namespace whose URI is not text."""
    try:
        tag = node.tag
    except UnicodeDecodeError:
        return ""
    return _local_name(tag) if isinstance(tag, str) else ""


def _local_name(tag: str) -> str:
    """`{namespace}loc`, `news:title` or `title` alike. Not etree.QName: with the
    prefix left undeclared (common in news sitemaps) the recovering parser keeps
    `news:title` as the tag, which QName refuses."""
    return tag.rpartition("}")[2].rpartition(":")[2]


def _raw(node: Any | None) -> str:
    """A node's text; "" when it has none, or one that is not text (see _name)."""
    if node is None:
        return ""
    try:
        return node.text or ""
    except UnicodeDecodeError:
        return ""


def _text(node: Any | None) -> str | None:
    return normalize_whitespace(_raw(node)) or None


def _date(node: Any | None) -> str | None:
    """A date's text; None when too long to be one. It is parsed on the event loop, and
    a child's is kept in Redis with its visit for a month."""
    text = _raw(node)
    return None if len(text) > MAX_DATE_CHARS else normalize_whitespace(text) or None


def _entry(node: Any) -> SitemapEntry | None:
    fields = _firsts(node)
    url = _text(fields.get("loc"))
    if not url or not is_web_url(url):
        return None
    news_node = fields.get("news")
    news = {} if news_node is None else _firsts(news_node)
    publication = news.get("publication")
    keywords = _text(news.get("keywords")) or ""
    return SitemapEntry(
        url=url,
        lastmod=_date(fields.get("lastmod")),
        news_title=_text(news.get("title")),
        news_date=_date(news.get("publication_date")),
        news_language=None if publication is None else _text(_firsts(publication).get("language")),
        # As many distinct ones as an article keeps (its tags): 1.45 million went back to
        # the event loop, which sorted them for 0.9 s.
        keywords=labels(
            dict.fromkeys(k for k in (normalize_whitespace(k) for k in keywords.split(",")) if k)
        ),
    )
