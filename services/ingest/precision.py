"""trafilatura's extractor in precision mode, fast, without comments or metadata: the
text bare_extraction gives for a tree, with one copy of the tree instead of three and
the searches for boilerplate done by walks of the tree instead of XPath."""

from __future__ import annotations

import re
from collections.abc import Callable
from copy import copy
from dataclasses import dataclass, field
from types import FunctionType
from typing import cast

from lxml.etree import _Element, strip_tags
from lxml.html import HtmlElement
from trafilatura import main_extractor
from trafilatura.core import _forum_thread_page
from trafilatura.htmlprocessing import (
    convert_tags,
    delete_by_link_density,
    link_density_test_tables,
    tree_cleaning,
)
from trafilatura.settings import Extractor
from trafilatura.xml import delete_element, xmltotxt

# trafilatura's RAW_TREE_PRUNE_XPATH, REMOVE_COMMENTS_AND_LISTS_XPATH and
# REMOVE_COMMENTS_XPATH (trafilatura/xpaths.py), their tests written out for the walks
# below; a test holds them to the library's expressions.
_FOLLOW_UP_TAGS = frozenset({"div", "section", "aside"})
_FOLLOW_UP = re.compile("mvp-post-add-(?:box|wrap)|infinite-?scroll")
_APPENDED_ARTICLE = re.compile("mvp-post-add-(?:box|wrap)")
_SHARE_BUTTONS = "elementor-share-buttons"
_COMMENT_TAGS = frozenset({"div", "list", "section", "details"})
_COMMENT_LIST_TAGS = frozenset({"ol", "ul"})
_COMMENTS_ID = re.compile("^(?:[Cc]omment(?!ary)|comol)")
_COMMENTS_OR_DISQUS_ID = re.compile("^(?:[Cc]omment(?!ary)|comol|disqus_thread|dsq-comments)")
_COMMENTS_CLASS = re.compile("^[Cc]omment(?!ary)|(?:article|post)-comments")
_RAW_TAGS = tuple(_FOLLOW_UP_TAGS | _COMMENT_TAGS | _COMMENT_LIST_TAGS)
# trafilatura's OVERALL_DISCARD_XPATH, DISCARD_IMAGE_ELEMENTS, TEASER_DISCARD_XPATH and
# PRECISION_DISCARD_XPATH, written out the same way. XPath's @id|@class is the first of
# the two in the element's source order.
_BLOCK_TAGS = frozenset({"div", "item", "list", "p", "section", "span"})
_BOILERPLATE_ID = re.compile(
    "^shar|social|viral|newsletter|syndication|tags|sidebar|banner|bread-?crumb|button"
    "|author|^(?:jp-|dpsp-content)|bmdh|footer|Footer|share|Share|nav|Nav|menu|related"
    "|message-container|premium|^ad-"
)
_BOILERPLATE_CLASS = re.compile(
    "^shar|social|viral|newsletter|syndication|tags|sidebar|banner|bread-?crumb|button"
    "|author|^(?:nav|post-nav|ZendeskForm)|subnav|avigation|navbar|navbox|menu|bar| ad "
    "|-ad-|(?:^| )ad-|dfp[Aa]d|outbrain|taboola|criteo|paid-?content|widget|footer|Footer"
    "|byline|Byline|share-|sociable|embedded|embed|tag-list|consent|modal-content"
    "|permission|elated|next-|-stories|most-popular|more-on|meta|rating|attachment"
    "|timestamp|user-info|user-profile|-icon|article-infos|message-container|slide"
    "|viewport|overlay|options|expand|obfuscated|blurred|mol-factbox|yin|zlylin|nfoline"
)
_HIDDEN_ID = re.compile("reader-comments|akismet")
_HIDDEN_CLASS = re.compile(
    "^hide-|comments-title|nocomments|-reply-|message|akismet|suggest-links|-hide-"
    "|hide-print| hidden| hide|noprint|notloaded"
)
_BOTTOM = re.compile(r"(^|\s)bottom|bottom(\s|$)")
_LINK = re.compile(r"(^|\s)link(\s|$)")


