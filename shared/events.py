"""Event contracts: what travels on the Redis streams.

Every event carries a `schema_version`, a unique `event_id`, the UTC time it
`occurred_at`, and a deterministic `idempotency_key` that the indexer uses as the
Elasticsearch `_id`, so replaying an event can never create a second document.
Consumers must ignore fields they do not know (the tolerant-reader rule): new
optional fields do not bump `schema_version`, removed or retyped ones do.

URL fields are URIs (RFC 3986, see web_url): what java.net.URI and Go's net/url read.
A producer's event with a raw space, control, bidi control or other non-ASCII
character in one does not validate; one read from a stream (JSON), published before
URLs were escaped, is read escaped instead of refused. An article's key stays
sha256 of its canonical URL as read from its source, before escaping: the key of
every URL an older version published is unchanged, so nothing is indexed twice. The
producer gives it (`idempotency_key`), readers take the one the event carries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Annotated, Literal
from urllib.parse import quote
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
    computed_field,
)

from shared.decimals import CHANGE_PCT, RATE, Bounds, shown, within


def utcnow() -> datetime:
    return datetime.now(UTC)


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        # 0001-01-01T00:00+14:00 is no moment in UTC's range: a validation error naming
        # the field, where an OverflowError was a dead letter that said nothing of which.
        msg = "outside the range of dates once in UTC"
        raise ValueError(msg) from exc


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

# How far ahead of this clock an observation may be dated: clocks drift by seconds. The
# version is the observation's time, so one event dated 9999 outranked every later real
# update of its document, each acknowledged as stale without a word, for good.
MOST_AHEAD = timedelta(hours=1)


# An entry's payload at most, as a reader takes it: a dead letter keeps 16 MiB of an
# entry, and Elasticsearch refuses a document a fifth that size on a 512 MiB heap anyway.
MAX_EVENT_BYTES = 16 * 1024 * 1024


def _not_ahead(value: datetime) -> datetime:
    if value - utcnow() > MOST_AHEAD:
        msg = f"more than {MOST_AHEAD.total_seconds() / 60:.0f} minutes ahead of this clock"
        raise ValueError(msg)
    return value


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _not_before_epoch(value: datetime) -> datetime:
    # The version is milliseconds since 1970: Elasticsearch refuses a negative one, and
    # with it the whole bulk the event came in, each half retried to find it.
    if value < EPOCH:
        msg = "before 1970-01-01T00:00:00Z, which no version can stand for"
        raise ValueError(msg)
    return value


# The moment a version was observed (fetched_at): its external version in the index.
ObservedAt = Annotated[UtcDatetime, AfterValidator(_not_ahead), AfterValidator(_not_before_epoch)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

# The scheme written out at the very start, then a host: a browser strips leading
# blanks and drops tabs and newlines inside a scheme ("java\tscript:"), so anything
# looser could still be a javascript: link on the search page. The scheme's cases spelt
# out: IGNORECASE would take the long s (U+017F) for "s", and "httpſ://" is no scheme
# to a browser or a consumer's URL parser.
_HTTP_URL = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]")


def is_http_url(url: str) -> bool:
    """Whether `url` is an http:// or https:// URL with a host, safe to render as a link."""
    return _HTTP_URL.match(url) is not None


def http_url(url: str) -> str:
    """`url` if it is an http(s) URL; else a ValueError (to pydantic, a validation error)."""
    if not is_http_url(url):
        msg = f"not an http(s) URL: {shown(url)}"
        raise ValueError(msg)
    return url


