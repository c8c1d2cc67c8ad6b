"""The main text and metadata of an article page, by trafilatura; pure."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from htmldate import find_date
from lxml.etree import ElementDefaultClassLookup, LxmlError, XPath, strip_elements
from lxml.html import (
    HtmlComment,
    HtmlElement,
    HtmlEntity,
    HTMLParser,
    HtmlProcessingInstruction,
    fromstring,
)
from trafilatura import bare_extraction
from trafilatura.json_metadata import normalize_authors
from trafilatura.metadata import (
    META_URL,
    examine_meta,
    extract_catstags,
    extract_meta_json,
    extract_sitename,
    extract_title,
    extract_url,
)
from trafilatura.settings import MANUALLY_CLEANED, Document
from trafilatura.utils import is_dubious_html, line_processing, repair_faulty_html, trim

from services.ingest.acceptance import SHARE_PAGE_MAX_CHARS, needs_fallback, replaces
from services.ingest.markup import page_with_few_attributes
from services.ingest.precision import precision_text
from services.ingest.text import html_to_text
from shared.events import labels
from shared.text import normalize_whitespace

log = structlog.get_logger(__name__)

# Less main text than this is a page without an article (a home page, a
# consent wall, an error page dressed as 200), not a very short article.
MIN_TEXT_CHARS = 200
# Parse at most this much of a page: bounds the memory and time of one extraction
# (a parsed tree takes several times its page's size). Real article pages are
# under 1 MB; what makes a page larger is mostly inline scripts and data.
MAX_HTML_CHARS = 3_000_000
# trafilatura's parser settings, with every element an HtmlElement picked in C: lxml.html's
# own parser calls a Python function for the class of each element that Python code
# reaches (forms and inputs get classes of their own, which nothing here uses), and
# trafilatura's and htmldate's searches reach hundreds of thousands per page: 6 % of an
# extraction's time, for the same tree.
_PARSER = HTMLParser(
    collect_ids=False,
    default_doctype=False,
    encoding="utf-8",
    remove_comments=True,
    remove_pis=True,
)
_PARSER.set_element_class_lookup(
    ElementDefaultClassLookup(
        element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity
    )
)
# Scripts, styles and noscript are gone from the tree by the time this runs.
_TEXT_CONTAINING = XPath("//body//text()[contains(normalize-space(.), $needle)]")
# Paragraphs and list items with a link: the only ones that can be link teasers.
_LINKED_BLOCKS = XPath("//p[.//a]|//li[.//a]")
# Enough of a paragraph to find it on the page, short enough to sit in one text node.
_NEEDLE_CHARS = 40
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_LANG = re.compile(r"""<html\b[^>]*?\blang\s*=\s*["']?([A-Za-z]{2,3})\b""", re.IGNORECASE)
_JSON_LD = "application/ld+json"
# A paragraph at most this long and at least this much link text is a teaser.
_TEASER_MAX_CHARS = 300
_TEASER_LINK_SHARE = 0.8
# An opening script or style tag, its attributes bounded: a page of `<script` with no
# `>` costs a bounded look per tag, not a scan to the end for each.
_CODE_START = re.compile(r"<(script|style)\b([^<>]{0,2000})>", re.IGNORECASE)
_CODE_END = {
    name: re.compile(rf"</{name}\b[^<>]{{0,200}}>", re.IGNORECASE) for name in ("script", "style")
}
# Kept for trafilatura to decide: it keeps a form that holds most of the page's
# text, a figure with a table, formulas; head has the JSON-LD it reads.
_CLEANED = tuple(set(MANUALLY_CLEANED) - {"form", "figure", "math", "head"})
_DROP = "caravan-drop"
_LINES = re.compile(r"\n+")
# Dates with their time and offset when the page has them, not just the day. The
# structured places (meta tags, JSON-LD, <time>, the URL) first; the extensive
# search of the page's text (a fifth of an extraction's time) only when they give
# no date or a day without its time.
_DATE_PARAMS: dict[str, Any] = {
    "extensive_search": False,
    "original_date": True,
    # With the page's own offset when it gives one: without it, 10:00Z on a page read
    # as 10:00 in the source's zone, hours off (`parse_date` reads both forms).
    "outputformat": "%Y-%m-%dT%H:%M:%S%z",
}
# A day without its time, whatever offset came with its midnight.
_DAY_ONLY = re.compile(r"T00:00:00(?:[+-]\d{4})?$")
# The links extract_catstags can keep: it keeps those whose address matches
# /categor(?:y|ies|s)?/ or /tag(?:y|ies|s)?/, which all contain these.
_CATEGORY_OR_TAG_LINK = {"category": "/categor", "tag": "/tag"}
# trafilatura's AUTHOR_DISCARD_XPATHS and AUTHOR_XPATHS (trafilatura/xpaths.py), their
# tests written out for page_author; a test holds them to the library's expressions.
_AUTHOR_MAX_CHARS = 120
_AUTHOR_DISCARD_TAGS = frozenset({"a", "div", "section", "span"})
_AUTHOR_DISCARD_ID = re.compile("^comments|comment-?list|ProductReviews")
_AUTHOR_DISCARD_CLASS = re.compile(
    "^[Cc]omments|commentlist|comments-list|sidebar|is-hidden|quote|embedly-instagram"
    "|article-(?:share|support)|print|category|meta-date|meta-reviewer"
)
_SPECIFIC_AUTHOR_TAGS = frozenset({"a", "address", "div", "link", "p", "span", "strong"})
_SPECIFIC_AUTHOR_CLASS = re.compile("author-?name|AuthorName|authorName")
_USUAL_AUTHOR_TAGS = frozenset({"a", "div", "h3", "h4", "p", "span"})
_USUAL_AUTHOR_ID = re.compile("author|zuozhe|bianji|xiaobian")
_USUAL_AUTHOR_CLASS = re.compile(
    "author|channel-name|zuozhe|bianji|xiaobian|submitted-by|posted-by|journalist-name"
)
_ANY_AUTHOR_ID = re.compile("[Aa]uthor")
_ANY_AUTHOR_CLASS = re.compile("[Aa]uthor|screenname|writer|[Bb]yline")
# Every element that one of the searches can find has one of these attributes matching
# (or is an <author>, or the parent of a <rel>): "uthor" for author and Author.
_AUTHOR_HINTS = {
    "class": re.compile(
        "uthor|byl|yline|username|BBL|channel-name|zuozhe|bianji|xiaobian|submitted-by"
        "|posted-by|journalist-name|screenname|writer"
    ),
    "id": re.compile("uthor|zuozhe|bianji|xiaobian"),
    "itemprop": re.compile("author"),
    "data-testid": re.compile("Author"),
    "data-component": re.compile("Byline"),
    "rel": re.compile("^author$"),
}
_SECTION_META = XPath(
    './/head//meta[@property="article:section" or contains(@name, "subject")][@content]'
)
# Precision mode keeps out the newsletter boxes, cookie notes and "report an
# error" blocks that recall mode lets in; it also drops the lead paragraph
# that pages set apart, which restore_lead puts back.
_TEXT_OPTIONS: dict[str, Any] = {
    "include_comments": False,
    "favor_precision": True,
    "with_metadata": False,
}
# trafilatura's own extractor alone (no readability/jusText comparison) gives the
# right text on nearly every page, and the comparison sometimes swaps in a whole
# page of teasers for it. Only a result with too little article in it (a page its
# rules do not fit, or one where they took a reprint notice for the article) is
# worth the fallbacks' cost and risk: the comparison in precision mode, then in
# trafilatura's default mode (looser), which keeps the blocks precision mode prunes.
_FALLBACKS: tuple[tuple[dict[str, Any], str, bool], ...] = (
    (_TEXT_OPTIONS, "trafilatura-precision+fallback", False),
    ({**_TEXT_OPTIONS, "favor_precision": False}, "trafilatura-default+fallback", True),
)


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
    tree = parse_page(bounded_html(html)) if html.strip() else None
    if tree is None:
        return None
    without_code(tree)
    # Parsed once: metadata and text both read this tree (bare_extraction works on
    # its own copy), instead of each parsing the page again.
    metadata = page_metadata(tree, url)
    # What trafilatura's cleaning deletes anyway, deleted once here, so that its
    # copies of the tree and its many searches of it (on the raw tree, before its
    # cleaning) go over the page's content only.
    strip_elements(tree, *_CLEANED, with_tail=False)
    raw, path = main_text(tree, url)
    title = html_to_text(metadata.title or "")
    description = html_to_text(metadata.description or "")
    text = restore_lead(
        without_link_teasers(without_heading(paragraphs(raw), title), tree), description, tree
    )
    if len(text) < MIN_TEXT_CHARS:
        return None
    return Extracted(
        title=title,
        text=text,
        description=description,
        authors=_split(metadata.author, ";"),
        date=metadata.date,
        site_name=normalize_whitespace(metadata.sitename or "") or None,
        # As many as an article keeps, chosen here: a million keywords went back to the
        # event loop, which sorted them for most of a second.
        tags=labels(sorted({*_split_all(metadata.categories), *_split_all(metadata.tags)})),
        language=page_language(html),
        image=metadata.image or None,
        canonical_url=metadata.url or None,
        path=path,
    )


