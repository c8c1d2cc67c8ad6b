"""Whether an extracted text may be taken as the article without trying a fallback,
and whether a fallback's text replaces it; pure."""

from __future__ import annotations

import re

# Less article than this (boilerplate not counted) is a page the first pass's
# rules did not fit, or a page without an article: worth a fallback's cost.
FALLBACK_BELOW_CHARS = 500
# Less article than this share of the page's text: the first pass took one block
# of a page whose text is mostly elsewhere.
FALLBACK_BELOW_SHARE = 0.1
# Up to this much text on the page (twice the most of over a thousand article pages
# looked at). A page with more is a listing or a data dump around its article:
# there the share says nothing, and the fallbacks would swap in its teasers.
SHARE_PAGE_MAX_CHARS = 200_000
# A fallback in a looser mode than the first pass replaces its text only with at
# least this many times its article: on a page the first pass got right, such a
# fallback adds the surroundings (a standfirst, captions, share lines); on one it
# got wrong, it finds the article.
LOOSER_REPLACES_ABOVE = 2
# Only a short paragraph can be page furniture; a long one that mentions cookies
# or copyright is an article about them.
_BOILERPLATE_MAX_CHARS = 400
# A paragraph at least this much made of addresses is a link, not prose.
_URL_SHARE = 0.5
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
# Notices pages put around an article, in general wording only (never a site's
# own): reprint and copyright notices, cookie banners, subscription walls, browser
# warnings; in English and the languages of the sources. Plain phrases, looked for
# in the lower-cased paragraph: one regular expression of these alternatives took
# twenty times as long.
_NOTICES = (
    "personal, non-commercial use",
    "personal, noncommercial use",
    "presentation-ready copies",
    "order reprints",
    "all rights reserved",
    "alle rechte vorbehalten",
    "все права защищены",
    "barcha huquqlar himoyalangan",
    "uses cookies",
    "use cookies",
    "cookie policy",
    "cookie settings",
    "использует cookie",
    "использует файлы cookie",
    "verwendet cookies",
    "already a subscriber",
    "subscribe to continue",
    "to continue reading",
    "sign up for our newsletter",
    "subscribe to our newsletter",
    "enable javascript",
    "update your browser",
    "to a modern browser",
)
_NOTICE_STARTS = ("copyright", "©", "(c)")


def is_boilerplate(paragraph: str) -> bool:
    """Whether a paragraph is page furniture rather than article: a short notice
    (reprint, copyright, cookies, subscription, browser) or mostly addresses."""
    text = paragraph.strip()
    if not text or len(text) > _BOILERPLATE_MAX_CHARS:
        return False
    lowered = text.lower()
    if lowered.startswith(_NOTICE_STARTS) or any(notice in lowered for notice in _NOTICES):
        return True
    if "http" not in lowered and "www." not in lowered:
        return False
    return sum(len(url.group()) for url in _URL.finditer(text)) >= _URL_SHARE * len(text)


def substance(text: str) -> int:
    """The characters of a text's paragraphs (its lines) that are not boilerplate."""
    return sum(len(line) for line in text.splitlines() if not is_boilerplate(line))


def needs_fallback(text: str, page_chars: int) -> bool:
    """Whether a result must not be taken without trying a fallback: too little
    article in it (boilerplate aside), absolutely or for the `page_chars`
    characters of text on its page."""
    article = substance(text)
    if article < FALLBACK_BELOW_CHARS:
        return True
    return page_chars <= SHARE_PAGE_MAX_CHARS and article < FALLBACK_BELOW_SHARE * page_chars


def replaces(candidate: str, text: str, *, looser: bool) -> bool:
    """Whether a fallback's `candidate` replaces `text`: more article, and several
    times as much from a `looser` mode (any article beats none)."""
    factor = LOOSER_REPLACES_ABOVE if looser else 1
    return substance(candidate) > factor * substance(text)