def precision_text(tree: HtmlElement, url: str | None) -> str:
    """bare_extraction(tree, url=url, fast=True, favor_precision=True,
    include_comments=False, with_metadata=False).text, or "" where it gives None.

    bare_extraction copies the tree it is given, trafilatura_sequence copies the pruned
    copy again to clean it, and _prepare_tree copies the cleaned tree as a backup that
    only the readability/jusText comparison and comment extraction read (both off
    here): those are the same steps on one copy (tests hold the steps to a digest of
    trafilatura's code and the text to bare_extraction's)."""
    options = Extractor(output_format="python", fast=True, precision=True, comments=False, url=url)
    raw = copy(tree)
    is_forum = _forum_thread_page(raw)
    _prune_raw(raw)
    # the pruned raw tree is read again only by the comparison and the recall stages,
    # none of which runs in fast precision mode, so it is cleaned in place
    cleaned = convert_tags(tree_cleaning(raw, options), options, options.url)
    if not is_forum:
        _prune_comments(cleaned)
    try:
        body, text = _extract_content(cleaned, options)
    except (TypeError, ValueError):  # what bare_extraction turns into None
        return ""
    # the comments, off, are empty; the tree size check is off in the default settings
    if len(text) < options.min_output_size:
        return ""
    return xmltotxt(body, options.formatting) or ""


def _prune_raw(tree: HtmlElement) -> None:
    """prune_unwanted_nodes(tree, RAW_TREE_PRUNE_XPATH) then (tree,
    REMOVE_COMMENTS_AND_LISTS_XPATH), by one walk of the tree: in those searches libxml2
    calls a Python regular expression for each element they look at, and they looked at
    the whole page three times (a tenth of the main text's time)."""
    follow_ups: list[HtmlElement] = []
    share_buttons: list[HtmlElement] = []
    comments: list[HtmlElement] = []
    for element in tree.iterdescendants(*_RAW_TAGS):
        tag = element.tag
        ident, cls = element.get("id", ""), element.get("class", "")
        if tag in _FOLLOW_UP_TAGS:
            if (_FOLLOW_UP.search(ident) or _FOLLOW_UP.search(cls)) and (
                next(element.iterdescendants("h1"), None) is None
                or _APPENDED_ARTICLE.search(ident)
                or _APPENDED_ARTICLE.search(cls)
            ):
                follow_ups.append(element)
            if _SHARE_BUTTONS in cls:
                share_buttons.append(element)
        if tag in _COMMENT_LIST_TAGS:  # without the disqus ids
            if _COMMENTS_ID.search(ident) or _COMMENTS_CLASS.search(cls):
                comments.append(element)
        elif _is_comments(tag, ident, cls):
            comments.append(element)
    # Deleted in the searches' order: what a search finds in a part that an earlier one
    # deleted is deleted from that part alone (delete_element leaves a removed top alone).
    _delete([*follow_ups, *share_buttons, *comments])


def _prune_comments(tree: HtmlElement) -> None:
    """prune_unwanted_nodes(tree, REMOVE_COMMENTS_XPATH), by one walk of the tree."""
    _delete(
        [
            element
            for element in tree.iterdescendants(*_COMMENT_TAGS)
            if _is_comments(element.tag, element.get("id", ""), element.get("class", ""))
        ]
    )


def _delete(elements: list[HtmlElement]) -> None:
    """Each element out of the tree, its tail kept (delete_element)."""
    for element in elements:
        delete_element(element)


def _is_comments(tag: object, ident: str, cls: str) -> bool:
    return tag in _COMMENT_TAGS and bool(
        _COMMENTS_OR_DISQUS_ID.search(ident) or _COMMENTS_CLASS.search(cls)
    )


@dataclass
class _Sections:
    """What each of prune_unwanted_sections' searches finds, in document order."""

    boilerplate: list[HtmlElement] = field(default_factory=list)
    hidden: list[HtmlElement] = field(default_factory=list)
    captions: list[HtmlElement] = field(default_factory=list)
    teasers: list[HtmlElement] = field(default_factory=list)
    headers: list[HtmlElement] = field(default_factory=list)
    layout: list[HtmlElement] = field(default_factory=list)