def parse_page(html: str) -> HtmlElement | None:
    """The page's tree as trafilatura's load_html makes it from a string (repaired, then
    parsed as text or else as UTF-8 bytes; None for what is not HTML), by _PARSER."""
    beginning = html[:50].lower()
    repaired = repair_faulty_html(page_with_few_attributes(html), beginning)
    tree = _parsed(repaired)
    if tree is None or len(tree) < 1:
        tree = _parsed(repaired.encode("utf8", "surrogatepass"))
    if tree is not None and is_dubious_html(beginning) and len(tree) < 2:
        return None
    return tree


def _parsed(page: str | bytes) -> HtmlElement | None:
    try:
        tree: HtmlElement = fromstring(page, parser=_PARSER)
    except (ValueError, LxmlError):  # text with an encoding declaration; no document
        return None
    return tree


def page_metadata(tree: HtmlElement, url: str) -> Document:
    """trafilatura's extract_metadata, step for step, less what ingest does not publish
    (the licence, looked for in every link of the page: 3 % of an extraction, and the
    host name); the date as page_date finds it."""
    metadata = examine_meta(tree)
    if metadata.author and " " not in metadata.author:  # a handle, not a name
        metadata.author = None
    try:
        metadata = extract_meta_json(tree, metadata)
    except Exception as exc:  # trafilatura skips its JSON-LD reading's bugs too
        log.debug("json_ld_unreadable", error=str(exc))
    if not metadata.title:
        metadata.title = extract_title(tree)
    if not metadata.author:
        metadata.author = page_author(tree)
    if not metadata.url:
        metadata.url = extract_url(tree, url)
    metadata.date = page_date(tree, metadata.url)
    if not metadata.sitename:
        metadata.sitename = extract_sitename(tree)
    if metadata.sitename:
        name = metadata.sitename.lstrip("@")  # a Twitter handle
        capitalize = name and "." not in name and not name[0].isupper()
        metadata.sitename = name.title() if capitalize else name
    elif metadata.url and (host := META_URL.match(metadata.url)):
        metadata.sitename = host[1]
    if not metadata.categories:
        metadata.categories = categories_or_tags("category", tree)
    if not metadata.tags:
        metadata.tags = categories_or_tags("tag", tree)
    metadata.clean_and_trim()
    return metadata


