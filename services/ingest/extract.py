"""The main text and metadata of an article page, by trafilatura; pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lxml.etree import XPath
from trafilatura import bare_extraction
from trafilatura.utils import load_html

from services.ingest.text import html_to_text, normalize_whitespace

# Less main text than this is a page without an article (a home page, a
# consent wall, an error page dressed as 200), not a very short article.
MIN_TEXT_CHARS = 200
_VISIBLE_TEXT = XPath("//body//text()[not(ancestor::script or ancestor::style "
                      "or ancestor::noscript)]")
_HTML_LANG = re.compile(r"""<html\b[^>]*?\blang\s*=\s*["']?([A-Za-z]{2,3})\b""", re.IGNORECASE)
# Dates with their time and offset when the page has them, not just the day.
_DATE_PARAMS = {"extensive_search": True, "original_date": True,
                "outputformat": "%Y-%m-%dT%H:%M:%S"}


@dataclass(frozen=True)
class Extracted:
    title: str
    text: str
    description: str = ""
    authors: list[str] = field(default_factory=list)
    date: str | None = None
    site_name: str | None = None
    tags: list[str] = field(default_factory=list)
    language: str | None = None
    image: str | None = None
    canonical_url: str | None = None
    # Which extractor produced the text (shown by `caravan extract`).
    path: str = "trafilatura-precision"


def extract_article(html: str, url: str) -> Extracted | None:
    """The article on the page, or None when the page has no article text."""
    tree = load_html(html) if html.strip() else None
    if tree is None:
        return None
    visible = _one_line(" ".join(_VISIBLE_TEXT(tree)))
    # Precision mode keeps out the newsletter boxes, cookie notes and "report an
    # error" blocks that recall mode lets in; it also drops the lead paragraph
    # that pages set apart, which restore_lead puts back.
    document: Any = bare_extraction(
        tree, url=url, with_metadata=True, include_comments=False, favor_precision=True,
        date_extraction_params=_DATE_PARAMS)
    if document is None:
        return None
    title = html_to_text(document.title or "")
    description = html_to_text(document.description or "")
    text = restore_lead(without_heading(paragraphs(document.text or ""), title), description,
                        visible)
    if len(text) < MIN_TEXT_CHARS:
        return None
    return Extracted(
        title=title,
        text=text,
        description=description,
        authors=_split(document.author, ";"),
        date=document.date,
        site_name=normalize_whitespace(document.sitename or "") or None,
        tags=sorted({*_split_all(document.categories), *_split_all(document.tags)}),
        language=page_language(html),
        image=document.image or None,
        canonical_url=document.url or None,
    )


def paragraphs(text: str) -> str:
    """trafilatura's one-paragraph-per-line text, with blank lines between paragraphs
    like the rest of the pipeline."""
    lines = (normalize_whitespace(line) for line in text.split("\n"))
    return "\n\n".join(line for line in lines if line)


def without_heading(text: str, title: str) -> str:
    """The text without a first paragraph that only repeats the title (the page's <h1>)."""
    first, _, rest = text.partition("\n\n")
    return rest if title and first == title else text


def restore_lead(text: str, description: str, visible: str) -> str:
    """The page's description as the first paragraph, when the page shows it as
    text (its lead) but the extracted text lacks it."""
    lead = _one_line(description)
    if not lead or lead in _one_line(text) or lead not in visible:
        return text
    return f"{description}\n\n{text}" if text else description


def _one_line(text: str) -> str:
    return " ".join(text.split())


def page_language(html: str) -> str | None:
    match = _HTML_LANG.search(html[:4096])
    return match.group(1).lower() if match else None


def _split(value: str | None, separator: str) -> list[str]:
    parts = (normalize_whitespace(part) for part in (value or "").split(separator))
    return [part for part in parts if part]


def _split_all(values: list[str] | None) -> list[str]:
    return [part for value in values or [] for part in _split(value, ",")]
