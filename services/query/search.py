"""Search requests and results: pure functions from parameters to Elasticsearch bodies and back.

Queries use `simple_query_string`, which never fails on syntax: any string a
person types (unbalanced quotes, stray operators) yields results or none.
Pages inside the first 10,000 hits use from/size; past that a reader follows
`next_cursor` (search_after), so a deep page is a cursor, not an error.
What the reader typed is searched in all its forms (shared/language/wording.py;
shared/searching.py builds the query the indexer's saved searches use too); when that
finds little, a second try matches titles within an edit or two and
asks the term suggester for a "Did you mean".
"""

from __future__ import annotations

import calendar
import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Annotated, Any, Literal, NotRequired, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from services.query.cursors import Cursor, SortMode
from shared.decimals import shown
from shared.events import TITLE_CHARS, clipped, http_url, labels
from shared.index import HIT_FIELDS, ArticleHit
from shared.language.analysis import STEMMERS
from shared.language.synonyms import Synonyms
from shared.language.wording import (
    FUZZY_FIELDS,
    PLACES,
    expand,
    highlight_query,
    loosenable,
    operators_refusal,
    search_fields,
    spelled_words,
)
from shared.searching import (
    MATCH_ALL,
    UTC_ZONE,
    Criteria,
    query_text,
    with_filters,
    words_clause,
    words_query,
)
from shared.text import one_line

# Elasticsearch's default index.max_result_window: from + size may not pass it.
RESULT_WINDOW = 10_000
EXCERPT_CHARS = 300
FACET_SIZE = 20
# Fewer hits than this for all the words as typed: titles within an edit or two,
# and articles with all words but one, are searched too, and the page offers a
# "Did you mean".
FUZZY_BELOW = 3
# ... and for so many words at most: near spellings of every word of a long text cost
# Elasticsearch seconds (38 words: 1.4-2.5 s), and a text that long is no typo.
FUZZY_MOST_WORDS = 8
HIGHLIGHTED = ["body", "summary"]
# Distinct search texts whose analysed clauses are kept (a few kilobytes each).
ANALYSED_TEXTS = 2048
# Longer texts are analysed again each time: kept, 2,048 of 500 characters each could
# hold a hundred megabytes of query parts, and readers type short ones.
LONGEST_CACHED_TEXT = 100
NEWEST = {"published_at": {"order": "desc", "missing": "_last"}}
# A unique keyword last in every sort, so search_after never skips or repeats ties.
TIEBREAK = {"canonical_url": "asc"}
SORTS: dict[SortMode, list[Any]] = {
    "relevance": ["_score", NEWEST, TIEBREAK],
    "newest": [NEWEST, {"fetched_at": "desc"}, TIEBREAK],
}


class PageOutOfRange(ValueError):
    pass


class InvalidSearch(ValueError):
    pass


@dataclass(frozen=True)
class SearchRequest:
    """What a reader asked for; hashable, so identical requests can share a cached answer."""

    q: str = ""
    page: int = 1
    size: int = 10
    sources: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    sort: SortMode = "relevance"
    cursor: Cursor | None = None
    facets: bool = True
    text: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", one_line(self.q))
        if self.date_from and self.date_to and self.date_from > self.date_to:
            msg = f"date_from {self.date_from} is after date_to {self.date_to}"
            raise InvalidSearch(msg)
        if self.cursor and self.cursor.sort != self.effective_sort:
            msg = f"the cursor was made for sort={self.cursor.sort}"
            raise InvalidSearch(msg)
        if not self.cursor:
            offset(self.page, self.size)  # raises PageOutOfRange past the window
        if refusal := operators_refusal(self.text):
            raise InvalidSearch(refusal)

    @property
    def effective_sort(self) -> SortMode:
        # Without words there is no relevance to rank by: newest first.
        return self.sort if self.text else "newest"

    @property
    def criteria(self) -> Criteria:
        return Criteria(
            self.q,
            self.sources,
            self.countries,
            self.tags,
            self.languages,
            self.date_from,
            self.date_to,
        )

    @property
    def start(self) -> int:
        """Zero-based offset of the first result of this page."""
        return self.cursor.offset if self.cursor else (self.page - 1) * self.size


class Facet(BaseModel):
    value: str
    count: int


class Facets(BaseModel):
    source: list[Facet] = []
    country: list[Facet] = []
    month: list[Facet] = []