def categories_or_tags(kind: str, tree: HtmlElement) -> list[str]:
    """trafilatura's extract_catstags(kind, tree), without its ten searches of the whole
    page when none can find anything: each keeps only links whose address has a
    /category/ or /tag/ part (in some spelling), and most pages have no such link."""
    stem = _CATEGORY_OR_TAG_LINK[kind]
    if any(stem in link.get("href", "") for link in tree.iter("a")):
        return extract_catstags(kind, tree)
    if kind != "category":
        return []
    # What extract_catstags falls back to for categories when its searches find none.
    sections = (meta.get("content") for meta in _SECTION_META(tree))
    return [name for name in dict.fromkeys(line_processing(s) for s in sections if s) if name]


def page_author(tree: HtmlElement) -> str | None:
    """trafilatura's extract_author, without its copy of the page and its three searches
    of it, where libxml2 calls a Python regular expression for each element: the first
    element of its first search that finds one (in document order), outside the
    discarded elements, whose text without them is a plausible name. The candidates
    come from one walk that looks at little more than the attributes."""
    found: tuple[list[HtmlElement], ...] = ([], [], [])
    for element in _author_candidates(tree):
        if _discarded(element) or any(_discarded(a) for a in _up_to(element, tree)):
            continue
        for matches, matched in zip(found, _author_searches(element), strict=True):
            if matched:
                matches.append(element)
    for matches in found:
        for element in matches:
            content = trim(" ".join(_kept_text(element)))
            if content and 2 < len(content) < _AUTHOR_MAX_CHARS:
                return normalize_authors(None, content)
    return None


