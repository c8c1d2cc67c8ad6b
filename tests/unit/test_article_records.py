"""Who may change a published article, and who published it after (services/ingest)."""

from __future__ import annotations

import pytest

from services.ingest.articles import on_site
from services.ingest.sources import Source
from services.ingest.state import Record, superseded


def _source(url: str) -> Source:
    return Source(name="s", url=url)


@pytest.mark.parametrize(
    ("feed", "article", "home"),
    [
        ("https://site.kz/rss", "https://site.kz/news/1", True),
        ("https://www.site.kz/rss", "https://site.kz/news/1", True),
        ("https://feeds.site.kz/rss", "https://site.kz/news/1", True),
        ("https://gov.kz/rss", "https://nbk.gov.kz/1", False),  # not every site under it
        ("https://site.kz/rss", "https://othersite.kz/1", False),
        ("https://aggregator.example/rss", "https://site.kz/news/1", False),
        ("/srv/feeds/site.xml", "https://site.kz/news/1", False),  # a file has no site
    ],
)
def test_an_article_is_on_its_sources_site_or_not(feed: str, article: str, home: bool) -> None:
    assert on_site(_source(feed), article) is home


BY_A = Record("c1", "lead", source="a", home=False)
BY_HOME = Record("c1", "lead", source="home", home=True)
OLD = Record("c1", "lead")  # written before records kept who published them


def test_another_sources_feed_never_replaces_what_a_source_published() -> None:
    # Its feed, linking to the article at an address that fails, put its own words there.
    assert not BY_A.replaceable("b", home=False, from_page=False)
    assert not BY_HOME.replaceable("b", home=False, from_page=False)
    assert not BY_HOME.replaceable("b", home=True, from_page=False)  # both on the site


def test_the_page_the_publisher_and_the_articles_own_site_may() -> None:
    assert BY_A.replaceable("b", home=False, from_page=True)
    assert BY_A.replaceable("a", home=False, from_page=False)
    # A faster source published it first: the article's own site's source outranks it.
    assert BY_A.replaceable("home", home=True, from_page=False)
    assert OLD.replaceable("b", home=False, from_page=False)  # as before sources were kept


def test_who_published_it_after_a_read() -> None:
    assert BY_A.after("b", home=False, changed=False, from_page=True) == ("a", False)
    assert BY_A.after("home", home=True, changed=True, from_page=False) == ("home", True)
    assert BY_A.after("b", home=False, changed=True, from_page=True) == ("b", False)
    # A record from before: the source whose version it is stamps it; another's feed
    # fields over it leave it nobody's, so its own source restores it as before.
    assert OLD.after("a", home=True, changed=False, from_page=False) == ("a", True)
    assert OLD.after("b", home=False, changed=True, from_page=False) == (None, False)
    # Its own site's source stamps it, or the two would replace each other every poll.
    assert OLD.after("home", home=True, changed=True, from_page=False) == ("home", True)
    assert OLD.after("b", home=False, changed=True, from_page=True) == ("b", False)


LEAD_KEY, PAGE_KEY = "a" * 32, "b" * 32


@pytest.mark.parametrize(
    ("record", "superseded_keys"),
    [
        (None, []),  # never published
        (Record("c1", "lead", key=LEAD_KEY), [LEAD_KEY]),  # the feed's fields, then its page
        (Record("c1", "lead", from_page=True, key=PAGE_KEY), []),  # the same key again
        # A canonical its page declared before may be another article's own address:
        # deleted, that one was lost, its own lead unchanged (helper-110).
        (Record("c1", "lead", from_page=True, key="c" * 32), []),
        (Record("c1", "lead", key="c" * 32), []),
        (Record("c1", "lead", from_page=True, key=LEAD_KEY), [LEAD_KEY]),  # its own, read
        # Written before keys were kept: the source's fields were under the lead's key...
        (Record("c1", "lead"), [LEAD_KEY]),
        # ...a page's under what it declared, which is not known: nothing is guessed.
        (Record("c1", "lead", from_page=True), []),
        (Record("c1", "lead", from_page=True, key="not a key"), []),
    ],
)
def test_an_article_published_under_another_key_supersedes_the_one_before(
    record: Record | None, superseded_keys: list[str]
) -> None:
    assert superseded(record, LEAD_KEY, PAGE_KEY) == superseded_keys


def test_the_feeds_version_under_the_leads_own_key_supersedes_nothing() -> None:
    assert superseded(Record("c1", "lead"), LEAD_KEY, LEAD_KEY) == []
