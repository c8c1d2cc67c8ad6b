"""Saved searches against the articles just stored: pure request bodies and readings.

The minimal distribution has no percolator, so the saved searches are run as ordinary
searches, restricted to the articles a batch stored. Not one search per saved search
and article: every saved search is a named query (`_name` is its id), many of them
`should` clauses of one search whose `ids` filter holds the batch's article ids, and
every hit says which of them it matched (`matched_queries`). A search holds as many
saved searches as fit a budget of Lucene clauses (a cluster refuses a query past its
`maxClauseCount`, 1,024 at the least), and a round's searches go in a few `_msearch`
requests. So the cost grows with saved searches × batches, not per article.

Everything runs in filter context: nothing is scored, only matched.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict

from shared.clients import wrong_type
from shared.events import SavedSearchMatch
from shared.saved_searches import SavedSearch
from shared.searching import UTC_ZONE

# What a match event carries of the article, read from the index (the version stored).
MATCH_FIELDS = ["url", "title", "source", "published_at", "fetched_at", "content_hash"]
# One token of the standard tokenizer: a Han ideograph (the supplementary planes too), a
# hiragana or an emoji alone, as it splits those a character at a time, else a run of
# letters and digits. Each distinct token is a clause per field. The emoji are taken
# broadly (©, ★, arrows, every pictograph; a flag or a joined sequence, one token there,
# counts a token per character): too many is only a smaller group.
_BY_CHARACTER = (
    "\u3040-\u309f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2190-\u21ff\u2300-\u23ff\u24c2"
    "\u25a0-\u27bf\u2900-\u297f\u2b00-\u2bff\u3030\u303d\u3297\u3299"
    "\U0001f000-\U0001faff"
)
_TOKEN = re.compile(rf"[{_BY_CHARACTER}]|[^\W{_BY_CHARACTER}]+")
_LEAVES = ("terms", "term", "range", "match_all", "match_none", "ids", "exists")
# How Elasticsearch says a query has more clauses than it takes.
_TOO_MANY = ("maxClauseCount", "too_many_clauses", "too_many_nested_clauses")


@dataclass(frozen=True)
class Compiled:
    """A saved search ready to run: its query, named by its id, and what it weighs."""

    id: str
    clause: dict[str, Any]
    weight: int


def estimated_clauses(query: Any) -> int:
    """Roughly the Lucene clauses `query` rewrites to: one per distinct token and field of
    a simple_query_string, one per other leaf. Counted in tokens, not words: two "words"
    of 244 ideographs were 54 clauses counted in words, and 4,400 in Elasticsearch. What
    the estimate still misses, the cluster's refusals teach (Matcher)."""
    if isinstance(query, list):
        return sum(estimated_clauses(item) for item in query)
    if not isinstance(query, dict):
        return 0
    total = 0
    for key, value in query.items():
        if key == "simple_query_string":
            tokens = set(_TOKEN.findall(value["query"].casefold()))
            total += max(len(tokens), 1) * max(len(value.get("fields", [])), 1)
        elif key in _LEAVES:
            total += 1
        else:
            total += estimated_clauses(value)
    return total


def compile_search(saved: SavedSearch, time_zone: str = UTC_ZONE) -> Compiled:
    query = saved.query(time_zone)
    return Compiled(
        saved.id, {"bool": {"filter": [query], "_name": saved.id}}, estimated_clauses(query)
    )


def packed(searches: Sequence[Compiled], budget: int) -> list[list[Compiled]]:
    """The saved searches in groups of at most `budget` estimated clauses (one search over
    budget goes alone), in the order given."""
    groups: list[list[Compiled]] = []
    group: list[Compiled] = []
    weight = 0
    for search in searches:
        if group and weight + search.weight > budget:
            groups.append(group)
            group, weight = [], 0
        group.append(search)
        weight += search.weight
    if group:
        groups.append(group)
    return groups


def search_body(group: Sequence[Compiled], article_ids: Sequence[str]) -> dict[str, Any]:
    """One search: which of `article_ids` each saved search of `group` matches."""
    return {
        "size": len(article_ids),
        "track_total_hits": False,
        "_source": MATCH_FIELDS,
        "query": {
            "bool": {
                "filter": [
                    {"ids": {"values": list(article_ids)}},
                    {
                        "bool": {
                            "should": [search.clause for search in group],
                            "minimum_should_match": 1,
                        }
                    },
                ]
            }
        },
    }


