"""Least-privilege Redis ACL users, one per service (`caravan redis-users`).

Each service is confined to the keys it reads or writes, all under
CARAVAN_STREAM_PREFIX, and to the commands it sends: the query service, the one
facing the public, can only read the quotes stream (its live ticker), so a
compromised query process cannot forge an article or a quote or touch any state;
ingest and the rate feed each write their own stream and state and their own
leases; the indexer owns the consumer groups, the dead letters and the matches.
docs/operations.md lists these rules (a test keeps the two equal), and
tests/e2e/test_redis_users.py runs every service under its own user.

Scripts (EVAL) are checked command by command against the same rules, so the
commands the leases and the atomic writes run inside them are listed too.
"""

from __future__ import annotations

import argparse

from shared.settings import Settings

SERVICES = ("ingest", "ratefeed", "indexer", "query")
# What every client needs: PING (health checks), HELLO/AUTH/CLIENT SETNAME and the
# like (@connection), and a cluster client's view of the slots.
_BASE = ("+@connection", "+cluster|slots", "+cluster|shards")
# The commands of a service that writes: its streams (XADD, consumer groups), its
# state (strings, hashes, sorted sets of the leases), transactions, and the scripts
# the leases and atomic writes run (TIME: a lease's clock).
_WRITER = ("+@read", "+@write", "+@stream", "+@transaction", "+eval", "+time")
# Last, so nothing above brings them back (@write holds FLUSHALL, @connection CLIENT
# KILL, @read KEYS): every key is confined below, but these reach past keys.
_NEVER = ("-@dangerous",)


def _glob(text: str) -> str:
    """`text` matched literally in an ACL key pattern (glob: `*?[]\\` escaped)."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _leases(prefix: str, group: str) -> tuple[str, ...]:
    # shared/leases.py: {prefix}lease:{holder|fence|due|audit}:{group}:{item} and
    # {prefix}lease:members:{group}.
    return (f"~{prefix}lease:*:{group}:*", f"~{prefix}lease:members:{group}")


def acl_rules(stream_prefix: str) -> dict[str, str]:
    """Each service's ACL rules, as `ACL SETUSER caravan-SERVICE reset on` takes them
    after it (without the password: add `>PASSWORD` or `#SHA256`)."""
    p = _glob(stream_prefix)
    keys: dict[str, tuple[str, ...]] = {
        "ingest": (f"~{p}articles", f"~{p}ingest:*", *_leases(p, "ingest")),
        # A quote held as a spike goes out with its dead letter, in the same write: a
        # script, whose declared keys Redis checks for reading and writing alike.
        "ratefeed": (
            f"~{p}quotes",
            f"~{p}deadletters",
            f"~{p}ratefeed:*",
            *_leases(p, "ratefeed"),
        ),
        "indexer": (
            f"~{p}articles",
            f"~{p}quotes",
            f"~{p}deadletters",
            f"~{p}deadletters:*",
            f"~{p}matches",
            f"~{p}matches:*",
        ),
        "query": (f"%R~{p}quotes",),
    }
    commands: dict[str, tuple[str, ...]] = {
        "ingest": _WRITER,
        "ratefeed": _WRITER,
        "indexer": _WRITER,
        # The live ticker: the newest quotes, then the ones after them.
        "query": ("+xrevrange", "+xrange", "+xread"),
    }
    return {
        service: " ".join((*_BASE, *commands[service], *_NEVER, *keys[service]))
        for service in SERVICES
    }


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`caravan redis-users`."""
    users = commands.add_parser(
        "redis-users",
        help="each service's Redis ACL user, as ACL SETUSER commands (passwords to add)",
    )
    users.set_defaults(handler=_print_users)


def _print_users(_: argparse.Namespace, settings: Settings) -> None:
    """`caravan redis-users`: one ACL SETUSER line per service for this deployment's prefix."""
    for service, rules in acl_rules(settings.common.stream_prefix).items():
        print(f"ACL SETUSER caravan-{service} reset on {rules}")
