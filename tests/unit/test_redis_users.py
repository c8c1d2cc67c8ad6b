"""Each service's Redis ACL rules: the ones the operations guide lists, the leases' groups
the services use, and a prefix matched as written."""

from __future__ import annotations

import os
import subprocess

import pytest

from services.ingest.app import SERVICE as INGEST
from services.ratefeed.app import SERVICE as RATEFEED
from services.redis_users import SERVICES, acl_rules
from tests.conftest import REPO
from tests.processes import caravan


def test_the_users_in_the_operations_guide_are_the_ones_the_command_prints() -> None:
    guide = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    start = guide.index("<!-- redis-users -->")
    block = guide[guide.index("```\n", start) + 4 : guide.index("```\n", start + 30)]
    done = _redis_users("caravan:")
    printed = done.stdout
    assert done.returncode == 0, done.stderr
    assert block == printed
    assert printed.splitlines() == [
        f"ACL SETUSER caravan-{service} reset on {' '.join(rules)}"
        for service, rules in acl_rules("caravan:").items()
    ]


def test_each_leased_service_gets_the_leases_of_its_own_group() -> None:
    rules = acl_rules("p:")
    assert f"~p:lease:*:{INGEST}:*" in rules["ingest"]
    assert f"~p:lease:*:{RATEFEED}:*" in rules["ratefeed"]
    assert not any("lease" in rule for rule in rules["indexer"] + rules["query"])


def test_a_prefix_with_glob_characters_is_matched_as_written() -> None:
    # `*` in a prefix must not widen a user's keys to another deployment's.
    rules = acl_rules("a*[b]?\\:")
    for service in SERVICES:
        keys = [rule for rule in rules[service] if "~" in rule]
        assert keys
        assert all(rule.split("~", 1)[1].startswith("a\\*\\[b\\]\\?\\\\:") for rule in keys)


def test_nothing_dangerous_is_added_back_after_it_is_taken_away() -> None:
    for rules in acl_rules("p:").values():
        assert "-@dangerous" in rules
        after = rules[rules.index("-@dangerous") + 1 :]
        assert all(not rule.startswith("+") for rule in after)


def test_a_prefix_no_acl_pattern_can_hold_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="holds whitespace"):
        acl_rules("my prefix:")
    refused = _redis_users("my prefix:")
    assert refused.returncode == 2
    assert "holds whitespace" in refused.stderr
    assert not refused.stdout


def _redis_users(prefix: str) -> subprocess.CompletedProcess[str]:
    return caravan({**os.environ, "CARAVAN_STREAM_PREFIX": prefix}, "redis-users")