# A stored article's URL as the answers give it: the event contract's test. Documents
# indexed before the contract refused other schemes may hold a javascript: or data:
# URL, which a consumer would render as a link: such a hit is unreadable, left out as
# other hits the contract cannot read. A validator, not a pattern: the answers'
# documented shape (the OpenAPI document) stays as it was.
LinkUrl = Annotated[str, AfterValidator(http_url)]


class SearchHit(BaseModel):
    id: str
    title: str
    url: LinkUrl
    source: str
    published_at: str | None
    excerpt: str = Field(description="HTML: escaped text, matches wrapped in <mark>")
    language: str | None = None
    tags: list[str] = []
    countries: list[str] = []


class SearchPage(BaseModel):
    """One page of results; `from`/`to`/`total` are the numbers of "Viewing results 1 - 6 of 9"."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    total: int
    total_relation: Literal["eq", "gte"] = Field(
        default="eq", description="`gte`: more hits than counted exactly; `total` is a lower bound"
    )
    page: int
    size: int
    from_: int = Field(alias="from")
    to: int
    results: list[SearchHit]
    facets: Facets = Facets()
    did_you_mean: str | None = Field(
        default=None, description="the query with misspelt words corrected from the titles"
    )
    broadened: bool = Field(
        default=False,
        description="few hits for all the words as typed: titles within an edit "
        "or two of them, and articles with all but one, are included",
    )
    next_cursor: str | None = Field(
        default=None, description="pass as `cursor` for the next page, also past 10,000 hits"
    )

    def viewing(self) -> str:
        total = f"{self.total}+" if self.total_relation == "gte" else str(self.total)
        return f"Viewing results {self.from_} - {self.to} of {total}"


def offset(page: int, size: int) -> int:
    start = (page - 1) * size
    if start + size > RESULT_WINDOW:
        msg = (
            f"page {page} of size {size} is past the first {RESULT_WINDOW} results; "
            "follow next_cursor to read further"
        )
        raise PageOutOfRange(msg)
    return start


def month_range(month: str) -> tuple[date, date]:
    """`2025-03` → (2025-03-01, 2025-03-31): the dates a month facet filters on."""
    year, number = (int(part) for part in month.split("-"))
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


def _query(
    request: SearchRequest, fuzzy: bool, synonyms: Synonyms, time_zone: str
) -> dict[str, Any]:
    must: dict[str, Any] = MATCH_ALL
    if request.text:
        must = (
            _analysed_words(request.text, fuzzy)
            if synonyms is PLACES and len(request.text) <= LONGEST_CACHED_TEXT
            else _words(request.text, fuzzy, synonyms)
        )
    return with_filters(must, request.criteria, time_zone)


def _words(text: str, fuzzy: bool, synonyms: Synonyms) -> dict[str, Any]:
    """The clause for what the reader typed (stripped, not empty), in every form."""
    typed = query_text(text)
    must = words_clause(text, synonyms)
    if not fuzzy:
        return must
    should = [must, words_query(expand(typed, synonyms, fuzzy=True), FUZZY_FIELDS)]
    if loosenable(typed):
        # Every word but one: "Bobur Arena" finds "Bobur Arenada", whose
        # Uzbek ending no stemmer here knows.
        should.append(
            {
                "simple_query_string": {
                    "query": expand(typed, synonyms),
                    "fields": search_fields(),
                    "default_operator": "or",
                    "minimum_should_match": "-1",
                }
            }
        )
    return {"bool": {"should": should}}


def _highlight(request: SearchRequest, synonyms: Synonyms) -> dict[str, Any]:
    if synonyms is PLACES and len(request.text) <= LONGEST_CACHED_TEXT:
        return _analysed_highlight(request.text)
    return _highlight_of(request.text, synonyms)


# How far into a field the highlighter reads. Past the index's own limit (1,000,000
# characters) Elasticsearch refuses the whole search: one article of a longer body
# made every search that found it a 400, and the newest-first feed with it.
HIGHLIGHT_CHARS = 500_000


def _highlight_of(text: str, synonyms: Synonyms) -> dict[str, Any]:
    return {
        "fields": {name: {} for name in HIGHLIGHTED},
        "max_analyzed_offset": HIGHLIGHT_CHARS,
        # The words as typed and their other forms, marked in the text as written.
        "highlight_query": highlight_query(text, query_text(text), HIGHLIGHTED, synonyms),
        "fragment_size": 150,
        "number_of_fragments": 2,
        "pre_tags": ["<mark>"],
        "post_tags": ["</mark>"],
        "encoder": "html",
    }


# The analysis of what readers type (word forms, transliterations, place names, the
# highlighter's patterns) is most of building a body, and readers type the same
# words again and again: the clauses of the bundled place names' searches are kept,
# the most recently used ones, as the parts of a body they are. Shared, so never
# changed in place (a body is built around them; callers replace its keys whole).
@lru_cache(maxsize=ANALYSED_TEXTS)
def _analysed_words(text: str, fuzzy: bool) -> dict[str, Any]:
    return _words(text, fuzzy, PLACES)


@lru_cache(maxsize=ANALYSED_TEXTS)
def _analysed_highlight(text: str) -> dict[str, Any]:
    return _highlight_of(text, PLACES)


def _suggest(text: str) -> dict[str, Any]:
    # "missing": only words no title has get a correction, from the titles' words.
    return {"did_you_mean": {"text": text, "term": {"field": "title", "suggest_mode": "missing"}}}


# Only what shape_results reads: Elasticsearch writes, and the service parses, less.
SEARCH_FILTER_PATH = [
    "took",  # what the search cost the cluster, charged by the rate limit
    "hits.total",
    "hits.hits._id",
    "hits.hits._source",
    "hits.hits.sort",
    "hits.hits.highlight",
    "aggregations.*.buckets.key",
    "aggregations.*.buckets.key_as_string",
    "aggregations.*.buckets.doc_count",
    "suggest.*.offset",
    "suggest.*.length",
    "suggest.*.options.text",
]

FACET_AGGS: dict[str, Any] = {
    "source": {"terms": {"field": "source", "size": FACET_SIZE}},
    "country": {"terms": {"field": "countries", "size": FACET_SIZE}},
    "month": {
        "date_histogram": {
            "field": "published_at",
            "calendar_interval": "month",
            "format": "yyyy-MM",
            "min_doc_count": 1,
            "order": {"_key": "desc"},
        }
    },
}


def facet_aggs(time_zone: str) -> dict[str, Any]:
    """The facets, their months those of `time_zone`'s calendar, as date filters are."""
    if time_zone == UTC_ZONE:
        return FACET_AGGS
    month = {**FACET_AGGS["month"]["date_histogram"], "time_zone": time_zone}
    return {**FACET_AGGS, "month": {"date_histogram": month}}