# What browsers strip around a URL (C0 controls and space), and drop inside it.
_AROUND = "".join(map(chr, range(0x21)))
_INSIDE = str.maketrans("", "", "\t\n\r")
# A `%` that opens no escape, and runs of what RFC 3986 has no place for: spaces,
# controls, `"<>\\^`{|}`, bidi controls and every other non-ASCII character.
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_NOT_URI = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
_BRACKETS = str.maketrans({"[": "%5B", "]": "%5D"})
# A URL web_url leaves as it is, told in one match: nearly every one. The indexer reads
# three a document, and the whole way took 5.6 µs each, a tenth of its CPU a document.
_PLAIN_URI = re.compile(
    r"[A-Za-z0-9\-._~:/?@!$&'()*+,;=]*(?:%[0-9A-Fa-f]{2}[A-Za-z0-9\-._~:/?@!$&'()*+,;=]*)*"
    r"(?:#[A-Za-z0-9\-._~:/?@!$&'()*+,;=]*(?:%[0-9A-Fa-f]{2}[A-Za-z0-9\-._~:/?@!$&'()*+,;=]*)*)?"
)


def _escaped(run: re.Match[str]) -> str:
    # surrogatepass: a JSON `\ud800` is still bytes to escape, not a failure to read.
    return quote(run.group(), safe="", errors="surrogatepass")


def web_url(url: str) -> str:
    """`url` as a URI (RFC 3986) that java.net.URI and Go's net/url read: the form
    in which events carry URLs.

    As a browser serialises it: blanks and controls around it stripped, tabs and
    newlines inside it dropped, spaces, controls and non-ASCII characters (path,
    query, fragment and host alike) percent-encoded as UTF-8. Unlike a browser, the
    few ASCII characters RFC 3986 forbids and browsers leave (`|`, `^`, `\\`) are
    encoded too, and so are a `%` that opens no escape (`%25`), `[` and `]` outside
    the host and a second `#`, which java.net.URI or Go's net/url refuse. A host in
    another script stays itself, percent-encoded (RFC 3986 3.2.2), not IDNA: what is
    escaped is what was written. Idempotent; a URL of RFC 3986's characters, which
    almost every one is, is returned as it is.
    """
    if _PLAIN_URI.fullmatch(url):
        return url
    url = _STRAY_PERCENT.sub("%25", url.strip(_AROUND).translate(_INSIDE))
    # `[` and `]` only around an IPv6 host, `#` once: java.net.URI refuses any other.
    authority = _AUTHORITY.match(url)
    start = authority.end() if authority else 0
    head, hash_, fragment = url[start:].partition("#")
    rest = head + hash_ + fragment.replace("#", "%23")
    return _NOT_URI.sub(_escaped, url[:start] + rest.translate(_BRACKETS))


def _published(url: str, info: ValidationInfo) -> str:
    """A URL field as events carry it. Read from a stream (JSON), an event published
    before URLs were escaped may hold a feed's link as written: it is read escaped, as
    it would be published now, not refused (the indexer dead-letters what it refuses).
    Built in Python, the event is a producer's, which must publish web_url's form."""
    if info.mode == "json":
        return web_url(url)
    if web_url(url) != url:
        msg = f"a URL with characters RFC 3986 has no place for (use web_url): {shown(url)}"
        raise ValueError(msg)
    return url


# The checks are validators, not JSON Schema patterns: v1 consumers accept any
# string here, and what producers may send only narrows, so nothing breaks for them
# (tests/contracts counts every constraint change in the schema as breaking).
HttpUrl = Annotated[
    NonEmpty,
    AfterValidator(http_url),
    AfterValidator(_published),
    Field(description="an http:// or https:// URL"),
]
WebUrl = Annotated[str, AfterValidator(_published)]


ArticleId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{32}$"),
    Field(description="the article's `_id`: the first 32 hex digits of sha256(canonical URL)"),
]
ContentHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
_ARTICLE_KEY = re.compile(r"[0-9a-f]{32}")
# Keys an article event replaces at most: ingest names the one it published before.
SUPERSEDED_MOST = 4


