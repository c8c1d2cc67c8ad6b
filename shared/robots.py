"""robots.txt rules, parsed once per host and kept for a day (RFC 9309).

Parsing and deciding are pure; the fetcher hands in what /robots.txt answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.robotparser import RobotFileParser


@dataclass(frozen=True)
class RobotsRules:
    parser: RobotFileParser | None
    # Unreachable robots.txt (5xx, network errors) means "disallow everything"
    # for a while (RFC 9309 §2.3.1.4); a missing one (4xx) allows everything.
    disallow_all: bool = False
    # Crawl-delay per lower-cased user-agent token of each group ("*" included).
    delays: dict[str, float] = field(default_factory=dict)

    def allows(self, user_agent: str, url: str) -> bool:
        if self.disallow_all:
            return False
        return self.parser is None or self.parser.can_fetch(user_agent, url)

    def crawl_delay(self, user_agent: str) -> float | None:
        """The Crawl-delay of the group naming our product, else of `*`."""
        product = user_agent.split("/", maxsplit=1)[0].strip().lower()
        for agent, delay in self.delays.items():
            if agent not in ("", "*") and agent in product:
                return delay
        return self.delays.get("*")


def rules_from_response(status: int | None, body: str) -> RobotsRules:
    """`status` None means the request failed before any answer."""
    if status is None or status >= 500:
        return RobotsRules(None, disallow_all=True)
    if status >= 400:
        return RobotsRules(None)
    parser = RobotFileParser()
    parser.parse(body.splitlines())
    return RobotsRules(parser, delays=crawl_delays(body))


def crawl_delays(body: str) -> dict[str, float]:
    """Crawl-delay by user-agent. urllib's parser reads whole seconds only; sites write
    fractions (`Crawl-delay: 0.5`) too."""
    delays: dict[str, float] = {}
    agents: list[str] = []
    in_rules = False  # a User-agent line after rules starts a new group
    for raw in body.splitlines():
        name, _, value = raw.split("#", 1)[0].partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "user-agent":
            if in_rules:
                agents, in_rules = [], False
            agents.append(value.lower())
        elif name:
            in_rules = True
            if name == "crawl-delay":
                try:
                    delay = float(value)
                except ValueError:
                    continue
                delays.update(dict.fromkeys(agents, delay))
    return delays

