"""canonicalize_url: one article, one key, whatever tracking the link carried."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.urls import canonicalize_url, is_tracking_param, is_web_url


@pytest.mark.parametrize(
    "param",
    [
        "utm_source",
        "utm_medium",
        "UTM_Campaign",
        "fbclid",
        "gclid",
        "yclid",
        "msclkid",
        "mc_eid",
        "_ga",
        "igshid",
    ],
)
def test_tracking_parameters_are_recognised(param: str) -> None:
    assert is_tracking_param(param)


@pytest.mark.parametrize("param", ["id", "page", "q", "utm", "ref", "source"])
def test_ordinary_parameters_are_not_tracking(param: str) -> None:
    assert not is_tracking_param(param)


def test_tracking_parameters_and_fragment_are_dropped_other_params_keep_order() -> None:
    url = (
        "https://example.com/news/item?z=9&utm_source=rss&a=1&fbclid=abc"
        "&gclid=xyz&utm_medium=feed&m=2#comments"
    )
    assert canonicalize_url(url) == "https://example.com/news/item?z=9&a=1&m=2"


def test_only_tracking_parameters_leaves_no_query() -> None:
    assert canonicalize_url("https://example.com/a?utm_source=x&fbclid=y") == (
        "https://example.com/a"
    )


def test_scheme_and_host_are_lowercased_but_path_is_not() -> None:
    assert canonicalize_url("HTTPS://News.Example.COM/Politics/Story") == (
        "https://news.example.com/Politics/Story"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("HTTPS://example.com:443/a", "https://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        # 443 is only the default for https.
        ("http://example.com:443/a", "http://example.com:443/a"),
    ],
)
def test_default_ports_are_dropped_others_kept(url: str, expected: str) -> None:
    assert canonicalize_url(url) == expected


def test_empty_path_becomes_root_and_whitespace_is_stripped() -> None:
    assert canonicalize_url("  https://meduza.io \n") == "https://meduza.io/"
    assert canonicalize_url("https://meduza.io") == canonicalize_url("https://meduza.io/")


def test_tracking_variants_of_one_article_share_a_canonical_url() -> None:
    # The real heise links carry ?wt_mc=...; these are the generic tracking kinds.
    variants = [
        "https://www.heise.de/developer/meldung/x-3088438.html",
        "https://WWW.heise.de:443/developer/meldung/x-3088438.html#top",
        "https://www.heise.de/developer/meldung/x-3088438.html?utm_source=twitter",
        "https://www.heise.de/developer/meldung/x-3088438.html?fbclid=IwAR0",
    ]
    assert len({canonicalize_url(v) for v in variants}) == 1


def test_blank_values_are_kept() -> None:
    assert canonicalize_url("https://e.org/s?q=&page=2") == "https://e.org/s?q=&page=2"


def test_ipv6_host_keeps_brackets() -> None:
    assert canonicalize_url("http://[::1]:8080/a?x=1#f") == "http://[::1]:8080/a?x=1"


_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_PARAM_NAME = st.one_of(
    _TOKEN,
    st.sampled_from(["utm_source", "utm_campaign", "fbclid", "gclid", "_ga", "mc_cid"]),
)


@given(
    scheme=st.sampled_from(["http", "HTTP", "https", "Https"]),
    host=st.lists(_TOKEN, min_size=1, max_size=3).map(".".join),
    path=st.lists(_TOKEN, max_size=3).map(lambda parts: "/" + "/".join(parts)),
    params=st.lists(st.tuples(_PARAM_NAME, _TOKEN), max_size=5),
    fragment=st.one_of(st.just(""), _TOKEN.map(lambda f: "#" + f)),
)
def test_canonical_form_properties(
    scheme: str, host: str, path: str, params: list[tuple[str, str]], fragment: str
) -> None:
    query = "&".join(f"{k}={v}" for k, v in params)
    url = f"{scheme}://{host.upper()}{path}" + (f"?{query}" if query else "") + fragment
    canonical = canonicalize_url(url)
    parts = urlsplit(canonical)
    assert parts.scheme == scheme.lower()
    assert parts.netloc == host
    assert parts.fragment == ""
    kept = parse_qsl(parts.query, keep_blank_values=True)
    assert kept == [(k, v) for k, v in params if not is_tracking_param(k)]
    # Canonicalising twice changes nothing.
    assert canonicalize_url(canonical) == canonical


def test_webtrekk_campaign_parameters_seen_in_real_feeds_are_tracking() -> None:
    # heise's RSS and Atom feeds tag the same article with different wt_mc values.
    rss = "http://www.heise.de/developer/meldung/WildFly-10-3091370.html?wt_mc=rss.developer.beitrag.rdf"
    atom = "http://www.heise.de/developer/meldung/WildFly-10-3091370.html?wt_mc=rss.developer.beitrag.atom"
    assert canonicalize_url(rss) == canonicalize_url(atom)
    assert canonicalize_url(rss) == "http://www.heise.de/developer/meldung/WildFly-10-3091370.html"


@pytest.mark.parametrize(
    ("url", "usable"),
    [
        ("https://site.kz/news/1", True),
        ("http://[::1]:8080/a", True),
        ("http://[::1/a", False),  # urlsplit: "Invalid IPv6 URL"
        ("https://site.kz:99999/a", False),  # port out of range
        ("https://", False),
        ("http:////example.com/x", False),  # no host: canonicalising made one up
        ("https://site.kz", True),
        ("/news/1", False),
        ("ftp://site.kz/a", False),
        ("https://site.kz/a?" + "b&" * 4087, True),  # 8,192 characters
        ("https://site.kz/a?" + "b&" * 4087 + "b", False),  # past what servers must accept
        ("https://site.kz/a?q=" + "\U0001f600" * 2045, False),  # 8,192 bytes past: 48 KB keyed
        ("https://\n      site.kz/a", False),  # wrapped: no event may carry it
        ("https:// site.kz/a", False),
        ("https://\u00a0site.kz/a", False),
        ("https://site.kz/a?q=\ud800", False),  # a lone surrogate has no bytes to key
        # Hosts no name holds: events would carry them escaped (`a%20b`), which Go's
        # net/url refuses in a host.
        ("http://a b.site.kz/x", False),
        ("http://ho<st>.site.kz/x", False),
        ("http://host^.site.kz/x", False),
        ("http://host%41.site.kz/x", False),
        ("http://host,1.site.kz/x", False),
        ("https://новости.site.kz/x", True),  # any script: escaped as UTF-8, which Go reads
        ("https://xn--b1amnebsh.kz/x", True),
        ("https://my_host.site.kz/x", True),
        ("http://[2001:DB8::1]/x", True),
        ("http://user@Site.KZ:8080/x", True),
    ],
)
def test_a_web_url_is_an_http_url_with_a_host_that_canonicalizes(url: str, usable: bool) -> None:
    assert is_web_url(url) is usable


def test_escapes_of_other_encodings_keep_their_bytes_and_articles_apart() -> None:
    # A cp1251 site's titles, Алматы and Астана: replaced, both read as six U+FFFD.
    almaty = canonicalize_url("https://old.kz/index.php?title=%C0%EB%EC%E0%F2%FB&utm_source=x")
    astana = canonicalize_url("https://old.kz/index.php?title=%C0%F1%F2%E0%ED%E0")
    assert almaty == "https://old.kz/index.php?title=%C0%EB%EC%E0%F2%FB"
    assert astana == "https://old.kz/index.php?title=%C0%F1%F2%E0%ED%E0"
    # UTF-8, escaped or not, keys as before.
    assert (
        canonicalize_url("https://a.kz/?q=алматы")
        == "https://a.kz/?q=%D0%B0%D0%BB%D0%BC%D0%B0%D1%82%D1%8B"
    )


@pytest.mark.parametrize(
    "link",
    [
        "https://news.kz/a/story-1.html;jsessionid=0A1B2C3D?id=5",
        "https://news.kz/a/story-1.html;JSESSIONID=ffee.node7?id=5",
        "https://news.kz/a/story-1.html?PHPSESSID=9f8e7d&id=5",
        "https://news.kz/a/story-1.html?id=5&ASPSESSIONIDQQTRBCDA=KLMNOPQ",
        "https://news.kz/a/story-1.html?CFID=1234&CFTOKEN=5678&id=5&sessionid=x",
    ],
)
def test_a_session_id_in_a_link_is_not_part_of_the_article_key(link: str) -> None:
    # Old CMSs put a new session id in every link each time they answer: every poll's
    # items were new articles, fetched, published and remembered again (helper-107).
    assert canonicalize_url(link) == "https://news.kz/a/story-1.html?id=5"


def test_a_story_id_named_sid_is_kept() -> None:
    # PHP-Nuke's article links name the story `sid`: no session id.
    link = "https://news.kz/modules.php?name=News&file=article&sid=123"
    assert canonicalize_url(link) == link