def _prune_sections(
    tree: HtmlElement, potential_tags: set[str], options: Extractor, keep_teasers: bool = False
) -> HtmlElement:
    """prune_unwanted_sections, its searches by one walk of the tree: libxml2 called a
    Python regular expression three to six times for each element they looked at, a
    fifth of the main text's time. All are found before any is deleted: a deletion only
    takes an element out, with its text, so the later searches of the pruned tree would
    find the same elements, less those inside a deleted one, which are deleted from that
    part alone (delete_element leaves a removed top alone)."""
    favor_precision = options.focus == "precision"
    found = _sections(tree)
    # prune_unwanted_nodes' guard: nothing goes if it would take 6/7 of the text
    matches = dict.fromkeys((*found.boilerplate, *found.hidden))
    outer = [e for e in matches if not any(a in matches for a in e.iterancestors())]
    old_len = len(tree.text_content())
    if old_len - sum(len(e.text_content()) for e in outer) > old_len / 7:
        _delete(outer)
    if "graphic" not in potential_tags:
        _delete(found.captions)
    if options.focus != "recall":
        if not keep_teasers:
            _delete(found.teasers)
        if favor_precision:
            _delete(found.headers)
            _delete(found.layout)
    # the rest of prune_unwanted_sections, as it is
    for _ in range(2):
        tree = delete_by_link_density(tree, "div", True, favor_precision)
        tree = delete_by_link_density(tree, "list", False, favor_precision)
        tree = delete_by_link_density(tree, "p", False, favor_precision)
    if "table" in potential_tags or favor_precision:
        tables = [e for e in tree.iter("table") if link_density_test_tables(e) is True]
        for table in tables:
            delete_element(table, keep_tail=False)
    if favor_precision:
        while len(tree) > 0 and (tree[-1].tag == "head"):
            delete_element(tree[-1], keep_tail=False)
        tree = delete_by_link_density(tree, "head", False, True)
        tree = delete_by_link_density(tree, "quote", False, True)
    strip_tags(tree, "span", *(() if "ref" in potential_tags else ("ref",)))
    return tree


def _sections(tree: HtmlElement) -> _Sections:
    found = _Sections()
    for element in tree.iterdescendants():
        tag = element.tag
        if not isinstance(tag, str):
            continue
        if tag == "header":
            found.headers.append(element)
        items = element.items()
        if not items:
            continue
        attributes = dict(items)
        ident, cls = attributes.get("id", ""), attributes.get("class", "")
        style = attributes.get("style", "")
        id_or_class = next((v for k, v in items if k in ("id", "class")), "")
        if tag in _BLOCK_TAGS:
            if (
                "data-lp-replacement-content" in attributes
                or "nav" in attributes.get("role", "").replace("N", "n")
                or "MostPopularStories" in attributes.get("data-component", "")
                or "cookie" in id_or_class
                or _BOILERPLATE_ID.search(ident)
                or _BOILERPLATE_CLASS.search(cls)
            ):
                found.boilerplate.append(element)
            if "caption" in ident or "caption" in cls:
                found.captions.append(element)
            if "teaser" in ident.replace("T", "t") or "teaser" in cls.replace("T", "t"):
                found.teasers.append(element)
            if _BOTTOM.search(id_or_class) or _LINK.search(id_or_class) or "border" in style:
                found.layout.append(element)
        if (
            cls == "comments-title"
            or id_or_class.startswith("reply-")
            or "hidden" in next((v for k, v in items if k in ("id", "style")), "")
            or "display:none" in style
            or "display: none" in style
            or _HIDDEN_ID.search(ident)
            or _HIDDEN_CLASS.search(cls)
            or attributes.get("aria-hidden") == "true"
        ):
            found.hidden.append(element)
    return found


# trafilatura's extract_content and its _extract, their own code, run with the names of
# their module except prune_unwanted_sections, which is _prune_sections: trafilatura
# itself, which the fallbacks run, is left as it is.
_NAMES = {**vars(main_extractor), "prune_unwanted_sections": _prune_sections}
_NAMES["_extract"] = FunctionType(main_extractor._extract.__code__, _NAMES)
_extract_content = cast(
    Callable[[HtmlElement, Extractor], tuple[_Element, str]],
    FunctionType(main_extractor.extract_content.__code__, _NAMES),
)
