"""The polite, guarded fetcher: how ingest and the rate feed read the web.

Per host: robots.txt honoured for our User-Agent (and its Crawl-delay), at most
`host_concurrency` requests at once and `host_delay` seconds between their
starts. Per request: conditional GET, a timeout, a body limit counted while
decompressing (inflate.py: no gzip bombs, no stacked encodings), redirects
followed one by one so each hop is checked (robots, loops, the SSRF guard in
ssrf.py dials only public addresses), and retries with jittered exponential
backoff on 429, 5xx and timeouts, waiting at least what Retry-After asks (capped:
a server does not decide how long a worker sleeps; a host deferred for longer
than a poll can wait fails fast, and so does one where two URLs' retries all timed out).
A whole fetch, all of that included, has a deadline of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx
import structlog

from shared.backoff import RETRYABLE_STATUSES, Backoff, capped_seconds, retry_after_seconds
from shared.fetch import FetchError, read_local
from shared.inflate import ACCEPT_ENCODING, BoundedDecoder
from shared.robots import RobotsRules, rules_from_response
from shared.ssrf import AddressRefused, AllowList, HeadBounded, guarded_transport

log = structlog.get_logger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ROBOTS_MAX_BYTES = 500 * 1024  # what crawlers must read at least (RFC 9309)
_ROBOTS_TTL = 24 * 3600.0
_ROBOTS_UNREACHABLE_TTL = 600.0
_NO_LINE_END = f"robots.txt of no line end within its first {_ROBOTS_MAX_BYTES // 1024} KiB"
_MAX_HOSTS = 10_000
# What the robots.txt rules of all hosts may weigh together, in characters of rules. One
# host's 5,000 long wildcard rules keep about 9 MiB, and hosts cost nothing to make
# (wildcard DNS): a count of hosts alone bounds no memory. Past it the rules loaded
# longest ago are forgotten, and read again when their host is fetched next.
_ROBOTS_MAX_CHARS = 4_000_000
# The timeout bounds each read; a whole request gets this many of them, so a
# server dripping a byte per read cannot hold a host slot forever.
_DEADLINE_TIMEOUTS = 3
# A whole fetch (robots.txt, redirects, retries and their waits, the host's turn) gets
# this many request deadlines. An honest server answers each request in a fraction of
# one: five leave room for the retries of a host that times out, or a redirect to
# another site and its robots.txt. Without it a server keeping each answer just inside
# its deadline, across redirects and robots.txt, held one URL for about 55 minutes.
_FETCH_DEADLINE_REQUESTS = 5
# What servers are asked to accept at least (RFC 9110 §4.1). Past it a URL is no
# article's, and everything done with it (robots.txt matching, canonicalising) costs
# its length: a link or a redirect of megabytes held the event loop for seconds.
MAX_URL_LENGTH = 8192


class Refused(FetchError):
    """Not fetched on purpose (robots.txt, an internal address); retrying will not help."""


class HostDeferred(FetchError):
    """The host asked for a pause longer than a request may wait (Retry-After), or two of
    its URLs kept timing out: the request fails at once rather than sleeping in the
    host's queue."""


class _TimedOut(FetchError):
    """No answer, or not all of it, in time: worth retrying."""


class DeadlinePassed(FetchError):
    """The whole fetch (robots.txt, redirects, retries) took longer than it may."""


@dataclass(frozen=True)
class FetchPolicy:
    user_agent: str
    timeout: float = 20.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    host_delay: float = 1.0
    host_concurrency: int = 2
    # The longest a server may defer us (Retry-After) and space our requests (Crawl-delay).
    max_retry_after: float = 3600.0
    max_crawl_delay: float = 60.0
    allow: AllowList = field(default_factory=AllowList)


