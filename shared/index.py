"""The Elasticsearch contract: what the indexer writes and the query service reads.

Index and alias names, the mappings, the document models and the currencies quoted live
here once, so the writer and the readers (query service, `caravan keys`, `caravan reindex`,
tests and benches) cannot drift apart. Readers and writers use the alias (`articles`,
`quotes`); the index behind it is versioned (`articles-v1`) so a mapping change builds a
new index and swaps the alias. Mappings use only core analysers (`standard`,
`whitespace`): the minimal Elasticsearch distribution has no analysis-common module, so no
language analysers, no `asciifolding`. Word forms and the region's two scripts are
analysed in Python instead (shared/language): title, summary and body have stemmed
(`stem.*`) and script-folded (`fold.*`) copies, made by the document models below and
indexed as the whitespace-separated tokens they are. So the mapping is the same on every
distribution.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired
from uuid import UUID

from pydantic import Field, TypeAdapter, computed_field

# typing_extensions' TypedDict, not typing's: pydantic validates only that one on 3.11.
from typing_extensions import TypedDict

from shared.events import ArticleEvent, QuoteEvent, Superseded, UtcDatetime
from shared.language.analysis import fold_text, stem_text

# Saved searches (shared/saved_searches.py) are written by the query service, read by
# the indexer.
ALIASES = ("articles", "quotes", "saved-searches")
# The currencies the rate feed publishes and the ticker shows, each per US dollar.
CURRENCIES = ("KGS", "KZT", "TJS", "UZS", "TMT")

MAPPING_VERSION = 1

TEXT = {"type": "text", "analyzer": "standard"}
# Tokens made by shared/language.analysis: split on spaces, nothing else.
NORMALISED = {
    "properties": {
        name: {"type": "text", "analyzer": "whitespace"} for name in ("title", "summary", "body")
    }
}


def articles_mapping() -> dict[str, Any]:
    return {
        # Unknown event fields are kept in _source but not indexed: a newer
        # producer never breaks an older indexer's mapping.
        "dynamic": False,
        "properties": {
            "title": {**TEXT, "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
            "title_suggest": {"type": "completion", "analyzer": "simple"},
            "summary": TEXT,
            "body": TEXT,
            "stem": NORMALISED,
            "fold": NORMALISED,
            "url": {"type": "keyword", "index": False},
            "canonical_url": {"type": "keyword"},
            "source": {"type": "keyword"},
            "authors": {"type": "keyword"},
            "tags": {"type": "keyword"},
            "countries": {"type": "keyword"},
            "language": {"type": "keyword"},
            "published_at": {"type": "date"},
            "fetched_at": {"type": "date"},
            "occurred_at": {"type": "date"},
            "content_hash": {"type": "keyword"},
            "event_id": {"type": "keyword"},
            "version": {"type": "long"},
        },
    }


def quotes_mapping() -> dict[str, Any]:
    return {
        "dynamic": False,
        "properties": {
            "pair": {"type": "keyword"},
            "base": {"type": "keyword"},
            "quote": {"type": "keyword"},
            # The exact decimal is kept as a string; the double beside it is for
            # sorting, ranges and charts only.
            "rate": {"type": "keyword"},
            "rate_value": {"type": "double"},
            "change_pct": {"type": "keyword"},
            "change_pct_value": {"type": "double"},
            "previous_rate": {"type": "keyword"},
            "as_of": {"type": "date", "format": "strict_date"},
            "provider": {"type": "keyword"},
            "primary": {"type": "boolean"},
            "flags": {"type": "keyword"},
            "stale_after": {"type": "date", "format": "strict_date"},
            "fetched_at": {"type": "date"},
            "occurred_at": {"type": "date"},
            "event_id": {"type": "keyword"},
            "version": {"type": "long"},
        },
    }


def saved_searches_mapping() -> dict[str, Any]:
    # Read whole, by id, and listed by `id`: nothing else is searched.
    return {
        "dynamic": False,
        "properties": {"id": {"type": "keyword"}, "created_at": {"type": "date"}},
    }


class IndexNames:
    """The aliases under one CARAVAN_INDEX_PREFIX: `{prefix}articles`, `{prefix}quotes`,
    `{prefix}saved-searches`."""

    def __init__(self, prefix: str) -> None:
        self.articles = f"{prefix}{ALIASES[0]}"
        self.quotes = f"{prefix}{ALIASES[1]}"
        self.saved_searches = f"{prefix}{ALIASES[2]}"

    @property
    def owned(self) -> str:
        """Every index and alias of these, as a pattern (`{prefix}articles*,…`): what a
        health check of Caravan's own looks at. A pattern matching nothing is green."""
        return ",".join(f"{alias}*" for alias in (self.articles, self.quotes, self.saved_searches))

    @staticmethod
    def versioned(alias: str, version: int = MAPPING_VERSION) -> str:
        return f"{alias}-v{version}"


