"""Canonical URLs: one article, one key, whatever tracking the link carried."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shared.events import is_http_url
from shared.fetcher import MAX_URL_LENGTH

_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "__hs", "wt_", "aspsessionid")
_TRACKING_NAMES = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "igshid",
        "_ga",
        "_gl",
        "ref_src",
        "cmpid",
        "ncid",
        "mkt_tok",
        "spm",
        "at_medium",
        "at_campaign",
        # Session ids: old CMSs put a new one in every link of every answer, which made
        # each poll's items new articles (fetched, published and kept again).
        "phpsessid",
        "jsessionid",
        "sessionid",
        "cfid",
        "cftoken",
    }
)
# A servlet's session id in the path (`story.html;jsessionid=…`), as the query's above.
_PATH_SESSION = re.compile(r";jsessionid=[^/;]*", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[a-z0-9\-._~\u0080-\U0010ffff]+|[0-9a-f:.]+")


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_NAMES or lowered.startswith(_TRACKING_PREFIXES)


def canonicalize_url(url: str) -> str:
    """Lower-case scheme and host, drop default ports, tracking parameters, session ids
    and the fragment.

    The order of the remaining query parameters is kept: some sites route on it.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6: urlsplit drops the brackets, the URL needs them
        host = f"[{host}]"
    netloc = host
    if parts.port and parts.port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{parts.port}"
    # Escapes of bytes that are not UTF-8 (a cp1251 site's `?title=%C0%EB`) kept as
    # they were: replaced, two articles' addresses became one key.
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True, errors="surrogateescape")
            if not is_tracking_param(k)
        ],
        errors="surrogateescape",
    )
    path = _PATH_SESSION.sub("", parts.path) or "/"
    return urlunsplit((scheme, netloc, path, query, ""))


def is_web_url(url: str) -> bool:
    """An http(s) URL with a host, which canonicalize_url (hence article keys) can read.

    Sources write `http://[`, ports past 65535, `https://` alone and URLs of
    megabytes; such a link is left out where it is found rather than failing (or
    stalling) whatever uses it later.
    """
    # The contract's own test too: `https://\n  host/` (a link a pretty-printer wrapped)
    # has a host to urlsplit, and no event may carry it.
    if not url.startswith(("http://", "https://")) or not is_http_url(url):
        return False
    if len(url) > MAX_URL_LENGTH:
        return False
    # Counted in UTF-8 bytes too: canonicalising percent-encodes each byte of the query
    # (three characters a byte), and the canonical URL is a keyword Elasticsearch
    # refuses past 32,766 bytes. 8,192 bytes stay under it; 8,192 emoji did not. A lone
    # surrogate (a JSON-LD `\ud800`) has no bytes: canonicalising it raised.
    try:
        if len(url.encode()) > MAX_URL_LENGTH:
            return False
    except UnicodeEncodeError:
        return False
    # What canonicalize_url reads, without building it: its query handling cannot fail,
    # and its host is the one read here (a third of a sitemap's parse, before).
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises past 65535)
    except ValueError:  # "Invalid IPv6 URL", "Port out of range"
        return False
    # A host of letters, digits and `-._~` (any script: events carry it escaped), or an
    # IPv6 address. No name holds anything else, and Go's net/url refuses an escape of
    # such a character in a host (`a%20b.kz`), which is how events would carry it.
    host = parts.hostname
    return host is not None and _HOST.fullmatch(host) is not None