class SupersededKey(BaseModel):
    """A key an article was published under before, and the version it was published
    at there: only that very version is this article's to remove. Another article may
    have been written under the key since, or before if this one's copy was never
    stored; that one stays."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    key: ArticleId
    # Elasticsearch's external versions end at 2^63-1, and the delete goes one past it.
    version: int = Field(
        ge=0, le=2**63 - 2, strict=True, description="the `version` published under `key`"
    )


Superseded = Annotated[list[SupersededKey], Field(max_length=SUPERSEDED_MOST, fail_fast=True)]


def _bounded(bounds: Bounds) -> AfterValidator:
    # BadDecimal is a ValueError, which pydantic reports as a validation error.
    return AfterValidator(lambda value: within(value, bounds))


_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _decimal_text(value: object) -> object:
    """A decimal as the contract writes it, a string of ASCII digits (or, in Python, a
    Decimal). A JSON number reaches here as a float, its digits already lost; `1_000`
    and `٣` are numbers to Python alone, so other consumers refused what was indexed."""
    if isinstance(value, Decimal) or (isinstance(value, str) and _PLAIN_DECIMAL.fullmatch(value)):
        return value
    # Not the value of a number: an int of 5,000 digits has no str() in Python.
    given = shown(value) if isinstance(value, str) else f"a JSON {type(value).__name__}"
    msg = f'must be a decimal string such as "0.011560", not {given}'
    raise ValueError(msg)


def _plain(value: Decimal) -> str:
    # Written out in full: str() gave `7.9E-7` and `2.0E+2`, which many decimal types
    # outside Python do not parse.
    return format(value, "f")


# A validator, not a JSON Schema pattern, for the reason given at HttpUrl; written as
# plain digits and a point, never an exponent.
_DECIMAL_STRING = (
    BeforeValidator(_decimal_text),
    PlainSerializer(_plain, return_type=str, when_used="json"),
)


def _version_of(moment: datetime) -> int:
    """Elasticsearch external version: later observations win, replays of older ones lose."""
    return int(moment.timestamp() * 1000)


def _standard_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_URL_SAFE = str.maketrans("-_", "+/")


def _from_base64(value: object) -> object:
    # Letters written before the switch to standard base64 are URL-safe: read both.
    if isinstance(value, str):
        try:
            return base64.b64decode(value.translate(_URL_SAFE), validate=True)
        except binascii.Error as error:
            msg = f"not base64: {error}"
            raise ValueError(msg) from error
    return value


# Standard base64 with padding (RFC 4648 section 4): every language's default decoder.
Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(_standard_base64, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]


def _absent(value: object) -> bool:
    return value is None


# The contract version this code writes and reads; see docs/events.md on bumping it.
SCHEMA_VERSION: Literal[1] = 1


class Event(BaseModel):
    # Every field with a default is still always written, so the published schema
    # lists it as required: consumers can rely on it being there.
    model_config = ConfigDict(
        frozen=True, extra="ignore", json_schema_serialization_defaults_required=True
    )

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: UtcDatetime = Field(default_factory=utcnow)
    # W3C trace context of the span that published the event, when tracing is on,
    # as the CloudEvents distributed-tracing extension puts it: top-level attributes.
    # Left out (not null) when tracing is off, as that extension has it.
    traceparent: str | None = Field(default=None, exclude_if=_absent)
    tracestate: str | None = Field(default=None, exclude_if=_absent)


class ArticleEvent(Event):
    """An article as published by a source, with its extracted text."""

    source: NonEmpty
    url: HttpUrl
    canonical_url: HttpUrl
    title: NonEmpty
    summary: str = ""
    body: str = ""
    # fail_fast: a list of a million numbers was a million errors, a gigabyte to tell.
    authors: list[str] = Field(default_factory=list, fail_fast=True)
    published_at: UtcDatetime | None = None
    language: str | None = None
    tags: list[str] = Field(default_factory=list, fail_fast=True)
    countries: list[str] = Field(default_factory=list, fail_fast=True)
    fetched_at: ObservedAt
    content_hash: ContentHash
    site_name: str | None = None
    image_url: WebUrl | None = None
    extraction: Literal["page", "feed"] | None = Field(
        default=None,
        description="where title and body came from: the article page (trafilatura) "
        "or, when that failed, the source's own fields (feed item, news "
        "sitemap entry, listing excerpt)",
    )
    # Left out (not null) when there is none: most events replace no other key.
    supersedes: Superseded | None = Field(
        default=None,
        exclude_if=_absent,
        description="keys this same article was published under before, each with the "
        "version published there (its feed link's, before its page declared another "
        "canonical URL; a canonical URL it declared before): the document under each is "
        "this article's, to remove, if its version is that very one",
    )

    # The key as it was before URLs were escaped: sha256 of the canonical URL as read
    # (`…/caravan crosses`), not of the one published (`…/caravan%20crosses`). One
    # published by an older version kept its raw characters, and its document its key:
    # keyed on the escaped form, it would be indexed a second time, the first never
    # deleted. Two raw forms escape alike (`a b`, `a%20b`), so the escaped one cannot
    # give it back: the producer gives the key (article_key of the canonical URL it
    # read), and a reader takes the one the event carries.
    # Read from the event's own `idempotency_key` (a field, not a model validator, which
    # made pydantic read every event's JSON into Python objects first: 5 µs an article).
    # None given (an event built without one): the key of its URL as published, which
    # needed no escaping (a producer's must not), so is the one it always had.
    given_key: str = Field(
        default_factory=lambda fields: article_key(fields["canonical_url"]),
        validation_alias="idempotency_key",
        exclude=True,
        repr=False,
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def idempotency_key(self) -> str:
        if _ARTICLE_KEY.fullmatch(self.given_key):
            return self.given_key
        return article_key(self.canonical_url)  # not one a producer wrote

    @computed_field  # type: ignore[prop-decorator]
    @property
    def version(self) -> int:
        return _version_of(self.fetched_at)


class QuoteEvent(Event):
    """The value of one unit of `base` in `quote` (always USD) on `as_of`."""

    base: CurrencyCode
    quote: Literal["USD"] = "USD"
    # Bounded by validators, not in the JSON Schema, for the reason given at HttpUrl.
    rate: Annotated[
        Decimal, Field(gt=0, description=f"X/USD, {RATE}"), *_DECIMAL_STRING, _bounded(RATE)
    ]
    change_pct: Annotated[Decimal, *_DECIMAL_STRING, _bounded(CHANGE_PCT)] | None = Field(
        default=None, description=f"percent, {CHANGE_PCT}"
    )
    previous_rate: Annotated[Decimal, Field(gt=0), *_DECIMAL_STRING, _bounded(RATE)] | None = None
    as_of: date
    provider: NonEmpty
    fetched_at: ObservedAt
    # Optional additions (schema_version stays 1; older events read as the defaults).
    primary: bool = True
    """Whether `provider` is the configured primary source of `base`; the others'
    quotes are kept for history and cross-checks."""
    flags: list[str] = Field(default_factory=list, fail_fast=True)
    """Doubts about the quote and how it was accepted: `disagrees:cbr` (another
    provider's rate for the same date differs beyond the tolerance), `gap` (the
    provider's previous quote is older than the previous business day, so
    `change_pct` is null), `jump:confirmed`, `jump:repeated`, `jump:released` (a
    move beyond the jump bound, accepted by another provider, by the provider's
    next as-of dates, or by an operator)."""
    stale_after: date | None = None
    """The last day this quote is current if the provider publishes nothing newer."""
    previous_as_of: date | None = None
    """The as-of date of `previous_rate`: the same provider's quote before this one."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def idempotency_key(self) -> str:
        return f"{self.base}-{self.quote}-{self.as_of.isoformat()}-{self.provider}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def version(self) -> int:
        return _version_of(self.fetched_at)


