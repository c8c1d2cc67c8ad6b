"""Atom 1.0 feeds (RFC 4287) of searches and saved searches: pure functions.

A feed is the search's newest articles, newest first by publication date. The XML is
built with xml.etree.ElementTree, which escapes text and attribute values; what XML 1.0
cannot carry at all, escaped or not (most C0 controls, lone surrogates, U+FFFE and
U+FFFF), is dropped first, since an article's text may hold anything.

What RFC 4287 requires, and where it comes from here:

- the feed: one `id` (a tag: URI of the search's words and filters, or of the saved
  search), `title`, `updated` (its newest entry's, else the given instant), and a
  `link rel="self"`; an `author` unless every entry has one, which every entry here
  does (the article's authors, else its source);
- each entry: one `id` (a tag: URI of the article's id, so the same article is the
  same entry in every feed and every deployment), `title`, `updated` (when the
  version shown was fetched), and, having no `content`, a `link rel="alternate"` (the
  article's own URL); `published` and `summary` when known.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NotRequired
from urllib.parse import urlencode

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from services.query.cursors import Cursor
from services.query.search import (
    HIGHLIGHT_CHARS,
    HITS_SORTS,
    LinkUrl,
    SearchRequest,
    build_search,
    readable_hits,
)
from shared.events import TITLE_CHARS, clipped, labels
from shared.searching import UTC_ZONE, Criteria

ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MEDIA_TYPE = "application/atom+xml"
# The project's own tag: authority (RFC 4151), as its schemas' $id namespace.
TAG = "tag:caravan-news.github.io,2026:"
SUMMARY_CHARS = 300
# Characters XML 1.0 has no place for, even as character references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
# What the entries show: the body only as a fallback summary, through the highlighter.
FEED_FIELDS = [
    "title",
    "url",
    "source",
    "summary",
    "authors",
    "published_at",
    "fetched_at",
    "language",
]


def xml_text(text: str) -> str:
    """`text` without the characters no XML 1.0 document may contain, its line ends as
    an XML parser reads them back (`\n`)."""
    return _NOT_XML.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def atom_date(moment: datetime) -> str:
    """RFC 3339 in UTC, to the second: `2026-11-29T02:37:58Z`. Not strftime, whose `%Y`
    leaves a year before 1000 unpadded (`850-06-01`), which no RFC 3339 reader takes."""
    return f"{moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()}Z"


def article_entry_id(article_id: str) -> str:
    return f"{TAG}articles/{article_id}"


def saved_search_feed_id(saved_id: str) -> str:
    return f"{TAG}saved-searches/{saved_id}"


def criteria_query(criteria: Criteria) -> list[tuple[str, str]]:
    """The words and filters as query parameters, in one order (values sorted)."""
    pairs = [("q", criteria.text)] if criteria.text else []
    for name, values in (
        ("source", criteria.sources),
        ("country", criteria.countries),
        ("tag", criteria.tags),
        ("language", criteria.languages),
    ):
        pairs += [(name, value) for value in sorted(set(values))]
    pairs += [(name, day.isoformat()) for name, day in _dates(criteria) if day is not None]
    return pairs


def _dates(criteria: Criteria) -> list[tuple[str, Any]]:
    return [("date_from", criteria.date_from), ("date_to", criteria.date_to)]


def search_feed_id(criteria: Criteria) -> str:
    """The same words and filters, in any order, are the same feed."""
    return f"{TAG}search?{urlencode(criteria_query(criteria))}"


def search_page_path(criteria: Criteria) -> str:
    """The search page showing what the feed follows (its `alternate`)."""
    pairs = criteria_query(criteria)
    return "/?" + urlencode([*pairs, ("sort", "newest")])


def feed_title(criteria: Criteria, name: str | None = None) -> str:
    if name and name.strip():
        return f"Caravan: {name.strip()}"
    described = [f'"{criteria.text}"'] if criteria.text else []
    described += [f"{name}: {value}" for name, value in criteria_query(criteria) if name != "q"]
    return "Caravan: " + ", ".join(described) if described else "Caravan: newest articles"


@dataclass(frozen=True)
class FeedEntry:
    article_id: str
    title: str
    link: str
    updated: datetime
    published: datetime | None = None
    summary: str = ""
    authors: tuple[str, ...] = ()
    language: str | None = None


@dataclass(frozen=True)
class Feed:
    id: str
    title: str
    self_url: str
    updated_when_empty: datetime
    entries: Sequence[FeedEntry] = ()
    alternate_url: str | None = None
    next_url: str | None = None
    subtitle: str | None = None

    @property
    def updated(self) -> datetime:
        return max((e.updated for e in self.entries), default=self.updated_when_empty)


def _child(parent: ET.Element, name: str, text: str | None = None, **attributes: str) -> None:
    element = ET.SubElement(parent, name, {k: xml_text(v) for k, v in attributes.items()})
    if text is not None:
        element.text = xml_text(text)


def render(feed: Feed) -> bytes:
    """The feed as an Atom 1.0 document, UTF-8, with its XML declaration."""
    # Unqualified names under the Atom namespace declared as the default one: what
    # feed readers expect to see (ElementTree would prefix qualified names `ns0:`).
    root = ET.Element("feed", xmlns=ATOM)
    _child(root, "id", feed.id)
    _child(root, "title", feed.title, type="text")
    if feed.subtitle:
        _child(root, "subtitle", feed.subtitle, type="text")
    _child(root, "updated", atom_date(feed.updated))
    _child(root, "link", rel="self", type=MEDIA_TYPE, href=feed.self_url)
    if feed.alternate_url:
        _child(root, "link", rel="alternate", type="text/html", href=feed.alternate_url)
    if feed.next_url:
        _child(root, "link", rel="next", type=MEDIA_TYPE, href=feed.next_url)
    _child(root, "generator", "Caravan")
    for item in feed.entries:
        entry = ET.SubElement(root, "entry")
        if item.language and _LANGUAGE.match(item.language):
            entry.set(XML_LANG, item.language)
        _child(entry, "id", article_entry_id(item.article_id))
        _child(entry, "title", item.title, type="text")
        _child(entry, "updated", atom_date(item.updated))
        if item.published is not None:
            _child(entry, "published", atom_date(item.published))
        _child(entry, "link", rel="alternate", href=item.link)
        for author in item.authors:
            person = ET.SubElement(entry, "author")
            _child(person, "name", author)
        if item.summary:
            _child(entry, "summary", item.summary, type="text")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


# The search behind a feed ------------------------------------------------------


def feed_request(request: SearchRequest) -> SearchRequest:
    """A search as a feed runs it: newest first, no facets."""
    return replace(request, sort="newest", facets=False)


def build_feed_search(
    request: SearchRequest, exact_total_up_to: int, time_zone: str = UTC_ZONE
) -> dict[str, Any]:
    """The search's own query and order (no near spellings: a feed, like a saved
    search's alerts, has what the words find), reading what the entries show. An
    article without a summary shows the start of its body."""
    body = build_search(feed_request(request), exact_total_up_to, time_zone=time_zone)
    body["_source"] = {"includes": FEED_FIELDS}
    body["highlight"] = {
        "fields": {
            "body": {
                "highlight_query": {"match_none": {}},
                "no_match_size": SUMMARY_CHARS,
                "number_of_fragments": 1,
                "fragment_size": SUMMARY_CHARS,
            }
        },
        "encoder": "default",
        "max_analyzed_offset": HIGHLIGHT_CHARS,
    }
    return body


class _FeedSource(TypedDict):
    title: str
    # Not an http(s) URL: the hit is left out, as from the searches (search.py).
    url: LinkUrl
    source: str
    fetched_at: str
    summary: NotRequired[str]
    authors: NotRequired[list[str]]
    published_at: NotRequired[str | None]
    language: NotRequired[str | None]


class FeedHit(TypedDict):
    _id: str
    _source: _FeedSource
    sort: NotRequired[list[Any]]
    highlight: NotRequired[dict[str, list[str]]]


FEED_HIT: TypeAdapter[FeedHit] = TypeAdapter(FeedHit)


@dataclass(frozen=True)
class FeedPage:
    entries: list[FeedEntry]
    next_cursor: str | None
    # Why each hit that did not read as the index contract was left out.
    left_out: list[str] = field(default_factory=list)


def _instant(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError as exc:
        # 0001-01-01T00:00+05:00 is before UTC's first moment: an unreadable hit, left
        # out as others are, where the feed's rendering raised and answered 500.
        msg = f"{value} is outside the range of dates once in UTC"
        raise ValueError(msg) from exc


def feed_entry(hit: FeedHit) -> FeedEntry:
    """One entry from a hit."""
    source = hit["_source"]
    fallback = hit.get("highlight", {}).get("body", [])
    summary = source.get("summary") or (fallback[0] if fallback else "")
    published = source.get("published_at")
    return FeedEntry(
        article_id=hit["_id"],
        title=clipped(source["title"], TITLE_CHARS),
        link=source["url"],
        updated=_instant(source["fetched_at"]),
        published=_instant(published) if published else None,
        summary=clipped(" ".join(summary.split()), SUMMARY_CHARS),
        authors=tuple(a for a in labels(source.get("authors", [])) if a.strip())
        or (source["source"],),
        language=source.get("language"),
    )


def _entry(hit: object) -> FeedEntry:
    return feed_entry(FEED_HIT.validate_python(hit))


def shape_feed(answer: Mapping[str, Any], request: SearchRequest) -> FeedPage:
    """The entries of Elasticsearch's answer. A hit that does not read as the index
    contract, or whose URL is no http(s) one, is left out (FeedPage.left_out)."""
    # filter_path leaves nothing of an answer without hits.
    raw = answer.get("hits", {}).get("hits", [])
    entries, left_out = readable_hits(raw, _entry)
    hits = HITS_SORTS.validate_python(raw)
    last = hits[-1] if hits else None
    next_cursor = (
        Cursor(request.start + len(hits), "newest", tuple(last["sort"])).encode()
        if last and len(hits) == request.size and "sort" in last
        else None
    )
    return FeedPage(entries, next_cursor, left_out)
