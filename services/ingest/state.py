"""What ingest remembers across restarts, in Redis: the content hash of every
article it published, the ETag/Last-Modified of every document it fetched, and
when it visited each child of a sitemap index and what it found.

Every key expires after `ttl` seconds without being refreshed, which bounds
Redis to what the sources published within that window.

Each update is atomic, through the state's fence (shared/leases.py): a script,
or, for a poll made under a source's lease, `state.under(lease)`, whose writes
that lease checks atomically: a replica that lost the lease cannot overwrite
what its successor recorded (LeaseLost ends its poll).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError
from redis.asyncio import Redis

from services.ingest.sitemaps import ChildVisit, read_visit
from shared.events import SupersededKey
from shared.fetcher import Validators
from shared.leases import CALLS_IN_FLIGHT, Command, Fence, Unfenced, read_hash


class Novelty(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Page:
    """An article's page as read: its address and the validators it came with."""

    url: str
    validators: Validators


@dataclass(frozen=True)
class Record:
    content: str  # content_hash of the version published
    lead: str  # fingerprint of what pointed at it (feed item, sitemap entry, listing link)
    from_page: bool = False  # that version was read from the article's page
    source: str | None = None  # the source that published it (None: before it was kept)
    home: bool = False  # and the article is on that source's own site (articles.on_site)
    key: str | None = None  # the idempotency key it was published under (None: not kept)
    version: int | None = None  # and the version it was published at there

    def replaceable(self, source: str, home: bool, from_page: bool) -> bool:
        """Whether `source`'s version may replace the one published: its page's text
        always; its feed's fields if it published this one (or nobody is known to), or
        if the article is on its own site and the publisher's is another. Another
        source's feed, linking to an article at an address that fails, put its own
        title and words under the article's name; only its own site's source outranks
        whoever published it first."""
        return from_page or self.source in (None, source) or (home and not self.home)

    def after(
        self, source: str, home: bool, changed: bool, from_page: bool
    ) -> tuple[str | None, bool]:
        """Who published the article once `source` has read it: `source` if it published
        a version (its feed's fields over a record from before sources were kept: only
        if the article is on its site, else nobody, as before); else whoever did, or
        `source`, whose version it is, if not known."""
        if not changed:
            return (self.source, self.home) if self.source is not None else (source, home)
        if self.source is None and not from_page:
            # Its own site's source stamps it; another leaves it nobody's, as before.
            return (source, True) if home else (None, False)
        return source, home


def superseded(record: Record | None, key: str) -> list[SupersededKey]:
    """What an article published now under `key` replaces: the key its lead's `record`
    says it was published under before, if another (its feed link's, its page then
    unreadable; a canonical URL its page declared before), with the version published
    there. Only that version is removed: another article written under that key since
    (a page may declare another's address) is newer, and stays. Unknown for a record
    from before keys were kept: nothing is removed."""
    if record is None or record.key is None or record.version is None or record.key == key:
        return []
    try:
        return [SupersededKey(key=record.key, version=record.version)]
    except ValidationError:
        return []  # not written by Caravan: no key, or a version past what a delete takes