@dataclass(frozen=True)
class Validators:
    """What a server said to identify a version: sent back for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        # Checked again here: values kept in Redis before they were checked on arrival.
        sent = {
            "If-None-Match": usable_validator(self.etag),
            "If-Modified-Since": usable_validator(self.last_modified),
        }
        return {name: value for name, value in sent.items() if value}


# A validator goes back in a request header, which is ASCII: httpx refuses anything else
# while building the request, so one answer's `ETag: "p\xff"` (or a Last-Modified in
# French) failed every poll of its source for the 30 days it was kept. And no version
# needs more than this to name it: a 60 KB ETag was 99 KB of Redis an article.
_VALIDATOR = re.compile(r"[\x20-\x7e]{1,256}")


def usable_validator(value: str | None) -> str | None:
    """`value` when it can be sent back as it came, else None (the GET is unconditional)."""
    return value if value is not None and _VALIDATOR.fullmatch(value) else None


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content: bytes = b""
    content_type: str | None = None
    validators: Validators = Validators()
    not_modified: bool = False


class _HostGate:
    """At most `concurrency` requests to one host at once, starts `delay` apart."""

    def __init__(self, concurrency: int, delay: float, max_wait: float) -> None:
        self.delay = delay
        self._max_wait = max_wait
        self._slots = asyncio.Semaphore(concurrency)
        self._lock = asyncio.Lock()
        self._next_start = 0.0
        self._deferred_until = 0.0
        self._users = 0  # requests in flight or waiting
        # The last URL whose retries all timed out, and when.
        self._timed_out: tuple[str, float] | None = None

    @property
    def idle(self) -> bool:
        return self._users == 0 and self._next_start <= time.monotonic()

    async def enter(self) -> None:
        """Wait for a slot and for the host's turn; on cancellation hold nothing.
        HostDeferred when the host asked for a pause longer than `max_wait`."""
        self._check_deferral()
        self._users += 1
        acquired = False
        try:
            await self._slots.acquire()
            acquired = True
            async with self._lock:
                self._check_deferral()  # deferred while this request waited for a slot
                now = time.monotonic()
                start = max(now, self._next_start)
                self._next_start = start + self.delay
            await asyncio.sleep(start - now)
        except BaseException:
            if acquired:
                self._slots.release()
            self._users -= 1
            raise

    def leave(self) -> None:
        self._slots.release()
        self._users -= 1

    def defer(self, seconds: float) -> None:
        """The host asked us to back off: nobody starts a request to it for `seconds`."""
        until = time.monotonic() + seconds
        self._next_start = max(self._next_start, until)
        self._deferred_until = max(self._deferred_until, until)

    def timed_out(self, url: str, window: float) -> None:
        """`url`'s retries all timed out. The host is deferred for `window` when another of
        its URLs' did too within it: one page that never answers costs only its own
        fetches, not its host's feed and other pages."""
        now = time.monotonic()
        if self._timed_out is not None:
            last_url, at = self._timed_out
            if last_url != url and now - at < window:
                self.defer(window)
        self._timed_out = (url, now)

    def _check_deferral(self) -> None:
        remaining = self._deferred_until - time.monotonic()
        if remaining > self._max_wait:
            msg = (
                f"host deferred for another {remaining:.0f}s"
                " (it asked, with Retry-After, or two of its URLs kept timing out)"
            )
            raise HostDeferred(msg)


@dataclass
class _Robots:
    rules: RobotsRules
    expires: float


