"""What RFC 4287 requires of an Atom feed document, checked on the bytes served.

Every MUST of the specification's feed, entry, person, text, date and link rules that
a document can break on its own (sections 3 and 4), as a list of what is wrong: empty
when the feed is valid. Parsing with lxml also checks that it is well-formed XML.
"""

from __future__ import annotations

import re
from collections import Counter

from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
# RFC 3339 date-time, with an upper-case T and Z as RFC 4287 section 3.3 requires.
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
# An absolute IRI begins with a scheme (RFC 3987); atom:id must be one (section 4.2.6).
ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
# Elements a feed or entry may hold at most once (sections 4.1.1, 4.1.2).
AT_MOST_ONCE_FEED = ("generator", "icon", "logo", "rights", "subtitle")
AT_MOST_ONCE_ENTRY = ("content", "published", "rights", "source", "summary")


def _children(parent: etree._Element, name: str) -> list[etree._Element]:
    return parent.findall(f"{ATOM}{name}")


def _exactly_one(parent: etree._Element, name: str, where: str, problems: list[str]) -> None:
    count = len(_children(parent, name))
    if count != 1:
        problems.append(f"{where}: {count} atom:{name}, needs exactly one")


def _text_construct(element: etree._Element, where: str, problems: list[str]) -> None:
    kind = element.get("type", "text")
    if kind not in ("text", "html", "xhtml"):
        problems.append(f"{where}: type {kind!r} is not text, html or xhtml")
    if kind in ("text", "html") and len(element):
        problems.append(f"{where}: a {kind} construct holds child elements")


def _date(element: etree._Element, where: str, problems: list[str]) -> None:
    if not DATE.match(str(element.text or "")):
        problems.append(f"{where}: {element.text!r} is not an RFC 3339 date-time")


def _links(parent: etree._Element, where: str, problems: list[str]) -> list[etree._Element]:
    links = _children(parent, "link")
    for link in links:
        if not link.get("href"):
            problems.append(f"{where}: an atom:link without href")
    alternates = Counter(
        (link.get("type"), link.get("hreflang"))
        for link in links
        if link.get("rel", "alternate") == "alternate"
    )
    if any(count > 1 for count in alternates.values()):
        problems.append(f"{where}: two alternate links of the same type and hreflang")
    return links


def _people(parent: etree._Element, where: str, problems: list[str]) -> int:
    people = [*_children(parent, "author"), *_children(parent, "contributor")]
    for person in people:
        _exactly_one(person, "name", f"{where} person", problems)
    return len(_children(parent, "author"))


def _common(parent: etree._Element, where: str, problems: list[str]) -> None:
    _exactly_one(parent, "id", where, problems)
    _exactly_one(parent, "title", where, problems)
    _exactly_one(parent, "updated", where, problems)
    for element in _children(parent, "id"):
        if not ABSOLUTE_IRI.match((element.text or "").strip()):
            problems.append(f"{where}: atom:id {element.text!r} is not an absolute IRI")
    for name in ("title", "subtitle", "summary", "rights"):
        for element in _children(parent, name):
            _text_construct(element, f"{where} atom:{name}", problems)
    for name in ("updated", "published"):
        for element in _children(parent, name):
            _date(element, f"{where} atom:{name}", problems)


def atom_problems(document: bytes) -> list[str]:
    root = etree.fromstring(document)
    if root.tag != f"{ATOM}feed":
        return [f"the root is {root.tag!r}, not atom:feed"]
    problems: list[str] = []
    _common(root, "feed", problems)
    for name in AT_MOST_ONCE_FEED:
        if len(_children(root, name)) > 1:
            problems.append(f"feed: more than one atom:{name}")
    _links(root, "feed", problems)
    feed_authors = _people(root, "feed", problems)
    entries = _children(root, "entry")
    for n, entry in enumerate(entries):
        where = f"entry {n}"
        _common(entry, where, problems)
        for name in AT_MOST_ONCE_ENTRY:
            if len(_children(entry, name)) > 1:
                problems.append(f"{where}: more than one atom:{name}")
        links = _links(entry, where, problems)
        has_content = bool(_children(entry, "content"))
        if not has_content and not any(
            link.get("rel", "alternate") == "alternate" for link in links
        ):
            problems.append(f"{where}: no atom:content and no alternate link")
        source_authors = sum(len(_children(s, "author")) for s in _children(entry, "source"))
        if not _people(entry, where, problems) and not source_authors and not feed_authors:
            problems.append(f"{where}: no author, and the feed has none")
    return problems
