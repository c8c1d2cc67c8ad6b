"""Following a search, the I/O edge: the searches behind the Atom feeds and the saved
searches' store. The bodies and shapes are services/query/atom.py's and
shared/saved_searches.py's.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from elasticsearch import AsyncElasticsearch, NotFoundError

from services.query.atom import FeedPage, build_feed_search, shape_feed
from services.query.backend import answer_read, hits_left_out
from services.query.limits import charged
from services.query.search import SearchRequest
from shared.saved_searches import SavedSearch, SavedSearchFields

FEED_FILTER_PATH = "took,hits.hits._id,hits.hits._source,hits.hits.sort,hits.hits.highlight"


class SavedSearchNotFound(LookupError):
    pass


class TooManySavedSearches(Exception):
    pass


class SavedSearchesUnavailable(Exception):
    """Their index is not there yet: the indexer makes it when it starts."""


def _now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """16 random bytes, URL-safe base64 (22 characters): the saved search's capability."""
    return secrets.token_urlsafe(16)


class Following:
    def __init__(
        self,
        es: AsyncElasticsearch,
        articles: str,
        saved_searches: str,
        exact_total_up_to: int,
        max_saved_searches: int,
        time_zone: str,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._es = es
        self._time_zone = time_zone
        self._articles = articles
        self._saved = saved_searches
        self._exact_total_up_to = exact_total_up_to
        self._max = max_saved_searches
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    async def feed(self, request: SearchRequest) -> FeedPage:
        response = await charged(
            self._es.search(
                index=self._articles,
                body=build_feed_search(request, self._exact_total_up_to, self._time_zone),
                ignore_unavailable=True,
                filter_path=FEED_FILTER_PATH,
            )
        )
        with answer_read():
            page = shape_feed(dict(response), request)
        hits_left_out("feed", page.left_out)
        return page

    async def create(self, fields: SavedSearchFields) -> SavedSearch:
        """Store a new saved search, visible to the indexer's next batch once this returns.

        The bound is checked before the write, so searches made at the same moment may
        pass it by as many as are made at once.
        """
        try:
            count = int((await self._es.count(index=self._saved))["count"])
        except NotFoundError as exc:
            raise SavedSearchesUnavailable from exc
        if count >= self._max:
            msg = f"there are {count} saved searches, the most this service keeps; delete one first"
            raise TooManySavedSearches(msg)
        saved = SavedSearch.made(fields, new_id(), self._clock())
        try:
            await self._es.create(
                index=self._saved,
                id=saved.id,
                document=saved.model_dump(mode="json"),
                # Searchable when the 201 is sent: the next batch the indexer stores is
                # matched against it.
                refresh="wait_for",
                # Never an index made on the fly, with a guessed mapping, in the alias's place.
                require_alias=True,
            )
        except NotFoundError as exc:
            raise SavedSearchesUnavailable from exc
        return saved

    async def get(self, saved_id: str) -> SavedSearch:
        try:
            document = await self._es.get(index=self._saved, id=saved_id)
        except NotFoundError as exc:
            raise SavedSearchNotFound(saved_id) from exc
        return SavedSearch.model_validate(document["_source"])

    async def delete(self, saved_id: str) -> None:
        """Delete a saved search; gone for the indexer's next batch once this returns."""
        try:
            await self._es.delete(index=self._saved, id=saved_id, refresh="wait_for")
        except NotFoundError as exc:
            raise SavedSearchNotFound(saved_id) from exc