# The completion field refuses a document whose input holds one of these (its own
# separators): a title with a NUL lost its whole article from search.
_SUGGEST_RESERVED = "\x00\x1e\x1f"


def suggest_input(title: str) -> dict[str, list[str]]:
    """The `title_suggest` field of a title."""
    plain = title
    for reserved in _SUGGEST_RESERVED:
        # Looked for first: `translate` with a table of three raises and clears a
        # KeyError for every other character, 7 µs a title, a tenth of the indexer's.
        if reserved in plain:
            plain = plain.replace(reserved, "")
    return {"input": [plain] if plain else []}


# An index document is the event plus a few fields derived for search, declared as
# computed fields so a document is validated and serialized to JSON in one pass of
# pydantic's Rust core. Read from a stream, it has the fields every event is written
# with, which the event's defaults would make up: a new event_id at every read.
class ArticleDocument(ArticleEvent):
    schema_version: Literal[1]
    event_id: UUID
    occurred_at: UtcDatetime
    # Read, for the indexer to delete them, but not stored: no document is about others.
    supersedes: Superseded | None = Field(default=None, exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def title_suggest(self) -> dict[str, list[str]]:
        return suggest_input(self.title)

    # Word forms and one script for search (shared/language), for the `stem.*` and
    # `fold.*` fields: Elasticsearch's minimal distribution cannot make them.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def stem(self) -> dict[str, str]:
        return {
            "title": stem_text(self.title),
            "summary": stem_text(self.summary),
            "body": stem_text(self.body),
        }

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fold(self) -> dict[str, str]:
        return {
            "title": fold_text(self.title),
            "summary": fold_text(self.summary),
            "body": fold_text(self.body),
        }


# The fields ArticleDocument adds for search alone: no reader is shown them.
DERIVED_FIELDS = ("title_suggest", "stem", "fold")
# What search hits and similar articles ask of `_source`: the fields a hit shows (its
# body only as highlighted excerpts). Named, not excluded: the event's bookkeeping
# (ids, hashes, versions) would otherwise be a quarter of every answer, read for nothing.
HIT_FIELDS = ("title", "url", "source", "summary", "published_at", "language", "tags", "countries")


class QuoteDocument(QuoteEvent):
    schema_version: Literal[1]
    event_id: UUID
    occurred_at: UtcDatetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pair(self) -> str:
        return f"{self.base}/{self.quote}"

    # The exact decimals stay strings; these doubles are for sorting and ranges.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate_value(self) -> float:
        return float(self.rate)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def change_pct_value(self) -> float | None:
        return None if self.change_pct is None else float(self.change_pct)


# What the readers get back: `_source` as stored, in JSON types (dates as ISO strings,
# decimals as strings). TypedDicts, validated by pydantic in one call per response:
# the readers keep plain dicts (no object per hit on the search path) and mypy checks
# every key they read. A field a reader leaves out by `_source` filtering, or that older
# documents lack, is NotRequired; tests/contracts checks the write models above against
# these.
class ArticleSource(TypedDict):
    title: str
    url: str
    source: str
    summary: NotRequired[str]
    body: NotRequired[str]
    authors: NotRequired[list[str]]
    published_at: NotRequired[str | None]
    language: NotRequired[str | None]
    tags: NotRequired[list[str]]
    countries: NotRequired[list[str]]


class ArticleHit(TypedDict):
    _id: str
    _source: ArticleSource
    # Present when the search sorts; the search_after values of the next page.
    sort: NotRequired[list[Any]]
    highlight: NotRequired[dict[str, list[str]]]


class QuoteSource(TypedDict):
    base: str
    quote: str
    # Exact decimals as written; readers check their bounds (shared/decimals.py).
    rate: str
    change_pct: NotRequired[str | None]
    as_of: str
    provider: str
    # Quotes from before providers were cross-checked carry neither: primary, no doubts.
    primary: NotRequired[bool]
    flags: NotRequired[list[str]]
    stale_after: NotRequired[str | None]


ARTICLE_SOURCE: TypeAdapter[ArticleSource] = TypeAdapter(ArticleSource)
QUOTE_SOURCE: TypeAdapter[QuoteSource] = TypeAdapter(QuoteSource)
