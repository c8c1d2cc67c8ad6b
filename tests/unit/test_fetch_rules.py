"""The pure rules of the polite fetcher: SSRF refusals, backoff, Retry-After, robots.txt."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime

import httpcore
import pytest

from shared.backoff import POLL_RETRY_FIRST, Backoff, capped_seconds, retry_after_seconds
from shared.robots import rule_copies, rules_from_response
from shared.ssrf import AddressRefused, AllowList, check_all, refusal, resolve

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "100.100.100.200",
        "0.0.0.0",
        "::1",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        "192.0.0.8",  # the IPv4 dummy address, global to Python
        "fec0::1",  # site-local, global to Python
    ],
)
def test_internal_addresses_are_refused_by_default(address: str) -> None:
    reason = refusal("example.org", ipaddress.ip_address(address), AllowList())
    assert reason is not None
    assert "internal address" in reason


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal("example.org", ipaddress.ip_address(address), AllowList()) is None


def test_allow_list_takes_hosts_addresses_and_networks() -> None:
    allow = AllowList.parse(" localhost., 127.0.0.1 ,10.0.0.0/8,, ::1 ")
    assert allow.hosts == frozenset({"localhost"})
    assert refusal("LOCALHOST", ipaddress.ip_address("127.0.0.1"), allow) is None
    assert refusal("intranet", ipaddress.ip_address("10.20.30.40"), allow) is None
    assert refusal("a", ipaddress.ip_address("::ffff:127.0.0.1"), allow) is None
    assert refusal("a", ipaddress.ip_address("169.254.169.254"), allow) is not None


@pytest.mark.parametrize(
    "address",
    [
        # IPv4-compatible (deprecated) and IPv4-mapped forms
        "::127.0.0.1",
        "::10.0.0.1",
        "::169.254.169.254",
        "::ffff:192.168.0.1",
        "::ffff:169.254.169.254",
        # SIIT's IPv4-translated addresses
        "::ffff:0:7f00:1",
        "::ffff:0:a00:1",
        # NAT64, the well-known prefix: the gateway dials the embedded IPv4 address
        "64:ff9b::127.0.0.1",
        "64:ff9b::10.1.2.3",
        "64:ff9b::169.254.169.254",
        "64:ff9b::172.16.0.1",
        "64:ff9b::100.100.100.200",
        # NAT64, a site's local-use prefix: refused whatever it embeds
        "64:ff9b:1::1",
        "64:ff9b:1:808:808::",
        # 6to4, deprecated: refused whatever it embeds
        "2002:7f00:1::",
        "2002:a00:1::1",
        "2002:a9fe:a9fe::",
        "2002:c0a8:101::",
        "2002:5db8:d70e::",
    ],
)
def test_ipv6_wrappers_of_internal_ipv4_addresses_are_refused(address: str) -> None:
    reason = refusal("example.org", ipaddress.ip_address(address), AllowList())
    assert reason is not None
    assert "internal address" in reason


def test_the_refusal_names_the_embedded_address() -> None:
    reason = refusal("rebind.example", ipaddress.ip_address("64:ff9b::a9fe:a9fe"), AllowList())
    assert reason == (
        "rebind.example resolves to 64:ff9b::a9fe:a9fe (169.254.169.254), "
        "an internal address (see CARAVAN_FETCH_ALLOW)"
    )


@pytest.mark.parametrize(
    "address", ["64:ff9b::93.184.215.14", "::ffff:93.184.215.14", "::ffff:0:5db8:d70e"]
)
def test_ipv6_wrappers_of_public_ipv4_addresses_pass(address: str) -> None:
    # DNS64 on an IPv6-only network answers every IPv4-only site in 64:ff9b::/96.
    assert refusal("example.org", ipaddress.ip_address(address), AllowList()) is None


def test_an_allowed_network_covers_its_wrapped_forms() -> None:
    allow = AllowList.parse("10.0.0.0/8")
    assert refusal("a", ipaddress.ip_address("64:ff9b::10.0.0.1"), allow) is None
    assert refusal("a", ipaddress.ip_address("::ffff:10.0.0.1"), allow) is None
    assert refusal("a", ipaddress.ip_address("64:ff9b::127.0.0.1"), allow) is not None


def test_one_internal_address_among_public_ones_taints_the_name() -> None:
    addresses = [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(AddressRefused, match=r"rebind\.example resolves to 127\.0\.0\.1"):
        check_all("rebind.example", addresses, AllowList())


@pytest.mark.parametrize("host", ["news..example", "a" * 64 + ".example"])
async def test_a_host_name_with_no_valid_labels_is_a_connection_failure(host: str) -> None:
    # The IDNA codec's UnicodeError escaped every fetch's failure handling: a feed item
    # or a sitemap child on such a host failed its whole poll, every poll.
    with pytest.raises(httpcore.ConnectError, match="cannot resolve"):
        await resolve(host, 80)


def test_backoff_grows_exponentially_within_the_cap_with_equal_jitter() -> None:
    backoff = Backoff(1.0, 60.0, random.Random(7))
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (8, 60.0), (30, 60.0)]:
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)  # never immediate
        assert min(delays) < ceiling * 0.6  # spread over the whole upper half
        assert max(delays) > ceiling * 0.9
        assert len(set(delays)) == 200


def test_a_failed_source_is_polled_again_sooner_then_no_more_than_its_interval() -> None:
    rng = random.Random(7)
    for failures, ceiling in [(1, 30.0), (2, 60.0), (3, 120.0), (6, 900.0), (10_000, 900.0)]:
        delays = [Backoff(POLL_RETRY_FIRST, 900.0, rng).delay(failures) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)  # never a tight loop
        assert len(set(delays)) == 200
    assert Backoff(POLL_RETRY_FIRST, 10.0, rng).delay(1) <= 10.0  # polled more often than 30 s


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Fri, 27 Nov 2026 12:01:30 GMT", 90.0),
        ("Fri, 27 Nov 2026 11:00:00 GMT", 0.0),  # in the past: go now
        ("soon", None),
        ("", None),
        (None, None),
        # Hostile: capped at an hour, or not a delay at all.
        ("99999999999", 3600.0),
        ("9" * 5000, 3600.0),
        ("Fri, 27 Nov 9999 12:00:00 GMT", 3600.0),
        ("²", None),  # a Unicode digit: str.isdigit() says yes, int() says no
        ("١٢٠", None),  # Arabic-Indic digits
        ("-5", None),
        ("1e9", None),
        ("Fri, 27 Nov 2026 12:00:00 +9999", None),
    ],
)
def test_retry_after_as_seconds_or_http_date(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW, cap=3600.0) == seconds


@pytest.mark.parametrize(
    ("asked", "seconds"),
    [
        (5.0, 5.0),
        (-1.0, 0.0),
        (float("nan"), 0.0),
        (float("inf"), 60.0),
        (1e308, 60.0),
    ],
)
def test_remote_delays_are_capped(asked: float, seconds: float) -> None:
    assert capped_seconds(asked, 60.0) == seconds


def test_robots_rules_for_our_agent_and_everyone_else() -> None:
    body = (
        "User-agent: CaravanBot\nDisallow: /private/\nCrawl-delay: 5\n\n"
        "User-agent: *\nDisallow: /\n"
    )
    rules = rules_from_response(200, body)
    agent = "CaravanBot/0.1 (+https://github.com/caravan-news/caravan)"
    assert rules.refusal(agent, "https://site.example/news/1") is None
    assert (
        rules.refusal(agent, "https://site.example/private/feed.xml") == "disallowed by robots.txt"
    )
    assert rules.refusal("OtherBot/1.0", "https://site.example/news/1") is not None
    assert rules.crawl_delay(agent) == 5.0


@pytest.mark.parametrize(
    ("status", "allowed"), [(404, True), (410, True), (500, False), (503, False), (None, False)]
)
def test_missing_robots_allows_everything_unreachable_robots_nothing(
    status: int | None, allowed: bool
) -> None:
    rules = rules_from_response(status, "User-agent: *\nDisallow: /\n")
    assert (rules.refusal("CaravanBot/0.1", "https://site.example/a") is None) is allowed


def test_a_robots_txt_of_thousands_of_agents_over_thousands_of_rules_shuts_its_host() -> None:
    # 66 KB: parsed, each rule once per agent, it took 4 s and 200 MB of the event loop.
    agents = "".join(f"User-agent: b{n}\n" for n in range(2000))
    rules = "".join(f"Disallow: /p{n}\n" for n in range(2000))
    shut = rules_from_response(200, agents + "User agent: CaravanBot\n" + rules)
    assert shut.refusal("CaravanBot/0.1", "https://site.example/a") == shut.why
    assert shut.why == "robots.txt too large to apply (4002000 rules, per agent)"
    # Lines protego reads as no group's end (Sitemap, Host, no directive at all) keep
    # the agents one group, so they are counted as one: 2,000 agents, 2,000 rules.
    interleaved = "".join(f"User-agent: b{n}\nSitemap: /s\nHost: h\nx\n" for n in range(2000))
    assert rules_from_response(200, interleaved + rules).refusal("CaravanBot", "https://s/a")
    # An agent with a `*` is two rule sets (with and without it).
    starred = "".join(f"User-agent: b{n}*\n" for n in range(100))
    assert rule_copies(starred + rules) == (200 * 2000, 0)
    # A large policy of few agents is read as it is.
    big = rules_from_response(200, "User-agent: *\nUser-agent: x\n" + rules)
    assert big.refusal("CaravanBot/0.1", "https://site.example/a") is None
    assert big.refusal("CaravanBot/0.1", "https://site.example/p1999") is not None


def test_crawl_delays_per_group_with_fractions() -> None:
    body = (
        "User-agent: Googlebot\nUser-agent: CaravanBot\nCrawl-delay: 0.5 # be gentle\n"
        "Disallow: /tmp/\n\nUser-agent: *\nCrawl-delay: 10\n"
    )
    rules = rules_from_response(200, body)
    assert rules.crawl_delay("CaravanBot/0.1 (+https://x)") == 0.5
    assert rules.crawl_delay("OtherBot/2") == 10.0
    assert rules_from_response(200, "User-agent: *\nDisallow:\n").crawl_delay("CaravanBot") is None


# RFC 9309 §2.2.2: the longest matching path wins, `*` matches any run of characters and
# `$` anchors the end; urllib.robotparser took the first match and read both literally.
@pytest.mark.parametrize(
    ("body", "path", "allowed"),
    [
        ("Disallow: /a\nAllow: /a/b\n", "/a/b/c", True),  # the longer Allow wins
        ("Allow: /a/b\nDisallow: /a\n", "/a/b/c", True),  # whatever the order
        ("Disallow: /a\nAllow: /a/b\n", "/a/c", False),
        ("Disallow: /*.pdf$\n", "/doc.pdf", False),
        ("Disallow: /*.pdf$\n", "/doc.pdf?page=2", True),  # `$`: nothing may follow
        ("Disallow: /*.pdf$\n", "/doc.pdfs/index.html", True),
        ("Disallow: /news/*/print\n", "/news/2026/11/print", False),
        ("Disallow: /news/*/print\n", "/news/print", True),
        ("Disallow: /\nAllow: /$\n", "/", True),
        ("Disallow: /\nAllow: /$\n", "/page", False),
        ("Disallow: /page\nAllow: /page\n", "/page", True),  # equal length: Allow
    ],
)
def test_robots_rfc_9309_wildcards_end_anchor_and_longest_match(
    body: str, path: str, allowed: bool
) -> None:
    rules = rules_from_response(200, "User-agent: *\n" + body)
    assert (rules.refusal("CaravanBot/0.1", f"https://site.example{path}") is None) is allowed


def test_a_robots_txt_of_many_wildcard_rules_refuses_checks_it_cannot_afford() -> None:
    # 500 KB of `Disallow: *zx` took 0.4 s of the event loop per check of an 8 KB URL.
    body = "User-agent: *\n" + "Disallow: *zx\n" * 39_000
    assert rule_copies(body) == (39_000, 39_000)
    rules = rules_from_response(200, body)
    long_url = "https://site.example/" + "a" * 8000
    assert rules.refusal("CaravanBot/0.1", long_url) == (
        "robots.txt too costly to apply (39000 wildcard rules)"
    )
    # Short URLs are still checked against every rule.
    assert rules.refusal("CaravanBot/0.1", "https://site.example/a") is None
    assert rules.refusal("CaravanBot/0.1", "https://site.example/azx") == "disallowed by robots.txt"
    # protego keeps a rule with a `$` twice; plain rules scan nothing.
    assert rule_copies("User-agent: *\nDisallow: /*.pdf$\nDisallow: /a\n") == (2, 2)
    few = rules_from_response(200, "User-agent: *\n" + "Disallow: *zx\n" * 900)
    assert few.refusal("CaravanBot/0.1", long_url) is None