def build_search(
    request: SearchRequest,
    exact_total_up_to: int = RESULT_WINDOW,
    *,
    fuzzy: bool = False,
    synonyms: Synonyms = PLACES,
    time_zone: str = UTC_ZONE,
) -> dict[str, Any]:
    """The Elasticsearch body for `request`; `fuzzy`: the second try, when few hits;
    `time_zone`: whose calendar the date filters and month facets follow."""
    sort = request.effective_sort
    body: dict[str, Any] = {
        "query": _query(request, fuzzy, synonyms, time_zone),
        "size": request.size,
        "track_total_hits": exact_total_up_to,
        "_source": list(HIT_FIELDS),
        "sort": SORTS[sort],
    }
    if request.cursor:
        body["search_after"] = list(request.cursor.after)
    else:
        body["from"] = offset(request.page, request.size)
    if request.text:
        body["highlight"] = _highlight(request, synonyms)
    if fuzzy and request.text:
        body["suggest"] = _suggest(request.text)
    if request.facets:
        body["aggs"] = facet_aggs(time_zone)
    return body


def language_features(synonyms: Synonyms = PLACES) -> dict[str, Any]:
    """What /readyz reports: the language features in use, and on what they rest."""
    return {
        "analysis": "in Python at index and query time, so alike on every Elasticsearch "
        "distribution; the cluster's own analysers are not used",
        "word_forms": list(STEMMERS),
        "scripts": "Uzbek and Kazakh Latin and Cyrillic searched as one, okina look-alikes folded",
        "place_names": len(synonyms.groups),
        "typos": f"under {FUZZY_BELOW} hits, up to {FUZZY_MOST_WORDS} words: titles within "
        "one or two edits, articles with all words but one, and did_you_mean",
    }


def wants_fuzzy(request: SearchRequest, page: SearchPage) -> bool:
    """Whether the words as typed found so little that near spellings are worth a try."""
    return (
        bool(request.text)
        and page.total < FUZZY_BELOW
        and spelled_words(query_text(request.text)) <= FUZZY_MOST_WORDS
    )


class _Total(TypedDict):
    value: int
    relation: NotRequired[Literal["eq", "gte"]]


