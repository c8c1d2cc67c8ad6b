"""Search requests and results: pure functions from parameters to Elasticsearch bodies and back.

Queries use `simple_query_string`, which never fails on syntax: any string a
person types (unbalanced quotes, stray operators) yields results or none.
Pages inside the first 10,000 hits use from/size; past that a reader follows
`next_cursor` (search_after), so a deep page is a cursor, not an error.
"""

from __future__ import annotations

import calendar
import html
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.query.cursors import Cursor, SortMode
from shared.clients import LANGUAGE_ANALYZERS

# Elasticsearch's default index.max_result_window: from + size may not pass it.
RESULT_WINDOW = 10_000
EXCERPT_CHARS = 300
TEXT_FIELDS = (("title", 3), ("summary", 2), ("body", 1))
FACET_SIZE = 20
NEWEST = {"published_at": {"order": "desc", "missing": "_last"}}
# A unique keyword last in every sort, so search_after never skips or repeats ties.
TIEBREAK = {"canonical_url": "asc"}
OR_WORD = re.compile(r"(?<!\S)OR(?!\S)")
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
        object.__setattr__(self, "text", self.q.strip())
        if self.date_from and self.date_to and self.date_from > self.date_to:
            msg = f"date_from {self.date_from} is after date_to {self.date_to}"
            raise InvalidSearch(msg)
        if self.cursor and self.cursor.sort != self.effective_sort:
            msg = f"the cursor was made for sort={self.cursor.sort}"
            raise InvalidSearch(msg)
        if not self.cursor:
            offset(self.page, self.size)  # raises PageOutOfRange past the window

    @property
    def effective_sort(self) -> SortMode:
        # Without words there is no relevance to rank by: newest first.
        return self.sort if self.text else "newest"

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


class SearchHit(BaseModel):
    id: str
    title: str
    url: str
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
        default="eq", description="`gte`: more hits than counted exactly; `total` is a lower bound")
    page: int
    size: int
    from_: int = Field(alias="from")
    to: int
    results: list[SearchHit]
    facets: Facets = Facets()
    next_cursor: str | None = Field(
        default=None, description="pass as `cursor` for the next page, also past 10,000 hits")

    def viewing(self) -> str:
        total = f"{self.total}+" if self.total_relation == "gte" else str(self.total)
        return f"Viewing results {self.from_} - {self.to} of {total}"


def offset(page: int, size: int) -> int:
    start = (page - 1) * size
    if start + size > RESULT_WINDOW:
        msg = (f"page {page} of size {size} is past the first {RESULT_WINDOW} results; "
               "follow next_cursor to read further")
        raise PageOutOfRange(msg)
    return start


def query_text(text: str) -> str:
    """`a OR b` as people write it, in simple_query_string's own syntax (`a | b`).

    Only a bare upper-case OR between spaces and outside quotes is an operator;
    "or" in a phrase or in lower case stays a word.
    """
    parts = text.split('"')
    for i in range(0, len(parts), 2):
        parts[i] = OR_WORD.sub("|", parts[i])
    return '"'.join(parts)


def search_fields(languages: bool) -> list[str]:
    """The text fields with their boosts, and their language sub-fields where the index has them."""
    fields = []
    for name, boost in TEXT_FIELDS:
        suffix = f"^{boost}" if boost != 1 else ""
        fields.append(f"{name}{suffix}")
        if languages:
            fields += [f"{name}.{lang}{suffix}" for lang in LANGUAGE_ANALYZERS]
    return fields


def month_range(month: str) -> tuple[date, date]:
    """`2025-03` → (2025-03-01, 2025-03-31): the dates a month facet filters on."""
    year, number = (int(part) for part in month.split("-"))
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


def _filters(request: SearchRequest) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = [
        {"terms": {name: list(values)}}
        for name, values in (("source", request.sources), ("countries", request.countries),
                             ("tags", request.tags), ("language", request.languages))
        if values
    ]
    dates: dict[str, str] = {}
    if request.date_from:
        dates["gte"] = f"{request.date_from.isoformat()}||/d"
    if request.date_to:
        # Rounded up: the whole of the last day is in the range.
        dates["lte"] = f"{request.date_to.isoformat()}||/d"
    if dates:
        filters.append({"range": {"published_at": dates}})
    return filters


def _query(request: SearchRequest, languages: bool) -> dict[str, Any]:
    must: dict[str, Any] = (
        {"simple_query_string": {
            "query": query_text(request.text),
            "fields": search_fields(languages),
            "default_operator": "and",
        }}
        if request.text
        else {"match_all": {}}
    )
    filters = _filters(request)
    return {"bool": {"must": [must], "filter": filters}} if filters else must


