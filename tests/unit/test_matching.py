"""Saved searches against stored articles, the pure parts: bodies, packing, readings,
match events and what was already announced."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError, NoPermissionError, ResponseError

from services.indexer import matcher as matcher_module
from services.indexer.matcher import MSEARCH_SEARCHES, Matcher, Round
from services.indexer.matching import (
    MATCH_TITLE_CHARS,
    Compiled,
    Failed,
    MatchHit,
    announced_key,
    compile_search,
    estimated_clauses,
    halves,
    match_events,
    msearch_lines,
    packed,
    read_answers,
    search_body,
    unannounced,
    within_day,
)
from shared.events import SavedSearchMatch, content_hash
from shared.index import IndexNames
from shared.saved_searches import SavedSearch, SavedSearchFields, logged_id
from shared.settings import CommonSettings, IndexerSettings
from shared.streams import Streams
from tests.logs import Said

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
HASH = content_hash("Neft narxi tushdi", "Batafsil.")


def _saved(saved_id: str, **fields: Any) -> SavedSearch:
    return SavedSearch.made(SavedSearchFields(**fields), saved_id.ljust(22, "x"), NOW)


def _compiled(name: str, weight: int) -> Compiled:
    return Compiled(name, {"bool": {"filter": [{"match_all": {}}], "_name": name}}, weight)


def test_a_saved_search_is_its_query_named_by_its_id_in_filter_context() -> None:
    saved = _saved("a", q="neft", source=["kun.uz"])
    compiled = compile_search(saved)
    assert compiled.id == saved.id
    assert compiled.clause == {"bool": {"filter": [saved.query()], "_name": saved.id}}
    # "neft" expands to (neft | neft | …) alternatives over the nine text fields, + a filter.
    assert compiled.weight == estimated_clauses(saved.query())
    assert compiled.weight % 9 == 1


def test_a_saved_search_made_before_near_spellings_were_refused_matches_its_words() -> None:
    # Each `~2` word read every term of nine fields in every round; such a search, stored
    # before the API refused it, is matched on its words as typed, a phrase's slop kept.
    stored = SavedSearch.model_validate(
        {
            "id": "a".ljust(22, "x"),
            "q": 'neft~2 | gaz~ "oil price"~3',
            "created_at": NOW.isoformat(),
        }
    )
    plain = _saved("a", q='neft | gaz "oil price"~3')
    assert compile_search(stored).clause == compile_search(plain).clause
    assert "fuzz" not in json.dumps(compile_search(stored).clause)
    # Its own feed runs the same words (it still ran the near spellings).
    assert stored.criteria() == plain.criteria()


def test_clauses_are_estimated_per_term_and_field() -> None:
    fields = ["title", "body", "stem.title"]
    query = {
        "bool": {
            "must": [
                {
                    "simple_query_string": {
                        "query": '(a | b) -(c | "d e") +f',
                        "fields": fields,
                    }
                }
            ],
            "filter": [{"terms": {"source": ["x", "y"]}}, {"range": {"published_at": {}}}],
        }
    }
    assert estimated_clauses(query) == 6 * 3 + 2  # a b c d e f, each on three fields
    assert estimated_clauses({"match_all": {}}) == 1


def test_clauses_are_counted_in_the_analysers_tokens_each_distinct_once() -> None:
    def sqs(text: str) -> dict[str, Any]:
        return {"simple_query_string": {"query": text, "fields": ["title", "body"]}}

    # Han and hiragana a character at a time (katakana a word at a time): one "word" of
    # 244 ideographs was 54 clauses.
    assert estimated_clauses(sqs("北京市政府" + "ラーメン" + "ひらがな")) == (5 + 1 + 4) * 2
    assert estimated_clauses(sqs("\U00020000\U00020001\U00020002")) == 3 * 2
    # Emoji, each a token of its own there: 250 were 2 clauses here, 500 in Elasticsearch.
    assert estimated_clauses(sqs("neft😀😃 🚀☀✈ ⌚© ★")) == (1 + 8) * 2
    assert estimated_clauses(sqs("".join(map(chr, range(0x1F600, 0x1F600 + 250))))) == 250 * 2
    assert estimated_clauses(sqs("Toshkent,Samarqand.Buxoro")) == 3 * 2
    assert estimated_clauses(sqs("neft NEFT neft")) == 1 * 2  # the cluster merges them


def test_saved_searches_are_packed_within_the_clause_budget_in_order() -> None:
    searches = [_compiled(n, w) for n, w in (("a", 40), ("b", 50), ("c", 200), ("d", 10))]
    assert [[s.id for s in g] for g in packed(searches, 100)] == [["a", "b"], ["c"], ["d"]]
    assert [[s.id for s in g] for g in packed(searches, 1000)] == [["a", "b", "c", "d"]]
    assert packed([], 100) == []
    assert [[s.id for s in g] for g in halves(searches)] == [["a", "b"], ["c", "d"]]


def test_each_search_is_restricted_to_the_batch_and_matches_any_of_its_group() -> None:
    group = [_compiled("a", 1), _compiled("b", 1)]
    body = search_body(group, ["1" * 32, "2" * 32])
    assert body["size"] == 2
    assert body["track_total_hits"] is False
    assert body["_source"] == [
        "url",
        "title",
        "source",
        "published_at",
        "fetched_at",
        "content_hash",
    ]
    ids, named = body["query"]["bool"]["filter"]
    assert ids == {"ids": {"values": ["1" * 32, "2" * 32]}}
    assert named["bool"]["should"] == [g.clause for g in group]
    assert named["bool"]["minimum_should_match"] == 1
    assert "must" not in body["query"]["bool"]  # nothing scored
    assert msearch_lines([group, group], ["1" * 32]) == [{}, search_body(group, ["1" * 32])] * 2


def _hit(article: str, *names: str, url: str = "https://kun.uz/news/4") -> dict[str, Any]:
    return {
        "_id": article,
        "_source": {
            "url": url,
            "title": "Neft narxi tushdi",
            "source": "kun.uz",
            "published_at": "2026-11-24T09:00:00Z",
            "fetched_at": "2026-11-30T09:04:00Z",
            "content_hash": HASH,
        },
        "matched_queries": list(names),
    }


def test_answers_are_read_per_saved_search_and_failures_kept_apart() -> None:
    one, two, three = (
        [_compiled("a", 1), _compiled("b", 1)],
        [_compiled("c", 1)],
        [_compiled("d", 1)],
    )
    answer = {
        "responses": [
            {"status": 200, "hits": {"hits": [_hit("1" * 32, "a", "b"), _hit("2" * 32, "b")]}},
            {
                "status": 200,
                "_shards": {"failed": 1, "failures": [{"reason": "maxClauseCount is set to 1024"}]},
                "hits": {"hits": [_hit("3" * 32, "c")]},
            },
            {"status": 400, "error": {"type": "search_phase_execution_exception"}},
        ]
    }
    readings = read_answers(answer, [one, two, three])
    assert [(name, hit["_id"]) for name, hit in readings.found] == [
        ("a", "1" * 32),
        ("b", "1" * 32),
        ("b", "2" * 32),
    ]
    assert [(f.group, f.too_many_clauses) for f in readings.failed] == [
        (two, True),
        (three, False),
    ]
    assert "HTTP 400" in readings.failed[1].reason
    assert read_answers({"responses": [{"status": 200}]}, [one]).found == []
    assert Failed(one, "too_many_nested_clauses: x").too_many_clauses


def test_a_match_event_is_the_article_as_stored_once_per_saved_search() -> None:
    found = [
        ("a" * 22, cast(MatchHit, _hit("1" * 32))),
        ("a" * 22, cast(MatchHit, _hit("1" * 32))),
        ("b" * 22, cast(MatchHit, _hit("1" * 32))),
        ("b" * 22, cast(MatchHit, _hit("2" * 32, url="javascript:alert(1)"))),
    ]
    events, refused = match_events(found, NOW)
    assert [(e.saved_search_id, e.article_id) for e in events] == [
        ("a" * 22, "1" * 32),
        ("b" * 22, "1" * 32),
    ]
    assert refused == [f"{'2' * 32}: 1 invalid fields"]
    event = events[0]
    assert event.url == "https://kun.uz/news/4"
    assert event.content_hash == HASH
    assert event.matched_at == NOW
    assert event.published_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert event.idempotency_key == f"{'a' * 22}/{'1' * 32}/{HASH}"
    assert announced_key("caravan:matches:announced:", event) == (
        f"caravan:matches:announced:{'a' * 22}:{'1' * 32}"
    )


def test_a_match_carries_the_start_of_a_long_title() -> None:
    # Repeated in every match: a 0.5 MB title matching 200 searches took 105 MB of Redis.
    hit = _hit("1" * 32)
    hit["_source"]["title"] = "Neft " * 100_000
    [event], _ = match_events([("a" * 22, cast(MatchHit, hit))], NOW)
    assert event.title == ("Neft " * 100_000)[:MATCH_TITLE_CHARS]


def test_only_text_not_announced_before_is_announced() -> None:
    events, _ = match_events(
        [
            (name * 22, cast(MatchHit, _hit(article * 32)))
            for name, article in (("a", "1"), ("b", "1"), ("c", "1"))
        ],
        NOW,
    )
    fresh = unannounced(events, [None, HASH.encode(), b"0" * 64])
    assert [e.saved_search_id for e in fresh] == ["a" * 22, "c" * 22]
    # Memories Caravan did not write are none; they fail no round.
    refused = ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    fresh = unannounced(events, [b"\xff\xfe", refused, HASH.encode()])
    assert [e.saved_search_id for e in fresh] == ["a" * 22, "b" * 22]
    # Any other error answered is Redis in trouble: raised, never announced again.
    for trouble in (ConnectionError("reset"), NoPermissionError("NOPERM"), ResponseError("BUSY")):
        with pytest.raises(type(trouble)):
            unannounced(events, [None, trouble, None])
    with pytest.raises(ValueError, match="shorter"):
        unannounced(events, [None])


def test_a_saved_search_announces_its_matches_of_the_day_and_no_more() -> None:
    # A filter alone matches every article: each announced and remembered for 45 days,
    # 17 GB of Redis a saved search at a million articles a day.
    events, _ = match_events(
        [
            (name * 22, cast(MatchHit, _hit(article * 32)))
            for name, article in (("a", "1"), ("a", "2"), ("a", "3"), ("b", "1"), ("c", "1"))
        ],
        NOW,
    )
    # Today a: 1 before these three; b: 2 before (its bound), c: none before.
    kept, over = within_day(events, {"a" * 22: 4, "b" * 22: 3, "c" * 22: 1}, per_day=2)
    assert [(e.saved_search_id[0], e.article_id[0]) for e in kept] == [("a", "1"), ("c", "1")]
    assert [(e.saved_search_id[0], e.article_id[0]) for e in over] == [
        ("a", "2"),
        ("a", "3"),
        ("b", "1"),
    ]


def test_offers_past_the_backlog_are_counted_not_kept() -> None:
    matcher = _matcher(None, [], match_backlog=3)
    matcher.offer(["1", "2"])
    matcher.offer(["3", "4", "5"])
    matcher.offer(["6"])
    assert matcher.waiting == 3


class _Refusing:
    """A node that refuses a search past `limit` clauses, each saved search weighing its
    `real` clauses (10 unless said); it records each request's searches and refusals."""

    def __init__(self, limit: int, real: dict[str, int] | None = None) -> None:
        self.limit = limit
        self.real = real or {}
        self.requests: list[int] = []
        self.refused: list[list[str]] = []

    async def msearch(self, *, searches: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        bodies = searches[1::2]
        self.requests.append(len(bodies))
        return {"responses": [self._answer(body) for body in bodies]}

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        [_, group] = body["query"]["bool"]["filter"]
        names = [clause["bool"]["_name"] for clause in group["bool"]["should"]]
        if sum(self.real.get(name, 10) for name in names) > self.limit:
            self.refused.append(names)
            return {"status": 400, "error": {"type": "too_many_nested_clauses"}}
        return {"hits": {"hits": []}}


def _matcher(es: _Refusing | None, searches: list[Compiled], **settings: Any) -> Matcher:
    async def publish(_: list[SavedSearchMatch]) -> None:
        return None

    matcher = Matcher(
        cast(Any, es),
        cast(Redis, None),
        IndexNames(""),
        Streams(CommonSettings()),
        IndexerSettings(**settings),
        publish,
    )
    matcher._compiled = {search.id: search for search in searches}
    return matcher


async def _round(matcher: Matcher) -> int:
    """One round's searches, packed as `_match` packs them; how many were sent."""
    done = Round(1)
    searches = list(matcher._compiled.values())
    await matcher._search(packed(searches, matcher._budget), ["1" * 32], done)
    return done.searches


class _Quoting(_Refusing):
    """A node whose refusal quotes the query it refused, the names of its parts too."""

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        reason = f"failed to create query: {json.dumps(body['query'])}"
        return {"status": 400, "error": {"type": "query_shard_exception", "reason": reason}}


async def test_a_failed_round_names_its_saved_searches_by_digest_even_in_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said = Said()
    monkeypatch.setattr(matcher_module, "log", said)
    secret = "S" * 22  # an id is the key to its saved search
    await _round(_matcher(_Quoting(limit=1000), [_compiled(secret, 1)]))
    [told] = said.lines
    assert told["saved_searches"] == [logged_id(secret)]
    assert logged_id(secret) in told["reason"]
    assert secret not in repr(said.lines)


async def test_a_saved_search_the_estimate_missed_ends_up_alone_the_others_unharmed() -> None:
    # Twenty hostile saved searches lowered the budget for good: every later round split
    # into ever more searches for everyone, until the indexer restarted.
    es = _Refusing(limit=100, real={"hostile": 1000})
    searches = [_compiled(str(n), 10) for n in range(40)]
    matcher = _matcher(
        es, [*searches[:15], _compiled("hostile", 10), *searches[15:]], match_max_clauses=100
    )
    first = await _round(matcher)
    es.refused.clear()
    later = [await _round(matcher) for _ in range(3)]

    assert es.refused == [["hostile"]] * 3  # refused alone, once a round
    assert later == [later[0]] * 3  # settled
    assert later[0] < first
    assert later[0] <= 1 + 40 * 20 // 100  # at most twice the innocents' groups
    assert matcher._budget == 100


class _RefusingOne(_Refusing):
    """A node that refuses, as its parser does, any search holding the saved search
    `bad` (an edit distance past 2, say), whatever its clauses."""

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        [_, group] = body["query"]["bool"]["filter"]
        names = [clause["bool"]["_name"] for clause in group["bool"]["should"]]
        if "bad" in names:
            self.refused.append(names)
            return {"status": 400, "error": {"type": "query_shard_exception"}}
        return {"hits": {"hits": []}}


async def test_a_saved_search_the_cluster_refuses_is_split_off_from_the_others() -> None:
    # Only refusals for too many clauses were split: one saved search the parser refused
    # failed all 40 packed with it, every round.
    es = _RefusingOne(limit=10_000)
    searches = [_compiled(str(n), 10) for n in range(40)]
    matcher = _matcher(es, [*searches[:15], _compiled("bad", 10), *searches[15:]])
    await _round(matcher)
    assert es.refused[-1] == ["bad"]  # alone at last: the others matched
    assert len(es.refused) <= 1 + (41).bit_length()
    es.refused.clear()
    await _round(matcher)
    assert es.refused == [["bad"]]  # and alone from then on, not found again by halving


async def test_a_cluster_taking_fewer_clauses_than_the_budget_is_learnt_once() -> None:
    # Halved at a refusal and doubled back after a round taken whole, the budget swung:
    # every other round refused and split again.
    es = _Refusing(limit=40)
    matcher = _matcher(es, [_compiled(str(n), 10) for n in range(16)], match_max_clauses=160)
    await _round(matcher)
    es.refused.clear()
    later = [await _round(matcher) for _ in range(4)]
    assert es.refused == []
    assert later == [later[0]] * 4


async def test_a_round_of_many_searches_goes_in_requests_of_bounded_size() -> None:
    es = _Refusing(limit=10_000)
    matcher = _matcher(es, [_compiled(str(n), 16) for n in range(150)], match_max_clauses=16)
    await _round(matcher)
    assert es.requests == [MSEARCH_SEARCHES, MSEARCH_SEARCHES, 150 - 2 * MSEARCH_SEARCHES]