def _author_candidates(tree: HtmlElement) -> list[HtmlElement]:
    """In document order, the elements that pass _AUTHOR_HINTS."""
    found: list[HtmlElement] = []
    rel_parents: set[HtmlElement] = set()
    hint = _AUTHOR_HINTS.get
    for element in tree.iter():
        tag = element.tag
        if tag == "author":
            found.append(element)
            continue
        if tag == "rel" and (parent := element.getparent()) is not None:
            rel_parents.add(parent)
        for name, value in element.items():
            pattern = hint(name)
            if pattern is not None and pattern.search(value):
                found.append(element)
                break
    if rel_parents:  # a parent comes before its <rel>: in document order again
        hinted = rel_parents.union(found)
        return [element for element in tree.iter() if element in hinted]
    return found


def _up_to(element: HtmlElement, top: HtmlElement) -> Iterator[HtmlElement]:
    """The element's ancestors, up to and with `top` (none for `top` itself)."""
    if element is top:
        return
    for ancestor in element.iterancestors():
        yield ancestor
        if ancestor is top:
            return


def _kept_text(element: HtmlElement) -> list[str]:
    """element.itertext() once the discarded elements below it are deleted as trafilatura
    deletes them: a deleted element's tail joins the text before it."""
    pieces: list[str] = []
    pending = element.text
    for child in element:
        if isinstance(child.tag, str) and _discarded(child):
            if child.tail:
                pending = (pending or "") + child.tail
            continue
        if pending is not None:
            pieces.append(pending)
        pieces.extend(_kept_text(child))
        pending = child.tail
    if pending is not None:
        pieces.append(pending)
    return pieces


def _discarded(element: HtmlElement) -> bool:
    """Whether AUTHOR_DISCARD_XPATHS take the element."""
    tag = element.tag
    if tag in ("time", "figure"):
        return True
    if tag not in _AUTHOR_DISCARD_TAGS:
        return False
    ident, cls = element.get("id", ""), element.get("class", "")
    return bool(
        ident == "comments"
        or cls in ("comments", "title", "date")
        or _AUTHOR_DISCARD_ID.search(ident)
        or _AUTHOR_DISCARD_CLASS.search(cls)
        or "Figure" in element.get("data-component", "")
    )


def _author_searches(element: HtmlElement) -> tuple[bool, bool, bool]:
    """Whether each of the AUTHOR_XPATHS finds the element."""
    tag = element.tag
    attributes = element.attrib
    ident, cls = attributes.get("id", ""), attributes.get("class", "")
    itemprop, component = attributes.get("itemprop", ""), attributes.get("data-component", "")
    specific = tag == "author" or (
        tag in _SPECIFIC_AUTHOR_TAGS
        and (
            # XPath's rel='me': a child <rel> whose text is "me"
            any(child.tag == "rel" and "".join(_kept_text(child)) == "me" for child in element)
            or attributes.get("rel") == "author"
            or ident == "author"
            or cls == "author"
            or itemprop == "author name"
            or attributes.get("data-testid") in ("AuthorCard", "AuthorURL")
            or bool(_SPECIFIC_AUTHOR_CLASS.search(cls))
        )
    )
    usual = tag in _USUAL_AUTHOR_TAGS and (
        cls in ("byline", "username", "byl", "BBL")
        or "author" in itemprop
        or bool(_USUAL_AUTHOR_ID.search(ident))
        or bool(_USUAL_AUTHOR_CLASS.search(cls))
    )
    anywhere = (
        "Byline" in component
        or "author" in itemprop
        or bool(_ANY_AUTHOR_ID.search(ident))
        or bool(_ANY_AUTHOR_CLASS.search(cls))
    )
    return specific, usual, anywhere


