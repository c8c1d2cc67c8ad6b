"""The pure rules of the polite fetcher: SSRF refusals, backoff, Retry-After, robots.txt."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime

import httpcore
import pytest
from protego import Protego

from shared.backoff import POLL_RETRY_FIRST, Backoff, capped_seconds, retry_after_seconds
from shared.robots import MAX_RULES, our_lines, rule_count, rules_from_response
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


AGENT = "CaravanBot/0.1 (+https://github.com/caravan-news/caravan)"


def robots_refusal(body: str, path: str, agent: str = AGENT) -> str | None:
    return rules_from_response(200, body, agent).refusal(f"https://site.example{path}")


def test_robots_rules_for_our_agent_and_everyone_else() -> None:
    body = (
        "User-agent: CaravanBot\nDisallow: /private/\nCrawl-delay: 5\n\n"
        "User-agent: *\nDisallow: /\n"
    )
    assert robots_refusal(body, "/news/1") is None
    assert robots_refusal(body, "/private/feed.xml") == "disallowed by robots.txt"
    assert robots_refusal(body, "/news/1", "OtherBot/1.0") == "disallowed by robots.txt"
    assert rules_from_response(200, body, AGENT).crawl_delay() == 5.0


@pytest.mark.parametrize(
    ("status", "allowed"),
    [(404, True), (410, True), (429, False), (500, False), (503, False), (None, False)],
)
def test_missing_robots_allows_everything_unreachable_robots_nothing(
    status: int | None, allowed: bool
) -> None:
    rules = rules_from_response(status, "User-agent: *\nDisallow: /\n", AGENT)
    assert (rules.refusal("https://site.example/a") is None) is allowed


def test_a_robots_txt_answered_304_is_unreachable_not_empty() -> None:
    # robots.txt is never asked for conditionally: a 304 has no file behind it, and read
    # as an empty one it allowed everything for a day.
    rules = rules_from_response(304, "", AGENT)
    assert rules.disallow_all
    assert rules.refusal("https://site.example/a") == "robots.txt unreachable"


# RFC 9309 §2.2.1: the group naming our product token (case-insensitively) applies, else
# the `*` group; groups naming the same agent are one, and so is a group of several agents.
@pytest.mark.parametrize(
    ("body", "path", "allowed"),
    [
        ("User-agent: *\nDisallow: /\n\nUser-agent: caravanbot\nDisallow: /a\n", "/b", True),
        ("User-agent: CARAVANBOT\nDisallow: /a\n\nUser-agent: *\nDisallow: /\n", "/a", False),
        ("User-agent: OtherBot\nDisallow: /\n\nUser-agent: *\nDisallow: /a\n", "/b", True),
        ("User-agent: OtherBot\nDisallow: /\n\nUser-agent: *\nDisallow: /a\n", "/a", False),
        ("User-agent: OtherBot\nDisallow: /\n", "/a", True),  # no group for us
        (
            "User-agent: CaravanBot\nDisallow: /a\nUser-agent: CaravanBot\nDisallow: /b\n",
            "/b",
            False,
        ),
        ("User-agent: CaravanBot\nDisallow: /a\nUser-agent: x\nDisallow: /b\n", "/b", True),
        ("User-agent: x\nUser-agent: CaravanBot\nUser-agent: y\nDisallow: /a\n", "/a", False),
        ("User-agent: CaravanBot\nSitemap: /s.xml\nUser-agent: x\nDisallow: /a\n", "/a", False),
        ("User-agent: CaravanBot\nDisallow: /a\nUser-agent:\nDisallow: /b\n", "/b", True),
        ("User-agent: Cara*vanBot\nDisallow: /a\n", "/a", False),  # protego drops the `*`
    ],
)
def test_robots_rfc_9309_groups(body: str, path: str, allowed: bool) -> None:
    assert (robots_refusal(body, path) is None) is allowed


def test_crawl_delays_per_group_with_fractions() -> None:
    body = (
        "User-agent: Googlebot\nUser-agent: CaravanBot\nCrawl-delay: 0.5 # be gentle\n"
        "Disallow: /tmp/\n\nUser-agent: *\nCrawl-delay: 10\n"
    )
    assert rules_from_response(200, body, "CaravanBot/0.1 (+https://x)").crawl_delay() == 0.5
    assert rules_from_response(200, body, "OtherBot/2").crawl_delay() == 10.0
    assert rules_from_response(200, "User-agent: *\nDisallow:\n", AGENT).crawl_delay() is None


def test_a_robots_txt_of_thousands_of_agents_costs_only_our_group() -> None:
    # 66 KB: parsed whole, each rule once per agent, it took 4 s and 200 MB of the event
    # loop; only the rules for us are parsed now.
    agents = "".join(f"User-agent: b{n}\n" for n in range(2000))
    rules = "".join(f"Disallow: /p{n}\n" for n in range(2000))
    theirs = agents + rules + "\nUser-agent: *\nDisallow: /private/\n"
    assert rule_count(our_lines(theirs, AGENT)) == (1, 0)
    assert robots_refusal(theirs, "/p1") is None
    assert robots_refusal(theirs, "/private/a") == "disallowed by robots.txt"
    assert robots_refusal(theirs, "/p1", "b7/1.0") == "disallowed by robots.txt"
    # Named among them, we obey their rules as ours.
    ours = agents + "User agent: CaravanBot\n" + rules
    assert rule_count(our_lines(ours, AGENT)) == (2000, 0)
    assert robots_refusal(ours, "/p1999") == "disallowed by robots.txt"
    assert robots_refusal(ours, "/a") is None


# 9 agents, ours among them, over `Allow: /x$/index.html` to 500 KiB: protego builds four
# rules of each (the `$` read twice, index.html's directory once more), per agent; the
# file took 2.65 s to parse and kept 166 MiB for a day.
@pytest.mark.parametrize("ours", ["caravan", "*"])
def test_a_robots_txt_of_expanding_rules_for_us_shuts_its_host(ours: str) -> None:
    agents = "".join(f"User-agent: a{n}\n" for n in range(8)) + f"User-agent: {ours}\n"
    body = agents + "".join(f"allow:/{n:x}$/index.html\n" for n in range(21_500))
    assert len(body.encode()) <= 500 * 1024
    assert rule_count(our_lines(body, AGENT))[0] == MAX_RULES + 4  # counting stops past it
    shut = rules_from_response(200, body, AGENT)
    assert shut.refusal("https://site.example/a") == shut.why
    assert shut.why == "robots.txt too large to apply (over 5000 rules for us)"
    # Only for whom they are: another agent's rules cost nothing.
    theirs = body.replace(f"User-agent: {ours}\n", "") + "User-agent: *\nDisallow: /a\n"
    assert rule_count(our_lines(theirs, AGENT)) == (1, 0)
    assert robots_refusal(theirs, "/1$/index.html") is None
    assert robots_refusal(theirs, "/a") == "disallowed by robots.txt"


# The count is of what protego really builds: each value against a parse of its own.
@pytest.mark.parametrize(
    "line",
    [
        "Disallow: /a",
        "Allow: /a/index.html",
        "Disallow: /a/index.html",
        "Allow: /a/index.html$",
        "Allow: /a$/index.html",
        "Allow: /a$b$/index.html",
        "Allow: /a/index.htm%6C",
        "Allow: /*/index.html",
        "Disallow: /*.pdf$",
        "Disallow: /a$b",
        "Allow: https://site.example/index.html",
        "Disallow: $",
        "Crawl-delay: 3",
    ],
)
def test_the_rule_count_is_what_protego_builds(line: str) -> None:
    body = f"User-agent: *\n{line}\n"
    built = [
        rule for rule_set in Protego.parse(body)._user_agents.values() for rule in rule_set._rules
    ]
    wildcards = [rule for rule in built if "*" in rule.value._pattern]
    assert rule_count(our_lines(body, AGENT)) == (len(built), len(wildcards))


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
    rules = rules_from_response(200, "User-agent: *\n" + body, AGENT)
    assert (rules.refusal(f"https://site.example{path}") is None) is allowed


def test_a_robots_txt_of_many_wildcard_rules_refuses_checks_it_cannot_afford() -> None:
    # 500 KB of `Disallow: *zx` took 0.4 s of the event loop per check of an 8 KB URL.
    body = "User-agent: *\n" + "Disallow: *zx\n" * 4_000
    assert rule_count(our_lines(body, AGENT)) == (4_000, 4_000)
    rules = rules_from_response(200, body, AGENT)
    long_url = "https://site.example/" + "a" * 8000
    assert rules.refusal(long_url) == "robots.txt too costly to apply (4000 wildcard rules)"
    # Short URLs are still checked against every rule.
    assert rules.refusal("https://site.example/a") is None
    assert rules.refusal("https://site.example/azx") == "disallowed by robots.txt"
    # protego keeps a rule with a `$` twice; plain rules scan nothing.
    assert rule_count(our_lines("User-agent: *\nDisallow: /*.pdf$\nDisallow: /a\n", AGENT)) == (
        3,
        2,
    )
    few = rules_from_response(200, "User-agent: *\n" + "Disallow: *zx\n" * 900, AGENT)
    assert few.refusal(long_url) is None
