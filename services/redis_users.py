"""Least-privilege Redis ACL users, one per service (`caravan redis-users`).

Each service is confined to the keys it reads or writes, all under
CARAVAN_STREAM_PREFIX, and to the kinds of command it sends: the query service, the one
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
import sys

from shared.settings import Settings

SERVICES = ("ingest", "ratefeed", "indexer", "query")
# What every client needs: PING (health checks), what redis-py and FastStream send on
# connecting, and a cluster client's view of the slots and redirects. Not the rest of
# @connection: CLIENT TRACKING would tell a user the names of keys others write.
# (CLIENT SETINFO, which Redis 7.0 lacks, is refused: redis-py goes on without it.)
_BASE = (
    "+ping",
    "+echo",
    "+hello",
    "+auth",
    "+select",
    "+reset",
    "+client|setname",
    "+client|getname",
    "+client|id",
    "+command",
    "+asking",
    "+readonly",
    "+readwrite",
    "+cluster|slots",
    "+cluster|shards",
)
# The commands of a service that writes: its streams (XADD, consumer groups), its
# state (strings, hashes, sorted sets of the leases), transactions, and the scripts
# the leases and atomic writes run (TIME: a lease's clock).
_WRITER = ("+@read", "+@write", "+@stream", "+@transaction", "+eval", "+time")
# Last, so nothing above brings them back (@write holds FLUSHALL, @read KEYS): every
# key is confined below, but these reach past keys (SCAN, RANDOMKEY and DBSIZE list or
# count the others' keys; FUNCTION, in @write, loads and deletes server-wide code).
# No service uses them.
_NEVER = ("-@dangerous", "-scan", "-randomkey", "-dbsize", "-function")


def _glob(text: str) -> str:
    """`text` matched literally in an ACL key pattern (glob: `*?[]\\` escaped)."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _leases(prefix: str, group: str) -> tuple[str, ...]:
    # shared/leases.py: {prefix}lease:{holder|fence|due|audit}:{group}:{item} and
    # {prefix}lease:members:{group}.
    return (f"~{prefix}lease:*:{group}:*", f"~{prefix}lease:members:{group}")


def acl_rules(stream_prefix: str) -> dict[str, list[str]]:
    """Each service's ACL rules, the arguments `ACL SETUSER caravan-SERVICE reset on`
    takes after it (without the password: add `>PASSWORD` or `#SHA256`)."""
    if any(c.isspace() for c in stream_prefix):
        msg = f"CARAVAN_STREAM_PREFIX {stream_prefix!r} holds whitespace: no ACL key pattern can"
        raise ValueError(msg)
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
    return {service: [*_BASE, *commands[service], *_NEVER, *keys[service]] for service in SERVICES}


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`caravan redis-users`."""
    users = commands.add_parser(
        "redis-users",
        help="each service's Redis ACL user, as ACL SETUSER commands (passwords to add)",
    )
    users.set_defaults(handler=_print_users)


def _print_users(_: argparse.Namespace, settings: Settings) -> None:
    """`caravan redis-users`: one ACL SETUSER line per service for this deployment's prefix."""
    try:
        users = acl_rules(settings.common.stream_prefix)
    except ValueError as exc:
        print(f"caravan redis-users: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    for service, rules in users.items():
        words = " ".join(_as_typed(rule) for rule in rules)
        print(f"ACL SETUSER caravan-{service} reset on {words}")


def _as_typed(word: str) -> str:
    """`word` as redis-cli reads it back: quoted when it holds a quote (a prefix may),
    else as it is (outside quotes a backslash is itself)."""
    if not any(c in word for c in "'\""):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