def msearch_lines(
    groups: Sequence[Sequence[Compiled]], article_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The `_msearch` body: a header (the index is the request's) and a search per group."""
    lines: list[dict[str, Any]] = []
    for group in groups:
        lines += [{}, search_body(group, article_ids)]
    return lines


class MatchSource(TypedDict):
    url: str
    title: str
    source: str
    fetched_at: str
    content_hash: str
    published_at: NotRequired[str | None]


class MatchHit(TypedDict):
    _id: str
    _source: MatchSource
    matched_queries: NotRequired[list[str]]


class _Hits(TypedDict):
    hits: NotRequired[list[MatchHit]]


class _Shards(TypedDict):
    failed: NotRequired[int]
    failures: NotRequired[list[Any]]


class _Answer(TypedDict):
    status: NotRequired[int]
    error: NotRequired[Any]
    _shards: NotRequired[_Shards]
    hits: NotRequired[_Hits]


class _Answers(TypedDict):
    responses: list[_Answer]


MSEARCH_FILTER_PATH = (
    "responses.status,responses.error,responses._shards.failed,responses._shards.failures,"
    "responses.hits.hits._id,responses.hits.hits._source,responses.hits.hits.matched_queries"
)
ANSWERS: TypeAdapter[_Answers] = TypeAdapter(_Answers)


@dataclass(frozen=True)
class Failed:
    group: Sequence[Compiled]
    reason: str
    status: int | None = None  # the search's own, when Elasticsearch answered one

    @property
    def refused(self) -> bool:
        """Refused for what was asked (a 400), not for the cluster's state."""
        return self.status == 400

    @property
    def too_many_clauses(self) -> bool:
        return any(marker in self.reason for marker in _TOO_MANY)


@dataclass(frozen=True)
class Readings:
    found: list[tuple[str, MatchHit]]
    """(saved search id, the article as stored) for every match."""
    failed: list[Failed]


def read_answers(answer: Mapping[str, Any], groups: Sequence[Sequence[Compiled]]) -> Readings:
    """What each search found; a search that failed, even on one shard, found nothing
    (its other shards' hits are left out: it is run again or counted as failed)."""
    responses = ANSWERS.validate_python(answer)["responses"]
    found: list[tuple[str, MatchHit]] = []
    failed: list[Failed] = []
    for group, response in zip(groups, responses, strict=True):
        reason = _failure(response)
        if reason is not None:
            failed.append(Failed(group, reason, response.get("status")))
            continue
        names = {search.id for search in group}
        for hit in response.get("hits", {}).get("hits", []):
            found += [(name, hit) for name in hit.get("matched_queries", []) if name in names]
    return Readings(found, failed)


def _failure(response: _Answer) -> str | None:
    if "error" in response or response.get("status", 200) >= 300:
        return f"HTTP {response.get('status', '?')}: {str(response.get('error'))[:500]}"
    shards = response.get("_shards", {})
    if shards.get("failed", 0):
        return f"{shards['failed']} shards failed: {str(shards.get('failures'))[:500]}"
    return None


def halves(group: Sequence[Compiled]) -> Iterator[list[Compiled]]:
    middle = len(group) // 2
    yield list(group[:middle])
    yield list(group[middle:])


# A match's title is at most what ingest reads of one: each match repeats it, and a
# title of 0.5 MB matching 200 saved searches took 105 MB of Redis.
MATCH_TITLE_CHARS = 4096


def match_event(saved_search_id: str, hit: MatchHit, matched_at: datetime) -> SavedSearchMatch:
    """Raises ValidationError for a stored article no event may carry (say, a URL that is
    not http(s), indexed before that was checked)."""
    source = hit["_source"]
    title = source.get("title")
    return SavedSearchMatch.model_validate(
        {
            **source,
            "title": title[:MATCH_TITLE_CHARS] if isinstance(title, str) else title,
            "saved_search_id": saved_search_id,
            "article_id": hit["_id"],
            "matched_at": matched_at,
        }
    )


def match_events(
    found: Sequence[tuple[str, MatchHit]], matched_at: datetime
) -> tuple[list[SavedSearchMatch], list[str]]:
    """The events of what was found, once per saved search and article, and why any
    could not be one."""
    events: dict[tuple[str, str], SavedSearchMatch] = {}
    refused: list[str] = []
    for saved_id, hit in found:
        try:
            events.setdefault((saved_id, hit["_id"]), match_event(saved_id, hit, matched_at))
        except ValidationError as exc:
            refused.append(f"{hit['_id']}: {exc.error_count()} invalid fields")
    return list(events.values()), refused


def announced_key(prefix: str, match: SavedSearchMatch) -> str:
    """Where the content hash last announced for this saved search and article is kept."""
    return f"{prefix}{match.saved_search_id}:{match.article_id}"


def within_day(
    matches: Sequence[SavedSearchMatch], totals: Mapping[str, int], per_day: int
) -> tuple[list[SavedSearchMatch], list[SavedSearchMatch]]:
    """The matches each saved search may still announce today, and the rest. `totals`:
    each saved search's matches counted today, these included."""
    here = Counter(match.saved_search_id for match in matches)
    taken: Counter[str] = Counter()
    kept, over = [], []
    for match in matches:
        search = match.saved_search_id
        if totals[search] - here[search] + taken[search] < per_day:
            kept.append(match)
            taken[search] += 1
        else:
            over.append(match)
    return kept, over


def unannounced(
    matches: Sequence[SavedSearchMatch], announced: Sequence[bytes | str | Exception | None]
) -> list[SavedSearchMatch]:
    """The matches whose article text differs from what was last announced for them.

    A memory Caravan did not write (not UTF-8, or a key of another type, which Redis
    refuses to read) is no announcement: the match is announced, and remembered anew.
    Any other error answered is raised: Redis in trouble must not announce again."""
    fresh = []
    for match, last in zip(matches, announced, strict=True):
        if isinstance(last, Exception) and not wrong_type(last):
            raise last
        text = last.decode(errors="replace") if isinstance(last, bytes) else last
        if text != match.content_hash:
            fresh.append(match)
    return fresh