class IngestState:
    def __init__(self, redis: Redis, prefix: str, ttl: int, fence: Fence | None = None) -> None:
        self._redis = redis
        self._prefix = f"{prefix}ingest:"
        self._ttl = ttl
        self._fence = fence or Unfenced(redis)
        # Shared by every source's copy (`under`): their reads, all at once when
        # hundreds of sources poll together, stay within the client's connections.
        self._reads = asyncio.Semaphore(CALLS_IN_FLIGHT)

    def under(self, fence: Fence) -> IngestState:
        """The same state, written through `fence` (a source's lease)."""
        fenced = copy.copy(self)
        fenced._fence = fence
        return fenced

    def _article_key(self, key: str) -> str:
        return f"{self._prefix}seen:{key}"

    def _document_key(self, url: str, source: str | None) -> str:
        """Where a document's validators are kept: a source's own documents (its feed,
        sitemaps, listing pages) per source, article pages by address alone. Another
        source's item linking to a source's feed must not make its next poll a 304."""
        if source is None:
            return f"{self._prefix}page:{_digest(url)}"
        return f"{self._prefix}http:{_digest(source, url)}"

    def _children_key(self, index_url: str) -> str:
        return f"{self._prefix}sitemap:{_digest(index_url)}"

    async def _write(self, *commands: Command) -> None:
        await self._fence.write(commands)

    async def _read(self, key: str) -> dict[bytes, bytes]:
        async with self._reads:
            return await read_hash(self._redis, self._fence, key)

    async def record(self, key: str) -> Record | None:
        """What was published under this article key, if anything."""
        raw = await self._read(self._article_key(key))
        if b"content" not in raw:
            return None
        # A value not UTF-8 (not written by Caravan) reads as another version's: the
        # article is published again and the record rewritten, never the poll failed.
        source = raw.get(b"source")
        return Record(
            raw[b"content"].decode(errors="replace"),
            raw.get(b"lead", b"").decode(errors="replace"),
            raw.get(b"page") == b"1",
            None if source is None else source.decode(errors="replace"),
            raw.get(b"home") == b"1",
            _text(raw.get(b"key")),
            _number(raw.get(b"version")),
        )

    async def remember(self, key: str, record: Record, page: Page | None = None) -> None:
        """Remember the article, and the validators of its `page` when it was read."""
        await self._write(*self._article(key, record, page))

    async def publish(
        self, entry: Command, key: str, record: Record, page: Page | None = None
    ) -> None:
        """Add the article's stream `entry` and remember it, in one atomic write: both
        are kept or both lost (shared/entries.py), so it is never remembered unpublished.
        The validators of its `page`, when it was read, go in the same write."""
        await self._write(entry, *self._article(key, record, page))

    def _article(self, key: str, record: Record, page: Page | None) -> list[Command]:
        name = self._article_key(key)
        page_read = "1" if record.from_page else "0"
        fields = ["content", record.content, "lead", record.lead, "page", page_read]
        if record.source is not None:
            fields += ["source", record.source, "home", "1" if record.home else "0"]
        if record.key is not None and record.version is not None:
            fields += ["key", record.key, "version", str(record.version)]
        commands: list[Command] = [("HSET", name, *fields), ("EXPIRE", name, self._ttl)]
        return commands + (self._validators(page.url, page.validators) if page else [])

    async def touch(self, key: str) -> None:
        """Still listed by its source: keep remembering it for another ttl."""
        await self._write(("EXPIRE", self._article_key(key), self._ttl))

    async def validators(self, url: str, source: str | None = None) -> Validators:
        """The validators `source` last read `url` with; an article page's without one."""
        raw = await self._read(self._document_key(url, source))
        return Validators(
            etag=_text(raw.get(b"etag")), last_modified=_text(raw.get(b"last_modified"))
        )

    async def remember_validators(
        self, url: str, validators: Validators, source: str | None = None
    ) -> None:
        """Call once the document is processed, so a crash means fetching it again."""
        await self._write(*self._validators(url, validators, source))

    def _validators(
        self, url: str, validators: Validators, source: str | None = None
    ) -> list[Command]:
        key = self._document_key(url, source)
        fields = [
            word
            for name, value in (
                ("etag", validators.etag),
                ("last_modified", validators.last_modified),
            )
            if value
            for word in (name, value)
        ]
        commands: list[Command] = [("DEL", key)]
        if fields:
            commands += [("HSET", key, *fields), ("EXPIRE", key, self._ttl)]
        return commands

    async def recall_sitemap_children(
        self, index_url: str, listed: Collection[str]
    ) -> dict[str, ChildVisit]:
        """The visits of the children the index lists; the ones it no longer lists
        are forgotten, so one hash per index stays the size of the index."""
        key = self._children_key(index_url)
        raw = await self._read(key)
        urls = {_digest(url).encode(): url for url in listed}
        # A listed child's visit under its whole address, as versions before digests
        # wrote it (and still do, beside this one, during a rollout): kept, and moved
        # under its digest, where the upgrade fetched every child again.
        digests = {url.encode(): name for name, url in urls.items()}
        moved = {
            digests[name]: value
            for name, value in raw.items()
            if name in digests and digests[name] not in raw
        }
        # Any other field not among them: a child no longer listed.
        gone = [name for name in raw if name not in urls]
        # In commands of a thousand words: a script's call of 8,000 words or so passes
        # Lua's stack, and an index that moved (http to https) dropped more.
        parts: list[Command] = [
            ("HDEL", key, *gone[i : i + 1000]) for i in range(0, len(gone), 1000)
        ]
        pairs = [word for pair in moved.items() for word in pair]
        parts += [("HSET", key, *pairs[i : i + 1000]) for i in range(0, len(pairs), 1000)]
        if parts:
            await self._write(*parts)
        # A visit that does not read (read_visit) is none: the child is fetched, and
        # its visit written anew.
        return {
            urls[name]: visit
            for name, value in (raw | moved).items()
            if name in urls and (visit := read_visit(value)) is not None
        }

    async def remember_sitemap_child(
        self, index_url: str, child_url: str, visit: ChildVisit
    ) -> None:
        key = self._children_key(index_url)
        # Named by a digest: a hostile index's children of 8 KB addresses, each a field,
        # kept 400 KB a poll for the hash's 30 days.
        await self._write(
            ("HSET", key, _digest(child_url), json.dumps(dataclasses.asdict(visit))),
            ("EXPIRE", key, self._ttl),
        )


def _text(value: bytes | None) -> str | None:
    # A validator not UTF-8 (not one Caravan stored) is none: the page is fetched whole.
    try:
        return value.decode() if value else None
    except UnicodeDecodeError:
        return None


def _number(value: bytes | None) -> int | None:
    # One not written by Caravan (not digits) is none; one past what a delete takes is
    # refused where it is used (superseded): either way nothing is removed.
    return int(value) if value and value.isdigit() and len(value) <= 19 else None


def _digest(*parts: str) -> str:
    """A fixed-length key part for any address (lines apart, as a URL holds no newline)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
