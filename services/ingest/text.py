"""Clean text out of the HTML fragments that feeds put in titles and descriptions."""

from __future__ import annotations

import lxml.html
from lxml.etree import ParserError

from services.ingest.markup import page_with_few_attributes
from shared.text import normalize_whitespace

_BLOCK_TAGS = ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr")


def html_to_text(fragment: str) -> str:
    """Text of an HTML fragment, entities decoded; scripts and styles dropped.

    A string with no markup passes through (apart from whitespace normalisation),
    so titles that are plain text are not mangled by an HTML parser.
    """
    if "<" not in fragment and "&" not in fragment:
        return normalize_whitespace(fragment)
    try:
        root = lxml.html.fragment_fromstring(
            page_with_few_attributes(fragment), create_parent="div"
        )
    except (ParserError, ValueError):
        return normalize_whitespace(fragment)
    for bad in root.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    for block in root.iter(*_BLOCK_TAGS):
        block.tail = "\n\n" + (block.tail or "")
    for line_break in root.iter("br"):
        line_break.tail = "\n" + (line_break.tail or "")
    return normalize_whitespace(root.text_content())
