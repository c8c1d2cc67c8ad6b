"""robots.txt rules, parsed once per host and kept for a day (RFC 9309).

Matching is protego's, which follows RFC 9309 where `urllib.robotparser` does not: `*` and
`$` in paths, and the longest matching rule wins (an `Allow` on equal length). Parsing and
deciding are pure; the fetcher hands in what /robots.txt answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from protego import Protego
from protego._protego import (
    _ALLOW_DIRECTIVE,
    _CRAWL_DELAY_DIRECTIVE,
    _DISALLOW_DIRECTIVE,
    _REQUEST_RATE_DIRECTIVE,
    _SITE_WIDE_DIRECTIVES,
    _USER_AGENT_DIRECTIVE,
    _VISIT_TIME_DIRECTIVE,
    _extract_directive,
)

# protego keeps each rule of a group once per user agent the group names: a group of
# thousands of agents over thousands of rules (a 66 KB file) took 4 s and 200 MB of
# the event loop. Past this many copies a robots.txt is an attack, not a policy: its
# host is not fetched, as when robots.txt is unreachable.
MAX_RULE_COPIES = 200_000
# protego scans the whole URL once per rule with a `*`, on the event loop: 39,000 of
# them (a 500 KB robots.txt) took 0.4 s per check of an 8 KB URL. A check costing
# more than this many characters scanned (about 10 ms) is refused, with the reason.
MAX_MATCH_WORK = 8_000_000
# The directives protego keeps once per agent, in its spellings. The count reads and
# groups lines with its own reader and rules: any other reading could count a file
# small that protego parses large.
_PER_AGENT = (
    _ALLOW_DIRECTIVE
    | _DISALLOW_DIRECTIVE
    | _CRAWL_DELAY_DIRECTIVE
    | _REQUEST_RATE_DIRECTIVE
    | _VISIT_TIME_DIRECTIVE
)


@dataclass(frozen=True)
class RobotsRules:
    parser: Protego | None
    # Unreachable robots.txt (5xx, network errors) means "disallow everything"
    # for a while (RFC 9309 §2.3.1.4); a missing one (4xx) allows everything.
    disallow_all: bool = False
    why: str = "robots.txt unreachable"
    """What a refusal says when everything is disallowed."""
    wildcards: int = 0
    """Rules with a `*`, counted once per rule set that keeps them: each scans the URL."""

    def refusal(self, user_agent: str, url: str) -> str | None:
        """Why `url` may not be fetched, or None when it may."""
        if self.disallow_all:
            return self.why
        if self.parser is None:
            return None
        if self.wildcards * len(url) > MAX_MATCH_WORK:
            return f"robots.txt too costly to apply ({self.wildcards} wildcard rules)"
        return None if self.parser.can_fetch(url, user_agent) else "disallowed by robots.txt"

    def crawl_delay(self, user_agent: str) -> float | None:
        """The Crawl-delay of the group that applies to us (ours, else `*`), fractions
        (`Crawl-delay: 0.5`) included."""
        return None if self.parser is None else self.parser.crawl_delay(user_agent)


def rules_from_response(status: int | None, body: str) -> RobotsRules:
    """`status` None means the request failed before any answer."""
    if status is None or status >= 500:
        return RobotsRules(None, disallow_all=True)
    if status >= 400:
        return RobotsRules(None)
    copies, wildcards = rule_copies(body)
    if copies > MAX_RULE_COPIES:
        return RobotsRules(
            None,
            disallow_all=True,
            why=f"robots.txt too large to apply ({copies} rules, per agent)",
        )
    return RobotsRules(Protego.parse(body), wildcards=wildcards)


def rule_copies(body: str) -> tuple[int, int]:
    """How many rules protego would keep, and how many of them have a `*`: each
    per-agent rule once per rule set of its group, read with protego's own directive
    reader and grouping (an agent with a `*` makes two rule sets); linear, without
    building any. A wildcard rule with a `$` counts twice, as protego keeps it twice."""
    copies = wildcards = rule_sets = 0
    previous: str | None = None
    for raw in body.splitlines():
        line = raw.split("#", 1)[0].strip()
        parsed = _extract_directive(line) if line else None
        if parsed is None:
            continue
        field, value = parsed
        if field in _USER_AGENT_DIRECTIVE and previous not in (None, *_USER_AGENT_DIRECTIVE):
            rule_sets = 0  # an agent after a rule starts the next group
        if field not in _SITE_WIDE_DIRECTIVES:
            previous = field
        if not value:
            continue
        if field in _USER_AGENT_DIRECTIVE:
            rule_sets += 2 if "*" in value and value.strip() != "*" else 1
        elif field in _PER_AGENT:
            copies += rule_sets
            if "*" in value:
                wildcards += rule_sets * (2 if "$" in value else 1)
    return copies, wildcards
