"""Saved-search matching beside the indexer's loop: the I/O edge of matching.py.

The writer hands over the ids of the articles each bulk request stored (new documents
and new versions; never one refused as stale, so a delivery again or a replay is not
matched twice) with `offer`, which never waits and never fails. A task of its own then,
round after round, takes what is waiting (up to `ROUND_ARTICLES`):

1. lists the saved searches (ids only; each new one is read once and its query kept:
   a saved search never changes), so one deleted is not run again;
2. refreshes the articles, so that what was just stored is searchable;
3. runs every saved search restricted to those articles, in `_msearch` requests of
   bounded size (matching.py), splitting a search the cluster refuses for its clauses;
4. publishes a SavedSearchMatch for each saved search and article whose text
   (`content_hash`) differs from the one last announced for them (kept in Redis,
   `CARAVAN_INDEXER_MATCH_MEMORY_DAYS`), up to `CARAVAN_INDEXER_MATCH_PER_SEARCH_DAY`
   a saved search a day, all of them in one round trip.

Indexing never waits for it. A round that fails is logged and counted, and its articles
stay unmatched: at most once per batch. An indexer stopped finishes what is waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisClusterException, RedisError

from services.indexer import metrics
from services.indexer.matching import (
    MSEARCH_FILTER_PATH,
    Compiled,
    Failed,
    MatchHit,
    announced_key,
    compile_search,
    halves,
    match_events,
    msearch_lines,
    packed,
    read_answers,
    unannounced,
    within_day,
)
from shared.clients import wrong_type
from shared.events import SavedSearchMatch
from shared.index import IndexNames
from shared.saved_searches import SavedSearch, logged_id
from shared.searching import UTC_ZONE
from shared.settings import IndexerSettings
from shared.streams import Streams

log = structlog.get_logger(__name__)

# Publishes a round's matches together (shared/streams.py `add_events`).
PublishMatches = Callable[[list[SavedSearchMatch]], Awaitable[Any]]
# Articles matched at once at most: the size of each search's `ids` filter and hits.
ROUND_ARTICLES = 1000
# Saved search ids listed per request (Elasticsearch's result window).
LIST_PAGE = 10_000
# Searches per `_msearch` request at most: each repeats the round's article ids (34 KB
# for 1,000), and with the budget at its least 10,000 saved searches made one request of
# 235 MB, past the 100 MB a node takes by default.
MSEARCH_SEARCHES = 64


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Round:
    """What one round did, and where its time went."""

    articles: int
    saved_searches: int = 0
    searches: int = 0
    """Searches sent in `_msearch` requests (more than planned when some were split)."""
    published: list[SavedSearchMatch] = field(default_factory=list)
    find_seconds: float = 0.0
    """Listing the saved searches, the refresh, the searches and reading their hits."""
    announce_seconds: float = 0.0
    """Checking what was announced before, publishing, remembering."""


class Matcher:
    def __init__(
        self,
        es: AsyncElasticsearch,
        redis: Redis,
        names: IndexNames,
        streams: Streams,
        settings: IndexerSettings,
        publish: PublishMatches,
        clock: Callable[[], datetime] = _now,
        time_zone: str = UTC_ZONE,
    ) -> None:
        self._es = es
        self._time_zone = time_zone
        self._redis = redis
        self._names = names
        self._memory_prefix = f"{streams.matches}:announced:"
        self._memory_seconds = int(settings.match_memory_days * 86_400)
        self._today_prefix = f"{streams.matches}:today:"
        self._per_day = settings.match_per_search_day
        self._backlog = settings.match_backlog
        self._budget = settings.match_max_clauses
        self._publish = publish
        self._clock = clock
        self._waiting: deque[str] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._compiled: dict[str, Compiled] = {}
        # Never changed once made, so one that does not read is told once, not each round.
        self._unreadable: set[str] = set()

    # Beside the writer --------------------------------------------------------

    def offer(self, article_ids: Sequence[str]) -> None:
        """Queue stored articles for matching; past the backlog they are counted, not kept."""
        room = self._backlog - len(self._waiting)
        if len(article_ids) > room:
            left_out = len(article_ids) - max(room, 0)
            metrics.MATCH_FAILURES.labels("backlog").inc()
            metrics.UNMATCHED.inc(left_out)
            log.warning(
                "articles not matched against saved searches: too many waiting",
                left_out=left_out,
                waiting=len(self._waiting),
            )
            article_ids = article_ids[: max(room, 0)]
        self._waiting.extend(article_ids)
        metrics.MATCH_BACKLOG.set(len(self._waiting))
        if article_ids:
            self._wake.set()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def run(self) -> None:
        """Match round after round until `close()` is called and nothing waits."""
        while True:
            if not self._waiting:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [
                self._waiting.popleft() for _ in range(min(ROUND_ARTICLES, len(self._waiting)))
            ]
            metrics.MATCH_BACKLOG.set(len(self._waiting))
            await self.match(batch)

    def close(self) -> None:
        """Finish what is waiting, then let `run` return."""
        self._closing = True
        self._wake.set()

    # A round ------------------------------------------------------------------

    async def match(self, article_ids: Sequence[str]) -> Round:
        """Match `article_ids` against every saved search and publish what is new; never
        raises (a failure is logged and counted)."""
        started = time.perf_counter()
        ids = list(dict.fromkeys(article_ids))
        done = Round(len(ids))
        try:
            await self._match(ids, done)
        except (ApiError, TransportError) as exc:
            self._failed("elasticsearch", exc, len(ids))
        except (RedisError, RedisClusterException) as exc:
            self._failed("redis", exc, len(ids))
        # Whatever else goes wrong costs this round, never the indexer.
        except Exception as exc:
            self._failed("error", exc, len(ids))
        finally:
            metrics.MATCH_SECONDS.observe(time.perf_counter() - started)
        log.debug(
            "saved searches matched",
            articles=done.articles,
            saved_searches=done.saved_searches,
            searches=done.searches,
            published=len(done.published),
            find_seconds=round(done.find_seconds, 3),
            announce_seconds=round(done.announce_seconds, 3),
        )
        return done

    def _failed(self, reason: str, exc: BaseException, articles: int) -> None:
        metrics.MATCH_FAILURES.labels(reason).inc()
        metrics.UNMATCHED.inc(articles)
        log.warning(
            "saved-search matching failed; these articles stay unmatched",
            reason=reason,
            error=f"{type(exc).__name__}: {exc}",
            articles=articles,
        )

    async def _match(self, ids: list[str], done: Round) -> None:
        started = time.perf_counter()
        searches = await self.saved_searches()
        done.saved_searches = len(searches)
        if not searches or not ids:
            return
        # Searchable now: the articles stored since the last refresh are in the batch.
        await self._es.indices.refresh(index=self._names.articles)
        found = await self._search(packed(searches, self._budget), ids, done)
        events, refused = match_events(found, self._clock())
        for reason in refused:
            log.warning("stored article cannot be announced", reason=reason)
        announcing = time.perf_counter()
        done.find_seconds = announcing - started
        done.published = await self._announce(events)
        done.announce_seconds = time.perf_counter() - announcing

    async def saved_searches(self) -> list[Compiled]:
        """Every saved search now, its query compiled once per process."""
        listed = await self._list()
        new = [i for i in listed if i not in self._compiled and i not in self._unreadable]
        if new:
            response = await self._es.mget(index=self._names.saved_searches, ids=new)
            for document in response["docs"]:
                if not document.get("found"):
                    continue  # deleted since it was listed
                try:
                    saved = SavedSearch.model_validate(document["_source"])
                except ValidationError as exc:
                    self._skip(document["_id"], str(exc))
                    continue
                if saved.id != document["_id"]:
                    # Not one the query service wrote (it stores each under its own id):
                    # kept by its source's id, it ran in place of that saved search.
                    self._skip(
                        document["_id"], f"its source names another id, {logged_id(saved.id)}"
                    )
                    continue
                self._compiled[saved.id] = compile_search(saved, self._time_zone)
        self._compiled = {i: self._compiled[i] for i in listed if i in self._compiled}
        self._unreadable &= set(listed)
        metrics.SAVED_SEARCHES.set(len(self._compiled))
        return list(self._compiled.values())

    def _skip(self, saved_id: str, error: str) -> None:
        self._unreadable.add(saved_id)
        log.warning("saved search unreadable, skipped", id=logged_id(saved_id), error=error)

    async def _list(self) -> list[str]:
        ids: list[str] = []
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": LIST_PAGE,
                "_source": False,
                "sort": [{"id": "asc"}],
                "query": {"match_all": {}},
            }
            if after is not None:
                body["search_after"] = after
            response = await self._es.search(
                index=self._names.saved_searches,
                body=body,
                ignore_unavailable=True,
                filter_path="hits.hits._id,hits.hits.sort",
            )
            hits = response.get("hits", {}).get("hits", [])
            ids += [hit["_id"] for hit in hits]
            if len(hits) < LIST_PAGE:
                return ids
            after = hits[-1]["sort"]

    async def _search(
        self, groups: list[list[Compiled]], ids: list[str], done: Round
    ) -> list[tuple[str, MatchHit]]:
        """What every group matches; a group refused for its clauses is split and run
        again (its saved searches heavier from then on), one that fails otherwise or alone
        is counted."""
        found: list[tuple[str, MatchHit]] = []
        while groups:
            sent, groups = groups[:MSEARCH_SEARCHES], groups[MSEARCH_SEARCHES:]
            done.searches += len(sent)
            response = await self._es.msearch(
                index=self._names.articles,
                searches=msearch_lines(sent, ids),
                filter_path=MSEARCH_FILTER_PATH,
            )
            readings = read_answers(dict(response), sent)
            found += readings.found
            for failed in readings.failed:
                groups += self._after_failure(failed)
        return found

    def _after_failure(self, failed: Failed) -> list[list[Compiled]]:
        if failed.too_many_clauses and len(failed.group) > 1:
            # Heavier together than estimated: each of them weighs double from now on, so
            # later rounds pack them in smaller groups, and one the estimate missed ends
            # up alone. Lowering the budget instead cost every saved search a smaller
            # group for one hostile search, and every round the splitting again.
            heavier = [
                replace(search, weight=min(search.weight * 2, self._budget + 1))
                for search in failed.group
            ]
            self._compiled.update((search.id, search) for search in heavier)
            log.info("saved searches weigh more than estimated", saved_searches=len(heavier))
            return list(halves(heavier))
        if failed.refused and len(failed.group) > 1:
            # One saved search Elasticsearch refuses (a query its parser will not take)
            # failed every search packed with it, every round: split until it is alone.
            return list(halves(failed.group))
        if failed.refused:
            # Alone from now on, not found by halving again every round.
            [search] = failed.group
            self._compiled[search.id] = replace(search, weight=self._budget + 1)
        metrics.MATCH_FAILURES.labels("saved_search").inc(len(failed.group))
        log.warning(
            "saved searches not matched in this round",
            saved_searches=[logged_id(search.id) for search in failed.group],
            reason=_ids_hidden(failed.reason, failed.group),
        )
        return []

    async def _announce(self, events: list[SavedSearchMatch]) -> list[SavedSearchMatch]:
        if not events:
            return []
        keys = [announced_key(self._memory_prefix, event) for event in events]
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
            # A key of another type answers its own error, not the round's.
            announced = await pipe.execute(raise_on_error=False)
        fresh = await self._within_day(unannounced(events, announced))
        if fresh:
            await self._publish(fresh)
            async with self._redis.pipeline(transaction=False) as pipe:
                for event in fresh:
                    pipe.set(
                        announced_key(self._memory_prefix, event),
                        event.content_hash,
                        ex=self._memory_seconds,
                    )
                await pipe.execute()
        metrics.MATCHES.inc(len(fresh))
        return fresh

    async def _within_day(self, fresh: list[SavedSearchMatch]) -> list[SavedSearchMatch]:
        """The matches each saved search may still announce today. One that matches most
        of what is stored (a filter alone, `a | the`) announced every article, each kept
        for MATCH_MEMORY_DAYS: 17 GB of Redis a saved search at a million articles a day."""
        counts = Counter(match.saved_search_id for match in fresh)
        if not counts:
            return fresh
        day = self._clock().date().isoformat()
        async with self._redis.pipeline(transaction=False) as pipe:
            for search, count in counts.items():
                key = f"{self._today_prefix}{search}:{day}"
                pipe.incrby(key, count)
                pipe.expire(key, 2 * 86_400)
            answers = await pipe.execute(raise_on_error=False)
        totals = {}
        for (search, count), total in zip(counts.items(), answers[::2], strict=True):
            if isinstance(total, Exception) and not wrong_type(total):
                raise total
            # A counter of another type (not Caravan's) counts these alone.
            totals[search] = count if isinstance(total, Exception) else int(total)
        kept, over = within_day(fresh, totals, self._per_day)
        if over:
            metrics.MATCHES_OVER.inc(len(over))
            # Logged once a day a saved search: in the round it passed the bound.
            if crossed := [
                s for s, total in totals.items() if total - counts[s] <= self._per_day < total
            ]:
                log.warning(
                    "saved searches announced their matches of the day",
                    saved_searches=[logged_id(saved_id) for saved_id in crossed],
                    per_day=self._per_day,
                )
        return kept


def _ids_hidden(reason: str, searches: Sequence[Compiled]) -> str:
    """Elasticsearch's reason for a failed round, each saved search's id in it (the name
    of its query, which a refusal may quote) given as the logs name it."""
    for search in searches:
        reason = reason.replace(search.id, logged_id(search.id))
    return reason