def page_date(tree: HtmlElement, url: str | None) -> str | None:
    """The structured places first; the extensive search of the text only when they
    give no date or a day without its time."""
    date: str | None = find_date(tree, url=url, **_DATE_PARAMS)
    if not date or _DAY_ONLY.search(date):
        return find_date(tree, url=url, **{**_DATE_PARAMS, "extensive_search": True}) or date
    return date


def bounded_html(html: str) -> str:
    """At most MAX_HTML_CHARS of the page: a larger page first loses its scripts
    (but JSON-LD) and styles, so that the cut takes markup, not the article."""
    if len(html) <= MAX_HTML_CHARS:
        return html
    return "".join(_without_code(html, MAX_HTML_CHARS))[:MAX_HTML_CHARS]


def _without_code(html: str, wanted: int) -> Iterator[str]:
    """The page's pieces outside scripts (but JSON-LD) and styles, until `wanted`
    characters are out: one pass forward, each character looked at a bounded number
    of times, so no page makes it quadratic (a regex spanning from each opening tag
    to its closing one rescans the rest of the page for every unclosed tag)."""
    position = given = 0
    while given < wanted:
        start = _CODE_START.search(html, position)
        if start is None:
            yield html[position:]
            return
        end = _CODE_END[start.group(1).lower()].search(html, start.end())
        # Unclosed: an HTML parser reads the rest of the page as the script's text.
        stop = end.end() if end else len(html)
        keep = _JSON_LD in start.group(2).lower()
        piece = html[position:stop] if keep else html[position : start.start()]
        given += len(piece)
        yield piece
        if end is None:
            return
        position = stop


def without_code(tree: HtmlElement) -> None:
    """The tree without its scripts (but JSON-LD, which has metadata), styles and
    inline SVG: text never comes from them (trafilatura drops them too, but only
    after copying and searching the whole tree several times), and on many pages
    they are most of the markup."""
    for element in tree.iter("script", "style", "svg", "template"):
        if element.tag != "script" or element.get("type", "").strip().lower() != _JSON_LD:
            element.tag = _DROP
    strip_elements(tree, _DROP, with_tail=False)


def main_text(tree: HtmlElement, url: str) -> tuple[str, str]:
    """The main text (one paragraph a line) and which extractor gave it: the first
    pass, unless it holds too little article (see needs_fallback); then each
    fallback in turn, as long as the best text so far still does."""
    body = tree.find("body")
    page = (tree if body is None else body).text_content()
    text, path = precision_text(tree, url), "trafilatura-precision"
    for options, name, looser in _FALLBACKS:
        if not _needs_fallback(text, page):
            break
        document: Any = bare_extraction(tree, url=url, **options)
        candidate = (document.text if document else "") or ""
        if replaces(candidate, text, looser=looser):
            text, path = candidate, name
    return text, path


def _needs_fallback(text: str, page: str) -> bool:
    """needs_fallback(text, the page's text single-spaced), the page's text single-spaced
    only when it matters: the text as it is is no shorter, so a result that needs no
    fallback for it (within SHARE_PAGE_MAX_CHARS) needs none for the shorter one."""
    if len(page) <= SHARE_PAGE_MAX_CHARS and not needs_fallback(text, len(page)):
        return False
    return needs_fallback(text, len(_single_spaced(page)))