class _Hits(TypedDict):
    total: _Total
    # filter_path drops empty arrays: no hits means no "hits.hits" at all.
    hits: NotRequired[list[ArticleHit]]


class _Bucket(TypedDict):
    key: str | int
    key_as_string: NotRequired[str]
    doc_count: int


class _Aggregation(TypedDict):
    buckets: NotRequired[list[_Bucket]]


class _Option(TypedDict):
    text: str


class Correction(TypedDict):
    offset: int
    length: int
    options: NotRequired[list[_Option]]


class SearchResponse(TypedDict):
    """What SEARCH_FILTER_PATH keeps of a search answer, the hits' `_source` as the index
    contract (shared/index.py) reads it."""

    took: NotRequired[int]
    hits: _Hits
    aggregations: NotRequired[dict[str, _Aggregation]]
    suggest: NotRequired[dict[str, list[Correction]]]


# One validation of the whole answer in pydantic's core, not one per hit.
SEARCH_RESPONSE: TypeAdapter[SearchResponse] = TypeAdapter(SearchResponse)
HITS: TypeAdapter[list[ArticleHit]] = TypeAdapter(list[ArticleHit])
HIT: TypeAdapter[ArticleHit] = TypeAdapter(ArticleHit)


class Sorted(TypedDict):
    """A hit as a page's numbers and cursor read it, whatever its `_source`."""

    sort: NotRequired[list[Any]]


HITS_SORTS: TypeAdapter[list[Sorted]] = TypeAdapter(list[Sorted])


def did_you_mean(text: str, suggest: dict[str, list[Correction]]) -> str | None:
    """`text` with each word the suggester corrected replaced by its best correction."""
    out, last = [], 0
    for entry in suggest.get("did_you_mean", []):
        options = entry.get("options", [])
        if not options:
            continue
        out += [text[last : entry["offset"]], options[0]["text"]]
        last = entry["offset"] + entry["length"]
    return "".join([*out, text[last:]]) if out else None


def shape_results(answer: Mapping[str, Any], request: SearchRequest) -> SearchPage:
    """The page of results from Elasticsearch's answer (checked against SearchResponse)."""
    response = SEARCH_RESPONSE.validate_python(answer)
    hits = response["hits"].get("hits", [])
    return _page(response, request, [hit_fields(h) for h in hits], hits)


T = TypeVar("T")
# What reading a hit another writer left in the index raises (pydantic's ValidationError
# is a ValueError): a field of another type, one missing, a date no date.
UNREADABLE = (ValueError, KeyError, TypeError, AttributeError)


def readable_hits(hits: object, read: Callable[[Any], T]) -> tuple[list[T], list[str]]:
    """What `read` makes of each hit, and why each it cannot read was left out.

    An article an older version or another tool wrote, not as the index contract has it,
    is one hit fewer: it was a 503 for every search that found it, and for the front page
    while it was the newest. Not a list of hits at all: the answer's fault (TypeError).
    """
    if not isinstance(hits, list):
        msg = f"hits are {type(hits).__name__}, not a list"
        raise TypeError(msg)
    kept: list[T] = []
    left_out: list[str] = []
    for hit in hits:
        try:
            kept.append(read(hit))
        except UNREADABLE as exc:
            name = hit.get("_id") if isinstance(hit, dict) else None
            left_out.append(f"{shown(name)}: {type(exc).__name__}: {_why(exc)}")
    return kept, left_out


def _why(exc: Exception) -> str:
    """What reading a hit raised, short: a validation error's text begins with its
    model's name, all that 32 characters of it showed, so its first field is named."""
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the hit"
        return f"at {shown(where)}: {shown(first['msg'])} ({exc.error_count()} in all)"
    return shown(exc)


def readable_result(hit: object) -> dict[str, Any]:
    """One hit as a SearchHit's fields, checked on its own (ValueError if it cannot be)."""
    return SearchHit.model_validate(hit_fields(HIT.validate_python(hit))).model_dump()


def shape_readable(
    answer: Mapping[str, Any], request: SearchRequest
) -> tuple[SearchPage, list[str]]:
    """shape_results, and for an answer it cannot read, its readable hits and why the
    others were left out; the numbers of the page and its cursor are the answer's."""
    try:
        return shape_results(answer, request), []
    except UNREADABLE:
        raw = answer["hits"]["hits"]
    results, left_out = readable_hits(raw, readable_result)
    # The rest of the answer checked as ever: a fault there is the answer's, not a hit's.
    response = SEARCH_RESPONSE.validate_python({**answer, "hits": {**answer["hits"], "hits": []}})
    return _page(response, request, results, HITS_SORTS.validate_python(raw)), left_out


