"""robots.txt rules, parsed once per host and kept for a day (RFC 9309).

Matching is protego's, which follows RFC 9309 where `urllib.robotparser` does not: `*` and
`$` in paths, and the longest matching rule wins (an `Allow` on equal length). Parsing and
deciding are pure; the fetcher hands in what /robots.txt answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protego import Protego

# protego keeps each rule of a group once per user agent the group names: a group of
# thousands of agents over thousands of rules (a 66 KB file) took 4 s and 200 MB of
# the event loop. Past this many copies a robots.txt is an attack, not a policy: its
# host is not fetched, as when robots.txt is unreachable.
MAX_RULE_COPIES = 200_000
# The user-agent line in the spellings protego reads ("User-agent", "useragent",
# "User agent"), counted generously: a miss here would be a group counted too small.
_AGENT_LINE = re.compile(r"user[\s_-]*agent", re.IGNORECASE)


@dataclass(frozen=True)
class RobotsRules:
    parser: Protego | None
    # Unreachable robots.txt (5xx, network errors) means "disallow everything"
    # for a while (RFC 9309 §2.3.1.4); a missing one (4xx) allows everything.
    disallow_all: bool = False
    why: str = "robots.txt unreachable"
    """What a refusal says when everything is disallowed."""

    def allows(self, user_agent: str, url: str) -> bool:
        if self.disallow_all:
            return False
        return self.parser is None or self.parser.can_fetch(url, user_agent)

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
    copies = rule_copies(body)
    if copies > MAX_RULE_COPIES:
        return RobotsRules(
            None,
            disallow_all=True,
            why=f"robots.txt too large to apply ({copies} rules, per agent)",
        )
    return RobotsRules(Protego.parse(body))


def rule_copies(body: str) -> int:
    """How many rules a parser keeping each group's rules per user agent would hold:
    each group's agents times its other lines (an upper bound: every line counts)."""
    copies = agents = rules = 0
    for raw in body.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if _AGENT_LINE.match(line):
            if rules:  # an agent after rules starts the next group
                copies += agents * rules
                agents = rules = 0
            agents += 1
        else:
            rules += 1
    return copies + agents * rules
