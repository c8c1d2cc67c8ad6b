"""robots.txt rules, parsed once per host and kept for a day (RFC 9309).

Matching is protego's, which follows RFC 9309 where `urllib.robotparser` does not: `*` and
`$` in paths, and the longest matching rule wins (an `Allow` on equal length). Parsing and
deciding are pure; the fetcher hands in what /robots.txt answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from protego import Protego


@dataclass(frozen=True)
class RobotsRules:
    parser: Protego | None
    # Unreachable robots.txt (5xx, network errors) means "disallow everything"
    # for a while (RFC 9309 §2.3.1.4); a missing one (4xx) allows everything.
    disallow_all: bool = False

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
    return RobotsRules(Protego.parse(body))
