"""Who may change a published article, and who published it after (services/ingest)."""

from __future__ import annotations

import pytest

from services.ingest.articles import on_site
from services.ingest.sources import Source
from services.ingest.state import Record, superseded
from shared.events import SupersededKey


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
        # The feed's fields, then its page under the canonical it declares...
        (Record("c1", "lead", key=LEAD_KEY, version=7), [SupersededKey(key=LEAD_KEY, version=7)]),
        # ...or a canonical it declared before, then another (the site moved to https).
        (
            Record("c1", "lead", from_page=True, key="c" * 32, version=9),
            [SupersededKey(key="c" * 32, version=9)],
        ),
        (Record("c1", "lead", from_page=True, key=PAGE_KEY, version=9), []),  # the same key
        # Written before keys were kept, or not by Caravan: nothing is guessed.
        (Record("c1", "lead"), []),
        (Record("c1", "lead", key=LEAD_KEY), []),
        (Record("c1", "lead", key="not a key", version=7), []),
    ],
)
def test_an_article_published_under_another_key_supersedes_that_version_of_it(
    record: Record | None, superseded_keys: list[SupersededKey]
) -> None:
    # With the version: another article written under that key since is newer, and
    # stays (a page may declare another's address; helper-110, helper-114).
    assert superseded(record, PAGE_KEY) == superseded_keys