def _page(
    response: SearchResponse,
    request: SearchRequest,
    results: list[dict[str, Any]],
    hits: Sequence[Sorted],
) -> SearchPage:
    total = response["hits"]["total"]["value"]
    relation = response["hits"]["total"].get("relation", "eq")
    start = request.start
    end = start + len(hits)
    more = end < total or relation == "gte"
    last = hits[-1] if hits else None
    next_cursor = (
        Cursor(end, request.effective_sort, tuple(last["sort"])).encode()
        if last and len(hits) == request.size and more and "sort" in last
        else None
    )
    # Validated in one call too: the page, its hits and its facets as one plain dict.
    return SearchPage.model_validate(
        {
            "total": total,
            "total_relation": relation,
            "page": start // request.size + 1,
            "size": request.size,
            "from": start + 1 if hits else 0,
            "to": end if hits else 0,
            "results": results,
            "facets": _facets(response.get("aggregations", {})),
            "did_you_mean": did_you_mean(request.text, response.get("suggest", {})),
            "next_cursor": next_cursor,
        }
    )


def _facets(aggregations: dict[str, _Aggregation]) -> dict[str, list[dict[str, Any]]]:
    def buckets(name: str, key: Literal["key", "key_as_string"] = "key") -> list[dict[str, Any]]:
        return [
            {"value": str(b.get(key, b["key"])), "count": b["doc_count"]}
            for b in aggregations.get(name, {}).get("buckets", [])
        ]

    return {
        "source": buckets("source"),
        "country": buckets("country"),
        "month": [bucket for bucket in buckets("month", "key_as_string") if _filterable(bucket)],
    }


def _filterable(bucket: dict[str, Any]) -> bool:
    """Whether a month facet names dates a search can filter on: a document dated past
    9999 by another writer (epoch milliseconds) makes a `+10000-01` bucket, which the
    search page could not link and a client could not ask for."""
    try:
        month_range(bucket["value"])
    except ValueError:
        return False
    return True


def hit_fields(hit: ArticleHit) -> dict[str, Any]:
    """A SearchHit's fields from one hit."""
    src = hit["_source"]
    highlight = hit.get("highlight", {})
    # Feeds often repeat the summary as the body's start: the same fragment shows once.
    fragments = list(dict.fromkeys([*highlight.get("body", []), *highlight.get("summary", [])]))
    excerpt = (
        " … ".join(clip_fragment(fragment) for fragment in fragments[:2])
        if fragments
        else html.escape(clipped(src.get("summary", ""), EXCERPT_CHARS), quote=False)
    )
    return {
        "id": hit["_id"],
        "title": clipped(src["title"], TITLE_CHARS),
        "url": src["url"],
        "source": src["source"],
        "published_at": src.get("published_at"),
        "excerpt": excerpt,
        "language": src.get("language"),
        "tags": labels(src.get("tags", [])),
        "countries": src.get("countries", []),
    }


# A fragment ends at a word's end, and a page's one "word" of 450,000 characters made
# each hit's excerpt 900 KB. Past this many characters a fragment is cut.
FRAGMENT_CHARS = 600
# What the html encoder and the tags put in a fragment: each stands for one character
# of text, or none.
_MARKUP = re.compile(r"&#?\w{1,8};|</?mark>")


def clip_fragment(fragment: str, most: int = FRAGMENT_CHARS) -> str:
    """A highlighted fragment (escaped text, matches in <mark>) cut to `most` characters
    of text and an ellipsis, never inside an entity or a tag, an open mark closed."""
    if len(fragment) <= most:
        return fragment
    out: list[str] = []
    shown = 0
    marked = False
    at = 0
    for markup in _MARKUP.finditer(fragment):
        text = fragment[at : markup.start()]
        if shown + len(text) >= most:
            break
        out.append(text)
        shown += len(text)
        at = markup.end()
        tag = markup.group()
        out.append(tag)
        if tag in ("<mark>", "</mark>"):
            marked = tag == "<mark>"
        else:
            shown += 1
    out.append(fragment[at : at + most - shown])
    if at + most - shown >= len(fragment):
        return fragment
    return "".join(out) + ("</mark>" if marked else "") + "…"
