"""robots.txt rules, parsed once per host and kept for a day (RFC 9309).

Matching is protego's, which follows RFC 9309 where `urllib.robotparser` does not: `*` and
`$` in paths, and the longest matching rule wins (an `Allow` on equal length). Only the
group that applies to us is parsed and kept (§2.2.1: the one naming our agent, else `*`):
rules for other agents cost nothing, however many the file names. Parsing and deciding
are pure; the fetcher hands in what /robots.txt answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from protego import Protego
from protego._protego import (
    _ALLOW_DIRECTIVE,
    _CRAWL_DELAY_DIRECTIVE,
    _DISALLOW_DIRECTIVE,
    _SITE_WIDE_DIRECTIVES,
    _USER_AGENT_DIRECTIVE,
    _extract_directive,
)
from protego._ruleset import _RuleSet
from protego._utils import _hexescape, _quote_pattern

# Rules protego builds for our group, its expansions included (a value with a `$` is kept
# twice, an Allow of an index.html once more): 9 agents over 21,500 `Allow: /x$/index.html`
# (512 KB) took 2.6 s of the event loop and kept 166 MB for a day. Past this many a
# robots.txt is an attack, not a policy: its host is not fetched, as when robots.txt is
# unreachable. Of 13,000 real files the largest (a shop's, 201 KB) builds 2,519 for us.
MAX_RULES = 5_000
# protego scans the whole URL once per rule with a `*`, on the event loop: 39,000 of
# them (a 500 KB robots.txt) took 0.4 s per check of an 8 KB URL. A check costing
# more than this many characters scanned (about 10 ms) is refused, with the reason.
MAX_MATCH_WORK = 8_000_000
# What we read of our group: the rest (Request-rate, Visit-time) we do not obey.
_KEPT = _ALLOW_DIRECTIVE | _DISALLOW_DIRECTIVE | _CRAWL_DELAY_DIRECTIVE
# The group kept is written for every agent, as it is the one that applies to us.
_ANY_AGENT = "*"


@dataclass(frozen=True)
class RobotsRules:
    """What robots.txt says to one user agent, the one its rules were read for."""

    parser: Protego | None
    # Unreachable robots.txt (5xx, network errors) means "disallow everything"
    # for a while (RFC 9309 §2.3.1.4); a missing one (4xx) allows everything, but
    # 429 is no answer about the file: the host asked us to slow down. Nor is 304:
    # robots.txt is never asked for conditionally, so it names no version we hold.
    disallow_all: bool = False
    why: str = "robots.txt unreachable"
    """What a refusal says when everything is disallowed."""
    wildcards: int = 0
    """Rules protego keeps with a `*`: each scans the URL."""
    size: int = 0
    """Characters of the rules kept: what they weigh in memory, a dozen bytes each."""

    def refusal(self, url: str) -> str | None:
        """Why `url` may not be fetched, or None when it may."""
        if self.disallow_all:
            return self.why
        if self.parser is None:
            return None
        if self.wildcards * len(url) > MAX_MATCH_WORK:
            return f"robots.txt too costly to apply ({self.wildcards} wildcard rules)"
        return None if self.parser.can_fetch(url, _ANY_AGENT) else "disallowed by robots.txt"

    def crawl_delay(self) -> float | None:
        """The Crawl-delay of our group, fractions (`Crawl-delay: 0.5`) included."""
        return None if self.parser is None else self.parser.crawl_delay(_ANY_AGENT)


def rules_from_response(status: int | None, body: str, user_agent: str) -> RobotsRules:
    """The rules for `user_agent`; `status` None means the request failed before any answer."""
    if status is None or status >= 500 or status in (304, 429):
        return RobotsRules(None, disallow_all=True)
    if status >= 400:
        return RobotsRules(None)
    lines = our_lines(body, user_agent)
    if not lines:
        return RobotsRules(None)
    rules, wildcards = rule_count(lines)
    if rules > MAX_RULES:
        why = f"robots.txt too large to apply (over {MAX_RULES} rules for us)"
        return RobotsRules(None, disallow_all=True, why=why)
    group = "".join(f"{field}: {value}\n" for field, value in lines)
    parser = Protego.parse(f"User-agent: {_ANY_AGENT}\n{group}")
    return RobotsRules(parser, wildcards=wildcards, size=len(group))


def our_lines(body: str, user_agent: str) -> list[tuple[str, str]]:
    """The Allow, Disallow and Crawl-delay lines of the groups protego would apply to
    `user_agent`, in their order: those naming the agent it matches best (its own
    matching, merging groups that name the same agent), with no rule built. Linear."""
    ours = _agent_for(body, user_agent)
    if ours is None:
        return []
    lines: list[tuple[str, str]] = []
    in_ours = False
    for field, value, starts_group in _directives(body):
        if starts_group:
            in_ours = False
        if not value:
            continue
        if field in _USER_AGENT_DIRECTIVE:
            in_ours = in_ours or ours in _agent_names(value)
        elif in_ours and field in _KEPT:
            lines.append((field, value))
    return lines


def rule_count(lines: list[tuple[str, str]]) -> tuple[int, int]:
    """How many rules protego builds for `lines`, and how many of them have a `*`;
    counting stops past MAX_RULES, as quoting each value costs."""
    rules = wildcards = 0
    for field, value in lines:
        if field in _CRAWL_DELAY_DIRECTIVE:
            continue
        # A value with a `$` is kept twice, once with the `$` escaped; an Allow ending
        # in /index.html also allows its directory (`/dir/$`).
        spellings = (value.replace("$", _hexescape("$")), value) if "$" in value else (value,)
        for pattern in filter(None, map(_quote_pattern, spellings)):
            built = 2 if field in _ALLOW_DIRECTIVE and pattern.endswith("/index.html") else 1
            rules += built
            wildcards += built if "*" in pattern else 0
        if rules > MAX_RULES:
            break
    return rules, wildcards


def _agent_for(body: str, user_agent: str) -> str | None:
    """The agent named in `body` whose rules protego applies to `user_agent`: the best
    of its scores, the first named on a tie; None when no group applies."""
    probe = _RuleSet(Protego())  # protego's own matching, one agent at a time
    best, best_score = None, 0
    for field, value, _ in _directives(body):
        if field not in _USER_AGENT_DIRECTIVE or not value:
            continue
        for agent in _agent_names(value):
            probe.user_agent = agent
            score = probe.applies_to(user_agent)
            if score > best_score:
                best, best_score = agent, score
    return best


def _agent_names(value: str) -> tuple[str, ...]:
    """The agents protego reads from one User-agent value: a `*` within a name also
    names it without the `*`."""
    agent = value.strip().lower()
    if agent == "*" or "*" not in agent:
        return (agent,)
    return tuple(filter(None, (agent, agent.replace("*", ""))))


def _directives(body: str) -> Iterator[tuple[str, str, bool]]:
    """Each directive of `body` as protego reads it: field, value (maybe empty), and
    whether it ends the group before it (an agent after a rule; Sitemap and Host belong
    to no group). Its own reader and grouping: any other reading could find a group
    small, or not ours, that protego reads large, or ours."""
    previous: str | None = None
    for raw in body.splitlines():
        line = raw.split("#", 1)[0].strip()
        parsed = _extract_directive(line) if line else None
        if parsed is None:
            continue
        field, value = parsed
        after_rule = previous is not None and previous not in _USER_AGENT_DIRECTIVE
        yield field, value, field in _USER_AGENT_DIRECTIVE and after_rule
        if field not in _SITE_WIDE_DIRECTIVES:
            previous = field
