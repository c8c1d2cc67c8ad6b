"""Markup cut to what its parsers read in linear time, before they read it.

libxml2's HTML parser checks each attribute of a tag against those before it, and
feedparser looks each one up among all of them: a tag of tens of thousands of
attributes held a parse worker past its timeout (19 s for 40,000), and the page or the
whole feed was lost. Real tags have tens.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import AnyStr

MAX_ATTRIBUTES = 1000

# One attribute, as an HTML tokenizer splits them: separators, a name, maybe a value
# (an unclosed quote runs to the end, as it does for the parser). Possessive throughout,
# and every part of a tag optional: a match never fails nor backtracks, so one pass
# forward reads each character a bounded number of times.
_ATTRIBUTE = r"""[\s/]*+[^\s/>][^\s/>=]*+(?:\s*+=\s*+(?:"[^"]*+"?|'[^']*+'?|[^\s>]*+))?+"""
# Every `<` and a letter, whatever it is in: skipping what looked like comments and
# scripts let `<!-->`, a `<script` inside a <title> or CDATA, and the like hide a tag
# that the parser then read whole (review). Text cut so is text the parsers drop: no
# script on the benchmark's 120 pages or the real ones comes near (802 at most).
_TAGS = rf"<[A-Za-z][^\s/>]*+(?P<attributes>(?:{_ATTRIBUTE})*+)"
_TEXT_TAGS = re.compile(_TAGS, re.ASCII)
_TEXT_ATTRIBUTE = re.compile(_ATTRIBUTE, re.ASCII)
_BYTES_TAGS = re.compile(_TAGS.encode())
_BYTES_ATTRIBUTE = re.compile(_ATTRIBUTE.encode())


def page_with_few_attributes(html: str) -> str:
    """The page with each tag's attributes past MAX_ATTRIBUTES dropped."""
    return _few_attributes(html, _TEXT_TAGS, _TEXT_ATTRIBUTE)


def feed_with_few_attributes(xml: bytes) -> bytes:
    """The feed with each tag's attributes past MAX_ATTRIBUTES dropped."""
    return _few_attributes(xml, _BYTES_TAGS, _BYTES_ATTRIBUTE)


def _few_attributes(
    markup: AnyStr, tags: re.Pattern[AnyStr], attribute: re.Pattern[AnyStr]
) -> AnyStr:
    # Dropped, not refused: the extra attributes are the junk (real ones come first and
    # are few), while refusing would lose the article's text, or the whole feed.
    pieces: list[AnyStr] = []
    kept_to = 0
    for tag in tags.finditer(markup):
        start, end = tag.span("attributes")
        # Each attribute takes two characters at least: a shorter run cannot be too many.
        if end - start <= 2 * MAX_ATTRIBUTES:
            continue
        extra = next(islice(attribute.finditer(markup, start, end), MAX_ATTRIBUTES, None), None)
        if extra is not None:
            pieces.append(markup[kept_to : extra.start()])
            kept_to = end
    if not pieces:
        return markup
    pieces.append(markup[kept_to:])
    return markup[:0].join(pieces)