def _highlight(languages: bool) -> dict[str, Any]:
    def matched(name: str) -> dict[str, Any]:
        # Matches found through a stemmed sub-field are marked in the plain text too.
        if not languages:
            return {}
        return {"matched_fields": [name, *(f"{name}.{lang}" for lang in LANGUAGE_ANALYZERS)]}

    return {
        "fields": {"body": matched("body"), "summary": matched("summary")},
        "fragment_size": 150,
        "number_of_fragments": 2,
        "pre_tags": ["<mark>"],
        "post_tags": ["</mark>"],
        "encoder": "html",
    }


# Only what shape_results reads: Elasticsearch writes, and the service parses, less.
SEARCH_FILTER_PATH = ["hits.total", "hits.hits._id", "hits.hits._source", "hits.hits.sort",
                      "hits.hits.highlight", "aggregations.*.buckets.key",
                      "aggregations.*.buckets.key_as_string", "aggregations.*.buckets.doc_count"]

FACET_AGGS: dict[str, Any] = {
    "source": {"terms": {"field": "source", "size": FACET_SIZE}},
    "country": {"terms": {"field": "countries", "size": FACET_SIZE}},
    "month": {"date_histogram": {"field": "published_at", "calendar_interval": "month",
                                 "format": "yyyy-MM", "min_doc_count": 1,
                                 "order": {"_key": "desc"}}},
}


def build_search(request: SearchRequest, languages: bool = False,
                 exact_total_up_to: int = RESULT_WINDOW) -> dict[str, Any]:
    """The Elasticsearch body for `request`; `languages`: the index has language sub-fields."""
    sort = request.effective_sort
    body: dict[str, Any] = {
        "query": _query(request, languages),
        "size": request.size,
        "track_total_hits": exact_total_up_to,
        "_source": {"excludes": ["body", "title_suggest"]},
        "sort": SORTS[sort],
    }
    if request.cursor:
        body["search_after"] = list(request.cursor.after)
    else:
        body["from"] = offset(request.page, request.size)
    if request.text:
        body["highlight"] = _highlight(languages)
    if request.facets:
        body["aggs"] = FACET_AGGS
    return body


def shape_results(response: dict[str, Any], request: SearchRequest) -> SearchPage:
    # filter_path drops empty arrays: no hits means no "hits.hits" at all.
    hits = response["hits"].get("hits", [])
    total = int(response["hits"]["total"]["value"])
    relation = response["hits"]["total"].get("relation", "eq")
    start = request.start
    end = start + len(hits)
    more = end < total or relation == "gte"
    next_cursor = (Cursor(end, request.effective_sort, tuple(hits[-1]["sort"])).encode()
                   if hits and len(hits) == request.size and more and "sort" in hits[-1]
                   else None)
    return SearchPage(
        total=total,
        total_relation=relation,
        page=start // request.size + 1,
        size=request.size,
        from_=start + 1 if hits else 0,
        to=end if hits else 0,
        results=[shape_hit(h) for h in hits],
        facets=_facets(response.get("aggregations", {})),
        next_cursor=next_cursor,
    )


def _facets(aggregations: dict[str, Any]) -> Facets:
    def buckets(name: str, key: str = "key") -> list[Facet]:
        return [Facet(value=str(b[key]), count=b["doc_count"])
                for b in aggregations.get(name, {}).get("buckets", [])]

    return Facets(source=buckets("source"), country=buckets("country"),
                  month=buckets("month", "key_as_string"))


def shape_hit(hit: dict[str, Any]) -> SearchHit:
    src = hit["_source"]
    # Feeds often repeat the summary as the body's start: the same fragment shows once.
    fragments = list(dict.fromkeys([*hit.get("highlight", {}).get("body", []),
                                    *hit.get("highlight", {}).get("summary", [])]))
    excerpt = (" … ".join(fragments[:2]) if fragments
               else html.escape(_clip(src.get("summary", "")), quote=False))
    return SearchHit(
        id=hit["_id"],
        title=src["title"],
        url=src["url"],
        source=src["source"],
        published_at=src.get("published_at"),
        excerpt=excerpt,
        language=src.get("language"),
        tags=src.get("tags", []),
        countries=src.get("countries", []),
    )


def _clip(text: str) -> str:
    if len(text) <= EXCERPT_CHARS:
        return text
    return text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + "…"
