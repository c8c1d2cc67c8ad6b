"""Saved searches: what a reader (or a downstream service) asks to follow.

The query service stores them (`POST /api/saved-searches`) and answers their Atom
feeds; the indexer runs every one of them against the articles it has just stored
and publishes a SavedSearchMatch for each article one matches (shared/events.py).

They are documents in an Elasticsearch index of their own, behind the alias
`{prefix}saved-searches` that the indexer creates with the others (shared/index.py),
not keys in Redis: a saved search is a reader's data, kept as long as the articles
are (replicas, snapshots), while Redis holds streams with a retention and state that
can be rebuilt; and every use of one is an Elasticsearch query anyway. A saved search
never changes once made (delete it and make another), so the indexer can keep each
one's query for as long as the search exists.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.language.wording import without_near_spellings
from shared.searching import UTC_ZONE, Criteria, match_query
from shared.text import one_line

# 16 random bytes in URL-safe base64: unguessable, so knowing the id is what allows
# reading and deleting a saved search (there is no listing).
SAVED_SEARCH_ID = r"^[A-Za-z0-9_-]{22}$"


def logged_id(saved_id: str) -> str:
    """How logs name a saved search: its id is the key to it, and a log store is read by
    more people than the index. `printf %s ID | sha256sum` finds it again."""
    return "sha256:" + hashlib.sha256(saved_id.encode()).hexdigest()[:16]


# As /api/search takes them.
MAX_QUERY_CHARS = 500
MAX_VALUES = 20
MAX_VALUE_CHARS = 200
MAX_NAME_CHARS = 200

Value = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_VALUE_CHARS)
]
Values = Annotated[list[Value], Field(max_length=MAX_VALUES)]


class SavedSearchFields(BaseModel):
    """What a saved search asks: the words and filters of `/api/search`, and a name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    q: str = Field(
        default="",
        max_length=MAX_QUERY_CHARS,
        description='simple_query_string, as /api/search: words (all must match), "a phrase", '
        "-excluded, a OR b",
    )
    name: str | None = Field(
        default=None, max_length=MAX_NAME_CHARS, description="for people: the feed's title"
    )
    source: Values = []
    country: Values = []
    tag: Values = []
    language: Values = []
    date_from: date | None = Field(default=None, description="published on or after")
    date_to: date | None = Field(default=None, description="published on or before")

    @model_validator(mode="after")
    def _dates_in_order(self) -> SavedSearchFields:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            msg = f"date_from {self.date_from} is after date_to {self.date_to}"
            raise ValueError(msg)
        return self

    def emptiness(self) -> str | None:
        """Why this would be no search to make: no words once cleaned, and no filter.

        Asked when one is made, not when one is read: a search stored before the words
        were cleaned (a lone zero-width space) must still read, or it answers 500 and
        the indexer skips it."""
        if one_line(self.q) or self.source or self.country or self.tag or self.language:
            return None
        return "a saved search needs words (q) or a source, country, tag or language filter"

    def criteria(self) -> Criteria:
        """What it asks of an article. Without `~N`: one saved before near spellings were
        refused runs on its words as typed, in its feed as in its matching."""
        return Criteria(
            without_near_spellings(self.q),
            tuple(self.source),
            tuple(self.country),
            tuple(self.tag),
            tuple(self.language),
            self.date_from,
            self.date_to,
        )

    def query(self, time_zone: str = UTC_ZONE) -> dict[str, Any]:
        """What an article must match: the query the search box sends for the same words
        and filters (their days `time_zone`'s), without its near-spelling second try."""
        return match_query(self.criteria(), time_zone=time_zone)


class SavedSearch(SavedSearchFields):
    """A saved search as stored: `_id` and `id` alike."""

    # Tolerant of fields a later version adds, as event readers are. Its errors show no
    # input: a stored search's input holds its id, the key to it (logged by the indexer).
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    id: Annotated[str, StringConstraints(pattern=SAVED_SEARCH_ID)]
    created_at: AwareDatetime

    @classmethod
    def made(cls, fields: SavedSearchFields, saved_id: str, now: datetime) -> SavedSearch:
        return cls(id=saved_id, created_at=now, **fields.model_dump())