def paragraphs(text: str) -> str:
    """trafilatura's one-paragraph-per-line text, with blank lines between paragraphs
    like the rest of the pipeline."""
    return _LINES.sub("\n\n", normalize_whitespace(text))


def without_heading(text: str, title: str) -> str:
    """The text without a first paragraph that only repeats the title (the page's <h1>)."""
    first, _, rest = text.partition("\n\n")
    return rest if title and first == title else text


def without_link_teasers(text: str, tree: HtmlElement) -> str:
    """The text without the paragraphs that are, on the page, a short paragraph or
    list item made (almost) only of a link: "Read more: <headline>", "Related:
    <headline>", lists of other articles, which trafilatura keeps when they sit
    inside the article's container."""
    # trafilatura writes a list item as "- item".
    paragraphs = [(p, _single_spaced(p).removeprefix("- ")) for p in text.split("\n\n")]
    teasers = set(_link_teasers(tree, {key for _, key in paragraphs}))
    if not teasers:
        return text
    return "\n\n".join(p for p, key in paragraphs if key not in teasers)


def _link_teasers(tree: HtmlElement, among: set[str]) -> Iterator[str]:
    """The texts, of those `among`, of the page's short paragraphs and list items that
    are mostly link text (the links measured only for blocks the text holds)."""
    for block in _LINKED_BLOCKS(tree):
        text = _single_spaced(block.text_content())
        if text and text in among and len(text) <= _TEASER_MAX_CHARS:
            linked = sum(len(_single_spaced(link.text_content())) for link in block.iter("a"))
            if linked / len(text) >= _TEASER_LINK_SHARE:
                yield text


def restore_lead(text: str, description: str, tree: HtmlElement) -> str:
    """The page's description as the first paragraph, when the page shows it as its
    lead (see lead_beside_body) but the extracted text lacks it."""
    lead = _single_spaced(description)
    first = text.partition("\n\n")[0]
    if (
        not lead
        or not first
        or lead in _single_spaced(text)
        or not lead_beside_body(tree, lead, first)
    ):
        return text
    return f"{description}\n\n{text}"


def lead_beside_body(tree: HtmlElement, lead: str, first_paragraph: str) -> bool:
    """Whether the page sets `lead` apart as a block of its own next to the article
    body: its element's parent holds the body's first paragraph too.

    That is the article's lead paragraph, which precision mode drops with the
    other blocks around the body. A summary in the page's header (a standfirst
    under the headline, a heading, a teaser elsewhere on the page) is not part of
    the article's text and stays out.
    """
    lead_block = _block_with(tree, lead)
    if lead_block is None or lead_block.tag in _HEADINGS:
        return False
    if lead not in _single_spaced(lead_block.text_content()):  # a teaser that starts alike
        return False
    if any(ancestor.tag == "header" for ancestor in lead_block.iterancestors()):
        return False
    # looked for only now: a search of every text node of the page
    body_block = _block_with(tree, first_paragraph)
    if body_block is None:
        return False
    parent = lead_block.getparent()
    return parent is not None and any(a is parent for a in body_block.iterancestors())


def _block_with(tree: HtmlElement, text: str) -> HtmlElement | None:
    """The element whose own text starts like `text` (whitespace collapsed), if any."""
    needle = _single_spaced(text)[:_NEEDLE_CHARS]
    for node in _TEXT_CONTAINING(tree, needle=needle):
        element: HtmlElement | None = node.getparent()
        if element is not None and node.is_tail:
            element = element.getparent()
        if element is not None:
            return element
    return None


def _single_spaced(text: str) -> str:
    """Each whitespace run one space: the text as compared and measured, not as shown."""
    return " ".join(text.split())


def page_language(html: str) -> str | None:
    match = _HTML_LANG.search(html[:4096])
    return match.group(1).lower() if match else None


def _split(value: str | None, separator: str) -> list[str]:
    parts = (normalize_whitespace(part) for part in (value or "").split(separator))
    return [part for part in parts if part]


def _split_all(values: list[str] | None) -> list[str]:
    return [part for value in values or [] for part in _split(value, ",")]