class PoliteFetcher:
    def __init__(self, policy: FetchPolicy, *, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._backoff = Backoff(policy.backoff_base, policy.backoff_max, rng)
        self._client = httpx.AsyncClient(
            # Only what inflate.py decodes: the raw body is read and inflated there.
            headers={"User-Agent": policy.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            timeout=httpx.Timeout(policy.timeout),
            follow_redirects=False,
            transport=guarded_transport(policy.allow, max_connections=100),
        )
        self._gates: dict[str, _HostGate] = {}
        # Hosts kept before the next sweep of idle ones: twice what the last sweep kept,
        # so that hosts deferred for an hour (429, Retry-After) are not scanned again at
        # every new host (5 ms each at 10,000 of them).
        self._sweep_at = _MAX_HOSTS
        self._robots: dict[str, _Robots] = {}  # oldest loaded first
        self._robots_chars = 0
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> PoliteFetcher:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    @property
    def deadline(self) -> float:
        """Seconds one fetch of a URL may take in all."""
        return self.policy.timeout * _DEADLINE_TIMEOUTS * _FETCH_DEADLINE_REQUESTS

    async def fetch(self, location: str, validators: Validators | None = None) -> Fetched:
        """GET a URL (or read a local path). Raises FetchError: Refused, HostDeferred,
        DeadlinePassed among them."""
        if not location.startswith(("http://", "https://")):
            content = await read_local(location, max_bytes=self.policy.max_bytes)
            return Fetched(location, content)
        if len(location) > MAX_URL_LENGTH:
            raise FetchError(f"{location[:100]}…: a URL of {len(location)} characters")
        try:
            httpx.URL(location)
            _origin(location)
        except (httpx.InvalidURL, ValueError) as exc:
            raise FetchError(f"{location!r}: not a valid URL ({exc})") from exc
        within = asyncio.timeout(self.deadline)
        try:
            async with within:
                return await self._follow(location, validators or Validators())
        except TimeoutError as exc:
            if not within.expired():
                raise
            msg = f"{location}: not fetched within {self.deadline:g}s in all"
            raise DeadlinePassed(msg) from exc

    async def _follow(self, location: str, validators: Validators) -> Fetched:
        """The document at `location`, its redirects followed one by one."""
        url = location
        seen = {url}
        for _ in range(self.policy.max_redirects + 1):
            response = await self._get_with_retries(url, validators)
            if response.status not in _REDIRECTS:
                return response.fetched(url, conditional=bool(validators.headers()))
            if not response.location:
                raise FetchError(f"{url}: HTTP {response.status} without a Location")
            target = _redirect_target(url, response.location)
            if urlsplit(target).scheme not in ("http", "https"):
                raise Refused(f"{url}: redirect to a non-web URL {target!r}")
            if target in seen:
                raise FetchError(f"{location}: redirect loop at {target}")
            seen.add(target)
            url = target
        raise FetchError(f"{location}: more than {self.policy.max_redirects} redirects")

    async def _get_with_retries(self, url: str, validators: Validators) -> _Response:
        await self._check_robots(url)
        host = _origin(url)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._get(url, validators.headers(), self.policy.max_bytes)
            except _TimedOut:
                if attempt > self.policy.retries:
                    # When the host, not one page, keeps timing out: for as long as one more
                    # fetch could take, its other links fail at once (HostDeferred) rather
                    # than each costing as much again.
                    self._gate(host).timed_out(url, self.deadline + self.policy.backoff_max)
                    raise
                wait = self._backoff.delay(attempt)
                self._gate(host).defer(wait)
                log.info("fetch timed out, retrying", url=url, attempt=attempt, wait=round(wait, 3))
                continue
            if response.status not in RETRYABLE_STATUSES:
                return response
            asked = retry_after_seconds(
                response.retry_after, datetime.now(UTC), self.policy.max_retry_after
            )
            if asked is not None and asked > self.policy.backoff_max:
                # Waiting that long inside one poll would stall the source; the host
                # stays deferred and the next poll tries again.
                self._gate(host).defer(asked)
                raise FetchError(f"{url}: HTTP {response.status}, retry after {asked:.0f}s")
            if attempt > self.policy.retries:
                raise FetchError(f"{url}: HTTP {response.status} after {attempt} attempts")
            wait = max(asked or 0.0, self._backoff.delay(attempt))
            self._gate(host).defer(wait)
            log.info(
                "fetch answered with a retryable status",
                url=url,
                status=response.status,
                attempt=attempt,
                wait=round(wait, 3),
            )

    async def _get(
        self, url: str, headers: dict[str, str], max_bytes: int, *, whole: bool = True
    ) -> _Response:
        """One request; with `whole` False a body is cut at `max_bytes` rather than refused."""
        gate = self._gate(_origin(url))
        await gate.enter()
        try:
            async with (
                asyncio.timeout(self.policy.timeout * _DEADLINE_TIMEOUTS),
                self._client.stream("GET", url, headers=headers) as response,
            ):
                if isinstance(stream := response.extensions.get("network_stream"), HeadBounded):
                    stream.head_taken()
                content = b""
                if 200 <= response.status_code < 300:
                    content = await _read_limited(response, url, max_bytes, whole=whole)
                return _Response(
                    status=response.status_code,
                    content=content,
                    content_type=response.headers.get("content-type"),
                    location=response.headers.get("location"),
                    retry_after=response.headers.get("retry-after"),
                    validators=Validators(
                        usable_validator(response.headers.get("etag")),
                        usable_validator(response.headers.get("last-modified")),
                    ),
                )
        except AddressRefused as exc:
            raise Refused(f"{url}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise _TimedOut(f"{url}: timed out ({type(exc).__name__})") from exc
        except TimeoutError as exc:
            raise _TimedOut(
                f"{url}: not complete within {self.policy.timeout * _DEADLINE_TIMEOUTS:g}s"
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
        finally:
            gate.leave()

    def _gate(self, origin: str) -> _HostGate:
        if origin not in self._gates:
            if len(self._gates) >= self._sweep_at:
                self._forget_idle_hosts()
                self._sweep_at = max(_MAX_HOSTS, 2 * len(self._gates))
            self._gates[origin] = _HostGate(
                self.policy.host_concurrency, self.policy.host_delay, self.policy.backoff_max
            )
        return self._gates[origin]

    def _forget_idle_hosts(self) -> None:
        """Article links reach ever more hosts; what is kept per host must not grow forever."""
        for origin in [o for o, gate in self._gates.items() if gate.idle]:
            lock = self._robots_locks.get(origin)
            if lock is not None and lock.locked():
                continue
            # Together: a gate's delay comes from the host's robots.txt (Crawl-delay).
            del self._gates[origin]
            self._forget_robots(origin)
            self._robots_locks.pop(origin, None)

    def _forget_robots(self, origin: str) -> None:
        forgotten = self._robots.pop(origin, None)
        if forgotten is not None:
            self._robots_chars -= forgotten.rules.size

    async def _check_robots(self, url: str) -> None:
        rules = await self._rules(_origin(url))
        reason = rules.refusal(url)
        if reason is not None:
            raise Refused(f"{url}: {reason} for {self.policy.user_agent.split('/')[0]}")

    async def _rules(self, origin: str) -> RobotsRules:
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:  # one robots.txt request per host, however many fetches wait
            cached = self._robots.get(origin)
            if cached and cached.expires > time.monotonic():
                return cached.rules
            rules = await self._load_robots(origin)
            ttl = _ROBOTS_UNREACHABLE_TTL if rules.disallow_all else _ROBOTS_TTL
            self._forget_robots(origin)
            for oldest in list(self._robots):
                if self._robots_chars + rules.size <= _ROBOTS_MAX_CHARS:
                    break
                self._forget_robots(oldest)
            self._robots[origin] = _Robots(rules, time.monotonic() + ttl)
            self._robots_chars += rules.size
            crawl_delay = rules.crawl_delay() or 0.0
            gate = self._gate(origin)
            gate.delay = max(
                self.policy.host_delay, capped_seconds(crawl_delay, self.policy.max_crawl_delay)
            )
            return rules

    async def _load_robots(self, origin: str) -> RobotsRules:
        url = f"{origin}/robots.txt"
        try:
            for _ in range(self.policy.max_redirects + 1):
                # Uncompressed, so that one past the limit can be cut there and read.
                response = await self._get(
                    url, {"Accept-Encoding": "identity"}, _ROBOTS_MAX_BYTES + 1, whole=False
                )
                if response.status not in _REDIRECTS or not response.location:
                    break
                url = _redirect_target(url, response.location)
        # An internal address, or a host deferred: the document's fetch fails the same
        # way, rather than its host being shut as if robots.txt were unreachable.
        except (Refused, HostDeferred):
            raise
        except FetchError as exc:
            log.warning(
                "robots.txt unreachable, host skipped for now", origin=origin, error=str(exc)
            )
            return rules_from_response(None, "", self.policy.user_agent)
        if response.status in RETRYABLE_STATUSES:  # its host shut for a while (robots.py)
            asked = retry_after_seconds(
                response.retry_after, datetime.now(UTC), self.policy.max_retry_after
            )
            if asked is not None:
                self._gate(origin).defer(asked)
        content = _complete_lines(response.content, _ROBOTS_MAX_BYTES)
        if content is None:
            # Read as empty it would allow everything: no rule of it could be read.
            log.warning("robots.txt of no line end within its limit, host skipped", origin=origin)
            return RobotsRules(None, disallow_all=True, why=_NO_LINE_END)
        return rules_from_response(
            response.status, content.decode("utf-8", errors="replace"), self.policy.user_agent
        )


@dataclass(frozen=True)
class _Response:
    status: int
    content: bytes
    content_type: str | None
    location: str | None
    retry_after: str | None
    validators: Validators

    def fetched(self, url: str, *, conditional: bool) -> Fetched:
        if self.status == 304:
            if not conditional:
                # Nothing asked about a version (RFC 9110 §15.4.5): taken as "unchanged",
                # the page was never read, and its article never published.
                raise FetchError(f"{url}: HTTP 304 to a request that was not conditional")
            return Fetched(url, validators=self.validators, not_modified=True)
        if not 200 <= self.status < 300:
            raise FetchError(f"{url}: HTTP {self.status}")
        return Fetched(url, self.content, self.content_type, self.validators)


# A body costs per piece it arrives in (a read or a chunk: a parse, an event, an
# await), not only per byte: 10 MB sent as 2-byte chunks held the event loop for
# most of a minute. Honest servers send pieces of a TCP segment (536 bytes at the
# least) or the items a streaming server writes (a sitemap's <url>, a few hundred
# bytes), so past the first few thousand pieces a body must average at least this
# many bytes a piece: 10 MB then costs at most about 80,000 pieces.
_BODY_FREE_PIECES = 4096
_BODY_MIN_PIECE_BYTES = 128


async def _read_limited(
    response: httpx.Response, url: str, max_bytes: int, *, whole: bool = True
) -> bytes:
    """The body, decoded from the raw stream with `max_bytes` bounding what it inflates to
    and the size of the pieces it may arrive in. With `whole` False, the first `max_bytes`
    sent are read and the rest left unread (a compressed body cut so is still refused)."""
    declared = response.headers.get("content-length", "")
    if whole and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{url}: body of {declared} bytes is over the {max_bytes}-byte limit")
    body = bytearray()
    pieces = received = 0
    try:
        decoder = BoundedDecoder(response.headers.get("content-encoding"), max_bytes)
        async for chunk in response.aiter_raw():
            pieces += 1
            received += len(chunk)
            if pieces > _BODY_FREE_PIECES and received < pieces * _BODY_MIN_PIECE_BYTES:
                msg = f"body sent in too many pieces ({pieces} for {received} bytes)"
                raise FetchError(msg)
            if whole:
                body += decoder.feed(chunk)
                continue
            body += decoder.feed(chunk[: max_bytes - received + len(chunk)])
            if received >= max_bytes:
                break
        decoder.finish()
    except FetchError as exc:
        raise FetchError(f"{url}: {exc}") from exc
    return bytes(body)


def _complete_lines(content: bytes, limit: int) -> bytes | None:
    """`content`, or when it is longer than `limit` its lines that end within it (at a
    CR or an LF: RFC 9309 §2.2 allows either alone); None when no line does."""
    if len(content) <= limit:
        return content
    end = max(content.rfind(b"\n", 0, limit), content.rfind(b"\r", 0, limit))
    return None if end < 0 else content[: end + 1]


def _redirect_target(url: str, location: str) -> str:
    """Where a redirect from `url` leads; FetchError when its Location is no URL
    (`http://[::1`): a ValueError there failed the whole poll it happened in."""
    if len(location) > MAX_URL_LENGTH:  # before joining it: that costs its length too
        raise FetchError(f"{url}: redirect to a URL of {len(location)} characters")
    try:
        target = urljoin(url, location)
        httpx.URL(target)
        urlsplit(target).port  # noqa: B018 (raises past 65535, which httpx lets through)
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchError(f"{url}: redirect to an unusable URL {location!r} ({exc})") from exc
    if len(target) > MAX_URL_LENGTH:  # a relative Location, joined
        raise FetchError(f"{url}: redirect to a URL of {len(target)} characters")
    return target


def _origin(url: str) -> str:
    """The site a URL is on, as its politeness and robots.txt are kept: its scheme, and
    the host and port httpx dials, however the URL spells them. By the netloc as written,
    `http://u1@host/`, `http://host:80/`, `http://HOST./`, `http://host。com/` (IDNA's
    other dots) and a name's Unicode and xn-- forms were other sites, each with a gate
    and a robots.txt of its own: a feed could set a crawl free of its Crawl-delay."""
    parsed = httpx.URL(url)
    if parsed.port is not None and not 0 < parsed.port < 65536:
        # httpx takes it, and the resolver wraps it: :65616 dials :80, another origin.
        raise ValueError(f"port {parsed.port} is past 65535")
    host = parsed.raw_host.decode("ascii").rstrip(".")
    with contextlib.suppress(OSError, UnicodeError):
        host = socket.inet_ntoa(socket.inet_aton(host))  # 127.1, 0x7f.1, 2130706433
    with contextlib.suppress(ValueError):
        host = ipaddress.ip_address(host).compressed  # one spelling of an IPv6 address
    if ":" in host:
        host = f"[{host}]"
    port = "" if parsed.port is None else f":{parsed.port}"  # None: the scheme's own
    return f"{parsed.scheme}://{host}{port}"