class DeadLetter(Event):
    """An entry that could not be processed, kept byte for byte (up to 16 MiB) with the reason."""

    stream: NonEmpty
    entry_id: NonEmpty = Field(
        description=(
            "the ID of the failed entry in `stream`; a quote the rate feed held back "
            "(`error_class` `RateJump`) never had one, and carries its idempotency_key"
        )
    )
    payload: Base64Bytes = b""
    other_fields: dict[str, Base64Bytes] = Field(default_factory=dict)
    error_class: NonEmpty
    error_message: str
    service: NonEmpty
    attempts: int = Field(ge=1)
    failed_at: UtcDatetime = Field(default_factory=utcnow)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def idempotency_key(self) -> str:
        return f"{self.stream}/{self.entry_id}"


class SavedSearchMatch(Event):
    """A saved search matched an article the indexer has just stored.

    Published once per saved search, article and text: a later version of the
    article is announced again only when its `content_hash` (title and body)
    changed. A downstream service consumes these to send mail or webhooks.
    """

    saved_search_id: NonEmpty = Field(
        description="the saved search (`GET /api/saved-searches/{id}` of the query API)"
    )
    article_id: ArticleId
    url: HttpUrl
    title: NonEmpty
    source: NonEmpty
    published_at: UtcDatetime | None = None
    fetched_at: UtcDatetime = Field(description="when the matched version was fetched")
    content_hash: ContentHash
    matched_at: UtcDatetime = Field(default_factory=utcnow)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def idempotency_key(self) -> str:
        return f"{self.saved_search_id}/{self.article_id}/{self.content_hash}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def version(self) -> int:
        """The matched article's version (its fetch time in ms)."""
        return _version_of(self.fetched_at)


