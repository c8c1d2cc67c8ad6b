"""Clean text out of the HTML fragments that feeds put in titles and descriptions."""

from __future__ import annotations

import re
import unicodedata

import lxml.html
from lxml.etree import ParserError

_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_BLOCK_TAGS = ("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr")


def normalize_whitespace(text: str) -> str:
    """NFC, no control characters, single spaces, paragraphs kept as blank lines."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    lines = (_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(fragment: str) -> str:
    """Text of an HTML fragment, entities decoded; scripts and styles dropped.

    A string with no markup passes through (apart from whitespace normalisation),
    so titles that are plain text are not mangled by an HTML parser.
    """
    if "<" not in fragment and "&" not in fragment:
        return normalize_whitespace(fragment)
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (ParserError, ValueError):
        return normalize_whitespace(fragment)
    for bad in root.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    for block in root.iter(*_BLOCK_TAGS):
        block.tail = "\n" + (block.tail or "")
    return normalize_whitespace(root.text_content())
