"""What a search matches: the Elasticsearch query for a reader's words and filters.

One definition for every place that runs a reader's search: the query service's
search and Atom feeds (services/query/search.py adds ranking, highlighting and the
near-spelling second try around it) and the indexer, which runs saved searches
against the articles it has just stored (services/indexer/matching.py). So an
article a saved search announces is one its feed and the search page also find.
Pure functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from shared.language.synonyms import Synonyms
from shared.language.wording import PLACES, expand, search_fields
from shared.text import one_line

OR_WORD = re.compile(r"(?<!\S)OR(?!\S)")
# The zone whose calendar date filters and month facets follow unless told otherwise.
UTC_ZONE = "UTC"
MATCH_ALL: dict[str, Any] = {"match_all": {}}


@dataclass(frozen=True)
class Criteria:
    """What a search asks of an article: words in `simple_query_string` syntax, and
    filters (each a list of accepted values; the dates inclusive, on `published_at`)."""

    q: str = ""
    sources: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    # The words cleaned as documents are, once: every reader of the criteria wants them.
    text: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", one_line(self.q))


def query_text(text: str) -> str:
    """`a OR b` as people write it, in simple_query_string's own syntax (`a | b`).

    Only a bare upper-case OR between spaces and outside quotes is an operator;
    "or" in a phrase or in lower case stays a word.
    """
    parts = text.split('"')
    for i in range(0, len(parts), 2):
        parts[i] = OR_WORD.sub("|", parts[i])
    return '"'.join(parts)


def filter_clauses(criteria: Criteria, time_zone: str = UTC_ZONE) -> list[dict[str, Any]]:
    """The filters of `criteria`; its dates are days of `time_zone`'s calendar."""
    filters: list[dict[str, Any]] = [
        {"terms": {name: list(values)}}
        for name, values in (
            ("source", criteria.sources),
            ("countries", criteria.countries),
            ("tags", criteria.tags),
            ("language", criteria.languages),
        )
        if values
    ]
    dates: dict[str, str] = {}
    if criteria.date_from:
        dates["gte"] = f"{criteria.date_from.isoformat()}||/d"
    local = time_zone != UTC_ZONE
    if criteria.date_to and local and criteria.date_to < date.max:
        # Before the next day: rounded up, a day whose midnight a clock change skips
        # (Santiago, Cairo) took in the first hour of the next.
        dates["lt"] = f"{(criteria.date_to + timedelta(days=1)).isoformat()}||/d"
    elif criteria.date_to:
        # Rounded up: the whole of the last day is in the range.
        dates["lte"] = f"{criteria.date_to.isoformat()}||/d"
    if dates:
        if local:
            # A day where the readers live: an article of 02:00 in Tashkent is on the
            # day it was there, not on UTC's day before.
            dates["time_zone"] = time_zone
        filters.append({"range": {"published_at": dates}})
    return filters


def words_query(text: str, fields: list[str]) -> dict[str, Any]:
    return {"simple_query_string": {"query": text, "fields": fields, "default_operator": "and"}}


def words_clause(text: str, synonyms: Synonyms = PLACES) -> dict[str, Any]:
    """All the words of `text` (stripped, not empty), each in every form the index holds."""
    return words_query(expand(query_text(text), synonyms), search_fields())


def with_filters(
    must: dict[str, Any], criteria: Criteria, time_zone: str = UTC_ZONE
) -> dict[str, Any]:
    filters = filter_clauses(criteria, time_zone)
    return {"bool": {"must": [must], "filter": filters}} if filters else must


def match_query(
    criteria: Criteria, synonyms: Synonyms = PLACES, time_zone: str = UTC_ZONE
) -> dict[str, Any]:
    """The query an article must match: its words as the search box reads them, and
    its filters. No near spellings: those only widen a search that found little."""
    must = words_clause(criteria.text, synonyms) if criteria.text else MATCH_ALL
    return with_filters(must, criteria, time_zone)