# The longest title a reader is shown. A page's <title> of a megabyte is not a title:
# ingest cuts longer ones, and the query service clips those indexed before it did, or
# every search that found the article carried it.
TITLE_CHARS = 500
# The longest summary ingest publishes: a teaser. A feed item's description can be its
# whole article (then its body too), once 8 MB, which twice over made an event past the
# contract's MAX_EVENT_BYTES: never indexed, and every consumer made to take it.
SUMMARY_CHARS = 2000


# Tags and authors the same way: a page's ten thousand keywords, or one of a megabyte.
LABELS = 50
LABEL_CHARS = 200


def labels(items: Iterable[str]) -> list[str]:
    """The first LABELS of `items` that are at most LABEL_CHARS long."""
    return list(islice((item for item in items if len(item) <= LABEL_CHARS), LABELS))


def article_tags(own: Iterable[str], found: Iterable[str]) -> list[str]:
    """A source's own tags, which filters and saved searches rely on, all of them; and of
    the tags its pages and feeds write, the first LABELS distinct ones, sorted."""
    return sorted({*own, *labels(sorted(set(found)))})


# ISO 639 as pages, feeds and sitemaps write it (`ru`, `uzb`, `uz-Latn`, `ru_RU`), without
# its region. Anything else is no language: a feed's 33,000-character <dc:language> made
# Elasticsearch refuse the article (a keyword past its 32,766 bytes).
_LANGUAGE = re.compile(r"([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*")


def language_code(value: object) -> str | None:
    """The ISO 639 code `value` writes, lower case, or None."""
    found = _LANGUAGE.fullmatch(value.strip()) if isinstance(value, str) else None
    return found.group(1).lower() if found else None


def clipped(text: str, most: int) -> str:
    """`text`, or its first `most` characters cut back to a word and an ellipsis."""
    if len(text) <= most:
        return text
    return text[:most].rsplit(" ", 1)[0] + "…"


def article_key(canonical_url: str) -> str:
    return hashlib.sha256(canonical_url.encode()).hexdigest()[:32]


_AS_THE_FIELD = TypeAdapter(NonEmpty)


def source_key(canonical_url: str) -> str:
    """The key of the article whose canonical URL, as read from its source (before
    escaping), is `canonical_url`: the hash of it stripped as the field strips it, which
    is what every version before URLs were escaped hashed. (Not str.strip: pydantic's
    leaves U+001C to U+001F.)"""
    return article_key(_AS_THE_FIELD.validate_python(canonical_url))


def content_hash(title: str, body: str) -> str:
    return hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()


EVENT_MODELS: dict[str, type[Event]] = {
    "ArticleEvent": ArticleEvent,
    "QuoteEvent": QuoteEvent,
    "DeadLetter": DeadLetter,
    "SavedSearchMatch": SavedSearchMatch,
}
